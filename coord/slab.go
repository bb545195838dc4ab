package coord

import "sync"

// slab cuts byte slices out of one buffer, for a publish's entry bodies:
// one allocation a publish at most, and none once a buffer large enough is
// kept from an earlier one. A publish's bodies are copies of its objects
// that live until Redis has them, so the buffer goes back (release) when
// the publish returns.
type slab struct {
	buf []byte
}

// slabs keeps released buffers. Each publish holds one or two at a time.
var slabs sync.Pool

// maxKeptSlab bounds the buffers kept: a publish larger than this (a batch
// of large rows) allocates its own, which the garbage collector takes.
const maxKeptSlab = 16 << 20

// takeSlab returns a slab with room for n bytes.
func takeSlab(n int) *slab {
	if s, ok := slabs.Get().(*slab); ok {
		if cap(s.buf) >= n {
			s.buf = s.buf[:0]
			return s
		}
		slabs.Put(s) // too small for this one: kept for a smaller publish
	}
	// A quarter more than asked: publishes of one source are alike in
	// size, and a buffer made to the byte would be too small for the next
	// one a little larger, again and again.
	return &slab{buf: make([]byte, 0, n+n/4)}
}

// cut returns an empty slice with capacity n, from the slab while it has
// room (appends past n reallocate rather than run into the next cut).
func (s *slab) cut(n int) []byte {
	if s == nil || len(s.buf)+n > cap(s.buf) {
		return make([]byte, 0, n)
	}
	start := len(s.buf)
	s.buf = s.buf[:start+n]
	return s.buf[start : start : start+n]
}

// release hands the buffer back: nothing cut from it may be used after.
func (s *slab) release() {
	if cap(s.buf) <= maxKeptSlab {
		slabs.Put(s)
	}
}
