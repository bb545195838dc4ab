// Package toy_test runs the toy connectors through a real ingest and
// pusher: a registry of the built-in connectors plus one line per toy
// type, and nothing of the fleet changed for them.
package toy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/ingest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/internal/toy/jsonlsink"
	"github.com/sqlpipe/remix/internal/toy/memsource"
	"github.com/sqlpipe/remix/pusher"
)

// TestToysThroughTheFleet: a memory feed's items reach a PostgreSQL
// table, and a PostgreSQL table's customers reach JSON lines files, through
// an ingest and a pusher running in this process against the real Redis
// and PostgreSQL.
func TestToysThroughTheFleet(t *testing.T) {
	t.Parallel()
	hub := memsource.NewHub()
	reg := builtin.Connectors()
	reg[memsource.Type] = connectors.Connector{Spec: memsource.Spec(), NewSource: hub.NewSource}
	reg[jsonlsink.Type] = connectors.Connector{Spec: jsonlsink.Spec(), NewSink: jsonlsink.NewSink}

	shopURL, warehouseURL := testenv.NewDatabase(t), testenv.NewDatabase(t)
	shop, warehouse := pool(t, shopURL), pool(t, warehouseURL)
	sqlExec(t, warehouse, `CREATE TABLE items (id bigint PRIMARY KEY, name text)`)
	sqlExec(t, shop, `CREATE TABLE customers (id bigint PRIMARY KEY, full_name text, email text)`,
		`INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 20) g`)
	files := t.TempDir()
	feedName := testenv.UniqueName("feed")
	cfg, err := config.Load(config.Options{
		SystemsDir: "testdata/systems", ModelsDir: "testdata/models", Specs: reg.Specs(),
		Getenv: testenv.Getenv(map[string]string{
			"FEED": feedName, "WAREHOUSE_DSN": warehouseURL, "SHOP_DSN": shopURL,
			"SHOP_SLOT": testenv.UniqueName("slot"), "FILES_DIR": files,
		}),
	})
	if err != nil {
		t.Fatalf("configuration:\n%v", err)
	}
	runFleet(t, cfg, reg)

	t.Run("MemoryFeedToPostgreSQL", func(t *testing.T) {
		feed := hub.Feed(feedName)
		want := map[int]string{}
		for id := 1; id <= 30; id++ {
			upsert(t, feed, id, "v1")
			want[id] = "v1"
		}
		for id := 1; id <= 10; id++ {
			upsert(t, feed, id, "v2")
			want[id] = "v2"
		}
		for id := 21; id <= 25; id++ {
			if _, err := feed.Delete("items", map[string]any{"id": json.Number(fmt.Sprint(id))}); err != nil {
				t.Fatal(err)
			}
			delete(want, id)
		}
		eventually(t, "the warehouse to hold the feed's items", func() (bool, string) {
			got, err := itemsIn(t.Context(), warehouse)
			if err != nil {
				return false, err.Error()
			}
			return maps.Equal(got, want), fmt.Sprintf("%d rows, want %d", len(got), len(want))
		})
	})
	t.Run("PostgreSQLToFiles", func(t *testing.T) {
		sqlExec(t, shop, `INSERT INTO customers SELECT g, 'Customer ' || g, NULL FROM generate_series(21, 25) g`,
			`UPDATE customers SET full_name = 'Renamed ' || id WHERE id <= 5`,
			`DELETE FROM customers WHERE id BETWEEN 6 AND 8`)
		eventually(t, "the files to hold the shop's customers", func() (bool, string) {
			want, err := customersIn(t.Context(), shop)
			if err != nil {
				return false, err.Error()
			}
			got, err := customersInFiles(files)
			if err != nil {
				return false, err.Error()
			}
			return maps.Equal(got, want), fmt.Sprintf("%d customers in the files, want %d", len(got), len(want))
		})
	})
}

// runFleet runs an ingest and a pusher of every system until the test
// ends; their logs are shown if it fails.
func runFleet(t *testing.T, cfg *config.Config, reg connectors.Registry) {
	t.Helper()
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rdb, ns := testenv.Redis(t)
	cc, err := coord.New(rdb, coord.Config{Namespace: ns, Partitions: 4, LeaseTTL: 3 * time.Second, LockTTL: 3 * time.Second,
		ReadBlock: 200 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// The test is about the connectors: a Redis without AOF will do.
	ing, err := ingest.New(ingest.Config{Config: cfg, Coord: cc, Connectors: reg, AcceptNonDurableRedis: true, Logger: log.With("role", "ingest")})
	if err != nil {
		t.Fatal(err)
	}
	push, err := pusher.New(pusher.Config{Config: cfg, Coord: cc, Connectors: reg, Logger: log.With("role", "pusher")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, run := range []func(context.Context) error{ing.Run, push.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("fleet: %v", err)
		}
		if t.Failed() {
			t.Logf("fleet logs:\n%s", logs.String())
		}
	})
}

// eventually polls cond until it holds, failing the test after a minute
// with cond's last word on it.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s: %s", what, last)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func upsert(t *testing.T, feed *memsource.Feed, id int, name string) {
	t.Helper()
	if _, err := feed.Upsert("items", map[string]any{"id": json.Number(fmt.Sprint(id)), "name": name}); err != nil {
		t.Fatal(err)
	}
}

func itemsIn(ctx context.Context, p *pgxpool.Pool) (map[int]string, error) {
	rows, err := p.Query(ctx, `SELECT id, name FROM items`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var id int
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}

// customer is a customer's name and email as text ("<nil>" for NULL).
type customer struct{ name, email string }

func customersIn(ctx context.Context, p *pgxpool.Pool) (map[string]customer, error) {
	rows, err := p.Query(ctx, `SELECT id::text, full_name, email FROM customers`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]customer{}
	for rows.Next() {
		var id string
		var name, email *string
		if err := rows.Scan(&id, &name, &email); err != nil {
			return nil, err
		}
		out[id] = customer{text(name), text(email)}
	}
	return out, rows.Err()
}

func text(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// customersInFiles folds the files' lines, in the order a reader takes
// them, into the customers they leave.
func customersInFiles(dir string) (map[string]customer, error) {
	lines, err := jsonlsink.ReadDir(dir, "customers")
	if err != nil {
		return nil, err
	}
	rows := map[string]map[string]any{}
	for _, l := range lines {
		id := fmt.Sprint(l.Fields["id"])
		if l.Op == "delete" {
			delete(rows, id)
			continue
		}
		if rows[id] == nil {
			rows[id] = map[string]any{}
		}
		maps.Copy(rows[id], l.Fields)
	}
	out := map[string]customer{}
	for id, r := range rows {
		out[id] = customer{fmt.Sprint(r["name"]), fmt.Sprint(r["email"])}
	}
	return out, nil
}

func pool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func sqlExec(t *testing.T, p *pgxpool.Pool, sql ...string) {
	t.Helper()
	for _, q := range sql {
		if _, err := p.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// lockedBuffer is a log destination shared by goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestToysKnowOnlyTheBoundary: the toy connectors depend on the connector
// boundary (connectors, config, mixer) and on no part of the fleet nor on
// another connector.
func TestToysKnowOnlyTheBoundary(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list dependencies")
	}
	allowed := []string{"connectors", "config", "mixer"}
	for _, pkg := range []string{"internal/toy/memsource", "internal/toy/jsonlsink"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/sqlpipe/remix/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rest, ours := strings.CutPrefix(dep, "github.com/sqlpipe/remix/")
			if ours && rest != pkg && !slices.Contains(allowed, rest) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
