package coord

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// process applies a batch under the policy described on Handler.
func (cs *Consumer) process(ctx context.Context, h Handler, batch []Delivery) error {
	cfg := cs.c.cfg
	attempts := make(map[string]int, len(batch))
	for _, d := range batch {
		attempts[d.ref()] = d.Deliveries
	}
	parked, err := cs.parkedKeys(ctx, batch)
	if err != nil {
		return err
	}
	queue := [][]Delivery{batch}
	var b backoff
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		cur = cs.keepOwned(cur)
		cs.discardHeld(cs.takeDiscards())
		if i := markerIndex(cur); i > 0 { // what comes before the marker goes first
			queue = append([][]Delivery{cur[:i:i], cur[i:]}, queue...)
			continue
		} else if i == 0 {
			if len(cur) > 1 {
				queue = append([][]Delivery{cur[1:]}, queue...)
			}
			if err := cs.replayMarked(ctx, h, cur[0], parked); err != nil {
				return err
			}
			continue
		}
		cur, err := cs.divertParked(ctx, cur, parked)
		if errors.Is(err, ErrDeadLettersFull) {
			cs.noRoom(cur, err)
			if !b.wait(ctx, cfg) {
				return ctx.Err()
			}
			queue = append([][]Delivery{cur}, queue...)
			continue
		}
		if err != nil {
			return err
		}
		if len(cur) == 0 {
			continue
		}
		began := time.Now()
		herr := handle(ctx, h, cur)
		if herr == nil {
			if _, holds := h.(Holder); !holds { // a Holder's writes happen at its flushes
				cs.cost.observe(len(cur), time.Since(began))
			}
			if _, holds := h.(Holder); holds {
				cs.hold(cur) // acknowledged once flushed
			} else if err := cs.ack(ctx, cur); err != nil {
				return err
			}
			cs.unstall(cur)
			b.reset()
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// retry puts cur back in front after a pause.
		retry := func() bool {
			if !b.wait(ctx, cfg) {
				return false
			}
			queue = append([][]Delivery{cur}, queue...)
			return true
		}
		// noRoomYet: cur[0] could not be set aside for lack of room. Its
		// partition waits and is tried again; the entries of the other
		// partitions, in cur and in the queue, go on first.
		noRoomYet := func() bool {
			var others []Delivery
			cur, others = apart(cur[0].stream, append([][]Delivery{cur}, queue...))
			queue = nil
			if len(others) > 0 {
				queue = [][]Delivery{others, cur}
				return true
			}
			return retry()
		}
		// deadLetter sets cur[0] aside; when the queue is full, cur waits.
		deadLetter := func(reason string, attempts int) (bool, error) {
			err := cs.deadLetter(ctx, cur[0], reason, attempts, parked)
			if errors.Is(err, ErrDeadLettersFull) {
				cs.noRoom(cur[:1], err)
				return false, nil
			}
			return err == nil, err
		}
		var item *ItemError
		switch {
		case errors.Is(herr, ErrFenced):
			// The target refused the write: a newer tenure of one of the
			// partitions wrote first, so this pusher stalled past its lease.
			// Renewing finds the lost leases; their entries are dropped (the
			// new owner applies them) and the rest is tried again.
			if err := cs.checkLeases(ctx, cur, herr); err != nil {
				return err
			}
			if !retry() {
				return ctx.Err()
			}
		case errors.Is(herr, ErrUnavailable):
			cs.log.Warn("target unavailable; retrying", "error", herr)
			if !retry() {
				return ctx.Err()
			}
		case errors.As(herr, &item) && errors.Is(herr, ErrDefer) && item.Index >= 0 && item.Index < len(cur):
			var rest []Delivery
			rest, queue = cs.deferFrom(cur, item.Index, queue)
			queue = append([][]Delivery{rest}, queue...)
		case errors.As(herr, &item) && errors.Is(herr, ErrPermanent) && item.Index > 0 && item.Index < len(cur):
			// What comes before the bad entry goes first (it may hold the
			// same key, which must not end up behind it); the bad entry then
			// fails alone and is dead-lettered.
			i := item.Index
			queue = append([][]Delivery{cur[:i:i], cur[i : i+1 : i+1], cur[i+1:]}, queue...)
		case errors.As(herr, &item) && errors.Is(herr, ErrPermanent) && item.Index == 0:
			moved, err := deadLetter(item.Err.Error(), attempts[cur[0].ref()])
			switch {
			case err != nil:
				return err
			case moved:
				queue = append([][]Delivery{cur[1:]}, queue...)
			case !noRoomYet():
				return ctx.Err()
			}
		case errors.Is(herr, ErrPermanent):
			if len(cur) > 1 {
				queue = append(split(cur), queue...)
				continue
			}
			moved, err := deadLetter(herr.Error(), attempts[cur[0].ref()])
			switch {
			case err != nil:
				return err
			case !moved && !noRoomYet():
				return ctx.Err()
			}
		default:
			// Not classified by the target: retried for as long as it
			// takes, never dead-lettered (a sink that forgot to mark an
			// outage must not set good data aside). Past MaxAttempts the
			// partitions are reported as stalled until a write succeeds.
			worst := 0
			for _, d := range cur {
				attempts[d.ref()]++
				worst = max(worst, attempts[d.ref()])
			}
			if worst == cfg.MaxAttempts+1 {
				cs.stall(cur, "writes keep failing: "+herr.Error())
				cs.log.Warn("writes keep failing; the partitions wait and are retried until a write succeeds",
					"target", cs.target, "entries", len(cur), "attempts", worst-1, "error", herr)
			} else {
				cs.log.Debug("batch failed; retrying", "entries", len(cur), "attempt", worst, "error", herr)
			}
			if !retry() {
				return ctx.Err()
			}
		}
	}
	return nil
}

// noRoom reports the partitions of b as waiting for room in the
// dead-letter queue.
func (cs *Consumer) noRoom(b []Delivery, err error) {
	if cs.stall(b, "the dead-letter queue is full: replay or drop dead letters, or raise its limit") {
		cs.log.Error("the dead-letter queue is full: the partitions with a change to set aside wait",
			"target", cs.target, "error", err)
	}
}

// checkLeases renews the leases after a write of batch was refused as
// fenced, so those another pusher took over are dropped (with them, the
// batch's entries read under them: the new owner applies them).
func (cs *Consumer) checkLeases(ctx context.Context, batch []Delivery, fenced error) error {
	if err := cs.renew(ctx, cs.c.cfg.LeaseTTL.Milliseconds()); err != nil {
		return err
	}
	cs.mu.Lock()
	lost := 0
	for _, d := range batch {
		if p := cs.owned[d.stream]; p == nil || p.gen != d.gen {
			lost++
		}
	}
	cs.mu.Unlock()
	if lost > 0 {
		cs.log.Warn("a newer owner of a partition wrote first: this pusher stalled past its lease; the entries are left to the new owner",
			"target", cs.target, "entries", lost)
	} else {
		cs.log.Warn("the target refused a write as fenced, yet the leases are still held; retrying", "target", cs.target, "error", fenced)
	}
	return nil
}

func markerIndex(b []Delivery) int {
	for i := range b {
		if b[i].replay != nil {
			return i
		}
	}
	return -1
}

// replayMarked handles a replay marker: for this target, the key's dead
// letters are replayed now (every earlier entry of the partition is done or
// parked behind them); a marker for another target only needs its
// acknowledgement.
func (cs *Consumer) replayMarked(ctx context.Context, h Handler, d Delivery, parked map[string]bool) error {
	if d.replay.target == cs.target {
		free, err := cs.replayKey(ctx, h, d)
		if errors.Is(err, ErrFenced) {
			return cs.checkLeases(ctx, []Delivery{d}, err) // the marker is the new owner's now
		}
		if err != nil {
			return err
		}
		if free {
			delete(parked, d.replay.model+"|"+d.replay.key)
			cs.log.Info("dead letters replayed; the key flows again", "model", d.replay.model, "key", d.replay.key)
		}
	}
	return cs.ack(ctx, []Delivery{d})
}

// deferPause is how long a deferred partition waits before it is tried again.
const deferPause = 100 * time.Millisecond

// deferFrom holds back cur[i] and every later entry of its partition, in
// cur and in the queued sub-batches, putting them in front of the
// partition's backlog; it returns what remains to apply now.
func (cs *Consumer) deferFrom(cur []Delivery, i int, queue [][]Delivery) ([]Delivery, [][]Delivery) {
	stream := cur[i].stream
	var held, rest []Delivery
	for j, d := range cur {
		if d.stream == stream && j >= i {
			held = append(held, d)
		} else {
			rest = append(rest, d)
		}
	}
	newQueue := make([][]Delivery, 0, len(queue))
	for _, q := range queue {
		var keep []Delivery
		for _, d := range q {
			if d.stream == stream {
				held = append(held, d)
			} else {
				keep = append(keep, d)
			}
		}
		if len(keep) > 0 {
			newQueue = append(newQueue, keep)
		}
	}
	cs.mu.Lock()
	if p := cs.owned[stream]; p != nil && p.gen == cur[i].gen {
		p.backlog = append(held, p.backlog...)
		p.pausedUntil = time.Now().Add(deferPause)
	}
	cs.mu.Unlock()
	return rest, newQueue
}

// apart takes the entries of one partition stream out of batches, in order,
// and returns them and the others, in order.
func apart(stream string, batches [][]Delivery) (of, others []Delivery) {
	for _, b := range batches {
		for _, d := range b {
			if d.stream == stream {
				of = append(of, d)
			} else {
				others = append(others, d)
			}
		}
	}
	return of, others
}

func split(b []Delivery) [][]Delivery {
	m := len(b) / 2
	return [][]Delivery{b[:m:m], b[m:]}
}

// keepOwned drops entries read under a lease tenure that is over, or may
// be: their partition's owner reads them again from its cursor, in order.
// When the tenure is still this consumer's but its validity passed without
// a renewal (the process was frozen, or cut off from Redis, for most of a
// lease), the tenure lapses here: what was read under it is dropped and
// the partition is read again from its cursor, after a renewal, before
// anything newer of it is handled.
func (cs *Consumer) keepOwned(b []Delivery) []Delivery {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := time.Now()
	var out []Delivery // nil while everything so far is kept: b itself is returned, not a copy
	for i := range b {
		d := &b[i]
		p := cs.owned[d.stream]
		keep := p != nil && p.gen == d.gen
		if keep && !now.Before(p.validUntil) {
			cs.lapse(p)
			keep = false
		}
		switch {
		case keep && out != nil:
			out = append(out, *d)
		case !keep && out == nil:
			out = append(make([]Delivery, 0, len(b)-1), b[:i]...)
		}
	}
	if out == nil {
		return b
	}
	return out
}

// lapse ends the local tenure of a partition whose lease validity passed:
// everything read under it is forgotten and the partition is read again
// from its cursor (see fetch). The caller holds cs.mu.
func (cs *Consumer) lapse(p *partition) {
	if len(p.held) > 0 {
		cs.discards = append(cs.discards, PartitionRef{p.model, p.index})
		p.held = nil
	}
	p.gen = cs.gens.Add(1)
	p.resync = true
	p.backlog = nil
	p.pausedUntil = time.Time{}
	p.inflight.reset(p.inflight.cursor)
	cs.lapses.Add(1)
	cs.log.Warn("a partition lease went unrenewed for most of its TTL (this pusher was frozen or cut off); what it read is read again from the cursor",
		"target", cs.target, "model", p.model, "partition", p.index)
}

// handle calls the handler; a panic in it is an error of the batch (split
// until the entry that causes it is dead-lettered), not a crashed pusher
// that would take the entry again and again.
func handle(ctx context.Context, h Handler, b []Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("the handler panicked: %v", r))
		}
	}()
	return h.Handle(ctx, b)
}

// backoff waits exponentially longer between retries.
type backoff struct{ n int }

func (b *backoff) reset() { b.n = 0 }

func (b *backoff) wait(ctx context.Context, cfg Config) bool {
	d := cfg.RetryBackoff << min(b.n, 16)
	if d > cfg.MaxRetryBackoff || d <= 0 {
		d = cfg.MaxRetryBackoff
	}
	b.n++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// takeDiscards returns the partitions whose held records must be dropped
// (their tenure lapsed), and forgets them.
func (cs *Consumer) takeDiscards() []PartitionRef {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	d := cs.discards
	cs.discards = nil
	return d
}
