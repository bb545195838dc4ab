package coord_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
)

// TestShortStallsLoseNothing freezes consumer processes (SIGSTOP) again and
// again for a little less than the lease TTL while entries flow: long enough
// for a consumer to stop trusting its leases, too short for them to expire,
// so it keeps them. Whatever it held when it froze must still be applied, in
// order, before anything newer of the same key: at the end every key holds
// its newest value and nothing waits in any partition. Then the consumers
// are killed and a fresh one takes every partition over: nothing older may
// surface and overwrite the newest values.
func TestShortStallsLoseNothing(t *testing.T) {
	for _, consumers := range []int{1, 2} {
		t.Run(strconv.Itoa(consumers)+"-consumers", func(t *testing.T) {
			t.Parallel()
			stallTest(t, consumers, 12)
		})
	}
}

func stallTest(t *testing.T, consumers, stalls int) {
	const keys, partitions = 40, 4
	leaseTTL := 1500 * time.Millisecond
	b := setup(t, func(c *coord.Config) { c.Partitions = partitions; c.LeaseTTL = leaseTTL; c.LockTTL = 10 * time.Second })
	env := []string{"HELPER_REDIS=" + testenv.RedisURL(t), "HELPER_NS=" + b.ns, "HELPER_PARTITIONS=" + strconv.Itoa(partitions),
		"HELPER_LEASE_TTL=" + leaseTTL.String(), "HELPER_APPLY_DELAY=2ms", "HELPER_READ_COUNT=2"}
	var procs []*testenv.Process
	for i := 0; i < consumers; i++ {
		p := testenv.StartHelper(t, fmt.Sprintf("consumer-%d", i), "consumer", env...)
		p.WaitLine("id ", 30*time.Second)
		procs = append(procs, p)
	}
	l := b.lock(t, "src")
	key := func(k int) string { return fmt.Sprintf("key-%03d", k) }
	publish := func(seq int) {
		items := make([]coord.Item, 0, keys)
		for k := 0; k < keys; k++ {
			items = append(items, obj("m", key(k), seqPayload(seq)))
		}
		if _, err := b.c.Publish(b.ctx, "src", l, items); err != nil {
			t.Error(err)
		}
	}
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		seq := 0
		for {
			select {
			case <-stop:
				published <- seq
				return
			case <-time.After(25 * time.Millisecond):
			}
			publish(seq)
			seq++
		}
	}()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := 0; i < stalls; i++ {
		p := procs[i%len(procs)]
		// Frozen for 60–95% of the lease: past its local validity (90% of
		// the TTL counted from the last renewal) much of the time, never
		// past the lease itself.
		d := time.Duration(float64(leaseTTL) * (0.6 + 0.35*r.Float64()))
		p.Signal(syscall.SIGSTOP)
		time.Sleep(d)
		p.Signal(syscall.SIGCONT)
		time.Sleep(time.Duration(200+r.IntN(500)) * time.Millisecond)
	}
	close(stop)
	last := <-published
	publish(last) // the newest value of every key
	newest := seqPayload(last)

	converged := func() bool {
		for k := 0; k < keys; k++ {
			if v, err := b.rdb.LIndex(b.ctx, b.ns+":applied:"+key(k), -1).Result(); err != nil || v != newest {
				return false
			}
		}
		return unacknowledged(t, b, partitions) == 0
	}
	waitFor(t, "every key at its newest value and nothing left unacknowledged", 30*time.Second, nil, converged)

	// Kill them all; a fresh consumer takes over every partition. Nothing
	// held back anywhere may now overwrite the newest values.
	for _, p := range procs {
		p.Kill()
	}
	fresh := testenv.StartHelper(t, "consumer-fresh", "consumer", env...)
	id := fresh.WaitLine("id ", 30*time.Second)[3:]
	waitFor(t, "the fresh consumer owning every partition", 10*time.Second, nil, func() bool {
		return len(leasesOf(b, id, partitions)) == partitions
	})
	publish(last + 1)
	newest = seqPayload(last + 1)
	waitFor(t, "the fresh consumer applied one more value", 30*time.Second, nil, converged)
	for k := 0; k < keys; k++ {
		got := b.rdb.LRange(b.ctx, b.ns+":applied:"+key(k), 0, -1).Val()
		if got[len(got)-1] != newest {
			t.Fatalf("%s ends with %s, want %s", key(k), got[len(got)-1], newest)
		}
	}
}

// unacknowledged counts entries a target's group has not acknowledged in
// any partition: pending ones and those not yet read.
func unacknowledged(t *testing.T, b *bundle, partitions int) int64 {
	t.Helper()
	var n int64
	for p := 0; p < partitions; p++ {
		stream := b.c.StreamKey("m", p)
		if sum, err := b.rdb.XPending(b.ctx, stream, "tgt").Result(); err == nil {
			n += sum.Count
		}
		groups, err := b.rdb.XInfoGroups(b.ctx, stream).Result()
		if err != nil || len(groups) != 1 {
			return -1
		}
		n += int64(len(b.rdb.XRange(b.ctx, stream, "("+groups[0].LastDeliveredID, "+").Val()))
	}
	return n
}
