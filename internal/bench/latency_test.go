package bench

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkLatency: with the fleet running (one ingest and 1, 2 or 4
// pushers, started together and given a few seconds to share the
// partitions), insert 2 000 single-row transactions a second for 20 s and
// measure from each row's creation to its arrival in the target.
func BenchmarkLatency(b *testing.B) {
	sv := startServers(b)
	for _, pushers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("pushers=%d", pushers), func(b *testing.B) {
			s := sv.newSetup(b)
			s.start("ingest", "ingest", "SOURCE_LINGER="+latencyLinger)
			for i := 0; i < pushers; i++ {
				s.start("pusher", "pusher")
			}
			s.waitSlotActive(s.slot())
			time.Sleep(5 * time.Second)
			const rate, seconds = 2000, 20
			ro := s.remixRoles()
			before := sample(ro)
			profiled := s.profile(fmt.Sprintf("latency-%d", pushers), 10*time.Second)
			s.steadyLoad(rate, seconds)
			s.waitRows(rate*seconds, time.Minute)
			cpu := sample(ro).since(before)
			profiled()
			p50, p99, worst := s.latency()
			fmt.Printf("  CPU during the load: %s\n", cpuLine(cpu, rate*seconds))
			s.printStages()
			s.printSlowSeconds(50)
			b.ReportMetric(p50, "p50_ms")
			b.ReportMetric(p99, "p99_ms")
			with := ""
			if latencyLinger != "0s" {
				with = ", linger " + latencyLinger
			}
			fmt.Printf("latency at %d rows/s for %ds, %d pushers%s (commit to target row): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", rate, seconds, pushers, with, p50, p99, worst)
			record("commit → target row at 2 000 rows/s, single-row transactions, 20 s", "remix",
				fmt.Sprintf("%d pusher(s)%s: p50 %.1f ms, p99 %.1f ms, max %.0f ms", pushers, with, p50, p99, worst))
		})
	}
}

// BenchmarkSteady: 1 000 single-row transactions a second for 10 s through
// a running pipeline, Remix (one ingest, one pusher; with the source's
// default linger of 0 and with steadyLinger) against pgstream when
// REMIX_BENCH_PGSTREAM is set, alternating over the rounds: latency, the
// CPU each part used per row, and round trips per row to Redis (commands)
// and to the target (transactions).
func BenchmarkSteady(b *testing.B) {
	sv := startServers(b)
	const rate, seconds = 1000, 10
	const n = rate * seconds
	type result struct {
		p50, p99, worst float64
		cpu             map[string]time.Duration
		redis, commits  float64
		byCmd           map[string]int64
	}
	results := map[string][]result{}
	tools := []string{"remix", "remix-linger", "pgstream"}
	for r := 1; r <= rounds(); r++ {
		for _, tool := range tools {
			if tool == "pgstream" && pgstreamBin() == "" {
				continue
			}
			s := sv.newSetup(b)
			var ro roles
			if tool != "pgstream" {
				linger := "0s"
				if tool == "remix-linger" {
					linger = steadyLinger
				}
				s.start("ingest", "ingest", "SOURCE_LINGER="+linger)
				s.start("pusher", "pusher")
				ro = s.remixRoles()
			} else {
				s.pgstream()()
				ro = s.pgstreamRoles()
			}
			s.waitSlotActive(s.slot())
			time.Sleep(3 * time.Second)
			redis0, by0 := redisCalls(s)
			commits0 := targetCommits(s)
			before := sample(ro)
			profiled := func() {}
			if tool != "pgstream" && r == 1 {
				profiled = s.profile(strings.Replace(tool, "remix", "steady", 1), seconds*time.Second)
			}
			s.steadyLoad(rate, seconds)
			time.Sleep(2 * time.Second) // the last rows arrive; statistics are flushed
			cpu := sample(ro).since(before)
			profiled()
			redis1, by1 := redisCalls(s)
			commits1 := targetCommits(s)
			s.waitRows(n, time.Minute)
			var res result
			res.p50, res.p99, res.worst = s.latency()
			if tool != "pgstream" {
				s.printStages()
			}
			res.cpu = cpu
			res.redis = float64(redis1-redis0) / n
			res.commits = float64(commits1-commits0) / n
			res.byCmd = map[string]int64{}
			for k, v := range by1 {
				if d := v - by0[k]; d > 0 {
					res.byCmd[k] = d
				}
			}
			s.stop()
			results[tool] = append(results[tool], res)
			fmt.Printf("  round %d, %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms; CPU %s; Redis %.3f commands/row %v; target %.3f transactions/row\n",
				r, tool, res.p50, res.p99, res.worst, cpuLine(cpu, n), res.redis, res.byCmd, res.commits)
		}
	}
	for _, tool := range tools {
		rs := results[tool]
		if len(rs) == 0 {
			continue
		}
		var p50s, p99s, worsts, fleet, redisR, commitsR []float64
		parts := map[string][]float64{}
		for _, r := range rs {
			p50s, p99s, worsts = append(p50s, r.p50), append(p99s, r.p99), append(worsts, r.worst)
			var own float64 // the tool's own processes: ingest, pusher and Redis, or pgstream
			for part, d := range r.cpu {
				parts[part] = append(parts[part], perRow(d, n))
				if part != "walsender" && part != "target" {
					own += perRow(d, n)
				}
			}
			fleet = append(fleet, own)
			redisR, commitsR = append(redisR, r.redis), append(commitsR, r.commits)
		}
		names := make([]string, 0, len(parts))
		for p := range parts {
			names = append(names, p)
		}
		sort.Strings(names)
		var cpu []string
		for _, p := range names {
			cpu = append(cpu, fmt.Sprintf("%s %.1f", p, medianF(parts[p])))
		}
		line := fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.0f ms; CPU µs/row: %s (own processes %.1f)", medianF(p50s), medianF(p99s), medianF(worsts),
			strings.Join(cpu, ", "), medianF(fleet))
		if tool != "pgstream" {
			line += fmt.Sprintf("; round trips per row: Redis %.3f commands, target %.3f transactions", medianF(redisR), medianF(commitsR))
		} else {
			line += fmt.Sprintf("; target %.3f transactions per row", medianF(commitsR))
		}
		fmt.Printf("steady %d rows/s, %s (medians of %d): %s\n", rate, tool, len(rs), line)
		pipeline := tool
		switch tool {
		case "remix":
			line = "linger 0 (the default): " + line
		case "remix-linger":
			pipeline, line = "remix", "linger "+steadyLinger+": "+line
		}
		record(fmt.Sprintf("steady 1 000 single-row transactions/s for 10 s (medians of %d)", rounds()), pipeline, line)
	}
}

// steadyLinger is the source's linger in the second Remix pipeline of
// BenchmarkSteady (REMIX_BENCH_LINGER, 20ms unless set): fewer, larger
// batches for every stage, at up to about that much more latency.
var steadyLinger = cmp.Or(os.Getenv("REMIX_BENCH_LINGER"), "20ms")

// latencyLinger is the source's linger in BenchmarkLatency:
// REMIX_BENCH_LATENCY_LINGER, 0s (the default setting) unless set.
var latencyLinger = cmp.Or(os.Getenv("REMIX_BENCH_LATENCY_LINGER"), "0s")

func cpuLine(cpu map[string]time.Duration, n int) string {
	return cpuParts(cpu, func(d time.Duration) float64 { return perRow(d, n) }) + " µs/row"
}

// cpuParts lists each part's CPU, by name, as figure gives it.
func cpuParts(cpu map[string]time.Duration, figure func(time.Duration) float64) string {
	names := make([]string, 0, len(cpu))
	for p := range cpu {
		names = append(names, p)
	}
	sort.Strings(names)
	var out []string
	for _, p := range names {
		out = append(out, fmt.Sprintf("%s %.1f", p, figure(cpu[p])))
	}
	return strings.Join(out, ", ")
}

// printSlowSeconds prints, for every 100 ms of the load in which some row
// waited more than ms, when that was (seconds from the first row) and the
// longest wait: the rhythm of the slow rows says what slowed them.
func (s *setup) printSlowSeconds(ms float64) {
	rows, err := s.poll.Query(s.ctx, `WITH t AS (SELECT created_at, extract(epoch FROM applied_at - created_at) * 1000 AS ms FROM items),
		z AS (SELECT min(created_at) AS t0 FROM t)
		SELECT floor(extract(epoch FROM created_at - z.t0) * 10) / 10 AS at, max(ms), count(*) FROM t, z WHERE ms > $1 GROUP BY 1 ORDER BY 1`, ms)
	if err != nil {
		s.b.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var at, worst float64
		var n int
		rows.Scan(&at, &worst, &n)
		out = append(out, fmt.Sprintf("%.1fs: %d rows, up to %.0f ms", at, n, worst))
	}
	if len(out) > 0 {
		fmt.Printf("  rows slower than %.0f ms, by 100 ms of the load: %s\n", ms, strings.Join(out, "; "))
	}
}

// printStages splits the wait by stage from the processes' own latency
// histograms: source commit to the ingest's publish to Redis, and source
// commit to the pusher's write. Their bounds are bucket bounds (1, 2.5, 5,
// 10, 25, 50, 100, 250 ms...), so they say where a wait was, not its exact
// size.
func (s *setup) printStages() {
	ms := func(role, name string, q float64) string {
		v := s.histQuantile(role, name, q)
		if math.IsInf(v, 1) {
			return "over 30 s"
		}
		return fmt.Sprintf("≤ %g ms", v*1000)
	}
	fmt.Printf("  by stage, from the processes' histograms: commit → published p50 %s, p99 %s; commit → written p50 %s, p99 %s\n",
		ms("ingest", "remix_ingest_latency_seconds", 0.5), ms("ingest", "remix_ingest_latency_seconds", 0.99),
		ms("pusher", "remix_pusher_latency_seconds", 0.5), ms("pusher", "remix_pusher_latency_seconds", 0.99))
}
