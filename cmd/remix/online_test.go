package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/internal/testenv"
)

const example = "../../examples/postgresql_to_postgresql"

// onlineSetup is a shop and a warehouse database made from the example's
// SQL, a Redis namespace, and a copy of the example's systems with the
// DSNs written in (edit turns the copy's text into what the test wants).
type onlineSetup struct {
	systems, models string
	redis, ns       string
}

func setupOnline(t *testing.T, target string, edit map[string]func(string) string) onlineSetup {
	t.Helper()
	ctx := testenv.Context(t)
	shop, warehouse := testenv.NewDatabase(t), testenv.NewDatabase(t)
	for url, sql := range map[string]string{shop: readFile(t, filepath.Join(example, "source.sql")), warehouse: readFile(t, filepath.Join(example, "target.sql")) + target} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
	}
	_, ns := testenv.Redis(t)
	dir := t.TempDir()
	values := map[string]string{"${SHOP_DSN}": shop, "${WAREHOUSE_DSN}": warehouse, "${SHOP_SLOT:-remix_shop}": testenv.UniqueName("slot")}
	for _, name := range []string{"shop.yaml", "warehouse.yaml"} {
		text := readFile(t, filepath.Join(example, "systems", name))
		for k, v := range values {
			text = strings.ReplaceAll(text, k, "'"+v+"'")
		}
		if e := edit[name]; e != nil {
			text = e(text)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return onlineSetup{systems: dir, models: filepath.Join(example, "models"), redis: testenv.RedisURL(t), ns: ns}
}

func (s onlineSetup) validate(t *testing.T) (int, string, string) {
	t.Helper()
	return runRemixCtx(t, testenv.Context(t), "validate", "--online", "--systems", s.systems, "--models", s.models,
		"--redis", s.redis, "--namespace", s.ns)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// at is file:line:col of the first occurrence of text in a file.
func at(t *testing.T, file, text string) string {
	t.Helper()
	for i, line := range strings.Split(readFile(t, file), "\n") {
		if c := strings.Index(line, text); c >= 0 {
			return fmt.Sprintf("%s:%d:%d", file, i+1, c+1)
		}
	}
	t.Fatalf("%s has no %q", file, text)
	return ""
}

// TestValidateOnlineExample: the example fits its databases and Redis.
func TestValidateOnlineExample(t *testing.T) {
	t.Parallel()
	s := setupOnline(t, "", nil)
	code, out, errOut := s.validate(t)
	if code != 0 || out != "" || !strings.Contains(errOut, "configuration is valid and fits its systems and Redis: 2 systems, 2 models") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestValidateOnlineFindsTypos: a misspelt source column, a misspelt
// target column and a search key without a key index are each reported at
// the place in the configuration, before anything starts.
func TestValidateOnlineFindsTypos(t *testing.T) {
	t.Parallel()
	s := setupOnline(t, "ALTER TABLE fact_order DROP CONSTRAINT fact_order_pkey;\n", map[string]func(string) string{
		"shop.yaml": func(s string) string { return strings.Replace(s, "full_name:", "full_nme:", 1) },
		"warehouse.yaml": func(s string) string {
			return strings.Replace(s, "field: email_address", "field: email_adress", 1)
		},
	})
	code, out, errOut := s.validate(t)
	shop, warehouse := filepath.Join(s.systems, "shop.yaml"), filepath.Join(s.systems, "warehouse.yaml")
	want := []string{
		at(t, shop, "full_nme:") + `: shop.receive_mixer."public.customers".customer.full_nme: table public.customers has no column "full_nme" (did you mean "full_name"?)`,
		at(t, warehouse, "email:") + `: warehouse.push_mixer.customer."public.dim_customer".email: table public.dim_customer has no column "email_adress" (did you mean "email_address"?)`,
		wantKeyIndex(t, warehouse),
	}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("missing\n  %s\nin\n%s", w, out)
		}
	}
	if code != 1 || strings.Count(out, "\n") != 3 || errOut != "3 problems\n" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestValidateOnlineTypes: a source column whose values no model field
// takes, a model field no value of which the target column takes, and,
// as warnings, a NOT NULL column the push mixer leaves out and an identity
// column GENERATED ALWAYS it writes.
func TestValidateOnlineTypes(t *testing.T) {
	t.Parallel()
	s := setupOnline(t, "ALTER TABLE fact_order ALTER COLUMN amount TYPE date USING NULL;\n"+
		"ALTER TABLE dim_customer ADD COLUMN region text NOT NULL;\n"+
		"ALTER TABLE dim_customer ALTER COLUMN customer_key ADD GENERATED ALWAYS AS IDENTITY;\n", nil)
	ctx := testenv.Context(t)
	shopURL := dsnOf(t, filepath.Join(s.systems, "shop.yaml"))
	conn, err := pgx.Connect(ctx, shopURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE orders ALTER COLUMN total TYPE boolean USING total > 0`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	code, out, errOut := s.validate(t)
	shop, warehouse := filepath.Join(s.systems, "shop.yaml"), filepath.Join(s.systems, "warehouse.yaml")
	want := []string{
		at(t, shop, "total:") + `: shop.receive_mixer."public.orders".order.total: column total of public.orders is boolean, but model field order.total is null or number: every change would be dead-lettered`,
		at(t, warehouse, "total:") + `: warehouse.push_mixer.order."public.fact_order".total: model field order.total is null or number, which column amount (date) cannot take: every record would be dead-lettered`,
		at(t, warehouse, "public.dim_customer:") + `: warning: warehouse.push_mixer.customer."public.dim_customer": table public.dim_customer has NOT NULL column region without a default`,
		at(t, warehouse, "id:") + `: warning: warehouse.push_mixer.customer."public.dim_customer".id: column customer_key of public.dim_customer is an identity column GENERATED ALWAYS, which an INSERT may not write`,
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing\n  %s\nin\n%s", w, out)
		}
	}
	if code != 1 || strings.Count(out, "\n") != 4 || errOut != "2 problems\n" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// dsnOf reads the dsn written into a copied system file.
func dsnOf(t *testing.T, file string) string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, file), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "dsn: "); ok {
			return strings.Trim(v, "'")
		}
	}
	t.Fatalf("no dsn in %s", file)
	return ""
}

// wantKeyIndex is the problem of fact_order's search key, at its id: key.
func wantKeyIndex(t *testing.T, warehouse string) string {
	t.Helper()
	lines := strings.Split(readFile(t, warehouse), "\n")
	for i, line := range lines {
		if strings.Contains(line, "field: order_key") {
			key := lines[i-1]
			return fmt.Sprintf("%s:%d:%d: warehouse.push_mixer.order.\"public.fact_order\".id: column order_key of public.fact_order is a search key "+
				"but neither its primary key nor covered by a unique index of its own; add one: CREATE UNIQUE INDEX ON \"public\".\"fact_order\" (\"order_key\")",
				warehouse, i, strings.Index(key, "id:")+1)
		}
	}
	t.Fatal("no order_key in the warehouse")
	return ""
}

// TestValidateOnlineRedisUnreachable: a Redis that does not answer is a
// problem of its own, without a file.
func TestValidateOnlineRedisUnreachable(t *testing.T) {
	t.Parallel()
	s := setupOnline(t, "", nil)
	s.redis = "redis://" + closedAddr(t) + "/0"
	code, out, _ := s.validate(t)
	if code != 1 || !strings.HasPrefix(out, "redis: connecting to Redis at ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func runRemixCtx(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}
