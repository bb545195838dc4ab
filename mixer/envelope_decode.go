package mixer

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeEnvelopeFast reads the envelopes AppendEnvelope writes, several
// times faster than encoding/json: every pusher decodes every entry. It
// gives up (ok false) on anything it does not expect, and DecodeEnvelope
// then uses encoding/json, so it never has to be complete. A fuzz test
// checks that it agrees with encoding/json.
func decodeEnvelopeFast(b []byte, maps *FieldMaps) (e Envelope, ok bool) {
	// One copy of the whole envelope backs every string it holds (values,
	// numbers, the position): slices of it cost no allocation each.
	return decodeEnvelopeFastText(b, string(b), maps)
}

// decodeEnvelopeFastText decodes s, whose bytes b are (a view of s: read,
// never written).
func decodeEnvelopeFastText(b []byte, s string, maps *FieldMaps) (e Envelope, ok bool) {
	d := fastDecoder{b: b, s: s}
	if !d.byte('{') {
		return e, false
	}
	version := -1
	op := ""
	var micros int64
	for first := true; ; first = false {
		if d.byte('}') {
			break
		}
		if !first && !d.byte(',') {
			return e, false
		}
		key, ok := d.rawStr()
		if !ok || !d.byte(':') {
			return e, false
		}
		switch string(key) {
		case "v":
			n, ok := d.int()
			if !ok {
				return e, false
			}
			version = int(n)
		case "m":
			if e.Model, ok = d.name(placeModel); !ok {
				return e, false
			}
		case "op":
			if op, ok = d.str(); !ok {
				return e, false
			}
		case "s":
			if e.Source, ok = d.name(placeSource); !ok {
				return e, false
			}
		case "l":
			if e.Location, ok = d.name(placeLocation); !ok {
				return e, false
			}
		case "p":
			if e.Position, ok = d.str(); !ok {
				return e, false
			}
		case "o":
			if e.Origin, ok = d.name(placeOrigin); !ok {
				return e, false
			}
		case "c":
			n, ok := d.int()
			if !ok || n != 1 {
				return e, false
			}
			e.Created = true
		case "t":
			if micros, ok = d.int(); !ok {
				return e, false
			}
		case "f":
			if e.Fields, ok = d.fields(maps); !ok {
				return e, false
			}
		default:
			return e, false
		}
	}
	d.space()
	if d.i != len(d.b) || version < envelopeVersion || version > envelopeVersionOrigin {
		return e, false
	}
	if e.Op, ok = opFromCode(op); !ok {
		return e, false
	}
	if e.Fields == nil {
		e.Fields = maps.get(0)
	}
	if micros != 0 {
		e.CommitTime = time.UnixMicro(micros).UTC()
	}
	return e, true
}

type fastDecoder struct {
	b []byte
	s string // b as a string: what the decoded strings are cut from
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDecoder) byte(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *fastDecoder) int() (int64, bool) {
	d.space()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	text := d.b[start:d.i]
	if !plainNumber(string(text)) { // JSON's grammar: no leading zeros, no lone '-'
		return 0, false
	}
	neg := text[0] == '-'
	if neg {
		text = text[1:]
	}
	if len(text) > 18 { // might not fit: let strconv judge
		n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
		return n, err == nil
	}
	var n int64
	for _, c := range text {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// plain finds the JSON string at the read position if it has no escapes
// or control characters: the bytes between its quotes, which alias the
// input, and the position after it. It moves nothing.
func (d *fastDecoder) plain() (s []byte, next int, ok bool) {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, 0, false
	}
	start := d.i + 1
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			return d.b[start:i], i + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// rawStr reads a JSON string without escapes and returns its bytes, which
// alias the input; anything else is left to encoding/json (ok false).
func (d *fastDecoder) rawStr() ([]byte, bool) {
	s, next, ok := d.plain()
	if !ok || !utf8.Valid(s) {
		return nil, false
	}
	d.i = next
	return s, true
}

// The places the envelope's own names are remembered at (see name), apart
// from those of its fields.
const (
	placeModel = 1000 + iota
	placeSource
	placeLocation
	placeOrigin
)

// name reads the name of an object's field at place i. Envelopes of one
// model list the same names in the same order, so the name found at this
// place last time is most often the one here: comparing the bytes with it
// costs less than hashing them to look them up among the interned names.
func (d *fastDecoder) name(i int) (string, bool) {
	b, next, ok := d.plain()
	if !ok {
		return d.str() // escapes, or not a string: the general path judges
	}
	h := uint(i)*0x9e3779b1 + uint(len(b))
	if len(b) > 0 {
		h += uint(b[0])<<8 + uint(b[len(b)-1])<<16
	}
	slot := &recentNames[h%uint(len(recentNames))]
	if p := slot.Load(); p != nil && *p == string(b) {
		d.i = next
		return *p, true
	}
	if !utf8.Valid(b) {
		return "", false
	}
	n := intern(b)
	slot.Store(&n)
	d.i = next
	return n, true
}

// recentNames holds, for each field place (hashed with the name's length
// and end bytes), the name last decoded there. Its names are valid UTF-8.
var recentNames [256]atomic.Pointer[string]

// interned holds the names that recur in every envelope, so that decoding
// does not allocate them again for each object. It is copied on write and
// bounded: names come from configuration and schemas, so it fills once.
var (
	interned   atomic.Pointer[map[string]string]
	internMu   sync.Mutex
	maxInterns = 4096
)

func intern(b []byte) string {
	if m := interned.Load(); m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
	}
	s := string(b)
	if len(s) > 128 {
		return s
	}
	internMu.Lock()
	defer internMu.Unlock()
	old := interned.Load()
	if old != nil && len(*old) >= maxInterns {
		return s
	}
	next := make(map[string]string, 1+len(deref(old)))
	for k, v := range deref(old) {
		next[k] = v
	}
	next[s] = s
	interned.Store(&next)
	return s
}

func deref(m *map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return *m
}

// str reads a JSON string.
func (d *fastDecoder) str() (string, bool) {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.s[start:d.i]
			d.i++
			if !utf8.ValidString(s) {
				return "", false // encoding/json would replace bytes; let it
			}
			return s, true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", false
		}
		d.i++
	}
	return "", false
}

// escaped finishes a string that holds escapes.
func (d *fastDecoder) escaped(start int) (string, bool) {
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return "", false
		}
		d.i += 2
		switch d.b[d.i-1] {
		case '"', '\\', '/':
			out = append(out, d.b[d.i-1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// As encoding/json: a following escape is consumed only if
				// it completes the pair; otherwise this one is U+FFFD and
				// the next escape is read on its own.
				pair := utf8.RuneError
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", false
					}
					if pair = utf16.DecodeRune(r, r2); pair == utf8.RuneError {
						d.i -= 6
					}
				}
				r = pair
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (d *fastDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}

// fields reads the flat object of an envelope's fields.
func (d *fastDecoder) fields(maps *FieldMaps) (map[string]any, bool) {
	if !d.byte('{') {
		return nil, false
	}
	m := maps.get(8)
	for first := true; ; first = false {
		if d.byte('}') {
			return m, true
		}
		if !first && !d.byte(',') {
			return nil, false
		}
		k, ok := d.name(len(m))
		if !ok || !d.byte(':') {
			return nil, false
		}
		had := len(m)
		d.space()
		if d.i >= len(d.b) {
			return nil, false
		}
		switch c := d.b[d.i]; {
		case c == '"':
			s, ok := d.str()
			if !ok {
				return nil, false
			}
			m[k] = s
		case c == 'n' && d.lit("null"):
			m[k] = nil
		case c == 't' && d.lit("true"):
			m[k] = true
		case c == 'f' && d.lit("false"):
			m[k] = false
		case c == '-' || c >= '0' && c <= '9':
			start := d.i
			for d.i < len(d.b) && (d.b[d.i] >= '0' && d.b[d.i] <= '9' || d.b[d.i] == '-' || d.b[d.i] == '.') {
				d.i++
			}
			n := d.s[start:d.i]
			if !plainNumber(n) {
				return nil, false // exponents and odd forms: let encoding/json judge
			}
			m[k] = json.Number(n)
		case c == '[':
			j, ok := d.wrappedJSON()
			if !ok {
				return nil, false
			}
			m[k] = j
		default:
			return nil, false // nested values: encoding/json
		}
		if len(m) == had {
			return nil, false // a repeated name: encoding/json keeps the last; rare enough to leave to it
		}
	}
}

// wrappedJSON reads a JSON value written as a one-element array around its
// text (see wireEnvelope) and returns the text between the brackets. It
// finds the closing bracket by skipping strings and counting brackets, and
// leaves the judgement of the text to ParseJSONText.
func (d *fastDecoder) wrappedJSON() (JSONText, bool) {
	start := d.i + 1
	depth := 0
	for i := d.i; i < len(d.b); i++ {
		switch d.b[i] {
		case '"':
			for i++; i < len(d.b) && d.b[i] != '"'; i++ {
				if d.b[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth == 0 {
				if d.b[i] != ']' {
					return "", false
				}
				j, err := ParseJSONText(d.b[start:i])
				if err != nil {
					return "", false
				}
				d.i = i + 1
				return j, true
			}
		}
	}
	return "", false
}

func (d *fastDecoder) lit(s string) bool {
	if d.i+len(s) <= len(d.b) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}
