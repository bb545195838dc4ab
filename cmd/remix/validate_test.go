package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runRemix(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidateExample(t *testing.T) {
	t.Setenv("PROD_DB_DSN", "postgres://u:pw@localhost/app")
	t.Setenv("PROD_DB_REPL_DSN", "postgres://u:pw@localhost/app")
	t.Setenv("STRIPE_API_KEY", "sk_test_1")
	ex := filepath.Join("..", "..", "examples", "stripe_postgresql_two_tables")
	code, out, errOut := runRemix(t, "validate", "--systems", filepath.Join(ex, "systems"), "--models", filepath.Join(ex, "models"))
	if code != 0 || !strings.Contains(errOut, "configuration is valid: 2 systems, 2 models") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// use_cli_listener is set: without the Stripe CLI, a warning says the
	// system runs on the Events API alone.
	_, lookErr := exec.LookPath("stripe")
	if lookErr != nil && !strings.Contains(out, "warning: payment-gateway: use_cli_listener is set but the Stripe CLI") || lookErr == nil && out != "" {
		t.Fatalf("stdout: %s", out)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Setenv("PROD_DB_DSN", "postgres://u:pw@localhost/app")
	bad := filepath.Join("..", "..", "config", "testdata", "bad", "05-unknown-model-field")
	models := filepath.Join("..", "..", "config", "testdata", "models")
	code, out, _ := runRemix(t, "validate", "--systems", bad, "--models", models)
	want := filepath.Join(bad, "db.yaml") + `:8:18: db.receive_mixer."public.products".product.product_name.field: model product has no field "nme" (did you mean "name"?); its fields: id, stripe_id, name, price` + "\n" +
		filepath.Join(bad, "db.yaml") + `:15:9: db.push_mixer.product."public.products".nmae: model product has no field "nmae" (did you mean "name"?); its fields: id, stripe_id, name, price` + "\n"
	if code != 1 || out != want {
		t.Fatalf("exit %d\n%s\nwant\n%s", code, out, want)
	}

	code, out, _ = runRemix(t, "validate", "--systems", bad, "--models", models, "--format", "json")
	var problems []problem
	if err := json.Unmarshal([]byte(out), &problems); err != nil || code != 1 {
		t.Fatalf("exit %d, json %v: %s", code, err, out)
	}
	if len(problems) != 2 || problems[0].Line != 8 || problems[0].Column != 18 || problems[0].Severity != "error" || problems[1].Key != `db.push_mixer.product."public.products".nmae` {
		t.Fatalf("problems = %+v", problems)
	}
}

func TestValidateUsage(t *testing.T) {
	if code, _, _ := runRemix(t, "validate", "--format", "xml"); code != 2 {
		t.Fatalf("bad format: exit %d", code)
	}
	if code, _, _ := runRemix(t, "nope"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

// TestValidateRefusesASharedSlot: two sources that would read one slot are
// refused offline, at the position of the second.
func TestValidateRefusesASharedSlot(t *testing.T) {
	t.Setenv("PROD_DB_DSN", "postgres://u:pw@db.internal:5432/app")
	bad := filepath.Join("..", "..", "config", "testdata", "bad", "27-shared-slot-or-publication")
	models := filepath.Join("..", "..", "config", "testdata", "models")
	code, out, _ := runRemix(t, "validate", "--systems", bad, "--models", models)
	want := filepath.Join(bad, "db.yaml") + `:18:14: shop-db.slot_name: replication slot "remix_shop_db", on db.internal:5432, is already taken by system shop_db`
	if code != 1 || !strings.Contains(out, want) {
		t.Fatalf("exit %d\n%s\nwant a line starting\n%s", code, out, want)
	}
}
