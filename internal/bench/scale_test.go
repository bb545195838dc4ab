package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// slowTrigger makes every row written to the target cost 1 ms of waiting,
// as a remote warehouse or an API would, without costing CPU.
// Rows written again (a batch handed over before its entries were
// acknowledged) are counted in a sequence, which no transaction waits on.
const slowTrigger = `CREATE SEQUENCE rewrites;
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(0.001);
	IF TG_OP = 'UPDATE' THEN PERFORM nextval('rewrites'); END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER slow_row BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow_row()`

// BenchmarkSlowTarget: 20 000 single-row transactions are published to
// Redis first (the ingest alone), then pushers start against a target
// where each row costs 1 ms: one pusher writing one batch at a time, one
// pusher with the default writes in flight (4), then 2 and 4 pushers.
// Rows/s are counted from the first row's arrival to the last's, so the
// start-up and the sharing of the partitions are not in the figure (the
// time from the pushers' start to the last row is printed too).
//
// First, the target alone: the same rows written straight into it by one
// connection, then by four and by sixteen at once, in statements of 250
// rows (what a pusher's batch holds there), each connection taking the next
// statement's rows. Its four and its sixteen against its one are the most
// one pusher's four writes and four pushers' sixteen can give over one on
// this server: the sleeps of many backends at once do not all end on time
// on a small machine. A pipeline whose writes in flight number 1, 4 or 16
// is also given against the target alone with as many connections.
func BenchmarkSlowTarget(b *testing.B) {
	sv := startServers(b)
	const n = 20000
	alone := map[int]float64{} // rows/s of the target alone, by connections
	for _, writers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("alone/writers=%d", writers), func(b *testing.B) {
			rate := slowTargetAlone(b, sv, n, writers, 250)
			alone[writers] = rate
			b.ReportMetric(rate, "rows/s")
			fmt.Printf("slow target alone, %d connection(s) writing 250 rows a statement: %.0f rows/s\n", writers, rate)
			record("slow target (1 ms a row): 20 000 rows, rows/s first to last row", "remix",
				fmt.Sprintf("the target alone, %d connection(s): %.0f", writers, rate))
		})
	}
	base := 0.0
	for _, c := range []struct{ pushers, writes int }{{1, 1}, {1, 4}, {2, 4}, {4, 4}} {
		b.Run(fmt.Sprintf("pushers=%d/writes=%d", c.pushers, c.writes), func(b *testing.B) {
			s := sv.newSetup(b, "TARGET_WRITES="+strconv.Itoa(c.writes))
			s.exec(s.dst, slowTrigger)
			ing := s.start("ingest", "ingest")
			s.waitSlotActive(s.slot())
			time.Sleep(500 * time.Millisecond)
			s.commit(1, n, 1)
			s.waitSlotCaughtUp(s.slot(), 5*time.Minute)
			_ = ing
			start := time.Now()
			for i := 0; i < c.pushers; i++ {
				s.start("pusher", "pusher")
			}
			first, last := s.waitRows(n, 20*time.Minute)
			rate := float64(n) / last.Sub(first).Seconds()
			steady := s.steadyRate()
			s.printArrivals(last.Sub(first))
			if base == 0 {
				base = rate
			}
			var rewrites int64
			if err := s.poll.QueryRow(s.ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM rewrites`).Scan(&rewrites); err != nil {
				b.Fatal(err)
			}
			var ceiling string // against the target alone with as many connections
			if a := alone[c.pushers*c.writes]; a > 0 {
				ceiling = fmt.Sprintf(", %.2f× the target alone with %d connections", rate/a, c.pushers*c.writes)
			}
			b.ReportMetric(rate, "rows/s")
			fmt.Printf("slow target (1 ms a row), %d pusher(s), %d writes in flight each: %.0f rows/s (%.2fx one pusher writing one batch at a time%s); while all partitions had rows %.0f rows/s; start to last row %.1fs; %d rows written again\n",
				c.pushers, c.writes, rate, rate/base, ceiling, steady, last.Sub(start).Seconds(), rewrites)
			record("slow target (1 ms a row): 20 000 rows, rows/s first to last row", "remix",
				fmt.Sprintf("%d pusher(s) × %d writes: %.0f (%.2f×%s; %.0f before the tail)", c.pushers, c.writes, rate, rate/base, ceiling, steady))
		})
	}
}

// steadyRate is the target's arrival rate before the tail of a backlog,
// where fewer partitions than writers still have rows: the median count of
// the half-seconds from the first arrival, without the first and the last
// two (the tail), in rows/s.
func (s *setup) steadyRate() float64 {
	s.b.Helper()
	var r *float64
	if err := s.poll.QueryRow(s.ctx, `WITH h AS (
			SELECT floor(extract(epoch FROM applied_at - (SELECT min(applied_at) FROM items)) * 2) AS half, count(*) AS n FROM items GROUP BY 1),
		mid AS (SELECT n FROM h WHERE half > 0 AND half < (SELECT max(half) - 1 FROM h))
		SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) * 2 FROM mid`).Scan(&r); err != nil {
		s.b.Fatal(err)
	}
	if r == nil {
		return 0 // too short a run to tell
	}
	return *r
}

// printArrivals prints the rows that arrived in each slice of the run
// from the first row on (tenths of a second for runs of up to 5 s, else
// seconds): how the run ramps up, and how its tail drains.
func (s *setup) printArrivals(run time.Duration) {
	s.b.Helper()
	per := 10.0 // slices a second
	if run > 5*time.Second {
		per = 1
	}
	rows, err := s.poll.Query(s.ctx, `SELECT floor(extract(epoch FROM applied_at - (SELECT min(applied_at) FROM items)) * $1)::int, count(*)
		FROM items GROUP BY 1 ORDER BY 1`, per)
	if err != nil {
		s.b.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var slice, n int
		if err := rows.Scan(&slice, &n); err != nil {
			s.b.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%.1fs %d", float64(slice)/per, n))
	}
	if err := rows.Err(); err != nil {
		s.b.Fatal(err)
	}
	fmt.Printf("  rows arriving from the first one on, by %.1f s: %s\n", 1/per, strings.Join(out, ", "))
}

// slowTargetAlone writes rows 1..n straight into a fresh slow target from
// writers connections at once, each statement inserting the next batch
// rows, and returns rows/s from the first row's arrival to the last's.
func slowTargetAlone(b *testing.B, sv *servers, n, writers, batch int) float64 {
	s := sv.newSetup(b)
	s.exec(s.dst, slowTrigger)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(s.ctx, s.dstURL)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(context.Background())
			for {
				from := next.Add(1)*int64(batch) - int64(batch) + 1
				if from > int64(n) {
					return
				}
				to := min(from+int64(batch)-1, int64(n))
				if _, err := conn.Exec(s.ctx, insertItems("$1::bigint", "$2::bigint"), from, to); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	first, last := s.waitRows(n, time.Minute)
	return float64(n) / last.Sub(first).Seconds()
}

// BenchmarkSnapshot: copy 1 000 000 rows through a fresh slot's snapshot
// (one ingest, one pusher) and report the rate and the peak resident
// memory of each process; then, on the same target server, what the
// target alone does with the same rows: COPY into a temporary table and
// one merge into an empty copy of the table.
func BenchmarkSnapshot(b *testing.B) {
	sv := startServers(b)
	s := sv.newSetup(b)
	const n = 1000000
	s.exec(s.src, insertItems("1", strconv.Itoa(n)))
	s.exec(s.src, `ANALYZE items`)
	// The target alone, on a quiet server (before) and right after the
	// snapshot (after, when the server may still be writing out or
	// vacuuming what it took): the ratio is against the faster of the two.
	mergeBefore := s.targetAloneMerge(n)
	r := s.remixRoles()
	before := sample(r)
	start := time.Now()
	ing := s.start("ingest", "ingest")
	push := s.start("pusher", "pusher")
	wait := s.profile("snapshot", 8*time.Second)
	if profileDir() != "" {
		go func() { // heap profiles halfway through the copy
			time.Sleep(6 * time.Second)
			s.heapProfiles("snapshot")
		}()
	}
	first, done := s.waitRows(n, 20*time.Minute)
	wait()
	cpu := sample(r).since(before)
	alloc := s.allocated(n)
	ingRSS, pushRSS := peakRSS(b, ing.Pid()), peakRSS(b, push.Pid())
	rate := float64(n) / done.Sub(start).Seconds()
	mergeAfter := s.targetAloneMerge(n)
	merge := max(mergeBefore, mergeAfter)
	b.ReportMetric(float64(ingRSS)/1024, "ingest_peak_MB")
	b.ReportMetric(float64(pushRSS)/1024, "pusher_peak_MB")
	b.ReportMetric(rate, "rows/s")
	fmt.Printf("snapshot of %d rows: %.1fs (%.0f rows/s; the first row arrived after %.2fs); peak RSS ingest %.1f MB, pusher %.1f MB; CPU %s; %s; the target alone (COPY and one merge) %.0f rows/s before, %.0f after, ratio %.2f to the faster\n",
		n, done.Sub(start).Seconds(), rate, first.Sub(start).Seconds(), float64(ingRSS)/1024, float64(pushRSS)/1024, cpuLine(cpu, n), alloc, mergeBefore, mergeAfter, rate/merge)
	record("initial snapshot, 1 000 000 rows", "remix", fmt.Sprintf("%.0f rows/s (%.2f× the target alone: COPY and one merge, %.0f rows/s, the faster of a run before and one after); peak RSS ingest %.0f MB, pusher %.0f MB",
		rate, rate/merge, merge, float64(ingRSS)/1024, float64(pushRSS)/1024))
}

// targetAloneMerge times, on the target server, a COPY of n rows like the
// snapshot's into a temporary table and one INSERT ... ON CONFLICT into an
// empty table of the same shape: the fastest way in for those rows. The
// table is dropped after, so it can be timed again.
func (s *setup) targetAloneMerge(n int) float64 {
	s.b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dstURL)
	if err != nil {
		s.b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE items_alone (LIKE items INCLUDING ALL)`); err != nil {
		s.b.Fatal(err)
	}
	rows := make([][]any, 0, n)
	now := time.Now()
	for i := 1; i <= n; i++ {
		rows = append(rows, []any{int64(i), "item " + strconv.Itoa(i), int32(i % 1000), fmt.Sprintf("%d.%02d", i/100, i%100), now})
	}
	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		s.b.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE load (id bigint, name text, qty int, price numeric(12,2), created_at timestamptz) ON COMMIT DROP`); err != nil {
		s.b.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"load"}, []string{"id", "name", "qty", "price", "created_at"}, pgx.CopyFromRows(rows)); err != nil {
		s.b.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO items_alone (id, name, qty, price, created_at) SELECT id, name, qty, price, created_at FROM load
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, qty = EXCLUDED.qty, price = EXCLUDED.price, created_at = EXCLUDED.created_at`); err != nil {
		s.b.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		s.b.Fatal(err)
	}
	rate := float64(n) / time.Since(start).Seconds()
	if _, err := conn.Exec(ctx, `DROP TABLE items_alone`); err != nil {
		s.b.Fatal(err)
	}
	return rate
}
