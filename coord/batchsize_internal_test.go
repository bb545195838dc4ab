package coord

import (
	"testing"
	"time"
)

// TestBatchLimitFollowsTheTarget: batches shrink to the budget against a
// target that is slow per object, stay whole against a fast one, and grow
// back against one whose cost is fixed per write.
func TestBatchLimitFollowsTheTarget(t *testing.T) {
	t.Parallel()
	const budget, most = 250 * time.Millisecond, 5000
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

	var none writeCost
	if got := none.limit(budget, most); got != firstBatch {
		t.Fatalf("nothing known: limit %d, want %d", got, firstBatch)
	}
	if got := none.limit(-1, most); got != most {
		t.Fatalf("nothing known, sizing off: limit %d, want %d", got, most)
	}
	var small writeCost // the first batch tells the cost: 1 ms an object
	small.observe(firstBatch, ms(firstBatch))
	if got := small.limit(budget, most); got < 240 || got > 250 {
		t.Fatalf("after a first batch of %d at 1 ms an object: limit %d, want about 250", firstBatch, got)
	}
	var quick writeCost // 20 µs an object
	quick.observe(firstBatch, ms(0.02*firstBatch))
	if got := quick.limit(budget, most); got != most {
		t.Fatalf("after a first batch of %d at 20 µs an object: limit %d, want %d", firstBatch, got, most)
	}

	var slow writeCost // 2 ms an object, 1 ms a write
	slow.observe(1250, ms(1+2*1250))
	if got := slow.limit(budget, most); got < 110 || got > 125 {
		t.Fatalf("slow target after one write: limit %d, want about 125", got)
	}
	for _, n := range []int{124, 120, 125, 60, 125} {
		slow.observe(n, ms(1+2*float64(n)))
	}
	if got := slow.limit(budget, most); got < 120 || got > 125 {
		t.Fatalf("slow target after several writes: limit %d, want about 124", got)
	}
	if got := slow.limit(-1, most); got != most {
		t.Fatalf("sizing off: limit %d, want %d", got, most)
	}

	var fast writeCost // 8 µs an object
	fast.observe(5000, ms(2+0.008*5000))
	if got := fast.limit(budget, most); got != most {
		t.Fatalf("fast target: limit %d, want %d", got, most)
	}

	var far writeCost // 300 ms a write, 10 µs an object
	far.observe(5000, ms(300+0.01*5000))
	first := far.limit(budget, most)
	if first >= most {
		t.Fatalf("far target, one write known: limit %d, want below %d (the fixed cost is not known yet)", first, most)
	}
	far.observe(first, ms(300+0.01*float64(first)))
	if got := far.limit(budget, most); got != most {
		t.Fatalf("far target, two sizes known: limit %d, want %d (the writes cost the same)", got, most)
	}
	for range 60 { // the sizes stay the same long enough to forget the line
		far.observe(most, ms(300+0.01*most))
	}
	if got := far.limit(budget, most); got != most {
		t.Fatalf("far target, one size lately: limit %d, want %d (the fixed cost is remembered)", got, most)
	}

	var heavy writeCost // 300 ms a write and 2 ms an object: twice the fixed cost
	heavy.observe(1000, ms(300+2*1000))
	heavy.observe(500, ms(300+2*500))
	if got := heavy.limit(budget, most); got < 140 || got > 150 {
		t.Fatalf("a fixed cost above the budget: limit %d, want about 150 (a batch takes twice the fixed cost)", got)
	}
}

// TestReadCountFollowsEntrySize: a read takes fewer entries of each
// partition when entries are large, never fewer than one.
func TestReadCountFollowsEntrySize(t *testing.T) {
	t.Parallel()
	const big = 200 << 10 // a snapshot's entry
	for _, c := range []struct {
		limit, streams       int
		perEntry, entryBytes float64
		want                 int
	}{
		{5000, 8, 0, 0, 4},            // nothing known yet
		{5000, 8, 625, big, 1},        // a snapshot's entries
		{5000, 16, 1, big, 4},         // small on average, but a large one lately
		{5000, 16, 1, 0, 4},           // entry sizes not known
		{5000, 16, 1, 300, 4},         // a trickle read from every partition: 64 entries in all
		{5000, 4, 1, 300, 16},         // from a worker's share of four
		{2000, 1, 40, 300, 50},        // the batch, not the cap
		{120, 1, 2, 300, 4},           // a slow target: batches sized by time keep ReadCount
		{1999, 4, 1, 300, 4},          // just below MaxBatch: as slow
		{5000, 1, 1, 300, 64},         // one partition: capped at readEntries
		{5000, 4, 500, big, 3},        // 2.5 entries a partition
		{10, 16, 300, big, 1},         // a slow target's large entries
		{5000, 0, 100, 300, 4},        // no streams
		{100, 1, 40.5, big, 3},        // rounded up
		{100000, 1, 1, big, 4},        // capped by ReadCount
		{100000, 1, 1, 16 << 10, 64},  // the largest small entry
		{100000, 1, 1, 16<<10 + 1, 4}, // too large to read more
		{5000, 2, 1, 0, 4},            // sizes not known, from two partitions: not widened
		{5000, 100, 1, 300, 4},        // more partitions than readEntries: ReadCount, never 0
	} {
		if got := readCount(c.limit, c.streams, c.perEntry, c.entryBytes, 4, 2000); got != c.want {
			t.Errorf("readCount(%d, %d, %v, %v, 4, 2000) = %d, want %d", c.limit, c.streams, c.perEntry, c.entryBytes, got, c.want)
		}
	}
}

// TestWideReadsAreBounded: a read wider than ReadCount a partition is sized
// by the entries read before it; while wideReads are in flight the others
// take ReadCount, and a large entry one brought keeps the next reads narrow
// until the size is forgotten by halves.
func TestWideReadsAreBounded(t *testing.T) {
	t.Parallel()
	cs := &Consumer{c: &Client{cfg: Config{ReadCount: 4, MaxBatch: 2000}}}
	read := func(streams int) (int, bool) { return cs.readSize(2000, streams) }
	if n, wide := read(2); n != 4 || wide {
		t.Fatalf("nothing known yet: %d entries, wide %v; want 4, narrow", n, wide)
	}
	cs.endRead(false, 10, 10, 300) // ten entries of one object
	for i := range wideReads {
		if n, wide := read(2); n != 32 || !wide {
			t.Fatalf("small entries, read %d: %d entries a partition, wide %v; want 32, wide", i, n, wide)
		}
	}
	if n, w := read(2); n != 4 || w {
		t.Fatalf("a read while %d wide ones are in flight: %d, wide %v; want 4, narrow", wideReads, n, w)
	}
	cs.endRead(false, 8, 8, 300) // the narrow one returns: the wide ones are still out
	if n, w := read(2); n != 4 || w {
		t.Fatalf("after a narrow read returned: %d, wide %v; want 4, narrow", n, w)
	}
	cs.endRead(false, 8, 8, 300)
	for range wideReads - 1 {
		cs.endRead(true, 40, 40, 300)
	}
	cs.endRead(true, 40, 40, 256<<10)        // the last wide one brought a large entry
	for i, want := range []int{4, 4, 4, 4} { // the largest lately: 256, 128, 64, 32 KiB
		n, w := read(2)
		if n != want || w {
			t.Fatalf("read %d after a 256 KiB entry: %d, wide %v; want %d, narrow", i, n, w, want)
		}
		cs.endRead(w, 2, 2, 300)
	}
	if n, w := read(2); n != 32 || !w {
		t.Fatalf("once the large entry is forgotten: %d, wide %v; want 32, wide", n, w)
	}
	cs.endRead(true, 0, 0, 0) // a wide read that failed or found nothing
	if n, w := read(2); n != 32 || !w {
		t.Fatalf("after a wide read that found nothing: %d, wide %v; want 32, wide", n, w)
	}
}

func TestFitBoundsObjectsAndBytes(t *testing.T) {
	t.Parallel()
	ds := func(sizes ...int) []Delivery {
		out := make([]Delivery, len(sizes))
		for i, s := range sizes {
			out[i].Payload = make([]byte, s)
		}
		return out
	}
	for _, c := range []struct {
		name                    string
		ds                      []Delivery
		room, taken, size, most int
		n, after                int
	}{
		{"all fit", ds(10, 10, 10), 5, 0, 0, 100, 3, 30},
		{"objects bind", ds(10, 10, 10), 2, 0, 0, 100, 2, 20},
		{"bytes bind", ds(40, 40, 40), 5, 0, 0, 100, 2, 80},
		{"exactly the bound", ds(50, 50), 5, 0, 0, 100, 2, 100},
		{"a wide first object goes alone", ds(500, 10), 5, 0, 0, 100, 1, 500},
		{"a wide object waits for a batch of its own", ds(500), 5, 3, 30, 100, 0, 30},
		{"an empty batch of empty payloads", ds(0, 0), 5, 0, 0, 1, 2, 0},
		{"no room", ds(1), 0, 7, 7, 100, 0, 7},
	} {
		n, after := fit(c.ds, c.room, c.taken, c.size, c.most)
		if n != c.n || after != c.after {
			t.Errorf("%s: fit = %d, %d; want %d, %d", c.name, n, after, c.n, c.after)
		}
	}
}
