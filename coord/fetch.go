package coord

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// A consumer's workers: how they share the owned partitions (claims), read
// them (fetch) and take turns; the rest of the consumer is in consumer.go.

// Workers share the owned partitions by claims, not by a fixed split: a
// worker claims free partitions up to its share (the owned count over the
// workers, rounded up), reads them, gives back at once those that had
// nothing new, writes the batch, and gives back the rest when the batch is
// acknowledged. A partition is claimed by one worker at a time, so one
// key's changes are still written in order, and every worker of a consumer
// that owns at least as many partitions as it has workers has some to
// write, however the leases fell.

// mine reports whether worker w holds a claim on a partition.
func (cs *Consumer) mine(p *partition, w int) bool { return p.worker == w+1 }

// While the consumer keeps up, one worker reads at a time, and it claims
// every free partition: what arrives while a batch is being written waits
// for that write (up to coalesceFor) and goes out in the next batch,
// instead of a write each. The changes coalesce while a round trip is in
// flight; no batch waits for a timer. Once a read finds more waiting than
// it takes (a partition gave ReadCount entries, or the batch is bigBatch
// objects or more), the consumer is behind: workers claim their shares and
// write side by side.

// coalesceFor bounds how long a write in flight holds the next read back:
// a write that takes longer (a slow or failing target) does not keep the
// other partitions waiting.
const coalesceFor = 20 * time.Millisecond

// bigBatch is the size from which a read counts as finding the consumer
// behind: writes that large gain little from coalescing, and the others
// should not wait for them.
const bigBatch = 64

// holdBack reports how long worker w should wait before reading, 0 for not
// at all: while the consumer keeps up and another batch has been written
// for less than coalesceFor. The caller holds cs.mu.
func (cs *Consumer) holdBack(w int) time.Duration {
	if cs.writes == nil || cs.behind.Load() {
		return 0
	}
	var wait time.Duration
	now := time.Now()
	for v, at := range cs.writes {
		if v != w {
			wait = max(wait, coalesceFor-now.Sub(at))
		}
	}
	return max(wait, 0)
}

// startWrite records that worker w writes a batch now (under Run). The
// caller holds cs.mu.
func (cs *Consumer) startWrite(w int) {
	if cs.writes != nil {
		cs.writes[w] = time.Now()
	}
}

// doneWrite records that worker w's batch is written and wakes a worker
// waiting to read.
func (cs *Consumer) doneWrite(w int) {
	cs.mu.Lock()
	delete(cs.writes, w)
	cs.mu.Unlock()
	if cs.idle.Load() > 0 {
		cs.signal()
	}
}

// claim gives worker w free owned partitions up to its share, or all of
// them while the consumer keeps up. The caller holds cs.mu.
func (cs *Consumer) claim(w int) {
	share := (len(cs.owned) + cs.workers - 1) / cs.workers
	if !cs.behind.Load() {
		share = len(cs.owned)
	}
	have := 0
	for _, p := range cs.owned {
		if p.worker == w+1 {
			have++
		}
	}
	if have >= share {
		return
	}
	n := len(cs.all)
	cs.turn++
	free := make([]*partition, 0, len(cs.owned))
	for i := 0; i < n; i++ {
		q := cs.all[(cs.turn+i)%n]
		if p := cs.owned[q.stream]; p != nil && p.worker == 0 {
			free = append(free, p)
		}
	}
	// The least recently written first (see fetch); the rotation breaks ties.
	slices.SortStableFunc(free, func(a, b *partition) int { return cmp.Compare(a.lastBatch, b.lastBatch) })
	for _, p := range free[:min(len(free), share-have)] {
		p.worker = w + 1
	}
}

// wait sends worker w's waiting cursor moves, then waits up to d for a
// change of ownership or claims, or the end of a write.
func (cs *Consumer) wait(ctx context.Context, w int, d time.Duration) error {
	if err := cs.flushPending(ctx, w, false); err != nil {
		return err
	}
	changed := *cs.changed.Load()
	cs.idle.Add(1)
	defer cs.idle.Add(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-changed:
	case <-t.C:
	}
	return nil
}

// unclaim gives back worker w's claims, all of them (keep nil) or those not
// in keep, except on partitions with held records, which the worker flushes
// first; it wakes a worker that waits for partitions to claim.
func (cs *Consumer) unclaim(w int, keep map[*partition]bool) {
	cs.mu.Lock()
	freed := false
	for _, p := range cs.owned {
		if p.worker == w+1 && !keep[p] && (keep == nil || len(p.held) == 0) {
			p.worker, p.batch = 0, false
			freed = true
		}
	}
	cs.mu.Unlock()
	if freed && cs.idle.Load() > 0 {
		cs.signal()
	}
}

// fetch returns worker w's next batch: held-back entries first, else new
// entries of its owned partitions, waiting up to ReadBlock. A partition
// whose tenure lapsed is first set back to its cursor.
func (cs *Consumer) fetch(ctx context.Context, w int) ([]Delivery, error) {
	cs.mu.Lock()
	if d := cs.holdBack(w); d > 0 {
		cs.mu.Unlock()
		return nil, cs.wait(ctx, w, d)
	}
	cs.claim(w)
	limit := cs.batchLimit()
	var batch []Delivery
	var held, reads, resync []*partition
	paused := false
	now := time.Now()
	for _, p := range cs.owned {
		if p.releasing && !p.midEntry() || !cs.mine(p, w) {
			continue
		}
		if !now.Add(cs.c.cfg.ReadBlock).Before(p.validUntil) {
			continue // the lease may end during the read: let renew decide
		}
		if now.Before(p.pausedUntil) {
			paused = true
			continue
		}
		if p.resync {
			resync = append(resync, p)
			continue
		}
		held = append(held, p)
	}
	if len(resync) > 0 { // before anything is taken from a backlog
		cs.mu.Unlock()
		return nil, cs.rewind(ctx, resync)
	}
	// Least recently written first: a worker whose batch fills before it
	// has taken something of every partition it claimed gives the next
	// turn to the others, so partitions progress alike and none is left
	// for one writer at the end of a backlog.
	slices.SortFunc(held, func(a, b *partition) int { return cmp.Compare(a.lastBatch, b.lastBatch) })
	used := make(map[*partition]bool, len(held))
	maxBytes, size := cs.c.cfg.MaxBatchBytes, 0
	if backlog := heldObjects(held); backlog > 0 { // one allocation, not a doubling per partition
		batch = make([]Delivery, 0, min(backlog, limit))
	}
	for _, p := range held {
		if len(p.backlog) > 0 {
			avail := p.backlog
			if p.releasing { // the rest of the entry begun, and no more
				avail = avail[:entryRun(avail)]
			}
			n, after := fit(avail, limit-len(batch), len(batch), size, maxBytes)
			if n == 0 { // the batch is full: the partition waits, unread
				continue
			}
			size = after
			used[p] = true
			p.lastBatch = cs.nextBatchSeq()
			p.batch = true
			for i := range p.backlog[:n] {
				p.backlog[i].noneParked = false // read before what has been parked since
			}
			batch = append(batch, p.backlog[:n]...)
			p.backlog = p.backlog[n:]
			continue
		}
		reads = append(reads, p)
	}
	if len(batch) > 0 {
		cs.startWrite(w)
		cs.mu.Unlock()
		// What it claimed and takes nothing of goes back at once, for the
		// other workers to write meanwhile.
		if len(used) < len(held) {
			cs.unclaim(w, used)
		}
		return batch, nil
	}
	gens := make(map[string]uint64, len(reads))
	for _, p := range reads {
		gens[p.stream] = p.gen
	}
	cs.mu.Unlock()
	if len(reads) == 0 { // nothing owned or free yet, or all paused: wait
		wait := cs.c.cfg.ReadBlock
		if paused {
			wait = deferPause
		}
		return nil, cs.wait(ctx, w, wait)
	}
	sort.Slice(reads, func(i, j int) bool { return reads[i].stream < reads[j].stream })
	args := make([]string, 2*len(reads))
	for i, p := range reads {
		args[i], args[len(reads)+i] = p.stream, p.next
	}
	cs.mu.Lock()
	count, wide := cs.readSize(limit, len(reads))
	cs.mu.Unlock()
	block := cs.c.cfg.ReadBlock
	if paused { // come back soon for the paused partitions
		block = deferPause
	}
	// The read and a look at the target's parked keys go in one round trip:
	// when none is parked as the read returns, the batch needs no look at
	// its keys (only this consumer parks the keys of its partitions).
	cs.mu.Lock()
	moves := cs.takePending(w, false)
	cs.mu.Unlock()
	pipe := cs.c.rdb.Pipeline()
	moved := make([]*redis.Cmd, len(moves))
	for i, m := range moves {
		moved[i] = advanceScript.Eval(ctx, pipe, []string{m.p.lease, m.p.stream}, cs.advanceArgs(m.to, m.n)...)
	}
	read := pipe.XRead(ctx, &redis.XReadArgs{Streams: args, Count: int64(count), Block: block})
	parkedLen := pipe.HLen(ctx, cs.c.keys.parked(cs.target, stagePush))
	_, _ = pipe.Exec(ctx)
	sent := true
	for i, m := range moved {
		n, err := m.Int64()
		if err != nil {
			sent = false
			break
		}
		if n != 1 {
			cs.log.Warn("the cursor of a partition was not moved: another pusher owns it now", "target", cs.target,
				"model", moves[i].p.model, "partition", moves[i].p.index)
		}
	}
	cs.sentPending(w, moves, sent)
	res, err := read.Result()
	if err != nil {
		cs.mu.Lock()
		cs.endRead(wide, 0, 0, 0)
		cs.mu.Unlock()
		if err == redis.Nil {
			cs.unclaim(w, map[*partition]bool{}) // keeps those with held records, to flush
			return nil, nil
		}
		return nil, err
	}
	// The partitions that had nothing new go back at once, for another
	// worker to read while this one writes. When a read of every free
	// partition (the consumer kept up) brings a large batch, this worker
	// keeps its share of the partitions and holds the others' entries back
	// for the other workers (their backlog, handled before anything newer).
	sharing := !cs.behind.Load()
	full, objects, entries, largest, widest := false, 0, 0, 0, 0
	perStream := make([]int, len(res)) // objects read of each partition
	for i, xs := range res {
		full = full || len(xs.Messages) >= count
		entries += len(xs.Messages)
		for _, m := range xs.Messages {
			inflate(m) // here, not under the consumer's lock below
			body := len(str(m.Values["b"]))
			largest = max(largest, body)
			// What the entry says it holds, no more than its body can (an
			// object takes two bytes at least; appendDeliveries makes an
			// entry whose count is wrong one raw delivery), and the sizing
			// below takes no more than a batch's worth of it.
			n, _ := strconv.Atoi(str(m.Values["n"]))
			n = max(min(n, body/2), 1)
			objects += n
			perStream[i] += n
			widest = max(widest, n)
		}
	}
	behind := full || objects >= bigBatch
	if !sharing || !behind {
		// Nothing spills: one allocation, not a doubling per entry. The
		// entry that fills the batch comes in whole before its rest moves
		// to the backlog, so the batch has room for one entry past the
		// limit.
		batch = slices.Grow(batch, min(objects, limit+min(widest, limit)))
	}
	cs.mu.Lock()
	cs.endRead(wide, objects, entries, largest)
	share := (len(cs.owned) + cs.workers - 1) / cs.workers
	keep := make(map[*partition]bool, len(res))
	// Once the batch is full (objects or bytes), everything after waits in
	// its partition's backlog, so an entry cut in two stays in order.
	capped := false
	size = 0
	for i, xs := range res {
		p := cs.owned[xs.Stream]
		if p == nil || p.gen != gens[xs.Stream] {
			// Lost, or lapsed, meanwhile. Reading consumed nothing: the
			// owner reads these again from the cursor.
			continue
		}
		spill := sharing && behind && len(keep) >= share
		if spill || capped { // all of it waits: one allocation, not a doubling per entry
			p.backlog = slices.Grow(p.backlog, min(perStream[i], limit))
		}
		into := false // some of the partition's entries are in the batch
		for _, m := range xs.Messages {
			deliveries := 1
			if p.tenures > 1 && p.inflight.empty() && p.next == p.inflight.cursor {
				deliveries = p.tenures // the entry right after the cursor
			}
			to := &batch
			if spill || capped {
				to = &p.backlog
			}
			from := len(*to)
			*to = appendDeliveries(*to, p, m, deliveries)
			ds := (*to)[from:]
			if n, err := parkedLen.Result(); err == nil && n == 0 {
				for i := range ds {
					ds[i].noneParked = true
				}
			}
			p.inflight.track(m.ID, len(ds))
			p.next = m.ID
			if to == &batch {
				n, after := fit(ds, limit-from, from, size, maxBytes)
				size, into = after, into || n > 0
				if from+n < len(batch) { // the rest of the entry comes next, first
					p.backlog = append(slices.Grow(p.backlog, min(perStream[i], limit)), batch[from+n:]...)
					batch = batch[:from+n]
					capped = true
				}
				capped = capped || len(batch) >= limit
			}
		}
		p.tenures = 1
		if into {
			// The worker keeps the partition, and with it what it holds
			// back of it for its next batch, so its entries stay in order.
			keep[p] = true
			p.batch = true
			p.lastBatch = cs.nextBatchSeq()
		}
	}
	if len(batch) > 0 {
		cs.startWrite(w) // before the partitions go back: a woken worker sees it
	}
	cs.mu.Unlock()
	cs.behind.Store(behind)
	if len(keep) < len(reads) {
		cs.unclaim(w, keep)
	}
	return batch, nil
}

// heldObjects counts the objects read and held back of some partitions.
func heldObjects(parts []*partition) int {
	n := 0
	for _, p := range parts {
		n += len(p.backlog)
	}
	return n
}

// rewind sets partitions whose tenure lapsed back to their cursors.
func (cs *Consumer) rewind(ctx context.Context, parts []*partition) error {
	for _, p := range parts {
		cursor, err := cs.cursor(ctx, p)
		if err != nil {
			return err
		}
		cs.mu.Lock()
		if cs.owned[p.stream] == p && p.resync {
			p.next, p.resync = cursor, false
			p.inflight.reset(cursor)
		}
		cs.mu.Unlock()
	}
	return nil
}
