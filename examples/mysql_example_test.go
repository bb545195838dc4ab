package examples_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/mixer"
)

// TestMySQLToPostgreSQLExample loads the example and maps a customer row
// of MySQL, its columns renamed, into the warehouse's names. It runs end
// to end, with MariaDB, PostgreSQL and the real binaries, in
// internal/e2e (TestMySQLToPostgres).
func TestMySQLToPostgreSQLExample(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"SHOP_MYSQL_DSN": "remix:pw@tcp(localhost:3306)/shop", "WAREHOUSE_DSN": "postgres://remix:pw@localhost:5432/warehouse"}
	cfg, err := config.Load(config.Options{
		SystemsDir: "mysql_to_postgresql/systems", ModelsDir: "mysql_to_postgresql/models", Specs: builtin.Connectors().Specs(),
		Getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
	})
	if err != nil {
		t.Fatalf("load:\n%v", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Fatalf("warnings:\n%v", cfg.Warnings)
	}
	if shop := cfg.System("shop"); shop.Type != "mysql" || shop.Settings.Secret("dsn").String() != "[redacted]" {
		t.Fatalf("shop: %s, dsn prints as %s", shop.Type, shop.Settings.Secret("dsn"))
	}
	out := flow(t, cfg, "shop", mixer.Record{Location: "shop.customers", Op: mixer.OpUpsert, Complete: true, Fields: map[string]any{
		"id": json.Number("18446744073709551615"), "full_name": "Ada 😀", "email": nil, "notes": "n", "created_at": "2024-01-02T03:04:05.123456Z", "internal_score": json.Number("9"),
	}})
	row := out["warehouse"][0]
	want := map[string]any{"customer_key": json.Number("18446744073709551615"), "name": "Ada 😀", "email_address": nil, "profile_notes": "n", "signed_up": "2024-01-02T03:04:05.123456Z"}
	if row.Location != "public.dim_customer" || !reflect.DeepEqual(row.Fields, want) {
		t.Fatalf("row: %s %#v", row.Location, row.Fields)
	}
}
