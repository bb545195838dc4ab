package stripe

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

const (
	twoTables = "../../examples/stripe_postgresql_two_tables"
	oneTable  = "../../examples/stripe_postgresql_one_table"
	catalog   = "testdata/catalog"
)

// loadConfig loads a configuration folder (systems/, models/) with the
// Stripe API at apiBase.
func loadConfig(t testing.TB, dir, apiBase string) *config.Config {
	t.Helper()
	env := map[string]string{"PROD_DB_DSN": "postgres://x/y", "PROD_DB_REPL_DSN": "postgres://x/y", "STRIPE_API_KEY": "sk_test_remix",
		"STRIPE_API_BASE": apiBase, "STRIPE_WEBHOOK_SECRET": testSecret}
	cfg, err := config.Load(config.Options{SystemsDir: dir + "/systems", ModelsDir: dir + "/models",
		Specs: config.Specs{Type: Spec(), "postgresql": {Type: "postgresql", Receive: true, Push: true, Settings: []config.SettingSpec{
			{Name: "dsn", Kind: config.KindSecret}, {Name: "replication_dsn", Kind: config.KindSecret},
			{Name: "max_open_connections", Kind: config.KindInt}, {Name: "max_idle_connections", Kind: config.KindInt},
			{Name: "max_connection_idle_time", Kind: config.KindDuration}}}},
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	return cfg
}

const testSecret = "whsec_remixtest"

// stripeSystem is the Stripe system of a configuration.
func stripeSystem(t testing.TB, cfg *config.Config) *config.System {
	t.Helper()
	for _, s := range cfg.Systems {
		if s.Type == Type {
			return s
		}
	}
	t.Fatal("no stripe system")
	return nil
}

// records maps an object through the system's push mixer, as a pusher
// would, with an origin in system from.
func records(t testing.TB, sys *config.System, model string, op mixer.Op, fields map[string]any, from, position string) []mixer.TargetRecord {
	t.Helper()
	obj := mixer.Object{Model: model, Op: op, Fields: fields}
	var out []mixer.TargetRecord
	for _, r := range sys.Push.Push(&obj, nil) {
		if r.Err != nil {
			t.Fatalf("push %s: %v", model, r.Err)
		}
		r.Record.Origin = mixer.Origin{Model: model, Source: from, System: from, Position: position}
		out = append(out, r.Record)
	}
	return out
}

func num(s string) json.Number { return json.Number(s) }

// recorder is an HTTP transport that keeps every request and its status.
type recorder struct {
	mu    sync.Mutex
	calls []recorded
}

type recorded struct {
	Method, Path, Key string
	Form              url.Values
	Status            int
	Body              string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
	}
	form, _ := url.ParseQuery(string(body))
	if req.Method == http.MethodGet {
		form = req.URL.Query()
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	rec := recorded{Method: req.Method, Path: req.URL.Path, Key: req.Header.Get("Idempotency-Key"), Form: form}
	if err == nil {
		rec.Status = res.StatusCode
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		rec.Body = string(b)
		res.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	r.mu.Lock()
	r.calls = append(r.calls, rec)
	r.mu.Unlock()
	return res, err
}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

// testSink opens a sink of sys whose requests go through rec.
func testSink(t testing.TB, sys *config.System, rec *recorder) *Sink {
	t.Helper()
	var hc *http.Client
	if rec != nil {
		hc = &http.Client{Transport: rec}
	}
	s := newSink(sys, connectors.SinkDeps{Logger: slog.New(slog.DiscardHandler)}, hc)
	s.api.backoff = 10_000_000 // 10ms: tests do not wait for real backoffs
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// memCheckpoints keeps a source's checkpoints in memory.
type memCheckpoints struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *memCheckpoints) Load(_ context.Context, name string) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	return v, ok, nil
}

func (c *memCheckpoints) Save(_ context.Context, name, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = value
	return nil
}

func sourceDeps() connectors.SourceDeps {
	return connectors.SourceDeps{Checkpoints: &memCheckpoints{m: map[string]string{}}, Logger: slog.New(slog.DiscardHandler)}
}
