package bench

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// run is one timed catch-up: how long until the last row arrived, when the
// first did, and the CPU each part used.
type run struct {
	total, first time.Duration
	cpu          map[string]time.Duration
}

// BenchmarkCatchUp: with nothing running, commit 100 000 changes, then
// start and time until the target has them all, for Remix (one ingest, one
// pusher), PostgreSQL's own replication (publication and subscription)
// between the same two servers and, when REMIX_BENCH_PGSTREAM names its
// binary, pgstream. Each is measured REMIX_BENCH_ROUNDS times (3 unless
// set), alternating, and the medians are reported, with the CPU every
// process spent per row.
func BenchmarkCatchUp(b *testing.B) {
	sv := startServers(b)
	for _, perTx := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows_per_tx=%d", perTx), func(b *testing.B) {
			n := catchUpRows()
			pipelines := []struct {
				name string
				run  func(*testing.B, *servers, int, int) run
			}{{"native", nativeCatchUp}, {"remix", remixCatchUp}}
			if pgstreamBin() != "" {
				pipelines = append(pipelines, struct {
					name string
					run  func(*testing.B, *servers, int, int) run
				}{"pgstream", pgstreamCatchUp})
			}
			runs := map[string][]run{}
			for r := 1; r <= rounds(); r++ {
				var line []string
				for _, p := range pipelines {
					res := p.run(b, sv, n, perTx)
					runs[p.name] = append(runs[p.name], res)
					line = append(line, fmt.Sprintf("%s %.2fs (%.0f rows/s, first row after %.2fs)", p.name, res.total.Seconds(), float64(n)/res.total.Seconds(), res.first.Seconds()))
				}
				fmt.Printf("  round %d: %s\n", r, strings.Join(line, ", "))
			}
			rate := map[string]float64{}
			for name, rs := range runs {
				var ds []time.Duration
				for _, r := range rs {
					ds = append(ds, r.total)
				}
				rate[name] = float64(n) / median(ds).Seconds()
				b.ReportMetric(rate[name], name+"_rows/s")
				fmt.Printf("catch-up %d changes, %d per transaction, %s: median %.0f rows/s (%s)\n", n, perTx, name, rate[name], ratesOf(rs, n))
			}
			fmt.Printf("  remix/native %.2f", rate["remix"]/rate["native"])
			if rate["pgstream"] > 0 {
				fmt.Printf(", remix/pgstream %.2f", rate["remix"]/rate["pgstream"])
			}
			fmt.Println()
			row := fmt.Sprintf("catch-up, %s rows, %d per transaction (rows/s, median of %d)", spaced(n), perTx, rounds())
			record(row, "remix", fmt.Sprintf("%.0f (%s)", rate["remix"], ratesOf(runs["remix"], n)))
			record(row, "native", fmt.Sprintf("%.0f (%s); remix/native %.2f", rate["native"], ratesOf(runs["native"], n), rate["remix"]/rate["native"]))
			if rate["pgstream"] > 0 {
				record(row, "pgstream", fmt.Sprintf("%.0f (%s); remix/pgstream %.2f", rate["pgstream"], ratesOf(runs["pgstream"], n), rate["remix"]/rate["pgstream"]))
			}
			for name, rs := range runs {
				cpu := cpuPerRow(rs, n)
				fmt.Printf("  CPU per row, %s: %s\n", name, cpu)
				record(fmt.Sprintf("CPU µs/row during that catch-up (%d per transaction; medians)", perTx), name, cpu)
			}
		})
	}
}

// ratesOf lists the rows/s of every round.
func ratesOf(rs []run, n int) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%.0f", float64(n)/r.total.Seconds()))
	}
	return strings.Join(out, ", ")
}

// cpuPerRow is the median CPU per row of each part, and their total.
func cpuPerRow(rs []run, n int) string {
	parts := map[string][]float64{}
	var totals []float64
	for _, r := range rs {
		var t float64
		for part, d := range r.cpu {
			parts[part] = append(parts[part], perRow(d, n))
			t += perRow(d, n)
		}
		totals = append(totals, t)
	}
	names := make([]string, 0, len(parts))
	for p := range parts {
		names = append(names, p)
	}
	sort.Strings(names)
	var out []string
	for _, p := range names {
		out = append(out, fmt.Sprintf("%s %.1f", p, medianF(parts[p])))
	}
	return strings.Join(out, ", ") + fmt.Sprintf("; total %.1f", medianF(totals))
}

func nativeCatchUp(b *testing.B, sv *servers, n, perTx int) run {
	s := sv.newSetup(b)
	sub := "sub_" + strings.TrimPrefix(s.ns, "b")
	// Without this the launcher waits wal_retrieve_retry_interval (5 s) after
	// a worker's last start before it starts one again: the ENABLE below
	// would measure that wait, not replication.
	s.exec(s.dst, `ALTER SYSTEM SET wal_retrieve_retry_interval = '50ms'`)
	s.exec(s.dst, `SELECT pg_reload_conf()`)
	s.exec(s.src, `CREATE PUBLICATION native_pub FOR TABLE items`)
	s.exec(s.dst, fmt.Sprintf(`CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION native_pub WITH (copy_data = false)`, sub, pgConninfo(s.srcURL)))
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
	r := s.otherRoles("", nil)
	before := sample(r)
	start := time.Now()
	s.exec(s.dst, `ALTER SUBSCRIPTION `+sub+` ENABLE`)
	first, last := s.waitRows(n, 10*time.Minute)
	cpu := sample(r).since(before)
	s.exec(s.dst, `ALTER SUBSCRIPTION `+sub+` DISABLE`) // the next rounds do not share the machine with it
	return run{total: last.Sub(start), first: first.Sub(start), cpu: cpu}
}

// pgConninfo turns a URL into the conninfo a subscription takes.
func pgConninfo(url string) string {
	return strings.Replace(strings.Replace(url, "postgres://", "postgresql://", 1), "?sslmode=disable", "", 1)
}

func remixCatchUp(b *testing.B, sv *servers, n, perTx int) run {
	s := sv.newSetup(b)
	// Create the slot (and copy the empty table), then stop: the changes
	// below are then read from the WAL, as after downtime.
	ing := s.start("setup", "ingest")
	s.waitSlotActive(s.slot())
	time.Sleep(500 * time.Millisecond) // the empty snapshot is confirmed
	ing.Signal(15)
	<-ing.Done()
	s.commit(1, n, perTx)
	r := s.remixRoles()
	before := sample(r)
	start := time.Now()
	s.start("ingest", "ingest")
	s.start("pusher", "pusher")
	profiled := s.profile(fmt.Sprintf("catchup-%d", perTx), max(3*time.Second, time.Duration(n/20000)*time.Second))
	first, last := s.waitRows(n, 10*time.Minute)
	cpu := sample(r).since(before)
	profiled()
	fmt.Printf("    remix: %.0f publishes, %.0f writes to the target; %s\n",
		s.metric("ingest", "remix_ingest_publish_seconds_count"), s.metric("pusher", `remix_pusher_writes_total{outcome="ok"`), s.allocated(n))
	s.stop()
	return run{total: last.Sub(start), first: first.Sub(start), cpu: cpu}
}

// catchUpRows is how many changes a catch-up commits: 100 000, or
// REMIX_BENCH_CATCHUP_ROWS (longer runs give steadier profiles).
func catchUpRows() int { return envCount("REMIX_BENCH_CATCHUP_ROWS", 100000) }

// spaced writes n with thin groups of three digits: 100 000.
func spaced(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + " " + s[i:]
	}
	return s
}
