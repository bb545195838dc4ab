package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/internal/testenv"
)

// The MySQL connector's benchmark: MariaDB (the test servers' instance) to
// PostgreSQL with the real binaries. BenchmarkMySQLCatchUp reads
// REMIX_BENCH_MYSQL_TXNS (default 100 000) single-row transactions from the binary log after the ingest was down;
// BenchmarkMySQLSnapshot copies REMIX_BENCH_MYSQL_ROWS rows (default
// 1 000 000) while 1 000 writes per second go on in the same table, and
// reports its rows/s, the peak RSS of the ingest and the pusher, and the
// longest wait of a source write. Identifiers here start with my so they
// never meet the PostgreSQL benchmark's.

const myModel = `{"title": "item", "type": "object", "properties": {
	"id": {"type": "integer"}, "name": {"type": ["string", "null"]}, "qty": {"type": ["integer", "null"]},
	"price": {"type": ["number", "null"]}, "created_at": {"type": ["string", "null"], "format": "date-time"}}}`

const mySystems = `source:
  type: mysql
  dsn: ${SOURCE_DSN}
  server_id: ${SOURCE_SERVER_ID}
  initial_snapshot: ${SNAPSHOT}
  snapshot_chunk_rows: 5000
  linger: ${SOURCE_LINGER:-0s}
  receive_mixer:
    DB.items:
      item:
        id: {field: id}
        name: {field: name}
        qty: {field: qty}
        price: {field: price}
        created_at: {field: created_at}
target:
  type: postgresql
  dsn: ${TARGET_DSN}
  push_mixer:
    item:
      public.items:
        id: {field: id, search_key: true}
        name: {field: name}
        qty: {field: qty}
        price: {field: price}
        created_at: {field: created_at}
`

type mySetup struct {
	b      *testing.B
	ctx    context.Context
	my     *sql.DB
	pg     *pgxpool.Pool
	env    []string
	bin    string
	srcURL string
}

func newMySetup(b *testing.B, snapshot bool, env ...string) *mySetup {
	b.Helper()
	srcURL := testenv.NewMySQLDatabase(b)
	dstURL := testenv.NewDatabase(b)
	s := &mySetup{b: b, ctx: context.Background(), my: testenv.OpenMySQL(b, srcURL), srcURL: srcURL}
	pg, err := pgxpool.New(s.ctx, dstURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pg.Close)
	s.pg = pg
	db := srcURL[strings.LastIndex(srcURL, "/")+1:]
	s.myExec(`CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(100), qty INT, price DECIMAL(12,2), created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`)
	if _, err := pg.Exec(s.ctx, `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), created_at timestamptz,
		applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for name, text := range map[string]string{"systems/s.yaml": strings.ReplaceAll(mySystems, "DB.items", db+".items"), "models/item.json": myModel} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s.bin = build(b)
	_, ns := testenv.Redis(b)
	s.env = []string{"SOURCE_DSN=" + srcURL, "TARGET_DSN=" + dstURL, "SOURCE_SERVER_ID=" + strconv.Itoa(int(time.Now().UnixNano()%(1<<30))+1),
		"SNAPSHOT=" + strconv.FormatBool(snapshot), "REDIS_URL=" + testenv.RedisURL(b), "REMIX_NAMESPACE=" + ns,
		"SYSTEMS_DIR=" + filepath.Join(dir, "systems"), "MODELS_DIR=" + filepath.Join(dir, "models"), "LOG_LEVEL=info"}
	s.env = append(s.env, env...)
	return s
}

func (s *mySetup) myExec(q string, args ...any) {
	s.b.Helper()
	if _, err := s.my.ExecContext(s.ctx, q, args...); err != nil {
		s.b.Fatalf("%s: %v", q, err)
	}
}

func (s *mySetup) start(name, binary string) *testenv.Process {
	return testenv.StartProcess(s.b, name, s.env, filepath.Join(s.bin, binary), "--http-addr", "127.0.0.1:0")
}

// myFill inserts rows from..to-1 in multi-row statements.
func (s *mySetup) myFill(from, to int) {
	for start := from; start < to; start += 2000 {
		var b strings.Builder
		b.WriteString("INSERT INTO items (id, name, qty, price) VALUES ")
		for i := start; i < min(start+2000, to); i++ {
			if i > start {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,'item %d',%d,%d.%02d)", i, i, i%1000, i%10000, i%100)
		}
		s.myExec(b.String())
	}
}

// myWaitCount waits until the target holds n rows and returns when it did.
func (s *mySetup) myWaitCount(n int, within time.Duration) time.Time {
	deadline := time.Now().Add(within)
	for {
		var c int
		if err := s.pg.QueryRow(s.ctx, `SELECT count(*) FROM items`).Scan(&c); err != nil {
			s.b.Fatal(err)
		}
		if c >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			s.b.Fatalf("%d of %d rows after %v", c, n, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// myPeakRSS reads VmHWM (kB) of a process.
func myPeakRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}

// BenchmarkMySQLCatchUp: the ingest starts (taking its position), stops;
// 100 000 single-row transactions are committed; then the ingest and a
// pusher start and the time until the last row is in PostgreSQL is
// measured, from the ingest's start.
func BenchmarkMySQLCatchUp(b *testing.B) {
	n := envCount("REMIX_BENCH_MYSQL_TXNS", 100000)
	for i := 0; i < b.N; i++ {
		s := newMySetup(b, false)
		ing := s.start("ingest-0", "ingest")
		ing.WaitStderr("streaming changes", 60*time.Second)
		ing.Kill()
		// Eight writers, one transaction per row.
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := 1 + w; id <= n; id += 8 {
					if _, err := s.my.ExecContext(s.ctx, "INSERT INTO items (id, name, qty, price) VALUES (?, ?, ?, ?)", id, "item", id%1000, "1.50"); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		start := time.Now()
		s.start("ingest-1", "ingest")
		s.start("pusher-0", "pusher")
		done := s.myWaitCount(n, 10*time.Minute)
		rate := float64(n) / done.Sub(start).Seconds()
		b.ReportMetric(rate, "rows/s")
		fmt.Printf("mysql binlog catch-up of %d single-row transactions: %.1fs (%.0f rows/s)\n", n, done.Sub(start).Seconds(), rate)
	}
}

// BenchmarkMySQLSteady: 1 000 single-row transactions a second for 10 s
// through a running pipeline (one ingest, one pusher), with the source's
// linger 0 and steadyLinger, alternating over the rounds: latency from the
// commit (when the source's insert returned) to the target's arrival time,
// and the CPU of the ingest and the pusher per row. (Redis and MariaDB are
// the test servers' shared instances: their CPU is not counted.)
func BenchmarkMySQLSteady(b *testing.B) {
	const rate, seconds = 1000, 10
	const n = rate * seconds
	type result struct {
		p50, p99 float64
		ingest   float64
		pusher   float64
	}
	results := map[string][]result{}
	lingers := []string{"0s", steadyLinger}
	for r := 1; r <= rounds(); r++ {
		for _, linger := range lingers {
			s := newMySetup(b, false, "SOURCE_LINGER="+linger)
			ing := s.start("ingest-0", "ingest")
			ing.WaitStderr("streaming changes", 60*time.Second)
			push := s.start("pusher-0", "pusher")
			time.Sleep(3 * time.Second)
			_, ing0, _ := procStat(ing.Pid())
			_, push0, _ := procStat(push.Pid())
			committed := s.mySteadyLoad(rate, seconds)
			s.myWaitCount(n, time.Minute)
			_, ing1, _ := procStat(ing.Pid())
			_, push1, _ := procStat(push.Pid())
			var res result
			res.p50, res.p99 = s.myLatency(committed)
			res.ingest, res.pusher = perRow(ing1-ing0, n), perRow(push1-push0, n)
			stopProcesses([]*testenv.Process{ing, push}) // an ingest left running would read the binary log through the next rounds
			results[linger] = append(results[linger], res)
			fmt.Printf("  round %d, mysql linger %s: p50 %.1f ms, p99 %.1f ms; CPU ingest %.1f, pusher %.1f µs/row\n",
				r, linger, res.p50, res.p99, res.ingest, res.pusher)
		}
	}
	for _, linger := range lingers {
		var p50s, p99s, ings, pushes []float64
		for _, r := range results[linger] {
			p50s, p99s = append(p50s, r.p50), append(p99s, r.p99)
			ings, pushes = append(ings, r.ingest), append(pushes, r.pusher)
		}
		line := fmt.Sprintf("linger %s: p50 %.1f ms, p99 %.1f ms; ingest %.1f, pusher %.1f µs/row (medians of %d)",
			linger, medianF(p50s), medianF(p99s), medianF(ings), medianF(pushes), len(p50s))
		fmt.Println("mysql steady 1 000 rows/s, " + line)
		record("MySQL → PostgreSQL, steady 1 000 rows/s for 10 s", "remix", line)
	}
}

// mySteadyLoad commits rate single-row transactions a second for the
// given seconds, in blocks of 10 ms, and returns when each returned.
func (s *mySetup) mySteadyLoad(rate, seconds int) map[int64]time.Time {
	const tick = 10 * time.Millisecond
	per := rate / int(time.Second/tick)
	committed := make(map[int64]time.Time, rate*seconds)
	start := time.Now()
	id := int64(1)
	for i := 0; i < seconds*int(time.Second/tick); i++ {
		for range per {
			s.myExec("INSERT INTO items (id, name, qty, price) VALUES (?, 'item', 1, 1.50)", id)
			committed[id] = time.Now()
			id++
		}
		if ahead := time.Duration(i+1)*tick - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return committed
}

// myLatency is p50 and p99, in ms, of each row's arrival at the target
// less its commit.
func (s *mySetup) myLatency(committed map[int64]time.Time) (p50, p99 float64) {
	rows, err := s.pg.Query(s.ctx, `SELECT id, applied_at FROM items`)
	if err != nil {
		s.b.Fatal(err)
	}
	defer rows.Close()
	var ms []float64
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			s.b.Fatal(err)
		}
		ms = append(ms, float64(at.Sub(committed[id]).Microseconds())/1000)
	}
	if len(ms) == 0 {
		s.b.Fatal("no rows")
	}
	slices.Sort(ms)
	return ms[len(ms)/2], ms[len(ms)*99/100]
}

// BenchmarkMySQLSnapshot: a snapshot of REMIX_BENCH_MYSQL_ROWS rows while
// 1 000 writes per second (updates, inserts) go on in the same table; when
// the writes stop, the target must equal the source.
func BenchmarkMySQLSnapshot(b *testing.B) {
	n := envCount("REMIX_BENCH_MYSQL_ROWS", 1000000)
	for i := 0; i < b.N; i++ {
		s := newMySetup(b, true)
		s.myFill(1, n+1)
		// The load: 1 000 writes/s, each timed; about a quarter insert new rows.
		var longest, writes atomic.Int64
		stop := make(chan struct{})
		loaded := make(chan int, 1)
		go func() {
			next := n + 1
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-stop:
					loaded <- next
					return
				case <-tick.C:
				}
				q, args := "UPDATE items SET qty = qty + 1, name = ? WHERE id = ?", []any{"w" + strconv.Itoa(k), 1 + (k*7919)%n}
				if k%4 == 0 {
					q, args = "INSERT INTO items (id, name, qty, price) VALUES (?, 'new', 1, 2.50)", []any{next}
					next++
				}
				began := time.Now()
				if _, err := s.my.ExecContext(s.ctx, q, args...); err != nil {
					b.Error(err)
				}
				if w := int64(time.Since(began)); w > longest.Load() {
					longest.Store(w)
				}
				writes.Add(1)
			}
		}()
		start := time.Now()
		ing := s.start("ingest-0", "ingest")
		push := s.start("pusher-0", "pusher")
		ing.WaitStderr("snapshot read", 30*time.Minute)
		read := time.Now()
		close(stop)
		total := <-loaded - 1
		done := s.myWaitCount(total, 10*time.Minute)
		var src, dst string
		if err := s.my.QueryRowContext(s.ctx, "SELECT CONCAT(COUNT(*), '/', SUM(qty), '/', SUM(CHAR_LENGTH(name))) FROM items").Scan(&src); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(2 * time.Minute); dst != src; time.Sleep(200 * time.Millisecond) {
			if err := s.pg.QueryRow(s.ctx, "SELECT count(*) || '/' || sum(qty) || '/' || sum(char_length(name)) FROM items").Scan(&dst); err != nil {
				b.Fatal(err)
			}
			if dst != src && time.Now().After(deadline) {
				b.Fatalf("target (rows/sum of qty/characters) %s, source %s", dst, src)
			}
		}
		rate := float64(n) / read.Sub(start).Seconds()
		ingRSS, pushRSS := myPeakRSS(b, ing.Pid()), myPeakRSS(b, push.Pid())
		b.ReportMetric(rate, "snapshot_rows/s")
		b.ReportMetric(float64(ingRSS)/1024, "ingest_peak_MB")
		b.ReportMetric(float64(pushRSS)/1024, "pusher_peak_MB")
		b.ReportMetric(float64(longest.Load())/1e6, "longest_write_ms")
		fmt.Printf("mysql snapshot of %d rows under %d writes: read in %.1fs (%.0f rows/s), target equal %.1fs after the start; peak RSS ingest %.1f MB, pusher %.1f MB; longest source write %.1f ms\n",
			n, writes.Load(), read.Sub(start).Seconds(), rate, done.Sub(start).Seconds(), float64(ingRSS)/1024, float64(pushRSS)/1024, float64(longest.Load())/1e6)
	}
}
