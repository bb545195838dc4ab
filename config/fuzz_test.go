package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadSystems feeds arbitrary bytes to the systems-file loader: it must
// never panic, and every problem must carry the file and a key path or line.
func FuzzLoadSystems(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "*", "*.yaml"))
	seeds = append(seeds, filepath.Join("..", "examples", "stripe_postgresql_one_table", "systems", "prod-db.yaml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	var errs Errors
	models := loadModels(filepath.Join("testdata", "models"), &errs)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	// Stand-ins for the real connector specs, which this package cannot import.
	specs := Specs{
		"postgresql": {Type: "postgresql", Receive: true, Push: true, Settings: []SettingSpec{
			{Name: "dsn", Kind: KindSecret, Required: true},
			{Name: "max_open_connections", Kind: KindInt, Default: int64(10), Min: Float64(1)},
			{Name: "max_connection_idle_time", Kind: KindDuration},
			{Name: "initial_snapshot", Kind: KindBool, Default: true},
			{Name: "ratio", Kind: KindFloat},
			{Name: "slot_name", Kind: KindString},
		}},
		"stripe": {Type: "stripe", Receive: true, Push: true, Settings: []SettingSpec{
			{Name: "api_key", Kind: KindSecret, Required: true},
		}},
	}
	getenv := func(k string) (string, bool) { return "value-of-" + k, k != "UNSET" }
	f.Fuzz(func(t *testing.T, data []byte) {
		var errs Errors
		l := &loader{opts: Options{Specs: specs}, getenv: getenv, errs: &errs, models: models}
		systems := l.loadBytes("fuzz.yaml", data)
		for _, e := range errs {
			if e.File != "fuzz.yaml" {
				t.Fatalf("error without the file: %v", e)
			}
			if e.Msg == "" {
				t.Fatalf("error without a message: %#v", e)
			}
		}
		if len(errs) == 0 {
			for _, s := range systems {
				if s.Spec == nil || s.Name == "" {
					t.Fatalf("system accepted without a known type: %+v", s)
				}
			}
		}
		var es Errors = errs
		if len(errs) > 0 && !errors.As(error(es), &es) {
			t.Fatal("errors are not Errors")
		}
	})
}
