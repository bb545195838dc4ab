package examples_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/blob"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/mixer"
)

// postgresql_to_dataset loads, and a people row becomes a dataset row of
// the column types the model declares (internal/e2e runs it for real).
func TestPostgreSQLToDatasetExample(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"SHOP_DSN": "postgres://remix:pw@localhost:5432/shop"}
	cfg, err := config.Load(config.Options{
		SystemsDir: filepath.Join("postgresql_to_dataset", "systems"),
		ModelsDir:  filepath.Join("postgresql_to_dataset", "models"),
		Specs:      builtin.Connectors().Specs(),
		Getenv:     func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) > 0 {
		t.Fatalf("warnings: %v", cfg.Warnings)
	}
	lake := cfg.System("lake")
	ds, err := blob.Datasets(lake, cfg.Models)
	if err != nil || len(ds) != 1 || ds[0].Location != "people" {
		t.Fatalf("datasets %+v: %v", ds, err)
	}
	want := [][2]string{{"id", "BIGINT"}, {"name", "VARCHAR"}, {"balance", "DECIMAL(38,8)"}, {"score", "VARCHAR"},
		{"device_id", "DECIMAL(20,0)"}, {"active", "BOOLEAN"}, {"born", "DATE"}, {"updated_at", "TIMESTAMP WITH TIME ZONE"},
		{"attrs", "JSON"}, {"bio", "VARCHAR"}}
	if !slices.Equal(ds[0].Columns, want) {
		t.Fatalf("columns %v, want %v", ds[0].Columns, want)
	}
	rec := decode(t, `{"id": 9007199254740993, "name": "Ada", "balance": 1234567890123456789012.12345678, "device_id": 18446744073709551615}`)
	res := cfg.System("shop").Receive.Receive(&mixer.Record{Location: "public.people", Op: mixer.OpUpsert, Fields: rec, Complete: true}, nil)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("receive: %+v", res)
	}
	out := lake.Push.Push(&res[0].Object, nil)
	if len(out) != 1 || out[0].Err != nil || out[0].Record.Location != "people" || out[0].Record.Key.Value != res[0].Object.Fields["id"] {
		t.Fatalf("push: %+v", out)
	}
}
