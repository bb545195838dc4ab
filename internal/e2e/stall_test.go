package e2e

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlpipe/remix/internal/testenv"
)

// TestShortPusherStallsLoseNothing freezes pushers (SIGSTOP) again and
// again during a load for a little less than their lease: long enough that
// a pusher stops trusting its leases, too short for them to expire. What a
// frozen pusher had read must still be written, in order. At the end the
// warehouse equals the shop and nothing waits in any stream; then one more
// change, a kill -9 of the pushers and a fresh pusher: nothing older
// resurfaces over it. With one pusher and with two, and a few freezes
// longer than the lease among the short ones.
func TestShortPusherStallsLoseNothing(t *testing.T) {
	t.Parallel()
	for _, pushers := range []int{1, 2} {
		t.Run(strconv.Itoa(pushers)+"-pushers", func(t *testing.T) {
			t.Parallel()
			// scripts/soak.sh raises the counts; CI runs a few of each.
			o := stallSeriesOptions{short: envInt("REMIX_SOAK_SHORT_STALLS", 5), long: envInt("REMIX_SOAK_LONG_STALLS", 2), perSecond: 300}
			o.ops = envInt("REMIX_SOAK_OPS", o.perSecond*(o.short+o.long)*8/5) // about as long as the freezes
			stallSeries(t, pushers, o)
		})
	}
}

type stallSeriesOptions struct {
	short, long    int // freezes shorter and longer than the lease
	ops, perSecond int
}

const leaseTTL = 1500 * time.Millisecond // the fleet's REMIX_LEASE_TTL

func stallSeries(t *testing.T, pushers int, o stallSeriesOptions) {
	f := newFleet(t, fleetOptions{})
	f.ingest("ingest")
	var ps []*testenv.Process
	for i := 0; i < pushers; i++ {
		ps = append(ps, f.pusher(fmt.Sprintf("pusher-%d", i)))
	}
	for _, p := range ps {
		p.WaitStderr("pushing", 30*time.Second)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- f.load(f.ctx, uint64(pushers), o.ops, o.perSecond) }()
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 3))
	kinds := make([]bool, 0, o.short+o.long) // true: longer than the lease
	for i := 0; i < o.short; i++ {
		kinds = append(kinds, false)
	}
	for i := 0; i < o.long; i++ {
		kinds = append(kinds, true)
	}
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	lapses := 0
	for i, long := range kinds {
		p := ps[i%len(ps)]
		// Short: 60–95% of the lease, past the pusher's own validity (90%
		// of the TTL from its last renewal) much of the time, never past
		// the lease in Redis. Long: 1.2–2× the lease.
		d := time.Duration(float64(leaseTTL) * (0.6 + 0.35*r.Float64()))
		if long {
			d = time.Duration(float64(leaseTTL) * (1.2 + 0.8*r.Float64()))
		}
		p.Signal(syscall.SIGSTOP)
		time.Sleep(d)
		p.Signal(syscall.SIGCONT)
		time.Sleep(time.Duration(200+r.IntN(600)) * time.Millisecond)
	}
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	f.waitConverged(120 * time.Second)
	f.waitStreamsDrained(60 * time.Second)
	for _, p := range ps {
		lapses += strings.Count(p.Stderr(), "went unrenewed for most of its TTL")
	}

	// One more change, then every pusher dies and a fresh one takes over:
	// nothing older may surface over the newest values.
	f.exec(f.src, `UPDATE customers SET full_name = full_name || ' (last)' WHERE id IN (SELECT id FROM customers ORDER BY id LIMIT 20)`)
	f.waitConverged(60 * time.Second)
	for _, p := range ps {
		p.Kill()
	}
	fresh := f.pusher("pusher-fresh")
	fresh.WaitStderr("pushing", 30*time.Second)
	f.exec(f.src, `UPDATE orders SET total = total + 1000 WHERE id IN (SELECT id FROM orders ORDER BY id LIMIT 20)`)
	f.waitConverged(60 * time.Second)
	f.waitStreamsDrained(30 * time.Second)
	t.Logf("%d freezes shorter and %d longer than the %v lease with %d pusher(s); %d tenures lapsed and were read again; converged",
		o.short, o.long, leaseTTL, pushers, lapses)
}

// waitStreamsDrained waits until every target group's cursor stands at the
// end of its partition stream: nothing left unacknowledged.
func (f *fleet) waitStreamsDrained(within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		left, err := f.unacknowledged()
		if err == nil && left == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("after %v: %d stream entries still unacknowledged (%v)", within, left, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unacknowledged counts, over every partition stream of the fleet's
// namespace and every group on it, the entries after the group's cursor
// and those still pending.
func (f *fleet) unacknowledged() (int64, error) {
	var n int64
	iter := f.rdb.Scan(f.ctx, 0, f.ns+":*:stream", 1000).Iterator()
	for iter.Next(f.ctx) {
		stream := iter.Val()
		groups, err := f.rdb.XInfoGroups(f.ctx, stream).Result()
		if err != nil {
			return 0, err
		}
		for _, g := range groups {
			n += g.Pending
			after, err := f.rdb.XRange(f.ctx, stream, "("+g.LastDeliveredID, "+").Result()
			if err != nil && err != redis.Nil {
				return 0, err
			}
			n += int64(len(after))
		}
	}
	return n, iter.Err()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
