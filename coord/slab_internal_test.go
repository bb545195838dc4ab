package coord

import (
	"bytes"
	"testing"
)

// TestSlabCutsDoNotOverlap: what is appended to one cut, even past its
// capacity, never shows in another; a slab out of room still gives a
// slice; a released buffer large enough is taken again.
func TestSlabCutsDoNotOverlap(t *testing.T) {
	s := &slab{buf: make([]byte, 0, 10)}
	a, b := s.cut(4), s.cut(4)
	a = append(a, "aaaaaa"...) // past its 4: moves, leaves b alone
	b = append(b, "bbbb"...)
	c := s.cut(4) // only 2 left: a slice of its own
	c = append(c, "cccc"...)
	if string(a) != "aaaaaa" || string(b) != "bbbb" || string(c) != "cccc" {
		t.Fatalf("cuts hold %q %q %q", a, b, c)
	}
	if !bytes.Equal(s.buf[4:8], []byte("bbbb")) || bytes.Contains(s.buf, []byte("a")) {
		t.Fatalf("the slab holds %q", s.buf)
	}
	var none *slab
	if d := none.cut(3); cap(d) != 3 {
		t.Fatalf("a nil slab cut %d bytes", cap(d))
	}
	big := takeSlab(1 << 20)
	big.cut(100)
	big.release()
	again := takeSlab(1000) // from the pool, usually: emptied either way
	if len(again.buf) != 0 || cap(again.buf) < 1000 {
		t.Fatalf("a slab taken again holds %d of %d", len(again.buf), cap(again.buf))
	}
	again.release()
}
