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

// Barrier records that partition reached barrier id of a target's consumer
// group, everything before it applied, and says what to do.
func (cs *Consumer) Barrier(ctx context.Context, id string, partition int) (BarrierState, error) {
	c := cs.c
	n, err := barrierScript.Run(ctx, c.rdb,
		[]string{c.keys.barrier(cs.target, id, "arrived"), c.keys.barrier(cs.target, id, "owner"), c.keys.barrier(cs.target, id, "done")},
		partition, c.cfg.Partitions, owner(ctx, cs.id), (3 * c.cfg.LeaseTTL).Milliseconds()).Int64()
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
