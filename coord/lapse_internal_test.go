package coord

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// These tests drive a consumer step by step (no goroutines of its own), so
// the moments that matter — a pause between a read and its write, a read
// that reaches Redis after the lease went elsewhere — happen exactly where
// the test puts them.

func stepClient(t *testing.T) (*Client, context.Context) {
	t.Helper()
	rdb, ns := testenv.Redis(t)
	c, err := New(rdb, Config{Namespace: ns, Partitions: 1, LeaseTTL: 3 * time.Second, ReadBlock: 50 * time.Millisecond,
		RetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	return c, testenv.Context(t)
}

func stepPublish(t *testing.T, c *Client, ctx context.Context, values ...string) {
	t.Helper()
	l, err := c.AcquireReader(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.WithoutCancel(ctx))
	for _, v := range values {
		if _, err := c.Publish(ctx, "src", l, []Item{{Model: "m", Key: "k", Payload: []byte(v)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// stepConsumer returns a consumer that owns the only partition.
func stepConsumer(t *testing.T, c *Client, ctx context.Context) *Consumer {
	t.Helper()
	cs := c.NewConsumer("tgt", []string{"m"})
	if err := c.EnsureGroups(ctx, "m", []string{"tgt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.rebalance(ctx); err != nil {
		t.Fatal(err)
	}
	if len(cs.Owned()) != 1 {
		t.Fatalf("%s owns %v", cs.ID(), cs.Owned())
	}
	return cs
}

type applied struct{ values []string }

func (a *applied) Handle(_ context.Context, batch []Delivery) error {
	for _, d := range batch {
		a.values = append(a.values, string(d.Payload))
	}
	return nil
}

// drain fetches and processes until fetches come back empty.
func drain(t *testing.T, cs *Consumer, ctx context.Context, h Handler) {
	t.Helper()
	empty := 0
	for i := 0; i < 50 && empty < 3; i++ {
		batch, err := cs.fetch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			empty++
			continue
		}
		empty = 0
		if err := cs.process(ctx, h, batch); err != nil {
			t.Fatal(err)
		}
	}
	if empty < 3 {
		t.Fatal("the consumer never ran dry")
	}
}

func expectApplied(t *testing.T, got []string, want ...string) {
	t.Helper()
	// Repeats are allowed (at least once); going back is not.
	var uniq []string
	for i, v := range got {
		if i > 0 && v < got[i-1] {
			t.Fatalf("applied out of order: %v", got)
		}
		if len(uniq) == 0 || uniq[len(uniq)-1] != v {
			uniq = append(uniq, v)
		}
	}
	if len(uniq) != len(want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	for i := range want {
		if uniq[i] != want[i] {
			t.Fatalf("applied %v, want %v", got, want)
		}
	}
}

// TestLapsedTenureRedeliversItsEntries: the consumer reads entries, then
// stops trusting its lease before writing them (it was frozen past its
// local validity, not past the lease). It drops them, renews the lease,
// and must apply them before anything newer.
func TestLapsedTenureRedeliversItsEntries(t *testing.T) {
	t.Parallel()
	c, ctx := stepClient(t)
	cs := stepConsumer(t, c, ctx)
	stepPublish(t, c, ctx, "1", "2")
	batch, err := cs.fetch(ctx, 0)
	if err != nil || len(batch) != 2 {
		t.Fatalf("fetch: %d, %v", len(batch), err)
	}
	cs.mu.Lock()
	for _, p := range cs.owned {
		p.validUntil = time.Now().Add(-time.Millisecond) // the freeze
	}
	cs.mu.Unlock()
	h := &applied{}
	if err := cs.process(ctx, h, batch); err != nil {
		t.Fatal(err)
	}
	if len(h.values) != 0 {
		t.Fatalf("wrote %v under a lapsed lease", h.values)
	}
	if _, err := cs.rebalance(ctx); err != nil { // the renewal after the thaw
		t.Fatal(err)
	}
	if len(cs.Owned()) != 1 {
		t.Fatal("the renewal lost the lease")
	}
	stepPublish(t, c, ctx, "3")
	drain(t, cs, ctx, h)
	expectApplied(t, h.values, "1", "2", "3")
	if n := backlogOf(t, c, ctx); n != 0 {
		t.Fatalf("%d entries left unacknowledged", n)
	}
}

// TestLateReadOfAFormerOwnerLosesNothing: a consumer sends a read after its
// lease expired and another consumer took the partition over (the read was
// delayed: a freeze just before sending it, a slow network). Whatever that
// read returns must still reach the new owner, in order.
func TestLateReadOfAFormerOwnerLosesNothing(t *testing.T) {
	t.Parallel()
	c, ctx := stepClient(t)
	old := stepConsumer(t, c, ctx)
	// The lease expires (the old owner was frozen past it); the new owner
	// takes the partition.
	c.rdb.Del(ctx, c.keys.lease("m", 0, "tgt"))
	c.rdb.ZRem(ctx, c.keys.members("tgt"), old.id) // so does its heartbeat
	fresh := stepConsumer(t, c, ctx)
	stepPublish(t, c, ctx, "1", "2")
	late, err := old.fetch(ctx, 0) // still believes it owns the partition
	if err != nil {
		t.Fatal(err)
	}
	h := &applied{}
	if err := old.process(ctx, &applied{}, late); err != nil {
		t.Fatal(err)
	}
	stepPublish(t, c, ctx, "3")
	drain(t, fresh, ctx, h)
	expectApplied(t, h.values, "1", "2", "3")
	if n := backlogOf(t, c, ctx); n != 0 {
		t.Fatalf("%d entries left unacknowledged", n)
	}
}

// backlogOf counts what the group has not acknowledged: pending entries and
// those after its last delivered one.
func backlogOf(t *testing.T, c *Client, ctx context.Context) int64 {
	t.Helper()
	stream := c.keys.stream("m", 0)
	var n int64
	if sum, err := c.rdb.XPending(ctx, stream, "tgt").Result(); err == nil {
		n += sum.Count
	}
	groups, err := c.rdb.XInfoGroups(ctx, stream).Result()
	if err != nil || len(groups) != 1 {
		t.Fatalf("groups %v: %v", groups, err)
	}
	return n + int64(len(c.rdb.XRange(ctx, stream, "("+groups[0].LastDeliveredID, "+").Val()))
}
