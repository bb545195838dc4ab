package coord

import (
	"context"
	"testing"
)

// barrierEntry publishes a barrier's entry (a truncate's copy) into the
// only partition and returns it as a delivery.
func barrierEntry(t *testing.T, c *Client, ctx context.Context) *Delivery {
	t.Helper()
	stepPublish(t, c, ctx, "truncate")
	last, err := c.rdb.XRevRangeN(ctx, c.keys.stream("m", 0), "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("the barrier's entry: %v %v", last, err)
	}
	return &Delivery{Model: "m", Partition: 0, ID: last[0].ID}
}

// TestBarrierWaitsForWhatIsHeld: a partition whose earlier entries a
// Holder still holds does not arrive at a barrier; it asks for their
// flush, and arrives once they are durable and acknowledged, so a consumer
// that dies right after arriving leaves nothing before the barrier to be
// written after it.
func TestBarrierWaitsForWhatIsHeld(t *testing.T) {
	t.Parallel()
	c, ctx, cs, h := holdingConsumer(t)
	stepPublish(t, c, ctx, "1", "2")
	step(t, cs, ctx, h)
	if n := backlogOf(t, c, ctx); n != 2 {
		t.Fatalf("%d entries unacknowledged while held, want 2", n)
	}
	d := barrierEntry(t, c, ctx)
	st, err := cs.Barrier(ctx, "truncate-1", d)
	if err != nil || st != BarrierWait {
		t.Fatalf("barrier with held entries before it: %v, %v; want to wait", st, err)
	}
	if got := h.snapshot(); len(got) != 0 {
		t.Fatalf("flushed by the barrier call itself: %v", got)
	}
	cs.flushHeld(ctx, h, 0, false) // the worker's next chance: the flush the barrier asked for
	expectApplied(t, h.snapshot(), "1", "2")
	if n := backlogOf(t, c, ctx); n != 1 {
		t.Fatalf("%d entries unacknowledged after the flush, want 1 (the barrier's)", n)
	}
	if st, err := cs.Barrier(ctx, "truncate-1", d); err != nil || st != BarrierApply {
		t.Fatalf("barrier once everything before it is durable: %v, %v; want to apply", st, err)
	}
}

// TestBarrierSendsWaitingAcknowledgements: a partition whose cursor is
// not yet at the barrier does not arrive; cursor moves that wait for the
// worker's next read go out before it does.
func TestBarrierSendsWaitingAcknowledgements(t *testing.T) {
	t.Parallel()
	c, ctx := stepClient(t)
	cs := stepConsumer(t, c, ctx)
	cs.pending = make([][]cursorMove, 1)
	wctx := context.WithValue(ctx, deferKey{}, 0)
	stepPublish(t, c, ctx, "1", "2")
	batch, err := cs.fetch(wctx, 0)
	if err != nil || len(batch) != 2 {
		t.Fatalf("fetch: %d entries, %v", len(batch), err)
	}
	d := barrierEntry(t, c, ctx)
	if st, err := cs.Barrier(wctx, "truncate-1", d); err != nil || st != BarrierWait {
		t.Fatalf("barrier before the entries ahead of it are applied: %v, %v; want to wait", st, err)
	}
	if err := cs.process(wctx, &applied{}, batch); err != nil {
		t.Fatal(err)
	}
	if n := backlogOf(t, c, ctx); n != 3 {
		t.Fatalf("%d entries unacknowledged with their cursor moves waiting, want 3", n)
	}
	if st, err := cs.Barrier(wctx, "truncate-1", d); err != nil || st != BarrierApply {
		t.Fatalf("barrier: %v, %v; want to apply", st, err)
	}
	if n := backlogOf(t, c, ctx); n != 1 {
		t.Fatalf("%d entries unacknowledged once the partition arrived at the barrier, want 1 (the barrier's)", n)
	}
}
