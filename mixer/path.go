package mixer

import (
	"fmt"
	"strings"
)

// Path names a field inside a nested record. "metadata.id" and "metadata[id]"
// are the same path; brackets may hold characters a dotted segment cannot, so
// "[a.b]" is the single field "a.b" and "attrs[x.y].z" has segments attrs,
// x.y and z.
type Path struct {
	segs []string
}

// ParsePath parses a dotted or bracketed field path.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return Path{}, fmt.Errorf("empty field path")
	}
	if strings.IndexAny(s, ".[]") < 0 { // the common case: a plain name
		return Path{segs: []string{s}}, nil
	}
	var segs []string
	i := 0
	expectSeg := true // at the start, or just after a '.'
	for i < len(s) {
		switch c := s[i]; c {
		case '[':
			end := strings.IndexByte(s[i+1:], ']')
			if end < 0 {
				return Path{}, fmt.Errorf("field path %q: '[' at offset %d is never closed", s, i)
			}
			seg := s[i+1 : i+1+end]
			if seg == "" {
				return Path{}, fmt.Errorf("field path %q: empty brackets at offset %d", s, i)
			}
			if strings.IndexByte(seg, '[') >= 0 {
				return Path{}, fmt.Errorf("field path %q: '[' inside brackets at offset %d", s, i)
			}
			if expectSeg && len(segs) > 0 {
				return Path{}, fmt.Errorf("field path %q: '.' followed by '[' at offset %d", s, i)
			}
			segs = append(segs, seg)
			i += end + 2
			expectSeg = false
			if i < len(s) && s[i] != '.' && s[i] != '[' {
				return Path{}, fmt.Errorf("field path %q: expected '.' or '[' after ']' at offset %d", s, i)
			}
		case '.':
			if expectSeg {
				return Path{}, fmt.Errorf("field path %q: empty segment at offset %d", s, i)
			}
			expectSeg = true
			i++
			if i == len(s) {
				return Path{}, fmt.Errorf("field path %q: ends with '.'", s)
			}
		case ']':
			return Path{}, fmt.Errorf("field path %q: unexpected ']' at offset %d", s, i)
		default:
			if !expectSeg {
				return Path{}, fmt.Errorf("field path %q: expected '.' or '[' at offset %d", s, i)
			}
			end := strings.IndexAny(s[i:], ".[]")
			if end < 0 {
				end = len(s) - i
			}
			segs = append(segs, s[i:i+end])
			i += end
			expectSeg = false
		}
	}
	return Path{segs: segs}, nil
}

// MustPath is ParsePath for constants in code and tests; it panics on a bad path.
func MustPath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Segments returns the path's field names, outermost first.
func (p Path) Segments() []string { return p.segs }

// Len is the number of segments.
func (p Path) Len() int { return len(p.segs) }

// Head is the outermost field name (the column, for a PostgreSQL record).
func (p Path) Head() string {
	if len(p.segs) == 0 {
		return ""
	}
	return p.segs[0]
}

// IsZero reports whether p is the zero Path.
func (p Path) IsZero() bool { return len(p.segs) == 0 }

// Equal reports whether both paths name the same field.
func (p Path) Equal(q Path) bool {
	if len(p.segs) != len(q.segs) {
		return false
	}
	for i := range p.segs {
		if p.segs[i] != q.segs[i] {
			return false
		}
	}
	return true
}

// String renders the path in its canonical spelling: dotted where every
// segment allows it, bracketed segments otherwise. ParsePath(p.String())
// equals p.
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p.segs {
		if strings.IndexAny(s, ".[]") >= 0 || s == "" {
			b.WriteByte('[')
			b.WriteString(s)
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// FormKey renders the path as a form parameter name: metadata[id].
func (p Path) FormKey() string {
	if len(p.segs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(p.segs[0])
	for _, s := range p.segs[1:] {
		b.WriteByte('[')
		b.WriteString(s)
		b.WriteByte(']')
	}
	return b.String()
}

// Lookup reads the value at p inside m. The boolean is false when the field is
// absent: missing at any level, or below a value that is not an object. A
// present JSON null comes back as (nil, true). A path goes into a JSON value
// (JSONText, a json or jsonb column) as into a nested object; what it finds
// there comes back decoded, a JSON null as nil.
func (p Path) Lookup(m map[string]any) (any, bool) { return p.lookup(m, nil) }

// lookup is Lookup; decoded, when not nil, keeps the top-level JSON values
// decoded so far (by field name), so several paths into one json column
// decode it once.
func (p Path) lookup(m map[string]any, decoded map[string]any) (any, bool) {
	if len(p.segs) == 0 {
		return nil, false
	}
	cur := m
	for i, s := range p.segs {
		v, ok := cur[s]
		if !ok {
			return nil, false
		}
		if i == len(p.segs)-1 {
			return v, true
		}
		if j, isJSON := v.(JSONText); isJSON {
			if d, seen := decoded[s]; seen && i == 0 {
				v = d
			} else {
				d, err := j.Decode()
				if err != nil {
					return nil, false
				}
				if decoded != nil && i == 0 {
					decoded[s] = d
				}
				v = d
			}
		}
		next, isMap := v.(map[string]any)
		if !isMap {
			return nil, false
		}
		cur = next
	}
	return nil, false
}

// Set writes v at p inside m, creating nested objects as needed. It fails when
// a shorter path already holds a non-object value, or when p names an object
// that other paths have filled.
func (p Path) Set(m map[string]any, v any) error {
	if len(p.segs) == 0 {
		return fmt.Errorf("empty field path")
	}
	cur := m
	for i, s := range p.segs[:len(p.segs)-1] {
		next, ok := cur[s]
		if !ok {
			n := map[string]any{}
			cur[s] = n
			cur = n
			continue
		}
		nm, isMap := next.(map[string]any)
		if !isMap {
			return fmt.Errorf("field %s: %s already holds a value that is not an object", p, Path{segs: p.segs[:i+1]})
		}
		cur = nm
	}
	last := p.segs[len(p.segs)-1]
	if old, ok := cur[last].(map[string]any); ok && len(old) > 0 {
		return fmt.Errorf("field %s: already holds nested fields", p)
	}
	cur[last] = v
	return nil
}
