// Package e2e runs the real ingest, pusher and remix binaries against real
// PostgreSQL and Redis servers, kills them, and compares source and target
// row by row.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sqlpipe/remix/internal/testenv"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds ingest, pusher and remix once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "remix-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir, "github.com/sqlpipe/remix/cmd/...")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

const example = "../../examples/postgresql_to_postgresql"

// fleet is one test's Remix: a shop database, a warehouse database, a
// Redis namespace, and the processes the test starts.
type fleet struct {
	t        *testing.T
	bin      string
	src, dst *pgxpool.Pool
	rdb      *redis.Client
	ns       string
	env      []string
	models   string
	ctx      context.Context
	httpPort int
}

type fleetOptions struct {
	models string // a models folder to use instead of the example's
	env    []string
}

func newFleet(t *testing.T, o fleetOptions) *fleet {
	t.Helper()
	srcURL := testenv.NewDatabase(t)
	dstURL := testenv.NewDatabase(t)
	rdb, ns := testenv.Redis(t)
	f := &fleet{t: t, bin: binaries(t), rdb: rdb, ns: ns, ctx: testenv.Context(t), models: filepath.Join(example, "models")}
	if o.models != "" {
		f.models = o.models
	}
	f.src = pool(t, srcURL)
	f.dst = pool(t, dstURL)
	f.exec(f.src, readFile(t, filepath.Join(example, "source.sql")))
	f.exec(f.dst, readFile(t, filepath.Join(example, "target.sql")))
	f.exec(f.src, `ALTER TABLE customers ALTER COLUMN notes SET STORAGE EXTERNAL`)
	f.env = append([]string{
		"SHOP_DSN=" + srcURL, "WAREHOUSE_DSN=" + dstURL, "SHOP_SLOT=" + testenv.UniqueName("slot"),
		"REDIS_URL=" + testenv.RedisURL(t), "REMIX_NAMESPACE=" + ns, "REMIX_PARTITIONS=8",
		"SYSTEMS_DIR=" + filepath.Join(example, "systems"), "MODELS_DIR=" + f.models,
		"REMIX_LOCK_TTL=1s", "REMIX_LEASE_TTL=1500ms", "LOG_LEVEL=info",
	}, o.env...)
	return f
}

func pool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fleet) exec(p *pgxpool.Pool, sql string, args ...any) {
	f.t.Helper()
	if _, err := p.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", strings.TrimSpace(sql), err)
	}
}

// start runs one of the binaries with the fleet's environment.
func (f *fleet) start(name, binary string, args ...string) *testenv.Process {
	f.t.Helper()
	args = append([]string{"--http-addr", "127.0.0.1:0"}, args...)
	p := testenv.StartProcess(f.t, name, f.env, filepath.Join(f.bin, binary), args...)
	return p
}

func (f *fleet) ingest(name string) *testenv.Process { return f.start(name, "ingest") }
func (f *fleet) pusher(name string) *testenv.Process { return f.start(name, "pusher") }

// remix runs a remix command to completion.
func (f *fleet) remix(args ...string) (string, error) {
	return f.remixWith(append(os.Environ(), f.env...), args...)
}

// remixNoSecrets runs a remix command that needs Redis alone (status, the
// dead-letter commands) without the systems' DSNs in its environment, as
// an operator without the secrets at hand would.
func (f *fleet) remixNoSecrets(args ...string) (string, error) {
	return f.remixWith(withoutSecrets(append(os.Environ(), f.env...)), args...)
}

func (f *fleet) remixWith(env []string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(f.bin, "remix"), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// deadLetterRows counts the dead letters a `remix dlq list` table shows:
// the lines after its header but each queue's figures, where it was read
// and log lines.
func (f *fleet) deadLetterRows(out string) int {
	f.t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	head := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "SYSTEM ") })
	if head < 0 || !strings.Contains(out, "\n(read from ") {
		f.t.Fatalf("not a dead-letter list:\n%s", out)
	}
	n := 0
	for _, l := range lines[head+1:] {
		if !strings.HasPrefix(l, "(read from ") && !strings.HasPrefix(l, "time=") && !queueFigures.MatchString(l) {
			n++
		}
	}
	return n
}

// queueFigures is the line of a dead-letter queue's figures in a list.
var queueFigures = regexp.MustCompile(`^\S+: \d+ dead letters?, `)

// withoutSecrets drops the *_DSN variables from an environment.
func withoutSecrets(env []string) []string {
	var out []string
	for _, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(name, "_DSN") {
			out = append(out, kv)
		}
	}
	return out
}

// The same rows, read from each side with the mixers' renaming undone.
const (
	srcCustomers = `SELECT id, full_name, email, notes, created_at FROM customers ORDER BY id`
	dstCustomers = `SELECT customer_key, name, email_address, profile_notes, signed_up FROM dim_customer ORDER BY customer_key`
	srcOrders    = `SELECT id, customer_id, total, status, placed_at FROM orders ORDER BY id`
	dstOrders    = `SELECT order_key, customer_key, amount, state, ordered_at FROM fact_order ORDER BY order_key`
)

// rows reads a query as text rows.
func rows(ctx context.Context, p *pgxpool.Pool, q string) ([]string, error) {
	rs, err := p.Query(ctx, `SELECT t::text FROM (`+q+`) t`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// diff compares the two sides; "" when equal.
func (f *fleet) diff() string {
	var report []string
	for _, q := range [][2]string{{srcCustomers, dstCustomers}, {srcOrders, dstOrders}} {
		a, err1 := rows(f.ctx, f.src, q[0])
		b, err2 := rows(f.ctx, f.dst, q[1])
		if err1 != nil || err2 != nil {
			return fmt.Sprintf("query: %v %v", err1, err2)
		}
		if len(a) != len(b) {
			report = append(report, fmt.Sprintf("%d source rows, %d target rows", len(a), len(b)))
		}
		for i := 0; i < min(len(a), len(b)); i++ {
			if a[i] != b[i] {
				report = append(report, fmt.Sprintf("first difference:\n  source %.300s\n  target %.300s", a[i], b[i]))
				break
			}
		}
	}
	return strings.Join(report, "; ")
}

// waitConverged waits until the target equals the source, row by row.
func (f *fleet) waitConverged(within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		if last = f.diff(); last == "" {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("target did not converge to the source within %v: %s", within, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// load applies ops random changes to the shop, in transactions of 1 to 10,
// paced to about perSecond. It covers inserts, updates that set NULL,
// updates that leave the TOASTed notes unchanged, key-preserving deletes
// (with ON DELETE SET NULL updating orders), and order changes.
func (f *fleet) load(ctx context.Context, seed uint64, ops, perSecond int) error {
	r := mrand.New(mrand.NewPCG(seed, 1))
	big := func() string {
		b := make([]byte, 3000)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b) // 6 kB that does not compress: stored out of line
	}
	var customers, orders []int64
	start := time.Now()
	done := 0
	for done < ops {
		tx, err := f.src.Begin(ctx)
		if err != nil {
			return err
		}
		n := 1 + r.IntN(10)
		for i := 0; i < n && done < ops; i++ {
			done++
			var q string
			var args []any
			switch k := r.IntN(100); {
			case k < 20 || len(customers) < 5:
				notes := any(nil)
				if r.IntN(3) == 0 {
					notes = big()
				}
				var id int64
				if err := tx.QueryRow(ctx, `INSERT INTO customers (full_name, email, notes) VALUES ($1, $2, $3) RETURNING id`,
					fmt.Sprintf("Customer %d", done), fmt.Sprintf("c%d@example.com", done), notes).Scan(&id); err != nil {
					tx.Rollback(ctx)
					return err
				}
				customers = append(customers, id)
				continue
			case k < 35:
				q, args = `UPDATE customers SET full_name = $2 WHERE id = $1`, []any{pick(r, customers), fmt.Sprintf("Renamed %d", done)}
			case k < 42:
				q, args = `UPDATE customers SET email = NULL WHERE id = $1`, []any{pick(r, customers)}
			case k < 47:
				q, args = `UPDATE customers SET notes = $2 WHERE id = $1`, []any{pick(r, customers), big()}
			case k < 52:
				var id int64
				id, customers = take(r, customers)
				q, args = `DELETE FROM customers WHERE id = $1`, []any{id}
			case k < 75:
				var id int64
				if err := tx.QueryRow(ctx, `INSERT INTO orders (customer_id, total, status) VALUES ($1, $2, 'new') RETURNING id`,
					pick(r, customers), fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))).Scan(&id); err != nil {
					tx.Rollback(ctx)
					return err
				}
				orders = append(orders, id)
				continue
			case k < 90:
				q, args = `UPDATE orders SET status = $2, total = total + 1 WHERE id = $1`, []any{pick(r, orders), []string{"paid", "shipped", "cancelled"}[r.IntN(3)]}
			case k < 95:
				q, args = `UPDATE orders SET status = NULL WHERE id = $1`, []any{pick(r, orders)}
			default:
				var id int64
				id, orders = take(r, orders)
				q, args = `DELETE FROM orders WHERE id = $1`, []any{id}
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				tx.Rollback(ctx)
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		if perSecond > 0 {
			if ahead := time.Duration(done)*time.Second/time.Duration(perSecond) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return nil
}

// take picks an id and removes it from the list.
func take(r *mrand.Rand, ids []int64) (int64, []int64) {
	if len(ids) == 0 {
		return 0, ids
	}
	i := r.IntN(len(ids))
	id := ids[i]
	ids[i] = ids[len(ids)-1]
	return id, ids[:len(ids)-1]
}

func pick(r *mrand.Rand, ids []int64) int64 {
	if len(ids) == 0 {
		return 0
	}
	return ids[r.IntN(len(ids))]
}

// strictModels is a models folder with the example's models, the
// customer's name limited to 20 characters: a long name is a bad record.
func strictModels(t *testing.T) string {
	t.Helper()
	models := t.TempDir()
	strict := strings.Replace(readFile(t, filepath.Join(example, "models", "customer.json")),
		`"name": {"type": "string", "minLength": 1}`, `"name": {"type": "string", "minLength": 1, "maxLength": 20}`, 1)
	if !strings.Contains(strict, "maxLength") {
		t.Fatal("could not tighten the model")
	}
	for name, text := range map[string]string{"customer.json": strict, "order.json": readFile(t, filepath.Join(example, "models", "order.json"))} {
		if err := os.WriteFile(filepath.Join(models, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return models
}
