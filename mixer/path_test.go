package mixer

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		segs []string
		err  string
	}{
		{in: "id", segs: []string{"id"}},
		{in: "metadata.id", segs: []string{"metadata", "id"}},
		{in: "metadata[id]", segs: []string{"metadata", "id"}},
		{in: "a.b.c.d", segs: []string{"a", "b", "c", "d"}},
		{in: "a[b][c][d]", segs: []string{"a", "b", "c", "d"}},
		{in: "a[b].c[d]", segs: []string{"a", "b", "c", "d"}},
		{in: "a.b[c].d", segs: []string{"a", "b", "c", "d"}},
		{in: "[a.b]", segs: []string{"a.b"}},
		{in: "attrs[x.y].z", segs: []string{"attrs", "x.y", "z"}},
		{in: "items[0][price]", segs: []string{"items", "0", "price"}},
		{in: "with space", segs: []string{"with space"}},
		{in: "", err: "empty field path"},
		{in: "a..b", err: "empty segment at offset 2"},
		{in: ".a", err: "empty segment at offset 0"},
		{in: "a.", err: "ends with '.'"},
		{in: "a[", err: "'[' at offset 1 is never closed"},
		{in: "a[]", err: "empty brackets at offset 1"},
		{in: "a]b", err: "unexpected ']' at offset 1"},
		{in: "a[b]c", err: "expected '.' or '[' after ']' at offset 4"},
		{in: "a.[b]", err: "'.' followed by '[' at offset 2"},
		{in: "a[b[c]]", err: "'[' inside brackets at offset 1"},
	}
	for _, c := range cases {
		p, err := ParsePath(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParsePath(%q) error = %v, want it to contain %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePath(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(p.Segments(), c.segs) {
			t.Errorf("ParsePath(%q) = %q, want %q", c.in, p.Segments(), c.segs)
		}
		back, err := ParsePath(p.String())
		if err != nil || !back.Equal(p) {
			t.Errorf("ParsePath(%q).String() = %q does not parse back to the same path (%v)", c.in, p.String(), err)
		}
	}
}

func TestPathSpellingsAreEquivalent(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{{"metadata.id", "metadata[id]"}, {"a.b.c", "a[b][c]"}, {"a.b.c", "a[b].c"}} {
		a, b := MustPath(pair[0]), MustPath(pair[1])
		if !a.Equal(b) || a.String() != b.String() || a.FormKey() != b.FormKey() {
			t.Errorf("%q and %q differ: %q/%q, %q/%q", pair[0], pair[1], a, b, a.FormKey(), b.FormKey())
		}
	}
	if got := MustPath("metadata.id").FormKey(); got != "metadata[id]" {
		t.Errorf("FormKey = %q", got)
	}
}

func TestPathLookupAbsentVersusNull(t *testing.T) {
	t.Parallel()
	rec := map[string]any{
		"name":     nil,
		"metadata": map[string]any{"id": "3", "gone": nil},
		"scalar":   "x",
	}
	cases := []struct {
		path    string
		want    any
		present bool
	}{
		{"name", nil, true},
		{"missing", nil, false},
		{"metadata.id", "3", true},
		{"metadata[id]", "3", true},
		{"metadata.gone", nil, true},
		{"metadata.nope", nil, false},
		{"scalar.below", nil, false},
		{"missing.below", nil, false},
	}
	for _, c := range cases {
		v, ok := MustPath(c.path).Lookup(rec)
		if ok != c.present || v != c.want {
			t.Errorf("Lookup(%q) = (%v, %v), want (%v, %v)", c.path, v, ok, c.want, c.present)
		}
	}
}

func TestPathSetNested(t *testing.T) {
	t.Parallel()
	m := map[string]any{}
	for path, v := range map[string]any{"metadata[id]": "3", "metadata.source": "remix", "name": "Gold", "a.b.c": nil} {
		if err := MustPath(path).Set(m, v); err != nil {
			t.Fatalf("Set(%q): %v", path, err)
		}
	}
	want := map[string]any{
		"metadata": map[string]any{"id": "3", "source": "remix"},
		"name":     "Gold",
		"a":        map[string]any{"b": map[string]any{"c": nil}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v\nwant %#v", m, want)
	}
	if err := MustPath("name.first").Set(m, "x"); err == nil {
		t.Error("setting below a scalar succeeded")
	}
	if err := MustPath("metadata").Set(m, "x"); err == nil {
		t.Error("overwriting nested fields with a scalar succeeded")
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"id", "metadata.id", "metadata[id]", "a[b.c].d", "[x]", "a..b", "a[", "]", "a[b]c", "é.ü[ß]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if p.Len() == 0 {
			t.Fatalf("ParsePath(%q) gave an empty path without error", s)
		}
		for _, seg := range p.Segments() {
			if seg == "" {
				t.Fatalf("ParsePath(%q) gave an empty segment", s)
			}
		}
		back, err := ParsePath(p.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", p.String(), s, err)
		}
		if !back.Equal(p) {
			t.Fatalf("canonical form %q of %q parses to %q, want %q", p.String(), s, back.Segments(), p.Segments())
		}
		m := map[string]any{}
		if err := p.Set(m, "v"); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
		if v, ok := p.Lookup(m); !ok || v != "v" {
			t.Fatalf("Lookup after Set(%q) = %v, %v", s, v, ok)
		}
	})
}
