package coord_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
)

// waits records how long entries waited between publish and apply.
type waits struct {
	mu    sync.Mutex
	max   time.Duration
	count int
}

func (w *waits) Handle(_ context.Context, batch []coord.Delivery) error {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range batch {
		ns, _ := strconv.ParseInt(string(d.Payload), 10, 64)
		w.max = max(w.max, now.Sub(time.Unix(0, ns)))
		w.count++
	}
	return nil
}

// TestHandOverWaitsForNoTick: while entries flow, a second consumer joins
// and later the first stops gracefully. Partitions change hands when the
// batch in flight is done, not at the next lease tick: no entry waits as
// long as a lease TTL (the bound a slow machine still keeps; the figure is
// logged).
func TestHandOverWaitsForNoTick(t *testing.T) {
	t.Parallel()
	leaseTTL := 3 * time.Second // a tick of 1 s: a hand-over at ticks would wait about that
	b := setup(t, func(c *coord.Config) { c.Partitions = 8; c.LeaseTTL = leaseTTL; c.LockTTL = 10 * time.Second })
	l := b.lock(t, "src")
	w := &waits{}
	start := func() (*coord.Consumer, context.CancelFunc, chan error) {
		cs := b.c.NewConsumer("tgt", []string{"m"})
		ctx, cancel := context.WithCancel(b.ctx)
		done := make(chan error, 1)
		go func() { done <- cs.Run(ctx, w) }()
		return cs, cancel, done
	}
	a, stopA, doneA := start()
	waitFor(t, "the first consumer owning every partition", 10*time.Second, nil, func() bool { return len(a.Owned()) == 8 })
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				published <- n
				return
			case <-time.After(5 * time.Millisecond):
			}
			var items []coord.Item
			for k := 0; k < 8; k++ {
				items = append(items, obj("m", fmt.Sprintf("k%d-%d", k, n), strconv.FormatInt(time.Now().UnixNano(), 10)))
			}
			if _, err := b.c.Publish(b.ctx, "src", l, items); err != nil {
				t.Error(err)
			}
			n += len(items)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	bc, stopB, doneB := start() // joins
	waitFor(t, "the partitions shared", 10*time.Second, nil, func() bool { return len(bc.Owned()) == 4 && len(a.Owned()) == 4 })
	time.Sleep(500 * time.Millisecond)
	stopA() // leaves gracefully
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second consumer owning every partition", 10*time.Second, nil, func() bool { return len(bc.Owned()) == 8 })
	time.Sleep(500 * time.Millisecond)
	close(stop)
	n := <-published
	waitFor(t, "every entry applied", 10*time.Second, nil, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.count >= n })
	stopB()
	<-doneB
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%d entries through a join and a graceful leave; the longest waited %v (lease TTL %v, tick %v)", w.count, w.max.Round(time.Millisecond), leaseTTL, leaseTTL/3)
	if w.max >= leaseTTL {
		t.Fatalf("an entry waited %v, a lease TTL or more: a hand-over stalled", w.max)
	}
}
