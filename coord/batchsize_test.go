package coord_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
)

// sizes records the size of every batch a handler is given, and lets a
// test make each object cost some time.
type sizes struct {
	*recorder
	perObject time.Duration
	mu        sync.Mutex
	got       []int
	// gate, when set, holds the next batch until it is closed, after
	// saying so on held.
	gate, held chan struct{}
}

func (s *sizes) Handle(ctx context.Context, batch []coord.Delivery) error {
	s.mu.Lock()
	gate, held := s.gate, s.held
	s.gate = nil
	s.mu.Unlock()
	if gate != nil {
		held <- struct{}{}
		<-gate
	}
	s.mu.Lock()
	s.got = append(s.got, len(batch))
	s.mu.Unlock()
	time.Sleep(time.Duration(len(batch)) * s.perObject)
	return s.recorder.Handle(ctx, batch)
}

func (s *sizes) batches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.got...)
}

// publishSeq publishes n objects over keys, payloads numbered in order, in
// publishes of per objects each (one entry per partition each).
func publishSeq(t *testing.T, b *bundle, l *coord.ReaderLock, n, keys, per int) {
	t.Helper()
	publishRange(t, b, l, 0, n, keys, per)
}

// publishRange is publishSeq for payloads numbered from first to end.
func publishRange(t *testing.T, b *bundle, l *coord.ReaderLock, first, end, keys, per int) {
	t.Helper()
	for from := first; from < end; from += per {
		var items []coord.Item
		for i := from; i < min(from+per, end); i++ {
			items = append(items, obj("item", "k"+strconv.Itoa(i%keys), seqPayload(i)))
		}
		b.publish(t, l, items...)
	}
}

// inOrder checks that every key got its payloads once each, in order.
func inOrder(t *testing.T, r *recorder, n, keys int) {
	t.Helper()
	for k := 0; k < keys; k++ {
		got := r.get("k" + strconv.Itoa(k))
		want := 0
		for i := k; i < n; i += keys {
			want++
		}
		if len(got) < want {
			t.Fatalf("key k%d: %d payloads, want %d", k, len(got), want)
		}
		for j := 1; j < len(got); j++ {
			if got[j] <= got[j-1] {
				t.Fatalf("key k%d: payload %s after %s", k, got[j], got[j-1])
			}
		}
	}
}

// TestMaxBatchBoundsWhatAReadBrings: entries of hundreds of objects (a
// snapshot's) are cut into batches of MaxBatch objects at most, the rest of
// an entry going out in the worker's next batch, in order.
func TestMaxBatchBoundsWhatAReadBrings(t *testing.T) {
	t.Parallel()
	const n, keys, max = 3000, 50, 100
	b := setup(t, func(c *coord.Config) { c.Partitions = 2; c.MaxBatch = max; c.Workers = 2 })
	l := b.lock(t, "src")
	publishSeq(t, b, l, n, keys, 600) // entries of about 300 objects
	h := &sizes{recorder: newRecorder()}
	runConsumer(t, b, "dst", h, "item")
	waitFor(t, "every object", 30*time.Second, h.notify, func() bool { return h.count() >= n })
	for _, s := range h.batches() {
		if s > max {
			t.Fatalf("a batch of %d objects; MaxBatch is %d (batches %v)", s, max, h.batches())
		}
	}
	inOrder(t, h.recorder, n, keys)
}

// TestSmallEntriesAreReadManyAtATime: a backlog of entries of one object
// each (publishes of one change, as while a target was away at a steady
// rate) is read more than ReadCount entries a partition at a time once the
// entries are known to be small and the target fast, so a batch holds many
// of them, in order. With ReadCount entries a read, a batch of one worker
// over two partitions held at most 8.
func TestSmallEntriesAreReadManyAtATime(t *testing.T) {
	t.Parallel()
	const n, keys, readCount, block = 400, 40, 4, 10 * time.Millisecond
	b := setup(t, func(c *coord.Config) { c.Partitions = 2; c.Workers = 1; c.ReadCount = readCount; c.ReadBlock = block })
	l := b.lock(t, "src")
	publishSeq(t, b, l, n, keys, 1)
	h := &sizes{recorder: newRecorder()}
	runConsumer(t, b, "dst", h, "item")
	waitFor(t, "every object", 30*time.Second, h.notify, func() bool { return h.count() >= n })
	wideIn := func(batches []int) {
		t.Helper()
		if largest := slices.Max(batches); largest <= 2*readCount {
			t.Fatalf("the largest batch held %d objects, want more than %d (batches %v)", largest, 2*readCount, batches)
		}
	}
	first := h.batches()
	wideIn(first)
	// Reads that find nothing (the consumer is idle for many ReadBlocks)
	// leave the next backlog of small entries read as widely. The backlog
	// gathers while the only worker is held in its first batch.
	time.Sleep(20 * block)
	gate, held := make(chan struct{}), make(chan struct{}, 1)
	h.mu.Lock()
	h.gate, h.held = gate, held
	h.mu.Unlock()
	publishRange(t, b, l, n, n+1, keys, 1)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the first object of the second backlog never reached the handler")
	}
	first = h.batches()
	publishRange(t, b, l, n+1, 2*n, keys, 1)
	close(gate)
	waitFor(t, "every object of the second backlog", 30*time.Second, h.notify, func() bool { return h.count() >= 2*n })
	wideIn(h.batches()[len(first):])
	inOrder(t, h.recorder, 2*n, keys)
}

// byteSizes records the objects and payload bytes of every batch.
type byteSizes struct {
	*recorder
	mu  sync.Mutex
	got [][2]int
}

func (s *byteSizes) Handle(ctx context.Context, batch []coord.Delivery) error {
	size := 0
	for _, d := range batch {
		size += len(d.Payload)
	}
	s.mu.Lock()
	s.got = append(s.got, [2]int{len(batch), size})
	s.mu.Unlock()
	return s.recorder.Handle(ctx, batch)
}

// TestMaxBatchBytesBoundsWideObjects: entries of wide objects are cut by
// payload bytes as well as by objects, the rest of an entry going out next,
// in order; an object larger than the bound goes in a batch of its own.
func TestMaxBatchBytesBoundsWideObjects(t *testing.T) {
	t.Parallel()
	const n, keys, width, most = 600, 20, 1000, 10_000
	b := setup(t, func(c *coord.Config) { c.Partitions = 2; c.MaxBatchBytes = most; c.Workers = 2 })
	l := b.lock(t, "src")
	pad := strings.Repeat("x", width-6)
	for from := 0; from < n; from += 200 { // entries of about 100 objects, 100 KB
		var items []coord.Item
		for i := from; i < from+200; i++ {
			p := seqPayload(i) + pad
			if i == 333 {
				p += strings.Repeat("y", 3*most) // wider than a batch may be
			}
			items = append(items, obj("item", "k"+strconv.Itoa(i%keys), p))
		}
		b.publish(t, l, items...)
	}
	h := &byteSizes{recorder: newRecorder()}
	runConsumer(t, b, "dst", h, "item")
	waitFor(t, "every object", 30*time.Second, h.notify, func() bool { return h.count() >= n })
	h.mu.Lock()
	got := append([][2]int(nil), h.got...)
	h.mu.Unlock()
	alone := false
	for _, g := range got {
		if g[1] > most && g[0] > 1 {
			t.Fatalf("a batch of %d objects and %d bytes; MaxBatchBytes is %d (batches %v)", g[0], g[1], most, got)
		}
		alone = alone || g[1] > most
		if g[0] > most/width {
			t.Fatalf("a batch of %d objects of %d bytes each (batches %v)", g[0], width, got)
		}
	}
	if !alone {
		t.Fatalf("the object wider than MaxBatchBytes never went alone (batches %v)", got)
	}
	inOrder(t, h.recorder, n, keys)
}

// TestBatchesShrinkForASlowTarget: against a target where an object costs
// 2 ms, the first batch is small (nothing is known of the target yet),
// the next ones hold about BatchTime's worth, and every object still
// arrives in order.
func TestBatchesShrinkForASlowTarget(t *testing.T) {
	t.Parallel()
	const n, keys = 1200, 30
	b := setup(t, func(c *coord.Config) { c.Partitions = 2; c.BatchTime = 40 * time.Millisecond; c.Workers = 1 })
	l := b.lock(t, "src")
	publishSeq(t, b, l, n, keys, 40) // entries of about 20
	h := &sizes{recorder: newRecorder(), perObject: 2 * time.Millisecond}
	runConsumer(t, b, "dst", h, "item")
	waitFor(t, "every object", 60*time.Second, h.notify, func() bool { return h.count() >= n })
	got := h.batches()
	t.Logf("batches %v", got)
	if len(got) < 3 {
		t.Fatalf("batches %v: want the first and then smaller ones", got)
	}
	if got[0] > coord.FirstBatch {
		t.Fatalf("a first batch of %d objects before the target was measured; want at most %d (batches %v)", got[0], coord.FirstBatch, got)
	}
	// 40 ms at 2 ms an object is 20; the write's fixed cost (a sleep's
	// overshoot) may take twice its size.
	for i, s := range got[2:] {
		if s > 40 {
			t.Fatalf("batch %d of %d objects after the target was measured (batches %v)", i+2, s, got)
		}
	}
	inOrder(t, h.recorder, n, keys)
}

// TestHandOverFinishesTheEntryBegun: when a pusher joins while batches end
// inside entries (a slow target's batches are smaller than an entry), a
// partition moving over first finishes the entry it began, so the new
// owner does not write its first objects again: every object is applied
// exactly once, in order.
func TestHandOverFinishesTheEntryBegun(t *testing.T) {
	t.Parallel()
	const n, keys = 1600, 40
	b := setup(t, func(c *coord.Config) {
		c.Partitions = 4
		c.BatchTime = 60 * time.Millisecond // about 60 objects
		c.MaxBatch = 150
		c.Workers = 1
		c.LeaseTTL = 3 * time.Second
	})
	l := b.lock(t, "src")
	publishSeq(t, b, l, n, keys, 400) // entries of about 100 objects, 100 ms at 1 ms an object
	first := &sizes{recorder: newRecorder(), perObject: time.Millisecond}
	runConsumer(t, b, "dst", first, "item")
	waitFor(t, "some batches", 30*time.Second, first.notify, func() bool { return len(first.batches()) >= 4 })
	second := &sizes{recorder: first.recorder, perObject: time.Millisecond}
	runConsumer(t, b, "dst", second, "item")
	waitFor(t, "every object", 60*time.Second, first.notify, func() bool { return first.count() >= n })
	if len(second.batches()) == 0 {
		t.Fatalf("the second consumer wrote nothing: no partition moved (first's batches %v)", first.batches())
	}
	split := false
	for _, s := range first.batches() {
		split = split || s%100 != 0
	}
	if !split {
		t.Fatalf("no batch ended inside an entry (batches %v): the test shows nothing", first.batches())
	}
	time.Sleep(200 * time.Millisecond) // anything written twice would be written by now
	if got := first.count(); got != n {
		t.Fatalf("%d objects applied for %d published: some were written twice", got, n)
	}
	inOrder(t, first.recorder, n, keys)
}
