package coord

// inflight tracks, for one partition tenure, the entries read and not yet
// acknowledged, in stream order, with how many of each entry's objects are
// still to be applied or dead-lettered. The cursor may only pass an entry
// once it and every entry before it are done: an entry finished early (a
// dead letter diverted ahead of the batch it was read with) waits for the
// ones before it. Only the worker that owns the partition touches it, with
// the consumer's lock held.
type inflight struct {
	left   map[string]int // entry id -> objects still to do; 0 when done
	order  []string       // ids in stream order; order[:head] already passed
	head   int
	cursor string // where the group's cursor stands, as far as this tenure moved it
}

// reset starts over at a cursor, forgetting everything read.
func (f *inflight) reset(cursor string) {
	*f = inflight{cursor: cursor}
}

func (f *inflight) empty() bool { return f.head == len(f.order) }

// track records an entry read, with its number of objects.
func (f *inflight) track(id string, objects int) {
	if f.left == nil {
		f.left = map[string]int{}
	}
	if _, dup := f.left[id]; dup {
		return
	}
	f.left[id] = objects
	f.order = append(f.order, id)
}

// done records one object of an entry as applied or dead-lettered and
// reports whether that finished the entry.
func (f *inflight) done(id string) bool {
	n, ok := f.left[id]
	if !ok || n == 0 {
		return false
	}
	f.left[id] = n - 1
	return n == 1
}

// pending reports how many objects of an entry are still to do.
func (f *inflight) pending(id string) int { return f.left[id] }

// first reports whether id is the oldest entry not yet passed.
func (f *inflight) first(id string) bool { return f.head < len(f.order) && f.order[f.head] == id }

// advance passes every finished entry at the front and returns the new
// cursor and how many entries it passed (0: it stays).
func (f *inflight) advance() (string, int) {
	n := 0
	for f.head < len(f.order) && f.left[f.order[f.head]] == 0 {
		delete(f.left, f.order[f.head])
		f.cursor = f.order[f.head]
		f.head++
		n++
	}
	if f.head > 64 && f.head*2 > len(f.order) {
		f.order = append(f.order[:0], f.order[f.head:]...)
		f.head = 0
	}
	return f.cursor, n
}
