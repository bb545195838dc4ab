package postgres

import "math/bits"

// rowState is what a batch does to one row, found by its search key: an
// optional delete, then an optional upsert whose columns merge every upsert
// of the row in the batch (later values win; absent columns stay absent).
type rowState struct {
	loc, keyCol, key string
	del              bool
	up               *rowVals
	// fresh: the row's first upsert in the batch (after its delete, if
	// any) creates it at the source, so it may be copied (copy.go).
	fresh bool
}

// keyedRows are a batch's rows of one location and key column, by key.
// (A batch's rows are found this way rather than in one map keyed by
// location, key column and key: one string to hash a row instead of three,
// and most batches have one location and one key column.)
type keyedRows struct {
	loc, keyCol string
	rows        map[string]*rowState
}

// rowSlab hands out a batch's rowStates and rowVals from a few large
// allocations instead of four small ones a row: planning runs for every
// row of every batch, and a snapshot's batches hold thousands. Each
// allocation holds at most slabRows rows (a batch may mix tables of many
// widths: the next table's rows may be narrower).
type rowSlab struct {
	states []rowState
	vals   []rowVals
	texts  []string
	bits   []uint64
}

const slabRows = 512

// state returns a zeroed rowState; n is how many more the batch may need.
func (sl *rowSlab) state(n int) *rowState {
	if len(sl.states) == 0 {
		sl.states = make([]rowState, min(max(n, 1), slabRows))
	}
	st := &sl.states[0]
	sl.states = sl.states[1:]
	return st
}

// rowVals returns empty rowVals for a table of the given columns; n is how
// many more the batch may need.
func (sl *rowSlab) rowVals(columns, n int) *rowVals {
	n = min(max(n, 1), slabRows)
	w := (columns + 63) / 64
	if len(sl.vals) == 0 {
		sl.vals = make([]rowVals, n)
	}
	if len(sl.texts) < columns {
		sl.texts = make([]string, columns*n)
	}
	if len(sl.bits) < 2*w {
		sl.bits = make([]uint64, 2*w*n)
	}
	v := &sl.vals[0]
	sl.vals = sl.vals[1:]
	v.texts, sl.texts = sl.texts[:columns:columns], sl.texts[columns:]
	v.set, v.null, sl.bits = sl.bits[:w:w], sl.bits[w:2*w:2*w], sl.bits[2*w:]
	return v
}

// rowVals are the column texts of an upsert, by column index: a set bit
// says the column is written, a null bit that it is written as NULL.
// (Slices by index rather than maps by name: this is planned for every row.)
type rowVals struct {
	texts     []string
	set, null []uint64
}

func (v *rowVals) mark(i int, null bool) {
	v.set[i/64] |= 1 << (i % 64)
	if null {
		v.null[i/64] |= 1 << (i % 64)
	} else {
		v.null[i/64] &^= 1 << (i % 64)
	}
}

func (v *rowVals) has(i int) bool { return v.set[i/64]&(1<<(i%64)) != 0 }

// text is column i's text, nil for NULL.
func (v *rowVals) text(i int) *string {
	if v.null[i/64]&(1<<(i%64)) != 0 {
		return nil
	}
	return &v.texts[i]
}

// each calls fn with the index of every written column, in order.
func (v *rowVals) each(fn func(i int)) {
	for w, word := range v.set {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			fn(w*64 + b)
			word &^= 1 << b
		}
	}
}

// merge writes o's columns over v's.
func (v *rowVals) merge(o *rowVals) {
	o.each(func(i int) { v.texts[i] = o.texts[i] })
	for w := range v.set {
		v.null[w] = v.null[w]&^o.set[w] | o.null[w]
		v.set[w] |= o.set[w]
	}
}
