package builtin_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/builtin"
)

func TestSelect(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PROD_DB_DSN": "postgres://x/y", "PROD_DB_REPL_DSN": "postgres://x/y", "STRIPE_API_KEY": "sk_test_x"}
	cfg, err := config.Load(config.Options{
		SystemsDir: "../../examples/stripe_postgresql_one_table/systems", ModelsDir: "../../examples/stripe_postgresql_one_table/models",
		Specs: builtin.Connectors().Specs(), Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := builtin.Connectors()
	for _, role := range []connectors.Role{connectors.Read, connectors.Write} {
		got, err := r.Select(cfg, nil, role, log)
		if err != nil || len(got) != 2 || got[0].Name != "payment-gateway" || got[1].Name != "prod-db" {
			t.Fatalf("role %d: %v, %v", role, got, err)
		}
	}
	// A build whose connector of a type can play no role leaves its
	// systems out, and says so.
	partial := connectors.Registry{}
	for k, v := range r {
		partial[k] = v
	}
	partial["stripe"] = connectors.Connector{Spec: r["stripe"].Spec}
	for _, role := range []connectors.Role{connectors.Read, connectors.Write} {
		got, err := partial.Select(cfg, nil, role, log)
		if err != nil || len(got) != 1 || got[0].Name != "prod-db" {
			t.Fatalf("role %d: %v, %v", role, got, err)
		}
	}
	if !strings.Contains(logs.String(), "system=payment-gateway type=stripe") {
		t.Fatalf("leaving stripe out was not logged:\n%s", logs.String())
	}
	if _, err := partial.Select(cfg, []string{"payment-gateway"}, connectors.Read, log); err == nil || !strings.Contains(err.Error(), "stripe systems cannot be read by this build") {
		t.Fatalf("named stripe source: %v", err)
	}
	if _, err := r.Select(cfg, []string{"nope"}, connectors.Write, log); err == nil || !strings.Contains(err.Error(), `no system "nope"`) {
		t.Fatalf("unknown system: %v", err)
	}
}
