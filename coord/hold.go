package coord

import (
	"context"
	"fmt"
	"time"
)

// Holder is a Handler whose target may keep what Handle accepted without
// making it durable yet: an append-only file rolled over minutes, a batch
// load. The consumer then leaves those entries unacknowledged (the cursor
// stops before them), asks Pending after every batch and between reads,
// and calls Flush when the target says it is due, before it gives a
// partition up, and when it stops; it acknowledges the entries once Flush
// returned nil. When it loses a partition (a takeover, a lapsed tenure) it
// calls Discard: the partition's new owner reads those entries again. Per
// key order holds: a partition's entries are handled in order whether held
// or not, and nothing after a held entry is acknowledged before it.
type Holder interface {
	Handler
	// Pending reports whether the target holds records of a partition that
	// are not durable yet, and whether they should be flushed now.
	Pending(p PartitionRef) (held, due bool)
	// Flush makes what the target holds of the partitions durable; on an
	// error, what it could not flush stays held.
	Flush(ctx context.Context, parts []PartitionRef) error
	// Discard drops what the target holds of the partitions, unflushed.
	Discard(parts []PartitionRef)
}

// PartitionRef names one partition stream of a model.
type PartitionRef struct {
	Model     string
	Partition int
}

// heldEntry is a run of a stream entry's objects that a Holder accepted
// and holds: acknowledged once flushed.
type heldEntry struct {
	id      string
	objects int
}

// hold records a batch a Holder accepted: its entries stay unacknowledged
// until the partition is flushed.
func (cs *Consumer) hold(b []Delivery) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for i := range b {
		d := &b[i]
		p := cs.owned[d.stream]
		if p == nil || p.gen != d.gen {
			continue // lost or lapsed: read again by the owner
		}
		if n := len(p.held); n > 0 && p.held[n-1].id == d.ID {
			p.held[n-1].objects++
			continue
		}
		p.held = append(p.held, heldEntry{id: d.ID, objects: 1})
	}
}

// flushHeld flushes worker w's partitions whose held records are due (all
// of them with force, and always those being given up), then acknowledges
// their entries. It reports whether every partition that had to be flushed
// was.
func (cs *Consumer) flushHeld(ctx context.Context, h Holder, w int, force bool) bool {
	cs.mu.Lock()
	var parts []*partition
	for _, p := range cs.owned {
		if len(p.held) == 0 || w >= 0 && !cs.mine(p, w) {
			continue
		}
		held, due := h.Pending(PartitionRef{p.model, p.index})
		if !held || due || force || p.releasing || p.flushNow {
			parts = append(parts, p)
		}
	}
	cs.mu.Unlock()
	if len(parts) == 0 {
		return true
	}
	refs := make([]PartitionRef, len(parts))
	for i, p := range parts {
		refs[i] = PartitionRef{p.model, p.index}
	}
	if err := h.Flush(ctx, refs); err != nil {
		if ctx.Err() == nil && cs.stallParts(parts, "flushing held records fails: "+err.Error()) {
			cs.log.Warn("flushing held records failed; they stay held and are tried again", "target", cs.target, "error", err)
		}
		return false
	}
	var moves []cursorMove
	cs.mu.Lock()
	for _, p := range parts {
		if cs.owned[p.stream] != p {
			continue // lost while flushing: the new owner reads them again
		}
		for _, e := range p.held {
			for range e.objects {
				p.inflight.done(e.id)
			}
		}
		p.held, p.flushNow = nil, false
		delete(cs.stalls, p.stream)
		if to, n := p.inflight.advance(); n > 0 {
			moves = append(moves, cursorMove{p, to, n})
		}
	}
	cs.mu.Unlock()
	if err := cs.moveCursors(ctx, moves); err != nil {
		// Flushed but not acknowledged: read and flushed again after a
		// takeover (the store receives repeats, told apart by Origin).
		cs.log.Warn("acknowledging flushed entries failed", "target", cs.target, "error", err)
		return false
	}
	return true
}

// stallParts reports partitions as unable to move; see stall.
func (cs *Consumer) stallParts(parts []*partition, reason string) bool {
	b := make([]Delivery, len(parts))
	for i, p := range parts {
		b[i] = Delivery{stream: p.stream}
	}
	return cs.stall(b, reason)
}

// discardHeld tells the Holder to drop what it holds of partitions this
// consumer no longer reads under the tenure it held them in.
func (cs *Consumer) discardHeld(parts []PartitionRef) {
	if h, ok := cs.handler.(Holder); ok && len(parts) > 0 {
		h.Discard(parts)
	}
}

// flushOnStop flushes everything held, with a deadline of its own, when the
// consumer stops: what cannot be flushed in time is read again by the next
// owner.
func (cs *Consumer) flushOnStop(ctx context.Context) {
	h, ok := cs.handler.(Holder)
	if !ok {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if !cs.flushHeld(fctx, h, -1, true) {
		cs.log.Warn("held records could not all be flushed while stopping; the next owner writes them again")
	}
}

func (r PartitionRef) String() string { return fmt.Sprintf("%s/%d", r.Model, r.Partition) }
