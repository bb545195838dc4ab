package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/internal/testenv"
)

// The MySQL connector end to end: MariaDB (the shared test server) to
// PostgreSQL and back, with the real binaries, kill -9 of ingests and
// pushers during the load, and the two sides compared row by row.

const mysqlExample = "../../examples/mysql_to_postgresql"

// mysqlFleet is one test's Remix between a MariaDB database and a
// PostgreSQL one.
type mysqlFleet struct {
	t        *testing.T
	ctx      context.Context
	bin      string
	my       *sql.DB
	myName   string
	pg       *pgxpool.Pool
	env      []string
	mu       sync.Mutex
	ingests  []*testenv.Process
	pushers  []*testenv.Process
	started  int
	toMySQL  bool // the PostgreSQL shop feeds a MariaDB warehouse
	rowQuery [2][2]string
}

// newMySQLFleet sets up the example (toMySQL false: MariaDB shop,
// PostgreSQL warehouse) or its mirror (PostgreSQL shop, MariaDB warehouse),
// the systems rewritten for this test's database names.
func newMySQLFleet(t *testing.T, toMySQL bool) *mysqlFleet {
	t.Helper()
	myURL := testenv.NewMySQLDatabase(t)
	pgURL := testenv.NewDatabase(t)
	rdb, ns := testenv.Redis(t)
	_ = rdb
	f := &mysqlFleet{t: t, ctx: testenv.Context(t), bin: binaries(t), my: testenv.OpenMySQL(t, myURL), pg: pool(t, pgURL), toMySQL: toMySQL}
	f.myName = myURL[strings.LastIndex(myURL, "/")+1:]
	systems := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(systems, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !toMySQL {
		f.myExec(readFile(t, filepath.Join(mysqlExample, "source.sql")))
		f.pgExec(readFile(t, filepath.Join(mysqlExample, "target.sql")))
		write("shop.yaml", strings.ReplaceAll(readFile(t, filepath.Join(mysqlExample, "systems", "shop.yaml")), "shop.", f.myName+"."))
		write("warehouse.yaml", readFile(t, filepath.Join(mysqlExample, "systems", "warehouse.yaml")))
		f.rowQuery = [2][2]string{
			{`SELECT CONCAT_WS('|', id, full_name, COALESCE(email, '-'), COALESCE(MD5(notes), '-'), DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')) FROM customers ORDER BY id`,
				`SELECT concat_ws('|', customer_key, name, COALESCE(email_address, '-'), COALESCE(md5(profile_notes), '-'), to_char(signed_up AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')) FROM dim_customer ORDER BY customer_key`},
			{`SELECT CONCAT_WS('|', id, COALESCE(customer_id, '-'), total, COALESCE(status, '-'), DATE_FORMAT(placed_at, '%Y-%m-%d %H:%i:%s.%f')) FROM orders ORDER BY id`,
				`SELECT concat_ws('|', order_key, COALESCE(customer_key::text, '-'), amount, COALESCE(state, '-'), to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')) FROM fact_order ORDER BY order_key`},
		}
	} else {
		f.pgExec(readFile(t, filepath.Join(example, "source.sql")))
		f.myExec(mysqlWarehouse)
		write("shop.yaml", readFile(t, filepath.Join(example, "systems", "shop.yaml")))
		write("warehouse.yaml", strings.ReplaceAll(strings.ReplaceAll(readFile(t, filepath.Join(example, "systems", "warehouse.yaml")),
			"type: postgresql", "type: mysql"), "public.", f.myName+"."))
		f.rowQuery = [2][2]string{
			{`SELECT concat_ws('|', id, full_name, COALESCE(email, '-'), COALESCE(md5(notes), '-'), to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')) FROM customers ORDER BY id`,
				`SELECT CONCAT_WS('|', customer_key, name, COALESCE(email_address, '-'), COALESCE(MD5(profile_notes), '-'), DATE_FORMAT(signed_up, '%Y-%m-%d %H:%i:%s.%f')) FROM dim_customer ORDER BY customer_key`},
			{`SELECT concat_ws('|', id, COALESCE(customer_id::text, '-'), total, COALESCE(status, '-'), to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')) FROM orders ORDER BY id`,
				`SELECT CONCAT_WS('|', order_key, COALESCE(customer_key, '-'), amount, COALESCE(state, '-'), DATE_FORMAT(ordered_at, '%Y-%m-%d %H:%i:%s.%f')) FROM fact_order ORDER BY order_key`},
		}
	}
	mysqlDSN := myURL + "?time_zone=%27%2B00%3A00%27"
	f.env = []string{
		"SHOP_MYSQL_DSN=" + mysqlDSN, "SHOP_SERVER_ID=" + fmt.Sprint(1+mrand.Uint32N(1<<30)),
		"SHOP_DSN=" + pgURL, "SHOP_SLOT=" + testenv.UniqueName("slot"), "WAREHOUSE_DSN=" + pgURL,
		"REDIS_URL=" + testenv.RedisURL(t), "REMIX_NAMESPACE=" + ns, "REMIX_PARTITIONS=8",
		"SYSTEMS_DIR=" + systems, "MODELS_DIR=" + filepath.Join(mysqlExample, "models"),
		"REMIX_LOCK_TTL=1s", "REMIX_LEASE_TTL=1500ms", "LOG_LEVEL=info",
	}
	if toMySQL {
		f.env = append(f.env, "WAREHOUSE_DSN="+mysqlDSN)
	}
	return f
}

// mysqlWarehouse is the reporting database of the PostgreSQL example, in
// MariaDB.
const mysqlWarehouse = `CREATE TABLE dim_customer (customer_key BIGINT PRIMARY KEY, name TEXT, email_address TEXT, profile_notes LONGTEXT,
	signed_up DATETIME(6), loaded_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
CREATE TABLE fact_order (order_key BIGINT PRIMARY KEY, customer_key BIGINT, amount DECIMAL(12,2), state TEXT, ordered_at DATETIME(6))`

func (f *mysqlFleet) myExec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.my.ExecContext(f.ctx, q, args...); err != nil {
		f.t.Fatalf("%s: %v", strings.TrimSpace(q), err)
	}
}

func (f *mysqlFleet) pgExec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.pg.Exec(f.ctx, q, args...); err != nil {
		f.t.Fatalf("%s: %v", strings.TrimSpace(q), err)
	}
}

func (f *mysqlFleet) start(binary string) *testenv.Process {
	f.mu.Lock()
	f.started++
	name := fmt.Sprintf("%s-%d", binary, f.started)
	f.mu.Unlock()
	return testenv.StartProcess(f.t, name, f.env, filepath.Join(f.bin, binary), "--http-addr", "127.0.0.1:0")
}

// diff compares both tables of the two sides; "" when equal.
func (f *mysqlFleet) diff() string {
	var report []string
	for _, q := range f.rowQuery {
		srcQ, dstQ := q[0], q[1]
		var a, b []string
		var err1, err2 error
		if f.toMySQL {
			a, err1 = pgLines(f.ctx, f.pg, srcQ)
			b, err2 = myRows(f.ctx, f.my, dstQ)
		} else {
			a, err1 = myRows(f.ctx, f.my, srcQ)
			b, err2 = pgLines(f.ctx, f.pg, dstQ)
		}
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

// pgLines reads a query of one text column.
func pgLines(ctx context.Context, p *pgxpool.Pool, q string) ([]string, error) {
	rs, err := p.Query(ctx, q)
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

func myRows(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rs, err := db.QueryContext(ctx, q)
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

func (f *mysqlFleet) waitConverged(within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		last := f.diff()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("target did not converge to the source within %v: %s", within, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// myLoad makes ops random changes to the MariaDB shop, in transactions of
// 1 to 10: inserts, renames, NULLs, notes of 6 kB, deletes (orders of a
// deleted customer lose it in the same transaction: MySQL keeps foreign-key
// actions out of the binary log), order changes.
func (f *mysqlFleet) myLoad(ctx context.Context, seed uint64, ops, perSecond int) error {
	r := mrand.New(mrand.NewPCG(seed, 1))
	big := func() string {
		b := make([]byte, 3000)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	var customers, orders []int64
	start := time.Now()
	done := 0
	for done < ops {
		tx, err := f.my.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		n := 1 + r.IntN(10)
		for i := 0; i < n && done < ops; i++ {
			done++
			var err error
			switch k := r.IntN(100); {
			case k < 20 || len(customers) < 5:
				var notes any
				if r.IntN(3) == 0 {
					notes = big()
				}
				var res sql.Result
				if res, err = tx.ExecContext(ctx, `INSERT INTO customers (full_name, email, notes) VALUES (?, ?, ?)`,
					fmt.Sprintf("Customer %d ✓", done), fmt.Sprintf("c%d@example.com", done), notes); err == nil {
					id, _ := res.LastInsertId()
					customers = append(customers, id)
				}
			case k < 35:
				_, err = tx.ExecContext(ctx, `UPDATE customers SET full_name = ? WHERE id = ?`, fmt.Sprintf("Renamed %d", done), pick(r, customers))
			case k < 42:
				_, err = tx.ExecContext(ctx, `UPDATE customers SET email = NULL WHERE id = ?`, pick(r, customers))
			case k < 47:
				_, err = tx.ExecContext(ctx, `UPDATE customers SET notes = ? WHERE id = ?`, big(), pick(r, customers))
			case k < 52:
				var id int64
				id, customers = take(r, customers)
				if _, err = tx.ExecContext(ctx, `UPDATE orders SET customer_id = NULL WHERE customer_id = ?`, id); err == nil {
					_, err = tx.ExecContext(ctx, `DELETE FROM customers WHERE id = ?`, id)
				}
			case k < 75:
				var res sql.Result
				if res, err = tx.ExecContext(ctx, `INSERT INTO orders (customer_id, total, status) VALUES (?, ?, 'new')`,
					pick(r, customers), fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))); err == nil {
					id, _ := res.LastInsertId()
					orders = append(orders, id)
				}
			case k < 90:
				_, err = tx.ExecContext(ctx, `UPDATE orders SET status = ?, total = total + 1 WHERE id = ?`, []string{"paid", "shipped", "cancelled"}[r.IntN(3)], pick(r, orders))
			case k < 95:
				_, err = tx.ExecContext(ctx, `UPDATE orders SET status = NULL WHERE id = ?`, pick(r, orders))
			default:
				var id int64
				id, orders = take(r, orders)
				_, err = tx.ExecContext(ctx, `DELETE FROM orders WHERE id = ?`, id)
			}
			if err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
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

// killDuringLoad runs load while it kills the ingest and the pusher with
// SIGKILL in turn, kills times, at random moments, starting new ones.
func (f *mysqlFleet) killDuringLoad(load func() error, kills int) {
	f.t.Helper()
	ingest, pusher := f.start("ingest"), f.start("pusher")
	f.start("pusher") // a second pusher that is never killed
	done := make(chan error, 1)
	go func() { done <- load() }()
	r := mrand.New(mrand.NewPCG(7, 9))
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(300+r.IntN(500)) * time.Millisecond)
		if i%2 == 0 {
			ingest.Kill()
			ingest = f.start("ingest")
		} else {
			pusher.Kill()
			pusher = f.start("pusher")
		}
	}
	if err := <-done; err != nil {
		f.t.Fatal(err)
	}
}

// TestMySQLToPostgres: rows made before the start arrive through the
// lock-free snapshot, then inserts, updates, deletes, NULLs and a 1 MB
// text through the binary log while ingests and pushers are killed; the
// PostgreSQL warehouse ends equal to the MariaDB shop.
func TestMySQLToPostgres(t *testing.T) {
	t.Parallel()
	f := newMySQLFleet(t, false)
	for i := 0; i < 300; i++ {
		f.myExec(`INSERT INTO customers (full_name, email, created_at) VALUES (?, ?, '2024-02-29 12:00:00.5')`, fmt.Sprintf("Before %d", i), nil)
	}
	f.myExec(`INSERT INTO orders (customer_id, total, status) VALUES (1, 9999999999.99, NULL)`)
	ops := 3000
	if testenv.Short() {
		ops = 1000
	}
	f.killDuringLoad(func() error {
		if err := f.myLoad(f.ctx, 11, ops/2, 500); err != nil {
			return err
		}
		if _, err := f.my.ExecContext(f.ctx, `UPDATE customers SET notes = REPEAT('x', 1048576) WHERE id = 2`); err != nil {
			return err
		}
		return f.myLoad(f.ctx, 12, ops/2, 500)
	}, 6)
	f.waitConverged(120 * time.Second)
	var n int
	if err := f.pg.QueryRow(f.ctx, `SELECT length(profile_notes) FROM dim_customer WHERE customer_key = 2`).Scan(&n); err != nil || n != 1<<20 {
		t.Fatalf("the 1 MB text arrived as %d characters (%v)", n, err)
	}
}

// TestPostgresToMySQL: the PostgreSQL example's shop feeds a MariaDB
// warehouse through the mysql sink while ingests and pushers are killed;
// the warehouse ends equal to the shop.
func TestPostgresToMySQL(t *testing.T) {
	t.Parallel()
	f := newMySQLFleet(t, true)
	shop := &fleet{t: t, src: f.pg, ctx: f.ctx}
	ops := 3000
	if testenv.Short() {
		ops = 1000
	}
	f.killDuringLoad(func() error {
		if err := shop.load(f.ctx, 21, ops/2, 500); err != nil {
			return err
		}
		if _, err := f.pg.Exec(f.ctx, `INSERT INTO customers (full_name, notes) VALUES ('Big', repeat('y', 1048576))`); err != nil {
			return err
		}
		return shop.load(f.ctx, 22, ops/2, 500)
	}, 6)
	f.waitConverged(120 * time.Second)
}
