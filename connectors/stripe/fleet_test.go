package stripe_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/connectors/stripe/stripefake"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/ingest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/pusher"
)

const secret = "whsec_fleettest"

// fleet is one test's Remix, in process: a PostgreSQL database with an
// example's schema, a Redis namespace, the stateful Stripe fake, an ingest
// (whose webhook endpoint the fake delivers to, unless webhooks are off)
// and pushers.
type fleet struct {
	t    *testing.T
	ctx  context.Context
	fake *stripefake.Fake
	db   *pgxpool.Pool
	cfg  *config.Config
	cc   *coord.Client
	hook *stripefake.Endpoint
	url  string // the webhook endpoint of payment-gateway
}

type fleetOptions struct {
	webhooks bool
	settings map[string]string // extra payment-gateway settings
	replace  [][2]string       // text replaced in the system files
	maxBatch int               // coord.Config.MaxBatch; 0: its default
}

// copyExample copies an example's systems into a folder of the test's,
// with a slot of its own and extra gateway settings.
func copyExample(t *testing.T, example string, o fleetOptions) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("../../examples", example, "systems")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		text = strings.Replace(text, "  dsn: ${PROD_DB_DSN}\n", "  dsn: ${PROD_DB_DSN}\n  slot_name: ${PROD_DB_SLOT}\n", 1)
		extra := ""
		for k, v := range o.settings {
			extra += "  " + k + ": " + v + "\n"
		}
		text = strings.Replace(text, "  api_key: ${STRIPE_API_KEY}\n", "  api_key: ${STRIPE_API_KEY}\n"+extra, 1)
		for _, r := range o.replace {
			text = strings.ReplaceAll(text, r[0], r[1])
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newFleet(t *testing.T, example string, o fleetOptions) *fleet {
	t.Helper()
	dbURL := testenv.NewDatabase(t)
	rdb, ns := testenv.Redis(t)
	f := &fleet{t: t, ctx: testenv.Context(t), fake: stripefake.New(t)}
	var err error
	if f.db, err = pgxpool.New(f.ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.db.Close)
	schema, err := os.ReadFile(filepath.Join("../../examples", example, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	f.exec(string(schema))
	// Every write Remix makes to the tables, for counting.
	f.exec(`CREATE TABLE remix_writes (tbl text, op text, row jsonb, at timestamptz DEFAULT clock_timestamp());
		CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			INSERT INTO remix_writes (tbl, op, row) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW)); RETURN NEW; END $$;`)
	for _, tbl := range []string{"products", "prices"} {
		if f.exists(tbl) {
			f.exec(`CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON ` + tbl + ` FOR EACH ROW WHEN (current_setting('remix.test', true) IS DISTINCT FROM 'app') EXECUTE FUNCTION log_write()`)
		}
	}
	env := map[string]string{"PROD_DB_DSN": dbURL, "PROD_DB_REPL_DSN": dbURL, "PROD_DB_SLOT": testenv.UniqueName("slot"),
		"STRIPE_API_KEY": "sk_test_fleet", "STRIPE_API_BASE": f.fake.URL, "STRIPE_WEBHOOK_SECRET": secret}
	f.cfg, err = config.Load(config.Options{SystemsDir: copyExample(t, example, o), ModelsDir: filepath.Join("../../examples", example, "models"),
		Specs: builtin.Connectors().Specs(), Getenv: testenv.Getenv(env)})
	if err != nil {
		t.Fatal(err)
	}
	if f.cc, err = coord.New(rdb, coord.Config{Namespace: ns, Partitions: 4, LeaseTTL: 2 * time.Second, ReadBlock: 200 * time.Millisecond, RetryBackoff: 50 * time.Millisecond, MaxBatch: o.maxBatch}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ing, err := ingest.New(ingest.Config{Config: f.cfg, Coord: f.cc, Connectors: builtin.Connectors(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ing.Webhooks())
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/webhooks/payment-gateway"
	if o.webhooks {
		f.hook = f.fake.AddEndpoint(f.url, secret)
	}
	f.run(ing.Run)
	f.startPusher(log)
	return f
}

func (f *fleet) startPusher(log *slog.Logger) {
	p, err := pusher.New(pusher.Config{Config: f.cfg, Coord: f.cc, Connectors: builtin.Connectors(), Logger: log})
	if err != nil {
		f.t.Fatal(err)
	}
	f.run(p.Run)
}

// run runs a service until the test ends.
func (f *fleet) run(run func(context.Context) error) {
	ctx, cancel := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = run(ctx)
	}()
	f.t.Cleanup(func() { cancel(); wg.Wait() })
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (f *fleet) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// app runs statements as the application: its writes are not counted as
// Remix's.
func (f *fleet) app(sql string, args ...any) {
	f.t.Helper()
	tx, err := f.db.Begin(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	if _, err := tx.Exec(f.ctx, `SELECT set_config('remix.test', 'app', true)`); err != nil {
		f.t.Fatal(err)
	}
	if _, err := tx.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	if err := tx.Commit(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) exists(tbl string) bool {
	var ok bool
	if err := f.db.QueryRow(f.ctx, `SELECT to_regclass($1) IS NOT NULL`, "public."+tbl).Scan(&ok); err != nil {
		f.t.Fatal(err)
	}
	return ok
}

func (f *fleet) text(sql string, args ...any) string {
	f.t.Helper()
	var s *string
	if err := f.db.QueryRow(f.ctx, sql, args...).Scan(&s); errors.Is(err, pgx.ErrNoRows) {
		return ""
	} else if err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// rowWrites counts the writes Remix made to a table.
func (f *fleet) rowWrites(tbl string) int {
	var n int
	if err := f.db.QueryRow(f.ctx, `SELECT count(*) FROM remix_writes WHERE tbl = $1`, tbl).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or a deadline passes.
func (f *fleet) waitFor(what string, within time.Duration, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			var rows []string
			r, _ := f.db.Query(f.ctx, `SELECT tbl || ' ' || op || ' ' || row::text FROM remix_writes ORDER BY at`)
			for r != nil && r.Next() {
				var s string
				_ = r.Scan(&s)
				rows = append(rows, s)
			}
			st, _ := f.cc.DeadLetterStats(f.ctx, "prod-db")
			f.t.Fatalf("%s: not within %v (row writes %v; %d dead letters at prod-db)", what, within, rows, st.Entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settle waits until nothing moves: no new Stripe call, no new row write
// and no pending webhook for a while.
func (f *fleet) settle(quiet time.Duration) {
	f.t.Helper()
	last, since := "", time.Now()
	f.waitFor("the fleet to settle", 60*time.Second, func() bool {
		var n int
		_ = f.db.QueryRow(f.ctx, `SELECT count(*) FROM remix_writes`).Scan(&n)
		pending := 0
		if f.hook != nil {
			pending = f.hook.Pending()
		}
		now := strings.Join([]string{itoa(len(f.fake.Calls())), itoa(n), itoa(pending)}, "/")
		if now != last {
			last, since = now, time.Now()
		}
		return pending == 0 && time.Since(since) > quiet
	})
}

// writes are the calls Remix made to Stripe that changed something, by
// method and path pattern ("POST /v1/products", "POST /v1/products/{id}").
func (f *fleet) writes() map[string][]url.Values {
	out := map[string][]url.Values{}
	for _, c := range f.fake.Calls() {
		if c.Method == http.MethodGet || c.Status >= 300 || c.Replayed || !strings.HasPrefix(c.IdempotencyKey, "remix:") {
			continue
		}
		parts := strings.Split(c.Path, "/")
		if len(parts) == 4 {
			parts[3] = "{id}"
		}
		k := c.Method + " " + strings.Join(parts, "/")
		out[k] = append(out[k], url.Values(c.Params))
	}
	return out
}

// dashboard changes Stripe as a person in Stripe's dashboard would.
func (f *fleet) dashboard(method, path string, form url.Values) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.fake.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_dashboard")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		f.t.Fatalf("dashboard %s %s: %v %v", method, path, res, err)
	}
	res.Body.Close()
}

// pgMarksOrigins reports whether the PostgreSQL sink marked its writes
// with a replication origin (two-way sync on the PostgreSQL side): then
// a row Remix wrote from Stripe does not come back to Stripe at all.
func (f *fleet) pgMarksOrigins() bool {
	var n int
	_ = f.db.QueryRow(f.ctx, `SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'remix%'`).Scan(&n)
	return n > 0
}

func itoa(i int) string { return strconv.Itoa(i) }
