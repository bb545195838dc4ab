package coord

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

var pid = os.Getpid()

// Delivery is one object of a stream entry, handed to a handler.
type Delivery struct {
	Model     string
	Partition int
	ID        string // the stream entry's id
	Index     int    // the object's place in its entry
	Count     int    // the entry's number of objects
	Key       string // partition key
	// Payload is the object as published. It is shared with the entry it
	// was read from (and with Text): read it, never write it.
	Payload []byte
	// Deliveries is how many times Redis has handed the entry to a consumer,
	// this time included: above 1 after its consumer died mid-batch.
	Deliveries int
	// Fence is the fencing token of the lease tenure the entry was read
	// under; it grows with every tenure of the partition. A sink that keeps
	// the highest token per partition can refuse a write of a pusher that
	// stalled while another took its partition over (see FenceKey).
	Fence  uint64
	stream string
	gen    uint64 // the lease tenure it was read under
	// noneParked says no key of the target was parked when the entry was
	// read, so the batch needs no look at its keys.
	noneParked bool
	replay     *replayMarker // set on replay markers, which handlers never see
}

// Text is Payload as a string, without a copy: the payloads the consumer
// hands out are views of the Redis replies (or of their decompressed
// bodies, or copies of their own), which nothing writes.
func (d *Delivery) Text() string { return unsafe.String(unsafe.SliceData(d.Payload), len(d.Payload)) }

// ref names the object across the consumer.
func (d *Delivery) ref() string { return d.ID + "/" + strconv.Itoa(d.Index) }

// Handler writes a batch to a target, all or nothing: when it returns an
// error, none of the batch may have been applied. Entries come in stream
// order per partition. Errors decide what happens next:
//
//   - nil: the batch is acknowledged;
//   - an *ItemError wrapping ErrPermanent: that entry is dead-lettered and the
//     rest is tried again without it;
//   - ErrPermanent: the batch is split until the bad entries are isolated and
//     dead-lettered;
//   - ErrUnavailable: the batch is retried with backoff for as long as it
//     takes, never dead-lettered;
//   - anything else: retried with backoff for as long as it takes, never
//     dead-lettered (only the target's own classification sets data
//     aside); past MaxAttempts its partitions are reported (Stalled).
//
// When the dead-letter queue is full (ErrDeadLettersFull) what would go
// there waits, reported as stalled too. A handler that is also a Holder may
// keep what it accepted without making it durable: see Holder.
type Handler interface {
	Handle(ctx context.Context, batch []Delivery) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, batch []Delivery) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, batch []Delivery) error { return f(ctx, batch) }

// Consumer reads the streams of some models on behalf of one target system,
// as one member of the target's consumer group. Within the group, each
// partition is owned by one consumer at a time (a lease in Redis), so the
// changes of one key are applied in order however many pushers run.
type Consumer struct {
	c      *Client
	target string
	id     string
	log    *slog.Logger
	all    []*partition // every partition of every model, by stream key order

	mu      sync.Mutex
	owned   map[string]*partition
	stalls  map[string]stalled            // owned partitions that cannot move, by stream
	changed atomic.Pointer[chan struct{}] // closed (and replaced) when ownership changes, or claims are given back
	idle    atomic.Int32                  // workers waiting on changed for something to claim
	// discards are partitions whose held records a Holder must drop.
	discards []PartitionRef
	handler  Handler // what Run was given

	leaseDone chan struct{}
	kick      chan struct{} // a lease round now (see leaseLoop)
	joined    bool          // announced to the target's other consumers
	leaving   bool          // a graceful stop began (under mu)

	gens atomic.Uint64 // lease tenures handed out

	// workers is how many batches this consumer writes at once (see
	// SetWorkers); turn rotates where claims start (see claim).
	workers  int
	turn     int
	batchSeq uint64         // places of partitions in batches so far (see nextBatchSeq)
	pending  [][]cursorMove // by worker: cursor moves waiting for its next read
	// writes are the start times of the batches being written; behind says
	// the last read found more waiting than it took (see fetch).
	writes map[int]time.Time
	behind atomic.Bool
	// cost models the target's writes, to size batches; perEntry is how
	// many objects an entry read lately held (under mu). See batchsize.go.
	cost     writeCost
	perEntry float64
	// entryBytes is the largest entry's body lately; wideReads counts
	// the reads of more than ReadCount entries a partition in flight (under
	// mu). See readSize.
	entryBytes float64
	wideReads  int
	batchTime  time.Duration

	// Counters, for metrics and tests.
	acked, deadLettered, takeovers, trimmed, lapses, superseded atomic.Int64
}

// NewConsumer returns a consumer of the given models' streams for target.
// The consumer name is unique to this process.
func (c *Client) NewConsumer(target string, models []string) *Consumer {
	host, _ := os.Hostname()
	cs := &Consumer{c: c, target: target, id: consumerName(host), log: c.log.With("consumer", target),
		owned: map[string]*partition{}, kick: make(chan struct{}, 1), workers: c.cfg.Workers, batchTime: c.cfg.BatchTime}
	ch := make(chan struct{})
	cs.changed.Store(&ch)
	sorted := append([]string(nil), models...)
	sort.Strings(sorted)
	for _, m := range sorted {
		for p := 0; p < c.cfg.Partitions; p++ {
			cs.all = append(cs.all, &partition{model: m, index: p, stream: c.keys.stream(m, p), lease: c.keys.lease(m, p, target), fence: c.keys.leaseFence(m, p, target), tenureKey: c.keys.tenures(m, p, target)})
		}
	}
	return cs
}

// SetWorkers sets how many batches this consumer writes at once, for its
// target alone (Config.Workers otherwise); call it before Run. Values below
// 1 keep the default, values above 64 are taken as 64.
func (cs *Consumer) SetWorkers(n int) {
	if n >= 1 {
		cs.workers = min(n, 64)
	}
}

// Workers is how many batches this consumer writes at once.
func (cs *Consumer) Workers() int { return cs.workers }

// ID is the consumer's name in its groups.
func (cs *Consumer) ID() string { return cs.id }

// FenceKey names a partition of this consumer's target wherever its
// fencing tokens are kept: namespace, target, model and partition, so two
// fleets or two targets writing to one database never share a fence.
func (cs *Consumer) FenceKey(model string, partition int) string {
	return cs.c.cfg.Namespace + "/" + cs.target + "/" + model + "/" + strconv.Itoa(partition)
}

// Owned returns the stream keys of the partitions this consumer owns.
func (cs *Consumer) Owned() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]string, 0, len(cs.owned))
	for k := range cs.owned {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Stats returns counters: entries acknowledged, dead-lettered, partitions
// taken over, entries trimmed.
func (cs *Consumer) Stats() (acked, deadLettered, takeovers, trimmed int64) {
	return cs.acked.Load(), cs.deadLettered.Load(), cs.takeovers.Load(), cs.trimmed.Load()
}

// Lapses counts tenures this consumer stopped trusting before it could
// renew them (it was frozen or cut off for most of a lease): what it had
// read of those partitions was read again from their cursors.
func (cs *Consumer) Lapses() int64 { return cs.lapses.Load() }

// signal wakes every worker waiting for ownership to change.
func (cs *Consumer) signal() {
	next := make(chan struct{})
	close(*cs.changed.Swap(&next))
}

// Run consumes until ctx ends, handing batches to h. It creates the groups
// it needs, keeps its leases, and on return gives every lease up so other
// consumers take over at once. Entries in flight when ctx ends stay pending
// and are redelivered to the next owner.
func (cs *Consumer) Run(ctx context.Context, h Handler) error {
	cs.handler = h // before the lease loop, which may discard what h holds
	models := map[string]bool{}
	for _, p := range cs.all {
		models[p.model] = true
	}
	for m := range models {
		if err := cs.c.EnsureGroups(ctx, m, []string{cs.target}); err != nil {
			return err
		}
	}
	ps, err := cs.subscribe(ctx)
	if err != nil {
		return err
	}
	leaseCtx, stopLeases := context.WithCancel(ctx)
	cs.leaseDone = make(chan struct{})
	go cs.listen(leaseCtx, ps)
	go cs.leaseLoop(leaseCtx)
	defer func() {
		stopLeases()
		<-cs.leaseDone
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		cs.releaseAll(rctx)
	}()

	// A stop is graceful: the batches being written when ctx ends are
	// finished and acknowledged (within drainTimeout), the partitions no
	// batch is written for are given up at once, and the others as soon as
	// their batches are done, so their new owners wait for one batch at
	// most.
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	dctx, stopDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDrain()
	stopLeave := context.AfterFunc(ctx, func() {
		time.AfterFunc(drainTimeout, stopDrain)
		cs.leave(context.WithoutCancel(ctx))
	})
	defer stopLeave()
	workers := cs.workers
	cs.mu.Lock()
	cs.pending = make([][]cursorMove, workers)
	cs.writes = make(map[int]time.Time, workers)
	cs.mu.Unlock()
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		name := cs.id + "/" + strconv.Itoa(w)
		go func() {
			errc <- cs.work(context.WithValue(wctx, workerKey{}, name), context.WithValue(context.WithValue(dctx, workerKey{}, name), deferKey{}, w), h, w)
		}()
	}
	var first error
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil && first == nil {
			first = err
			stopWorkers()
			stopDrain()
		}
	}
	cs.flushOnStop(ctx)
	return first
}

// drainTimeout bounds how long a stopping consumer finishes the batches it
// is writing.
const drainTimeout = 10 * time.Second

type workerKey struct{}

// Worker names the consumer worker a handler runs in (from the handler's
// context): the owner of barriers it applies.
func Worker(ctx context.Context) string {
	w, _ := ctx.Value(workerKey{}).(string)
	return w
}

// work is one worker's loop over the partitions it claims. It reads while
// ctx lasts; a batch it read is written and acknowledged under dctx, which
// outlives ctx by the drain.
func (cs *Consumer) work(ctx, dctx context.Context, h Handler, w int) error {
	var b backoff
	for ctx.Err() == nil {
		batch, err := cs.fetch(ctx, w)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			cs.log.Warn("reading streams failed", "error", err)
			if !b.wait(ctx, cs.c.cfg) {
				break
			}
			continue
		}
		b.reset()
		if len(batch) > 0 {
			err := cs.process(dctx, h, batch)
			cs.doneWrite(w)
			if err != nil {
				if dctx.Err() != nil {
					break
				}
				return err
			}
		}
		if holder, ok := h.(Holder); ok {
			cs.flushHeld(dctx, holder, w, false)
		}
		if err := cs.flushPending(dctx, w, true); err != nil && dctx.Err() == nil {
			return fmt.Errorf("acknowledging: %w", err)
		}
		cs.releaseIdle(dctx, w)
		cs.unclaim(w, nil)
	}
	if err := cs.flushPending(dctx, w, false); err != nil && dctx.Err() == nil {
		return fmt.Errorf("acknowledging: %w", err)
	}
	cs.releaseIdle(dctx, w)
	cs.unclaim(w, nil)
	return nil
}

// ack records objects as done and moves the cursor of each partition past
// the entries whose objects are all done, in one round trip.
func (cs *Consumer) ack(ctx context.Context, b []Delivery) error {
	var moves []cursorMove
	cs.mu.Lock()
	touched := make(map[*partition]bool, 4)
	var order []*partition
	for i := range b {
		d := &b[i]
		p := cs.owned[d.stream]
		if p == nil || p.gen != d.gen {
			continue // lost or lapsed: read again from the cursor
		}
		p.inflight.done(d.ID)
		if !touched[p] {
			touched[p] = true
			order = append(order, p)
		}
	}
	for _, p := range order {
		if to, n := p.inflight.advance(); n > 0 {
			moves = append(moves, cursorMove{p, to, n})
		}
	}
	if w, ok := ctx.Value(deferKey{}).(int); ok && len(moves) > 0 && !anyReleasing(moves) {
		// Sent with the worker's next read, in its round trip.
		for _, m := range moves {
			m.p.acking++
		}
		cs.pending[w] = append(cs.pending[w], moves...)
		cs.mu.Unlock()
		cs.acked.Add(int64(len(b)))
		return nil
	}
	cs.mu.Unlock()
	if err := cs.moveCursors(ctx, moves); err != nil {
		return fmt.Errorf("acknowledging %d entries: %w", len(b), err)
	}
	cs.acked.Add(int64(len(b)))
	return nil
}

// A worker's acknowledgements wait for its next read and go in the same
// round trip (the cursor moves a read later, which changes nothing but
// saves a round trip per batch), unless a partition is being given up:
// then they go at once, and the partition is released only after.

// deferKey marks a worker's context: acknowledgements made under it may
// wait for the worker's next read.
type deferKey struct{}

func anyReleasing(moves []cursorMove) bool {
	for _, m := range moves {
		if m.p.releasing {
			return true
		}
	}
	return false
}

// takePending returns worker w's waiting cursor moves (all of them, or
// only if one is of a partition being given up) and forgets them. The
// caller holds cs.mu.
func (cs *Consumer) takePending(w int, onlyReleasing bool) []cursorMove {
	if w >= len(cs.pending) {
		return nil // not running under Run
	}
	moves := cs.pending[w]
	if len(moves) == 0 || onlyReleasing && !anyReleasing(moves) {
		return nil
	}
	cs.pending[w] = nil
	return moves
}

// sentPending records that waiting cursor moves were sent (ok) or must
// wait again.
func (cs *Consumer) sentPending(w int, moves []cursorMove, ok bool) {
	if len(moves) == 0 {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !ok {
		cs.pending[w] = append(moves, cs.pending[w]...)
		return
	}
	for _, m := range moves {
		m.p.acking--
	}
}

// flushPending sends worker w's waiting cursor moves now (only if one is
// of a partition being given up, with onlyReleasing).
func (cs *Consumer) flushPending(ctx context.Context, w int, onlyReleasing bool) error {
	cs.mu.Lock()
	moves := cs.takePending(w, onlyReleasing)
	cs.mu.Unlock()
	err := cs.moveCursors(ctx, moves)
	cs.sentPending(w, moves, err == nil)
	return err
}

// Trim trims one partition stream below what every consumer group has
// acknowledged and returns how many entries went. Pushers do this on their
// own every TrimInterval for the partitions they own.
func (c *Client) Trim(ctx context.Context, model string, partition int) (int64, error) {
	return trimScript.Run(ctx, c.rdb, []string{c.keys.stream(model, partition)}).Int64()
}
