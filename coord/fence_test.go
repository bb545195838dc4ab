package coord_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
)

// fencingTarget is a target that keeps the highest fencing token per
// partition with its data, as the PostgreSQL sink does, and refuses a
// write of an older tenure.
type fencingTarget struct {
	mu      sync.Mutex
	high    map[int]uint64
	state   map[string]string
	tokens  []uint64 // tokens of accepted writes, in order
	refused int
	notify  chan struct{}
}

func (f *fencingTarget) write(batch []coord.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range batch {
		if d.Fence < f.high[d.Partition] {
			f.refused++
			return fmt.Errorf("%w: token %d, the target has %d", coord.ErrFenced, d.Fence, f.high[d.Partition])
		}
	}
	for _, d := range batch {
		f.high[d.Partition] = max(f.high[d.Partition], d.Fence)
		f.state[d.Key] = string(d.Payload)
		f.tokens = append(f.tokens, d.Fence)
	}
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return nil
}

func (f *fencingTarget) snapshot() (map[string]string, int, []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	state := make(map[string]string, len(f.state))
	for k, v := range f.state {
		state[k] = v
	}
	return state, f.refused, append([]uint64(nil), f.tokens...)
}

// TestStalledConsumerIsFencedAtTheTarget: a consumer stalls in the middle
// of a write (past the check that it still owns the partition); its lease
// runs out, its fence counter is lost too, and another consumer takes the
// partition over and applies newer values. When the stalled write finally
// reaches the target, its older fencing token gets it refused: the newer
// values stay, and the stalled consumer gives the partition up.
func TestStalledConsumerIsFencedAtTheTarget(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	target := &fencingTarget{high: map[int]uint64{}, state: map[string]string{}, notify: make(chan struct{}, 1)}
	stalled, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	runConsumer(t, b, "tgt", coord.HandlerFunc(func(_ context.Context, batch []coord.Delivery) error {
		first := false
		once.Do(func() { first = true })
		if first {
			close(stalled)
			<-resume
		}
		return target.write(batch)
	}), "product")

	keys := []string{"src/public.t/1", "src/public.t/2", "src/public.t/3"}
	publishAll := func(v string) {
		var items []coord.Item
		for _, k := range keys {
			items = append(items, obj("product", k, v))
		}
		b.publish(t, l, items...)
	}
	publishAll("old")
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the first consumer never wrote")
	}
	// The stalled consumer's lease runs out, and the fence counter is lost
	// with it (as in a Redis restored from an old backup).
	var gone []string
	for _, pattern := range []string{b.ns + ":*:lease:tgt", b.ns + ":*:fence:tgt"} {
		gone = append(gone, b.rdb.Keys(b.ctx, pattern).Val()...)
	}
	if len(gone) != 2 {
		t.Fatalf("lease and fence keys: %v", gone)
	}
	b.rdb.Del(b.ctx, gone...)
	runConsumer(t, b, "tgt", coord.HandlerFunc(func(_ context.Context, batch []coord.Delivery) error {
		return target.write(batch)
	}), "product")
	publishAll("new")
	waitFor(t, "the new owner applied the new values", 10*time.Second, target.notify, func() bool {
		state, _, _ := target.snapshot()
		return state[keys[0]] == "new" && state[keys[1]] == "new" && state[keys[2]] == "new"
	})
	close(resume)
	waitFor(t, "the stalled write refused", 10*time.Second, nil, func() bool {
		_, refused, _ := target.snapshot()
		return refused >= 1
	})
	publishAll("newest")
	waitFor(t, "the newest values applied", 10*time.Second, target.notify, func() bool {
		state, _, _ := target.snapshot()
		return state[keys[0]] == "newest" && state[keys[1]] == "newest" && state[keys[2]] == "newest"
	})
	_, refused, tokens := target.snapshot()
	for i := 1; i < len(tokens); i++ {
		if tokens[i] < tokens[i-1] {
			t.Fatalf("accepted writes went back in tenure: %v", tokens)
		}
	}
	if refused != 1 {
		t.Fatalf("%d writes refused, want the stalled one alone", refused)
	}
}

// TestFenceKeysAreDistinct: two targets, two fleets (namespaces) and two
// partitions never share a fence, even when they write to one database.
func TestFenceKeysAreDistinct(t *testing.T) {
	t.Parallel()
	b1, b2 := setup(t, nil), setup(t, nil)
	keys := map[string]bool{}
	for _, k := range []string{
		b1.c.NewConsumer("warehouse", []string{"product"}).FenceKey("product", 0),
		b1.c.NewConsumer("warehouse", []string{"product"}).FenceKey("product", 1),
		b1.c.NewConsumer("archive", []string{"product"}).FenceKey("product", 0),
		b2.c.NewConsumer("warehouse", []string{"product"}).FenceKey("product", 0),
	} {
		if keys[k] {
			t.Fatalf("fence key %q used twice", k)
		}
		keys[k] = true
	}
	if k := b1.c.NewConsumer("warehouse", []string{"product"}).FenceKey("product", 0); !keys[k] {
		t.Fatalf("fence key %q is not stable", k)
	}
}
