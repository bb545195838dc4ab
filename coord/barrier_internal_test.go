package coord

import (
	"context"
	"testing"
)

// TestBarrierWaitsForWhatIsHeld: a partition whose earlier entries a
// Holder still holds does not arrive at a barrier; it asks for their
// flush, and arrives once they are durable and acknowledged, so a consumer
// that dies right after arriving leaves nothing before the barrier to be
// written after it.
func TestBarrierWaitsForWhatIsHeld(t *testing.T) {
	t.Parallel()
	c, ctx := stepClient(t)
	cs := stepConsumer(t, c, ctx)
	h := newHoldingTarget()
	cs.handler = h
	stepPublish(t, c, ctx, "1", "2")
	step(t, cs, ctx, h)
	if n := backlogOf(t, c, ctx); n != 2 {
		t.Fatalf("%d entries unacknowledged while held, want 2", n)
	}
	st, err := cs.Barrier(ctx, "truncate-1", "m", 0)
	if err != nil || st != BarrierWait {
		t.Fatalf("barrier with held entries before it: %v, %v; want to wait", st, err)
	}
	if got := h.snapshot(); len(got) != 0 {
		t.Fatalf("flushed by the barrier call itself: %v", got)
	}
	step(t, cs, ctx, h) // the worker's next chance: the flush the barrier asked for
	expectApplied(t, h.snapshot(), "1", "2")
	if n := backlogOf(t, c, ctx); n != 0 {
		t.Fatalf("%d entries unacknowledged after the flush", n)
	}
	if st, err := cs.Barrier(ctx, "truncate-1", "m", 0); err != nil || st != BarrierApply {
		t.Fatalf("barrier once everything before it is durable: %v, %v; want to apply", st, err)
	}
}

// TestBarrierSendsWaitingAcknowledgements: cursor moves that wait for the
// worker's next read go out before the partition arrives at a barrier.
func TestBarrierSendsWaitingAcknowledgements(t *testing.T) {
	t.Parallel()
	c, ctx := stepClient(t)
	cs := stepConsumer(t, c, ctx)
	cs.pending = make([][]cursorMove, 1)
	wctx := context.WithValue(ctx, deferKey{}, 0)
	stepPublish(t, c, ctx, "1", "2")
	a := &applied{}
	batch, err := cs.fetch(wctx, 0)
	if err != nil || len(batch) != 2 {
		t.Fatalf("fetch: %d entries, %v", len(batch), err)
	}
	if err := cs.process(wctx, a, batch); err != nil {
		t.Fatal(err)
	}
	if n := backlogOf(t, c, ctx); n != 2 {
		t.Fatalf("%d entries unacknowledged with their cursor moves waiting, want 2", n)
	}
	if st, err := cs.Barrier(wctx, "truncate-1", "m", 0); err != nil || st != BarrierApply {
		t.Fatalf("barrier: %v, %v; want to apply", st, err)
	}
	if n := backlogOf(t, c, ctx); n != 0 {
		t.Fatalf("%d entries unacknowledged once the partition arrived at the barrier", n)
	}
}
