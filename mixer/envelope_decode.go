package mixer

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeEnvelopeFast reads the envelopes AppendEnvelope writes, several
// times faster than encoding/json: every pusher decodes every entry. It
// gives up (ok false) on anything it does not expect, and DecodeEnvelope
// then uses encoding/json, so it never has to be complete. A fuzz test
// checks that it agrees with encoding/json.
func decodeEnvelopeFast(b []byte) (e Envelope, ok bool) {
	d := fastDecoder{b: b}
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
		key, ok := d.str()
		if !ok || !d.byte(':') {
			return e, false
		}
		switch key {
		case "v":
			n, ok := d.int()
			if !ok {
				return e, false
			}
			version = int(n)
		case "m":
			if e.Model, ok = d.str(); !ok {
				return e, false
			}
		case "op":
			if op, ok = d.str(); !ok {
				return e, false
			}
		case "s":
			if e.Source, ok = d.str(); !ok {
				return e, false
			}
		case "l":
			if e.Location, ok = d.str(); !ok {
				return e, false
			}
		case "p":
			if e.Position, ok = d.str(); !ok {
				return e, false
			}
		case "t":
			if micros, ok = d.int(); !ok {
				return e, false
			}
		case "f":
			if e.Fields, ok = d.fields(); !ok {
				return e, false
			}
		default:
			return e, false
		}
	}
	d.space()
	if d.i != len(d.b) || version != envelopeVersion {
		return e, false
	}
	if e.Op, ok = opFromCode(op); !ok {
		return e, false
	}
	if e.Fields == nil {
		e.Fields = map[string]any{}
	}
	if micros != 0 {
		e.CommitTime = time.UnixMicro(micros).UTC()
	}
	return e, true
}

type fastDecoder struct {
	b []byte
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
	text := string(d.b[start:d.i])
	if !plainNumber(text) { // JSON's grammar: no leading zeros, no lone '-'
		return 0, false
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil
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
			s := string(d.b[start:d.i])
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
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", false
					}
					r = utf16.DecodeRune(r, r2)
				} else {
					r = utf8.RuneError
				}
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
func (d *fastDecoder) fields() (map[string]any, bool) {
	if !d.byte('{') {
		return nil, false
	}
	m := make(map[string]any, 8)
	for first := true; ; first = false {
		if d.byte('}') {
			return m, true
		}
		if !first && !d.byte(',') {
			return nil, false
		}
		k, ok := d.str()
		if !ok || !d.byte(':') {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false // encoding/json keeps the last; rare enough to leave to it
		}
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
			n := string(d.b[start:d.i])
			if !plainNumber(n) {
				return nil, false // exponents and odd forms: let encoding/json judge
			}
			m[k] = json.Number(n)
		default:
			return nil, false // nested values: encoding/json
		}
	}
}

func (d *fastDecoder) lit(s string) bool {
	if d.i+len(s) <= len(d.b) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}
