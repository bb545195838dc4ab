package bench

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkBacklog: a target that was away comes back to a backlog in
// Redis. The ingest reads 100 000 single-row transactions as they are
// committed, so each publish carries a transaction or a few, as at a
// steady rate while a target is down; then one pusher starts and drains
// the backlog. Rows/s from the first row's arrival to the last's, and the
// pusher's, Redis's and the target's CPU per row meanwhile.
func BenchmarkBacklog(b *testing.B) {
	sv := startServers(b)
	const n = 100000
	s := sv.newSetup(b)
	// Its log says when it streams (the empty table copied): from then on
	// it reads each transaction as it is committed.
	ing := s.start("ingest", "ingest", "LOG_LEVEL=info")
	ing.WaitStderr("streaming changes", time.Minute)
	s.commit(1, n, 1)
	s.waitSlotCaughtUp(s.slot(), 5*time.Minute)
	r := s.remixRoles()
	before := sample(r)
	s.start("pusher", "pusher")
	first, last := s.waitRows(n, 10*time.Minute)
	cpu := sample(r).since(before)
	s.stop() // the next benchmarks do not share the machine with it
	delete(cpu, "walsender")
	delete(cpu, "ingest")
	rate := float64(n) / last.Sub(first).Seconds()
	b.ReportMetric(rate, "rows/s")
	fmt.Printf("backlog of %d single-row publishes drained by one pusher: %.0f rows/s; CPU %s\n", n, rate, cpuLine(cpu, n))
	record("backlog of 100 000 rows published one transaction at a time, drained by one pusher", "remix",
		fmt.Sprintf("%.0f rows/s; CPU %s", rate, cpuLine(cpu, n)))
}
