package e2e

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestPushersJoinAndLeaveWithoutStall: while single-row transactions arrive
// at a steady rate, a second pusher joins, then the first stops gracefully
// (SIGTERM). Partitions change hands when the batch in flight is done, so
// no row waits as long as a lease TTL, the bound a dead pusher's partitions
// are held to (and a bound a loaded machine still keeps). Then a third
// pusher joins and the second is killed (SIGKILL): its partitions wait for
// its leases to expire, and no row waits longer than the lease TTL plus a
// second for the new owner to read and write them. A row's wait is its
// arrival in the warehouse (a clock_timestamp() default) less its source
// transaction's commit time (track_commit_timestamp), both read from the
// servers' clocks; the figures are logged.
func TestPushersJoinAndLeaveWithoutStall(t *testing.T) {
	t.Parallel()
	const leaseTTL = 3 * time.Second
	f := newFleet(t, fleetOptions{env: []string{"REMIX_LEASE_TTL=" + leaseTTL.String()}})
	f.exec(f.dst, `ALTER TABLE dim_customer ADD COLUMN arrived_at timestamptz NOT NULL DEFAULT clock_timestamp()`)
	ingest := f.ingest("ingest")
	ingest.WaitStderr("streaming changes", 30*time.Second)
	a := f.pusher("pusher-a")
	a.WaitStderr("pushing", 30*time.Second)

	const rate, seconds = 400, 14
	loadDone := make(chan error, 1)
	go func() { loadDone <- f.steadyInserts(f.ctx, rate, seconds) }()
	time.Sleep(2 * time.Second)
	joined := time.Now()
	b := f.pusher("pusher-b") // joins: half of the partitions move to it
	time.Sleep(3 * time.Second)
	left := time.Now()
	a.Signal(syscall.SIGTERM) // leaves: its partitions move to pusher-b
	select {
	case <-a.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("pusher-a did not stop within 20 s of SIGTERM")
	}
	time.Sleep(time.Second)
	f.pusher("pusher-c").WaitStderr("pushing", 30*time.Second)
	time.Sleep(2 * time.Second) // pusher-c takes its share
	killed := time.Now()
	b.Kill() // its partitions move to pusher-c when its leases expire
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every row in the warehouse", 60*time.Second, func() bool {
		var n int
		f.dst.QueryRow(f.ctx, `SELECT count(*) FROM dim_customer`).Scan(&n)
		return n == rate*seconds
	})

	commits := map[int64]time.Time{}
	rs, err := f.src.Query(f.ctx, `SELECT id, pg_xact_commit_timestamp(xmin) FROM customers`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var id int64
		var at time.Time
		if err := rs.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		commits[id] = at
	}
	rs.Close()
	type wait struct {
		committed time.Time
		d         time.Duration
	}
	var waits []wait
	rs, err = f.dst.Query(f.ctx, `SELECT customer_key, arrived_at FROM dim_customer`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var id int64
		var at time.Time
		if err := rs.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		c, ok := commits[id]
		if !ok {
			t.Fatalf("warehouse row %d has no source row", id)
		}
		waits = append(waits, wait{c, at.Sub(c)})
	}
	rs.Close()
	ds := make([]time.Duration, len(waits))
	for i, w := range waits {
		ds[i] = w.d
	}
	slices.Sort(ds)
	pct := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))].Round(100 * time.Microsecond) }
	// worstIn is the longest wait of the rows committed between from and to.
	worstIn := func(from, to time.Time) time.Duration {
		var worst time.Duration
		for _, w := range waits {
			if !w.committed.Before(from) && w.committed.Before(to) {
				worst = max(worst, w.d)
			}
		}
		return worst.Round(100 * time.Microsecond)
	}
	second := time.Second
	t.Logf("%d rows at %d/s: wait p50 %v, p99 %v, max %v; longest around the join %v, around the graceful leave %v, around the kill %v (lease TTL %v)",
		len(ds), rate, pct(0.5), pct(0.99), ds[len(ds)-1].Round(100*time.Microsecond),
		worstIn(joined.Add(-second), joined.Add(2*second)), worstIn(left.Add(-second), left.Add(2*second)), worstIn(killed.Add(-second), killed.Add(leaseTTL)), leaseTTL)
	if worst := worstIn(time.Time{}, killed.Add(-time.Second)); worst >= leaseTTL {
		t.Fatalf("a row waited %v, a lease TTL or more, while pushers joined and left gracefully: a hand-over stalled delivery", worst)
	}
	if worst := ds[len(ds)-1]; worst >= leaseTTL+time.Second {
		t.Fatalf("a row waited %v after a pusher was killed: more than the lease TTL (%v) and a second", worst, leaseTTL)
	}
}

// steadyInserts inserts customers one per transaction at rate per second
// for the given seconds.
func (f *fleet) steadyInserts(ctx context.Context, rate, seconds int) error {
	start := time.Now()
	for i := 0; i < rate*seconds; i++ {
		if _, err := f.src.Exec(ctx, `INSERT INTO customers (full_name, email) VALUES ($1, $2)`,
			fmt.Sprintf("Customer %d", i), fmt.Sprintf("c%d@example.com", i)); err != nil {
			return err
		}
		if ahead := time.Duration(i+1)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return nil
}
