// Package bench measures Remix end to end against PostgreSQL's own logical
// replication: catch-up throughput, steady latency and memory. Run it with
// scripts/bench.sh; it prints its figures and reports them as benchmark
// metrics. Nothing here asserts a speed.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/internal/testenv"
)

const table = `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2),
	created_at timestamptz NOT NULL DEFAULT clock_timestamp())`

// On the target, applied_at records when the row arrived (Remix leaves
// unmapped columns to their defaults).
const targetTable = `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2),
	created_at timestamptz, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`

const model = `{"title": "item", "type": "object", "properties": {
	"id": {"type": "integer"}, "name": {"type": ["string", "null"]}, "qty": {"type": ["integer", "null"]},
	"price": {"type": ["number", "null"]}, "created_at": {"type": ["string", "null"], "format": "date-time"}}}`

const systems = `source:
  type: postgresql
  dsn: ${SOURCE_DSN}
  slot_name: ${SOURCE_SLOT}
  receive_mixer:
    public.items:
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

// setup is one measurement's world: a source database on the shared test
// PostgreSQL, a target database on a second, private cluster (the "two
// servers"), a Redis namespace, and built binaries.
type setup struct {
	b        *testing.B
	ctx      context.Context
	srcURL   string
	dstURL   string
	src, dst *pgxpool.Pool
	env      []string
	bin      string
}

func newSetup(b *testing.B) *setup {
	b.Helper()
	targetServer := testenv.StartPostgres(b)
	s := &setup{b: b, ctx: context.Background(), bin: build(b)}
	s.srcURL = testenv.NewDatabase(b)
	s.dstURL = targetServer.NewDatabase(b)
	var err error
	if s.src, err = pgxpool.New(s.ctx, s.srcURL); err != nil {
		b.Fatal(err)
	}
	if s.dst, err = pgxpool.New(s.ctx, s.dstURL); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.src.Close(); s.dst.Close() })
	s.exec(s.src, table)
	s.exec(s.dst, targetTable)
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "systems"), 0o755)
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	os.WriteFile(filepath.Join(dir, "systems", "bench.yaml"), []byte(systems), 0o644)
	os.WriteFile(filepath.Join(dir, "models", "item.json"), []byte(model), 0o644)
	_, ns := testenv.Redis(b)
	s.env = []string{"SOURCE_DSN=" + s.srcURL, "TARGET_DSN=" + s.dstURL, "SOURCE_SLOT=" + testenv.UniqueName("bench"),
		"REDIS_URL=" + testenv.RedisURL(b), "REMIX_NAMESPACE=" + ns, "SYSTEMS_DIR=" + filepath.Join(dir, "systems"),
		"MODELS_DIR=" + filepath.Join(dir, "models"), "LOG_LEVEL=warn"}
	return s
}

func build(b *testing.B) string {
	dir := b.TempDir()
	out, err := exec.Command("go", "build", "-o", dir, "github.com/sqlpipe/remix/cmd/...").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func (s *setup) exec(p *pgxpool.Pool, sql string) {
	s.b.Helper()
	if _, err := p.Exec(s.ctx, sql); err != nil {
		s.b.Fatalf("%s: %v", sql, err)
	}
}

func (s *setup) start(name, binary string) *testenv.Process {
	return testenv.StartProcess(s.b, name, s.env, filepath.Join(s.bin, binary), "--http-addr", "127.0.0.1:0")
}

// commit makes n inserts in transactions of perTx rows, server-side.
func (s *setup) commit(from, n, perTx int) {
	s.b.Helper()
	s.exec(s.src, fmt.Sprintf(`DO $$ BEGIN
		FOR i IN %d..%d BY %d LOOP
			INSERT INTO items (id, name, qty, price) SELECT g, 'item ' || g, g %% 1000, g * 0.01 FROM generate_series(i, i + %d - 1) g;
			COMMIT;
		END LOOP; END $$`, from, from+n-1, perTx, perTx))
}

// waitCount polls the target until it holds n rows and returns when the
// last one arrived.
func (s *setup) waitCount(n int, within time.Duration) time.Time {
	_, last := s.waitRows(n, within)
	return last
}

// waitRows polls the target until it holds n rows, and returns when the
// first and the last row arrived: the target's applied_at column, set by
// the server as each row is written (by Remix and by PostgreSQL's
// replication alike), so the figures do not depend on the polling interval.
// (Each count scans the table: polling faster would cost the target server
// CPU and skew the figures.)
func (s *setup) waitRows(n int, within time.Duration) (first, last time.Time) {
	s.b.Helper()
	deadline := time.Now().Add(within)
	for {
		var c int
		if err := s.dst.QueryRow(s.ctx, `SELECT count(*) FROM items`).Scan(&c); err != nil {
			s.b.Fatal(err)
		}
		if c >= n {
			if err := s.dst.QueryRow(s.ctx, `SELECT min(applied_at), max(applied_at) FROM items`).Scan(&first, &last); err != nil {
				s.b.Fatal(err)
			}
			return first, last
		}
		if time.Now().After(deadline) {
			s.b.Fatalf("the target has %d of %d rows after %v", c, n, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkCatchUp: with nothing running, commit 100 000 changes, then
// start and time until the target has them all, for Remix and for
// PostgreSQL's own replication (publication and subscription) between the
// same two servers. Each is measured REMIX_BENCH_ROUNDS times (3 unless
// set), alternating, and the medians are reported.
func BenchmarkCatchUp(b *testing.B) {
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("REMIX_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	for _, perTx := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows_per_tx=%d", perTx), func(b *testing.B) {
			const n = 100000
			var natives, remixes []time.Duration
			for r := 1; r <= rounds; r++ {
				native, nativeStart := nativeCatchUp(b, n, perTx)
				remix, remixStart := remixCatchUp(b, n, perTx)
				natives, remixes = append(natives, native), append(remixes, remix)
				fmt.Printf("  round %d: remix %.2fs (%.0f rows/s; first row after %.2fs), native %.2fs (%.0f rows/s; first row after %.2fs)\n",
					r, remix.Seconds(), float64(n)/remix.Seconds(), remixStart.Seconds(), native.Seconds(), float64(n)/native.Seconds(), nativeStart.Seconds())
			}
			native, remix := median(natives), median(remixes)
			b.ReportMetric(float64(n)/remix.Seconds(), "remix_rows/s")
			b.ReportMetric(float64(n)/native.Seconds(), "native_rows/s")
			b.ReportMetric(native.Seconds()/remix.Seconds(), "ratio")
			fmt.Printf("catch-up %d changes, %d per transaction, median of %d: remix %.2fs (%.0f rows/s), native %.2fs (%.0f rows/s), ratio %.2f\n",
				n, perTx, rounds, remix.Seconds(), float64(n)/remix.Seconds(), native.Seconds(), float64(n)/native.Seconds(), native.Seconds()/remix.Seconds())
		})
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func nativeCatchUp(b *testing.B, n, perTx int) (total, firstRow time.Duration) {
	s := newSetup(b)
	sub := testenv.UniqueName("sub")
	// Without this the launcher waits wal_retrieve_retry_interval (5 s) after
	// a worker's last start before it starts one again: the ENABLE below
	// would measure that wait, not replication.
	s.exec(s.dst, `ALTER SYSTEM SET wal_retrieve_retry_interval = '50ms'`)
	s.exec(s.dst, `SELECT pg_reload_conf()`)
	s.exec(s.src, `CREATE PUBLICATION native_pub FOR TABLE items`)
	conninfo := strings.Replace(strings.Replace(s.srcURL, "postgres://", "postgresql://", 1), "?sslmode=disable", "", 1)
	s.exec(s.dst, fmt.Sprintf(`CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION native_pub WITH (copy_data = false)`, sub, conninfo))
	b.Cleanup(func() {
		s.dst.Exec(context.Background(), `ALTER SUBSCRIPTION `+sub+` DISABLE`)
		s.dst.Exec(context.Background(), `ALTER SUBSCRIPTION `+sub+` SET (slot_name = NONE)`)
		s.dst.Exec(context.Background(), `DROP SUBSCRIPTION `+sub)
	})
	s.waitSlotActive(sub)
	s.exec(s.dst, `ALTER SUBSCRIPTION `+sub+` DISABLE`)
	time.Sleep(time.Second) // the apply worker stops
	s.commit(1, n, perTx)
	var rows, active int
	s.dst.QueryRow(s.ctx, `SELECT count(*) FROM items`).Scan(&rows)
	s.src.QueryRow(s.ctx, `SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name = $1`, sub).Scan(&active)
	if rows != 0 || active != 0 {
		b.Fatalf("the subscription was not stopped: %d rows arrived, %d active slots", rows, active)
	}
	var lag string
	s.src.QueryRow(s.ctx, `SELECT pg_size_pretty(pg_current_wal_lsn() - confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = $1`, sub).Scan(&lag)
	fmt.Printf("native: %s of WAL waiting in the slot\n", lag)
	start := time.Now()
	s.exec(s.dst, `ALTER SUBSCRIPTION `+sub+` ENABLE`)
	first, last := s.waitRows(n, 10*time.Minute)
	return last.Sub(start), first.Sub(start)
}

// waitSlotActive waits until a reader streams from the slot.
func (s *setup) waitSlotActive(slot string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var n int
		s.src.QueryRow(s.ctx, `SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name = $1`, slot).Scan(&n)
		if n > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.b.Fatalf("nothing ever read slot %s", slot)
}

func remixCatchUp(b *testing.B, n, perTx int) (total, firstRow time.Duration) {
	s := newSetup(b)
	// Create the slot (and copy the empty table), then stop: the changes
	// below are then read from the WAL, as after downtime.
	ing := s.start("ingest-setup", "ingest")
	s.waitSlotActive(s.slot())
	time.Sleep(500 * time.Millisecond) // the empty snapshot is confirmed
	ing.Signal(15)
	<-ing.Done()
	s.commit(1, n, perTx)
	start := time.Now()
	s.start("ingest", "ingest")
	s.start("pusher", "pusher")
	first, last := s.waitRows(n, 10*time.Minute)
	return last.Sub(start), first.Sub(start)
}

// slot is the Remix source's slot name.
func (s *setup) slot() string {
	for _, e := range s.env {
		if v, ok := strings.CutPrefix(e, "SOURCE_SLOT="); ok {
			return v
		}
	}
	return ""
}

// BenchmarkLatency: with the fleet running, insert 2 000 rows a second for
// 20 s and measure from each row's creation to its arrival in the target.
func BenchmarkLatency(b *testing.B) {
	s := newSetup(b)
	s.start("ingest", "ingest")
	s.start("pusher", "pusher")
	s.waitSlotActive(s.slot())
	const rate, seconds = 2000, 20
	start := time.Now()
	for i := 0; i < rate*seconds/100; i++ {
		s.commit(1+i*100, 100, 10) // 100 rows in 10 transactions
		if ahead := time.Duration(i+1)*time.Second/(rate/100) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	s.waitCount(rate*seconds, time.Minute)
	var p50, p99, max float64
	if err := s.dst.QueryRow(s.ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
		FROM (SELECT extract(epoch FROM applied_at - created_at) * 1000 AS ms FROM items) t`).Scan(&p50, &p99, &max); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
	fmt.Printf("latency at %d rows/s for %ds (commit to target row): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", rate, seconds, p50, p99, max)
}

// BenchmarkSnapshotMemory: copy 1 000 000 rows through a fresh slot's
// snapshot and report the peak resident memory of the ingest and pusher.
func BenchmarkSnapshotMemory(b *testing.B) {
	s := newSetup(b)
	const n = 1000000
	s.exec(s.src, fmt.Sprintf(`INSERT INTO items (id, name, qty, price) SELECT g, 'item ' || g, g %% 1000, g * 0.01 FROM generate_series(1, %d) g`, n))
	s.exec(s.src, `ANALYZE items`)
	start := time.Now()
	ing := s.start("ingest", "ingest")
	push := s.start("pusher", "pusher")
	done := s.waitCount(n, 20*time.Minute)
	ingRSS, pushRSS := peakRSS(b, ing.Pid()), peakRSS(b, push.Pid())
	b.ReportMetric(float64(ingRSS)/1024, "ingest_peak_MB")
	b.ReportMetric(float64(pushRSS)/1024, "pusher_peak_MB")
	b.ReportMetric(float64(n)/done.Sub(start).Seconds(), "rows/s")
	fmt.Printf("snapshot of %d rows: %.1fs (%.0f rows/s); peak RSS ingest %.1f MB, pusher %.1f MB\n",
		n, done.Sub(start).Seconds(), float64(n)/done.Sub(start).Seconds(), float64(ingRSS)/1024, float64(pushRSS)/1024)
}

// peakRSS reads VmHWM (kB) of a process.
func peakRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb
		}
	}
	return 0
}
