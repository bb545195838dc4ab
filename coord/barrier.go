package coord

import (
	"context"
	"errors"
	"fmt"
)

// A barrier lines up every partition of a model at one change that concerns
// all keys (a TRUNCATE of a source table, published into every partition).
// Each partition arrives once everything before the change in that
// partition is applied; when all have arrived, one consumer applies the
// change and marks the barrier done; the others then skip their copies.

// BarrierState is where a barrier stands for the caller.
type BarrierState int

const (
	BarrierWait  BarrierState = iota // not every partition has arrived: defer
	BarrierApply                     // the caller applies the change, then calls BarrierDone
	BarrierDone                      // applied already: skip the copy
)

// Barrier records that the partition of d, the barrier's entry, reached
// barrier id of a target's consumer group, and says what to do. A partition
// arrives only once everything before the barrier in it is durable at the
// target and acknowledged (its cursor stands just before d): entries a
// Holder still holds are flushed first (the partition waits: BarrierWait),
// and cursor moves waiting for the worker's next read are sent now.
// Otherwise a consumer that died right after its partition arrived would
// leave those entries to the next owner, which would write them after the
// barrier's change (rows a truncate emptied would come back).
func (cs *Consumer) Barrier(ctx context.Context, id string, d *Delivery) (BarrierState, error) {
	if ready, err := cs.beforeBarrierDone(ctx, d.Model, d.Partition); err != nil || !ready {
		return BarrierWait, err
	}
	c := cs.c
	n, err := barrierScript.Run(ctx, c.rdb,
		[]string{c.keys.barrier(cs.target, id, "arrived"), c.keys.barrier(cs.target, id, "owner"), c.keys.barrier(cs.target, id, "done"),
			c.keys.stream(d.Model, d.Partition)},
		d.Partition, c.cfg.Partitions, owner(ctx, cs.id), (3 * c.cfg.LeaseTTL).Milliseconds(), cs.target, d.ID).Int64()
	if err != nil {
		return BarrierWait, fmt.Errorf("barrier %s: %w", id, err)
	}
	return BarrierState(n), nil
}

// owner is who applies a barrier: the worker, so two workers of one
// consumer never both apply it.
func owner(ctx context.Context, fallback string) string {
	if w := Worker(ctx); w != "" {
		return w
	}
	return fallback
}

// ErrBarrierMoved means a barrier's owner changed while the caller applied
// it (its owner lock expired): the caller tries the batch again and finds the
// barrier done by the new owner.
var ErrBarrierMoved = errors.New("barrier owner changed while applying it")

// BarrierDone marks a barrier applied, if the caller (per its worker) still
// owns it; otherwise ErrBarrierMoved.
func (cs *Consumer) BarrierDone(ctx context.Context, id string) error {
	c := cs.c
	n, err := barrierDoneScript.Run(ctx, c.rdb, []string{c.keys.barrier(cs.target, id, "owner"), c.keys.barrier(cs.target, id, "done")},
		owner(ctx, cs.id)).Int64()
	if err != nil {
		return fmt.Errorf("barrier %s: %w", id, err)
	}
	if n == 0 {
		return ErrBarrierMoved
	}
	return nil
}

// beforeBarrierDone makes sure nothing before a barrier in a partition is
// left unacknowledged: it asks for the flush of what a Holder holds (false:
// wait for it) and sends the worker's waiting cursor moves.
func (cs *Consumer) beforeBarrierDone(ctx context.Context, model string, index int) (bool, error) {
	cs.mu.Lock()
	p := cs.owned[cs.c.keys.stream(model, index)]
	if p == nil {
		cs.mu.Unlock()
		return true, nil // not through a consumer's worker (tests), or lost: the owner's copy decides
	}
	if len(p.held) > 0 {
		p.flushNow = true
		cs.mu.Unlock()
		return false, nil
	}
	acking := p.acking
	cs.mu.Unlock()
	if acking == 0 {
		return true, nil
	}
	if w, ok := ctx.Value(deferKey{}).(int); ok {
		if err := cs.flushPending(ctx, w, false); err != nil {
			return false, fmt.Errorf("acknowledging what comes before barrier: %w", err)
		}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return p.acking == 0, nil
}
