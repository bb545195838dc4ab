package coord

import (
	"context"
	"sync"
	"testing"
	"time"
)

// holdingTarget is a Holder: Handle keeps values per partition, Flush
// appends them to what is durable, Discard drops them.
type holdingTarget struct {
	mu        sync.Mutex
	held      map[PartitionRef][]string
	durable   []string
	due       bool
	discarded int
	flushes   int
}

// holdingConsumer is a consumer that owns the one partition of model m,
// with a holdingTarget as its handler.
func holdingConsumer(t *testing.T) (*Client, context.Context, *Consumer, *holdingTarget) {
	t.Helper()
	c, ctx := stepClient(t)
	cs := stepConsumer(t, c, ctx)
	h := newHoldingTarget()
	cs.handler = h
	return c, ctx, cs, h
}

func newHoldingTarget() *holdingTarget {
	return &holdingTarget{held: map[PartitionRef][]string{}}
}

func (h *holdingTarget) Handle(_ context.Context, batch []Delivery) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range batch {
		p := PartitionRef{d.Model, d.Partition}
		h.held[p] = append(h.held[p], string(d.Payload))
	}
	return nil
}

func (h *holdingTarget) Pending(p PartitionRef) (bool, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held[p]) > 0, h.due
}

func (h *holdingTarget) Flush(_ context.Context, parts []PartitionRef) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushes++
	for _, p := range parts {
		h.durable = append(h.durable, h.held[p]...)
		delete(h.held, p)
	}
	return nil
}

func (h *holdingTarget) Discard(parts []PartitionRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range parts {
		h.discarded += len(h.held[p])
		delete(h.held, p)
	}
}

func (h *holdingTarget) setDue(due bool) { h.mu.Lock(); h.due = due; h.mu.Unlock() }

func (h *holdingTarget) snapshot() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.durable...)
}

// step runs one worker iteration by hand: fetch, process, flush.
func step(t *testing.T, cs *Consumer, ctx context.Context, h Holder) {
	t.Helper()
	batch, err := cs.fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) > 0 {
		if err := cs.process(ctx, h, batch); err != nil {
			t.Fatal(err)
		}
	}
	cs.flushHeld(ctx, h, 0, false)
}

// TestHeldEntriesWaitForTheFlush: entries a Holder accepted stay
// unacknowledged until it says they are due and flushes them; then the
// cursor passes them.
func TestHeldEntriesWaitForTheFlush(t *testing.T) {
	t.Parallel()
	c, ctx := stepClient(t)
	cs := stepConsumer(t, c, ctx)
	h := newHoldingTarget()
	stepPublish(t, c, ctx, "1", "2", "3")
	for i := 0; i < 3; i++ {
		step(t, cs, ctx, h)
	}
	if got := h.snapshot(); len(got) != 0 {
		t.Fatalf("durable before a flush: %v", got)
	}
	if n := backlogOf(t, c, ctx); n != 3 {
		t.Fatalf("%d entries unacknowledged while held, want 3", n)
	}
	h.setDue(true)
	step(t, cs, ctx, h)
	expectApplied(t, h.snapshot(), "1", "2", "3")
	if n := backlogOf(t, c, ctx); n != 0 {
		t.Fatalf("%d entries unacknowledged after the flush", n)
	}
}

// TestLapsedTenureDiscardsWhatIsHeld: a tenure that lapses with records
// held drops them (the Holder's Discard) and reads the partition again
// from the cursor; they are held again and flushed in order, once.
func TestLapsedTenureDiscardsWhatIsHeld(t *testing.T) {
	t.Parallel()
	c, ctx, cs, h := holdingConsumer(t)
	stepPublish(t, c, ctx, "1", "2")
	step(t, cs, ctx, h)
	stepPublish(t, c, ctx, "3")
	batch, err := cs.fetch(ctx, 0)
	if err != nil || len(batch) != 1 {
		t.Fatalf("fetch: %d, %v", len(batch), err)
	}
	cs.mu.Lock()
	for _, p := range cs.owned {
		p.validUntil = time.Now().Add(-time.Millisecond) // the freeze
	}
	cs.mu.Unlock()
	if err := cs.process(ctx, h, batch); err != nil {
		t.Fatal(err)
	}
	if h.discarded != 2 {
		t.Fatalf("discarded %d held records, want 2", h.discarded)
	}
	if _, err := cs.rebalance(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		step(t, cs, ctx, h)
	}
	h.setDue(true)
	step(t, cs, ctx, h)
	got := h.snapshot()
	expectApplied(t, got, "1", "2", "3")
	if len(got) != 3 {
		t.Fatalf("flushed %v: a record twice", got)
	}
	if n := backlogOf(t, c, ctx); n != 0 {
		t.Fatalf("%d entries unacknowledged", n)
	}
}

// TestStoppingFlushesWhatIsHeld: a consumer that stops flushes what it
// holds and acknowledges it, so the next owner does not write it again.
func TestStoppingFlushesWhatIsHeld(t *testing.T) {
	t.Parallel()
	c, ctx := stepClient(t)
	h := newHoldingTarget()
	cs := c.NewConsumer("tgt", []string{"m"})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cs.Run(rctx, h) }()
	stepPublish(t, c, ctx, "1", "2")
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		n := 0
		for _, v := range h.held {
			n += len(v)
		}
		h.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the consumer never took the entries")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectApplied(t, h.snapshot(), "1", "2")
	if n := backlogOf(t, c, ctx); n != 0 {
		t.Fatalf("%d entries unacknowledged after stopping", n)
	}
}

// TestKeepOwnedCopiesOnlyWhenItDrops: a batch whose tenures all hold comes
// back as it is; one with an entry of an ended tenure comes back without
// it, the others in order.
func TestKeepOwnedCopiesOnlyWhenItDrops(t *testing.T) {
	t.Parallel()
	valid := time.Now().Add(time.Minute)
	cs := &Consumer{owned: map[string]*partition{"a": {gen: 1, validUntil: valid}, "b": {gen: 2, validUntil: valid}}}
	kept := []Delivery{{stream: "a", gen: 1, ID: "1"}, {stream: "b", gen: 2, ID: "2"}}
	if out := cs.keepOwned(kept); &out[0] != &kept[0] || len(out) != 2 {
		t.Fatalf("a batch kept whole was copied or cut: %+v", out)
	}
	mixed := []Delivery{{stream: "a", gen: 1, ID: "1"}, {stream: "b", gen: 1, ID: "2"}, {stream: "c", gen: 1, ID: "3"}, {stream: "a", gen: 1, ID: "4"}}
	out := cs.keepOwned(mixed)
	if len(out) != 2 || out[0].ID != "1" || out[1].ID != "4" || &out[0] == &mixed[0] {
		t.Fatalf("kept %+v, want a copy of 1 and 4", out)
	}
	if mixed[1].ID != "2" {
		t.Fatal("the batch read was changed")
	}
}
