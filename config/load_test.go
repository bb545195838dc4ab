package config_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/mixer"
)

var update = flag.Bool("update", false, "rewrite the want.txt files of the bad fixtures")

var testEnv = map[string]string{
	"PROD_DB_DSN":      "postgres://remix:s3cret-pw@db.internal:5432/app",
	"PROD_DB_REPL_DSN": "postgres://remix:s3cret-pw@db.internal:5432/app?replication=database",
	"STRIPE_API_KEY":   "sk_test_abcdef123456",
	"DB_PASSWORD":      "hunter2",
}

func getenv(name string) (string, bool) { v, ok := testEnv[name]; return v, ok }

func load(t *testing.T, dir string) (*config.Config, error) {
	t.Helper()
	models := filepath.Join(dir, "models")
	if _, err := os.Stat(models); err != nil {
		models = filepath.Join("testdata", "models")
	}
	return config.Load(config.Options{SystemsDir: dir, ModelsDir: models, Specs: builtin.Connectors().Specs(), Getenv: getenv})
}

// TestBadConfigs loads each numbered bad fixture and compares every reported
// problem, with its file, line, column and key, to the fixture's want.txt.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	dirs, _ := filepath.Glob(filepath.Join("testdata", "bad", "*"))
	if len(dirs) < 20 {
		t.Fatalf("only %d bad fixtures found", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			_, err := load(t, dir)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if !config.IsConfigError(err) {
				t.Fatalf("error is %T, not config.Errors", err)
			}
			got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "") + "\n"
			got = strings.ReplaceAll(got, filepath.Join("testdata", "models")+string(filepath.Separator), "$MODELS/")
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ\n--- got\n%s--- want\n%s", got, want)
			}
			for _, secret := range testEnv {
				if strings.Contains(got, secret) {
					t.Errorf("an error shows the secret %q", secret)
				}
			}
		})
	}
}

func TestGoodConfigs(t *testing.T) {
	t.Parallel()
	dirs, _ := filepath.Glob(filepath.Join("testdata", "good", "*"))
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			if _, err := load(t, dir); err != nil {
				t.Fatalf("load: %v", err)
			}
		})
	}
}

func TestRouterAliases(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, filepath.Join("testdata", "good", "01-router-aliases"))
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.System("db")
	if db.Receive == nil || db.Push == nil {
		t.Fatal("aliases did not produce mixers")
	}
	if got := db.Receive.Locations(); len(got) != 1 || got[0] != "public.products" {
		t.Fatalf("locations = %v", got)
	}
	if p := db.PosOf("push_mixer", "product", "public.products", "name"); p.Line != 18 {
		t.Fatalf("position of push field = %v", p)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, filepath.Join("testdata", "good", "02-anchors-merge"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Systems) != 2 {
		t.Fatalf("systems = %d, want 2 (x- keys are templates)", len(cfg.Systems))
	}
	a, b := cfg.System("db-a"), cfg.System("db-b")
	if a.Settings.Int("max_open_connections") != 8 || b.Settings.Int("max_open_connections") != 4 {
		t.Fatalf("merge: %d, %d", a.Settings.Int("max_open_connections"), b.Settings.Int("max_open_connections"))
	}
	if a.RateLimit != 2.5 || a.RateBucketSize != 3 {
		t.Fatalf("rate = %v/%d", a.RateLimit, a.RateBucketSize)
	}
	if len(b.Push.Rules("product")) != 1 {
		t.Fatal("aliased mapping lost")
	}
}

func TestInterpolation(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, filepath.Join("testdata", "good", "03-interpolation"))
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.System("db")
	dsn := db.Settings.Secret("dsn")
	if dsn.Reveal() != "postgres://remix:hunter2@localhost:5432/app" {
		t.Fatalf("dsn = %q", dsn.Reveal())
	}
	if db.Settings.String("slot_name") != "cost_$_slot" || db.Settings.Int("max_open_connections") != 12 {
		t.Fatalf("slot %q pool %d", db.Settings.String("slot_name"), db.Settings.Int("max_open_connections"))
	}
	if db.Settings.Duration("max_connection_idle_time") != 30*time.Minute {
		t.Fatal("default idle time not applied")
	}
	rule := db.Push.Rules("price")[0]
	out, err := rule.Apply(&mixer.Object{Model: "price", Op: mixer.OpUpsert, Fields: map[string]any{"stripe_id": "price_1"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Fields["currency"] != "usd" || out.Fields["unit_amount"] != json.Number("1000000") {
		t.Fatalf("hardcodes = %#v", out.Fields)
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, filepath.Join("testdata", "good", "04-unpushed-model-warns"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), `db.yaml:6:7: db.receive_mixer."public.prices".price: no system pushes model "price"`) {
		t.Fatalf("warnings = %v", cfg.Warnings)
	}
}

// TestUnfilledSearchKeyWarns: a push mixer location none of whose search
// keys a receive mixer fills is a warning; one with some key filled is not.
func TestUnfilledSearchKeyWarns(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, filepath.Join("testdata", "good", "08-unfilled-search-key"))
	if err != nil {
		t.Fatal(err)
	}
	want := `db.yaml:16:7: warehouse.push_mixer.price."public.price_by_stripe_id": no receive mixer fills the search key "stripe_id" of model "price"`
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), want) {
		t.Fatalf("warnings = %v, want one: %s", cfg.Warnings, want)
	}
}

func TestMissingDirectories(t *testing.T) {
	t.Parallel()
	_, err := config.Load(config.Options{SystemsDir: "testdata/nope", ModelsDir: "", Specs: builtin.Connectors().Specs()})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"no models directory given (set MODELS_DIR or --models)", "testdata/nope: cannot read the systems directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
}

// TestDeadLetterLimits reads the dead_letter_* keys and the defaults of a
// system that sets none.
func TestDeadLetterLimits(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, filepath.Join("testdata", "good", "06-dead-letter-limits"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.System("db").DeadLetters, (config.DeadLetterLimit{MaxEntries: 1000, MaxBytes: 8 << 20, DropOldest: true}); got != want {
		t.Errorf("db: %+v, want %+v", got, want)
	}
	if got, want := cfg.System("warehouse").DeadLetters, (config.DeadLetterLimit{MaxEntries: 0, MaxBytes: 256 << 20}); got != want {
		t.Errorf("warehouse: %+v, want %+v", got, want)
	}
}

// TestWritesInFlight reads writes_in_flight and batch_time, and their
// defaults.
func TestWritesInFlight(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, filepath.Join("testdata", "good", "07-writes-in-flight"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.System("warehouse").WritesInFlight; got != 8 {
		t.Errorf("warehouse: %d writes in flight, want 8", got)
	}
	if got := cfg.System("db").WritesInFlight; got != config.DefaultWritesInFlight {
		t.Errorf("db: %d writes in flight, want the default %d", got, config.DefaultWritesInFlight)
	}
	for name, want := range map[string]time.Duration{"warehouse": 2 * time.Second, "db": 0, "archive": -1} {
		if got := cfg.System(name).BatchTime; got != want {
			t.Errorf("%s: batch time %v, want %v", name, got, want)
		}
	}
}
