package coord

import (
	"math"
	"sync"
	"time"
)

// A batch is sized to what the target does with it. Two bounds apply:
//
//   - MaxBatch objects and MaxBatchBytes of payload, whatever the target:
//     a batch's objects are in memory until it is acknowledged, and a
//     snapshot's entries pack hundreds of objects each, so reading
//     ReadCount entries of every partition a worker holds could otherwise
//     put tens of thousands of objects in one batch. The byte bound keeps
//     wide rows from multiplying that memory.
//   - About BatchTime of writing, estimated from the target's recent writes:
//     a partition changes hands only between batches, so against a slow
//     target (a row a millisecond: a remote warehouse, an API) a batch of
//     thousands would keep a joining pusher waiting for seconds, and would
//     leave the last partitions of a backlog on one writer while the others
//     have finished.
//
// The estimate is a least-squares line through the recent writes' (objects,
// duration) points: a fixed cost per write plus a cost per object. Sizing by
// the average cost per object alone would shrink batches without end
// against a far-away target, where the fixed cost dominates: smaller
// batches cost the same and look dearer per object. With the line, a
// shrink that did not shorten the write shows a fixed cost, and batches
// grow back. A batch may always take twice the fixed cost, so that cost
// stays at most half of a write.

// costDecay is the weight a write's point keeps at each later write.
const costDecay = 0.9

// minSpread is the least relative spread of the recent batch sizes from
// which the line is fitted: below it the sizes are nearly one, and the
// line is undetermined.
const minSpread = 0.1

// writeCost models how long one target takes to write a batch.
type writeCost struct {
	mu sync.Mutex
	// decayed sums over the recent writes of 1, n, d, n², n·d (n objects,
	// d seconds).
	w, n, d, nn, nd float64
	// fixed is the fixed cost last fitted, in seconds; known says one was.
	fixed float64
	known bool
}

// observe records a write of n objects that took d.
func (c *writeCost) observe(n int, d time.Duration) {
	if n < 1 || d <= 0 {
		return
	}
	x, y := float64(n), d.Seconds()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w = c.w*costDecay + 1
	c.n = c.n*costDecay + x
	c.d = c.d*costDecay + y
	c.nn = c.nn*costDecay + x*x
	c.nd = c.nd*costDecay + x*y
}

// line returns the fixed cost and the cost per object, in seconds; ok is
// false before any write.
func (c *writeCost) line() (fixed, per float64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == 0 || c.n == 0 {
		return 0, 0, false
	}
	if spread := c.w*c.nn - c.n*c.n; spread >= minSpread*minSpread*c.n*c.n {
		per = (c.w*c.nd - c.n*c.d) / spread
		if per < 0 { // noise: the size did not matter
			per = 0
		}
		fixed = (c.d - per*c.n) / c.w
		if fixed < 0 {
			fixed, per = 0, c.d/c.n
		}
		c.fixed, c.known = fixed, true
		return fixed, per, true
	}
	// The recent writes were all about one size: keep the fixed cost last
	// fitted (none: assume none, which errs toward smaller batches, and the
	// next sizes tell) and put the rest of the time on the objects.
	if c.known {
		fixed = min(c.fixed, c.d/c.w)
	}
	return fixed, (c.d - fixed*c.w) / c.n, true
}

// firstBatch is the most objects a batch holds while nothing is known of
// the target's writes. A pusher that has just started (a rolling restart)
// would otherwise write its first batches at the full size: against a
// target that takes a millisecond a row, 2 000 rows are two seconds in
// which no partition of that writer can move. The first write tells the
// cost per object, and the next batches take their size from it.
const firstBatch = 64

// limit returns how many objects a batch should hold to take about budget
// to write, between 1 and most; at most firstBatch while nothing is known,
// and most when the budget is not positive.
func (c *writeCost) limit(budget time.Duration, most int) int {
	if budget <= 0 {
		return most
	}
	fixed, per, ok := c.line()
	if !ok {
		return min(most, firstBatch)
	}
	if per <= 0 {
		return most
	}
	room := max(budget.Seconds()-fixed, fixed)
	n := math.Floor(room / per)
	if n >= float64(most) {
		return most
	}
	return max(int(n), 1)
}

// readCount is how many entries to read from each of streams partitions for
// a batch of up to limit objects, given the objects an entry has held lately
// (perEntry, 0 for not known) and the largest entry's body lately, its
// objects' keys and payloads (entryBytes, 0 for not known): at least 1, and
// at most most (Config.ReadCount), or, while entries are small and the
// target fast (its batches as large as maxBatch allows), at most readEntries
// over all the streams read at once. Entries are small when a publish
// carried a transaction or a few (a backlog gathered at a steady rate while
// a target was away); taking four of those from a partition at a time would
// cost a round trip to Redis for every few rows. A read's memory stays
// bounded by entries that size, and by readEntries large ones where a
// backlog turns from small entries to large (for at most wideReads reads:
// see readSize). A target slow enough for the batch time to size its batches
// keeps most: its batches stay small, and the last ones of a backlog spread
// over the writers (with 64 small entries a read, one pusher's tail grew by
// 1.8 s in the slow-target benchmark).
func readCount(limit, streams int, perEntry, entryBytes float64, most, maxBatch int) int {
	if perEntry <= 0 || streams < 1 {
		return most
	}
	n := math.Ceil(float64(limit) / (perEntry * float64(streams)))
	hi := most
	if entryBytes > 0 && entryBytes <= smallEntry && limit >= maxBatch {
		hi = max(most, readEntries/streams)
	}
	if n >= float64(hi) {
		return hi
	}
	return max(int(n), 1)
}

// readEntries is how many small entries one read may take over all its
// streams; smallEntry is the largest body of a small entry.
const (
	readEntries = 64
	wideReads   = 2 // reads wider than ReadCount in flight at once (see readSize)
	smallEntry  = 16 << 10
)

// SetBatchTime sets about how long a batch should take to write, for this
// consumer's target alone (Config.BatchTime otherwise): 0 keeps the
// default, negative sizes batches by MaxBatch alone. Call it before Run.
func (cs *Consumer) SetBatchTime(d time.Duration) {
	if d != 0 {
		cs.batchTime = d
	}
}

// BatchTime is about how long this consumer's batches should take to
// write; not positive when they are sized by MaxBatch alone.
func (cs *Consumer) BatchTime() time.Duration { return cs.batchTime }

// batchLimit is the most objects worker batches should hold now.
func (cs *Consumer) batchLimit() int {
	return cs.cost.limit(cs.batchTime, cs.c.cfg.MaxBatch)
}

// readSize is how many entries a read of streams partitions takes from
// each (see readCount), and whether that is more than ReadCount. At most
// wideReads such wide reads are in flight at once. A wide read is sized by
// the entries read before it, so where a backlog turns from small entries
// to large, each read already under way takes up to readEntries large ones
// (up to the publish's 1 MiB each); unbounded, that would be readEntries
// for every worker (64 of them at most). With the bound, a consumer's reads
// in flight take at most wideReads × readEntries entries beyond ReadCount a
// partition, and the next read knows the larger size (endRead notes it
// before the read's place is free). Two, not one: with one, a worker
// reading while another did took ReadCount a partition, and a backlog of
// small entries drained at a median 127 000 rows/s against 158 000 without
// a bound (BenchmarkBacklog, one pusher with four writers, six and nine
// runs); with two, one read in five or six finds both places taken, and it
// drains at 142 000–165 000 in most runs. The caller holds cs.mu and calls
// endRead when the read returns.
func (cs *Consumer) readSize(limit, streams int) (count int, wide bool) {
	count = readCount(limit, streams, cs.perEntry, cs.entryBytes, cs.c.cfg.ReadCount, cs.c.cfg.MaxBatch)
	if count <= cs.c.cfg.ReadCount {
		return count, false
	}
	if cs.wideReads >= wideReads {
		return cs.c.cfg.ReadCount, false
	}
	cs.wideReads++
	return count, true
}

// endRead records what a read brought (objects in entries, the largest
// entry's bytes; none when it failed or found nothing) and ends it: a wide
// one lets the next read be wide. The caller holds cs.mu.
func (cs *Consumer) endRead(wide bool, objects, entries, largest int) {
	if entries > 0 {
		cs.notePerEntry(float64(objects)/float64(entries), largest)
	}
	if wide {
		cs.wideReads--
	}
}

// notePerEntry records the objects per entry of a read, averaged with the
// earlier reads' (halving their weight each time). The caller holds cs.mu.
func (cs *Consumer) notePerEntry(x float64, largest int) {
	// The largest entry counts at once and is forgotten by halves.
	cs.entryBytes = max(float64(largest), cs.entryBytes/2)
	if cs.perEntry == 0 {
		cs.perEntry = x
		return
	}
	cs.perEntry = (cs.perEntry + x) / 2
}

// midEntry says the partition's backlog starts inside an entry whose first
// objects went out in an earlier batch (a batch ends at its size, not at an
// entry's end). A partition leaving for another pusher writes the rest of
// that entry first: the new owner would read the entry from its start and
// write those first objects again. The caller holds cs.mu.
func (p *partition) midEntry() bool {
	return len(p.backlog) > 0 && p.backlog[0].Index > 0
}

// fit is how many of ds, in order, a batch can still take: at most room
// objects, and no more payload than brings its size (size bytes, taken
// objects so far) past most bytes, except that an empty batch takes its
// first object whatever its size. It returns the batch's size after them.
func fit(ds []Delivery, room, taken, size, most int) (n, after int) {
	for n < len(ds) && n < room {
		s := size + len(ds[n].Payload)
		if s > most && taken+n > 0 {
			break
		}
		size = s
		n++
	}
	return n, size
}

// entryRun is how many deliveries at the start of ds belong to its first
// entry.
func entryRun(ds []Delivery) int {
	n := 1
	for n < len(ds) && ds[n].ID == ds[0].ID {
		n++
	}
	return n
}

// nextBatchSeq numbers a partition's place in a batch. The caller holds
// cs.mu.
func (cs *Consumer) nextBatchSeq() uint64 {
	cs.batchSeq++
	return cs.batchSeq
}

// canGo reports whether nothing of the partition is left to flush (held
// records), to acknowledge (cursor moves not sent) or to finish (an entry a
// batch began, unless the consumer is leaving), so its lease can be given
// up. A partition being written (batch) waits for that too; callers say
// when it need not.
func (p *partition) canGo(leaving bool) bool {
	return len(p.held) == 0 && p.acking == 0 && (leaving || !p.midEntry())
}
