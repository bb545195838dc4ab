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
// are held to (and a bound a loaded machine still keeps). A row's wait is
// its arrival in the warehouse (a clock_timestamp() default) less its
// source transaction's commit time (track_commit_timestamp), both read
// from the servers' clocks; the figures are logged.
func TestPushersJoinAndLeaveWithoutStall(t *testing.T) {
	t.Parallel()
	const leaseTTL = 3 * time.Second
	f := newFleet(t, fleetOptions{env: []string{"REMIX_LEASE_TTL=" + leaseTTL.String()}})
	f.exec(f.dst, `ALTER TABLE dim_customer ADD COLUMN arrived_at timestamptz NOT NULL DEFAULT clock_timestamp()`)
	ingest := f.ingest("ingest")
	ingest.WaitStderr("streaming changes", 30*time.Second)
	a := f.pusher("pusher-a")
	a.WaitStderr("pushing", 30*time.Second)

	const rate, seconds = 400, 9
	loadDone := make(chan error, 1)
	go func() { loadDone <- f.steadyInserts(f.ctx, rate, seconds) }()
	time.Sleep(2 * time.Second)
	joined := time.Now()
	f.pusher("pusher-b") // joins: half of the partitions move to it
	time.Sleep(3 * time.Second)
	left := time.Now()
	a.Signal(syscall.SIGTERM) // leaves: its partitions move to pusher-b
	select {
	case <-a.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("pusher-a did not stop within 20 s of SIGTERM")
	}
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
	worstNear := func(at time.Time) time.Duration {
		var worst time.Duration
		for _, w := range waits {
			if d := w.committed.Sub(at); d > -time.Second && d < 2*time.Second {
				worst = max(worst, w.d)
			}
		}
		return worst.Round(100 * time.Microsecond)
	}
	t.Logf("%d rows at %d/s: wait p50 %v, p99 %v, max %v; longest around the join %v, around the graceful leave %v (lease TTL %v)",
		len(ds), rate, pct(0.5), pct(0.99), ds[len(ds)-1].Round(100*time.Microsecond), worstNear(joined), worstNear(left), leaseTTL)
	if worst := ds[len(ds)-1]; worst >= leaseTTL {
		t.Fatalf("a row waited %v, a lease TTL or more: a hand-over stalled delivery", worst)
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
