package mixer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Envelope is an object on its way from an ingest to the pushers, with where
// it came from. Its encoding is what the streams store (pinned by a golden
// file); a change to it needs a new version number.
type Envelope struct {
	Object
	Source     string    // the source system
	Location   string    // the location in the source
	Position   string    // the source position of the change (an LSN, an event id)
	CommitTime time.Time // when the source committed the change; zero if unknown
	// Origin is the system where the change was first made, when it is not
	// Source: a change Remix itself wrote into Source on that system's
	// behalf (two-way sync), read back. A pusher never writes a change into
	// the system it came from, so it does not echo.
	Origin string
}

// OriginSystem is where the change was first made: Origin, else Source.
func (e *Envelope) OriginSystem() string {
	if e.Origin != "" {
		return e.Origin
	}
	return e.Source
}

// Envelope versions, written as "v". Version 2 adds JSON values (JSONText),
// version 3 the origin ("o") and the created flag ("c"); an envelope is written with the lowest
// version that holds it, so builds that predate what it does not use read
// it too. A build refuses a version it does not know rather than misread
// it.
const (
	envelopeVersion       = 1
	envelopeVersionJSON   = 2
	envelopeVersionOrigin = 3
)

// wireEnvelope is the JSON form:
//
//	{"v":1,"m":"product","op":"u","f":{"id":3,"name":"Gold"},"s":"prod-db","l":"public.products","p":"0/16B3748","t":1700000000123456}
//	{"v":2,"m":"product","op":"u","f":{"id":3,"attrs":[{"a":1,"a":2}]},"s":"prod-db","l":"public.products"}
//
// op is "u" (upsert), "d" (delete) or "t" (truncate: every object of the model from
// this source location is gone); t is the commit time in microseconds since
// the Unix epoch. A JSON value (JSONText) is written as a one-element array
// around its text, byte for byte: a model field never holds an array
// otherwise, and a JSON string or null stays apart from a plain one.
type wireEnvelope struct {
	V  int                        `json:"v"`
	M  string                     `json:"m"`
	Op string                     `json:"op"`
	F  map[string]json.RawMessage `json:"f"`
	S  string                     `json:"s"`
	L  string                     `json:"l"`
	P  string                     `json:"p,omitempty"`
	T  int64                      `json:"t,omitempty"`
	O  string                     `json:"o,omitempty"`
	C  int                        `json:"c,omitempty"`
}

// OpTruncate says every object of the model that came from the envelope's
// source location is gone (a TRUNCATE of the source table).
const OpTruncate Op = 3

func opCode(o Op) (string, error) {
	switch o {
	case OpUpsert:
		return "u", nil
	case OpDelete:
		return "d", nil
	case OpTruncate:
		return "t", nil
	}
	return "", fmt.Errorf("unknown op %d", o)
}

func opFromCode(c string) (Op, bool) {
	switch c {
	case "u":
		return OpUpsert, true
	case "d":
		return OpDelete, true
	case "t":
		return OpTruncate, true
	}
	return 0, false
}

// AppendEnvelope appends the encoding of e to dst. Field names are sorted,
// numbers written as they are held (exact, no exponent).
func AppendEnvelope(dst []byte, e *Envelope) ([]byte, error) {
	op, err := opCode(e.Op)
	if err != nil {
		return dst, err
	}
	dst = append(dst, `{"v":`...)
	version := len(dst) // one digit, raised to 2 below if a JSON value is written
	dst = strconv.AppendInt(dst, envelopeVersion, 10)
	dst = append(dst, `,"m":`...)
	dst = appendJSONString(dst, e.Model)
	dst = append(dst, `,"op":"`...)
	dst = append(dst, op...)
	dst = append(dst, `","f":{`...)
	// Fields are sorted with their values, so none is looked up again.
	var buf [24]namedValue // models are small: no allocation for the common case
	fields := buf[:0]
	for k, v := range e.Fields {
		fields = append(fields, namedValue{k, v})
	}
	if len(fields) > 1 {
		slices.SortFunc(fields, func(a, b namedValue) int { return strings.Compare(a.name, b.name) })
	}
	for i := range fields {
		k, v := fields[i].name, fields[i].value
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		switch x := v.(type) {
		case map[string]any, []any: // not a model value, but carried as one
			if v, err = jsonTextOf(x); err != nil {
				return dst, fmt.Errorf("field %s: %w", k, err)
			}
		}
		if j, ok := v.(JSONText); ok {
			dst[version] = max(dst[version], '0'+envelopeVersionJSON)
			dst = append(dst, '[')
			dst = append(dst, j...)
			dst = append(dst, ']')
			continue
		}
		if dst, err = appendValue(dst, v); err != nil {
			return dst, fmt.Errorf("field %s: %w", k, err)
		}
	}
	dst = append(dst, `},"s":`...)
	dst = appendJSONString(dst, e.Source)
	dst = append(dst, `,"l":`...)
	dst = appendJSONString(dst, e.Location)
	if e.Position != "" {
		dst = append(dst, `,"p":`...)
		dst = appendJSONString(dst, e.Position)
	}
	if !e.CommitTime.IsZero() {
		dst = append(dst, `,"t":`...)
		dst = strconv.AppendInt(dst, e.CommitTime.UnixMicro(), 10)
	}
	if e.Origin != "" && e.Origin != e.Source {
		dst[version] = '0' + envelopeVersionOrigin
		dst = append(dst, `,"o":`...)
		dst = appendJSONString(dst, e.Origin)
	}
	if e.Created {
		dst[version] = '0' + envelopeVersionOrigin
		dst = append(dst, `,"c":1`...)
	}
	return append(dst, '}'), nil
}

// namedValue is a field with its value, as AppendEnvelope sorts them.
type namedValue struct {
	name  string
	value any
}

func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case json.Number:
		if !plainNumber(string(x)) {
			n, err := NormalizeNumber(string(x))
			if err != nil {
				return dst, err
			}
			x = n
		}
		return append(dst, x...), nil
	case string:
		return appendJSONString(dst, x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and the HTML-sensitive characters encoding/json escapes too.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// DecodeEnvelope reads an encoded envelope.
func DecodeEnvelope(b []byte) (Envelope, error) { return decodeEnvelopeWith(b, nil) }

// decodeEnvelopeWith is DecodeEnvelope with the fields' map taken from
// maps where it has some (see FieldMaps).
func decodeEnvelopeWith(b []byte, maps *FieldMaps) (Envelope, error) {
	if e, ok := decodeEnvelopeFast(b, maps); ok {
		return e, nil
	}
	return decodeEnvelopeJSON(b)
}

// DecodeEnvelopeText is DecodeEnvelope for an envelope held as a string,
// with the fields' map taken from maps where it has some (see FieldMaps):
// the strings of the envelope are cut from s itself, where DecodeEnvelope
// copies its bytes first.
func DecodeEnvelopeText(s string, maps *FieldMaps) (Envelope, error) {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read, never written
	if e, ok := decodeEnvelopeFastText(b, s, maps); ok {
		return e, nil
	}
	return decodeEnvelopeJSON(b)
}

func decodeEnvelopeJSON(b []byte) (Envelope, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var w wireEnvelope
	if err := dec.Decode(&w); err != nil {
		return Envelope{}, fmt.Errorf("decoding envelope: %w", err)
	}
	if w.V < envelopeVersion || w.V > envelopeVersionOrigin {
		return Envelope{}, fmt.Errorf("envelope version %d is not supported (this build reads %d to %d)", w.V, envelopeVersion, envelopeVersionOrigin)
	}
	e := Envelope{Object: Object{Model: w.M, Fields: make(map[string]any, len(w.F)), Created: w.C == 1}, Source: w.S, Location: w.L, Position: w.P, Origin: w.O}
	var ok bool
	if e.Op, ok = opFromCode(w.Op); !ok {
		return Envelope{}, fmt.Errorf("envelope op %q is unknown", w.Op)
	}
	for k, raw := range w.F {
		v, err := decodeFieldJSON(raw)
		if err != nil {
			return Envelope{}, fmt.Errorf("decoding envelope field %s: %w", k, err)
		}
		e.Fields[k] = v
	}
	if w.T != 0 {
		e.CommitTime = time.UnixMicro(w.T).UTC()
	}
	return e, nil
}

// decodeFieldJSON reads one field value of an envelope: a one-element array
// is a JSON value (its text between the brackets, byte for byte), anything
// else a plain value.
func decodeFieldJSON(raw json.RawMessage) (any, error) {
	if len(raw) > 0 && raw[0] == '[' {
		return ParseJSONText(raw[1 : len(raw)-1])
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
