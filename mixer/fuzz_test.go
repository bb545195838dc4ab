package mixer

import (
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

const roundTripSchema = `{"title": "thing", "type": "object", "properties": {
	"i": {"type": ["integer", "null"]},
	"n": {"type": ["number", "null"]},
	"s": {"type": ["string", "null"]},
	"b": {"type": ["boolean", "null"]}}}`

// FuzzReceivePush sends arbitrary JSON records through a receive mixer and a
// push mixer and checks what must hold for any input: no panic; a record is
// either mapped or rejected with a *ValidationError; a mapped field reaches
// its target path with the same value (numbers compared exactly); an absent
// source field stays absent in the target; numbers never carry an exponent.
func FuzzReceivePush(f *testing.F) {
	for _, s := range []string{
		`{"src": {"i": 9007199254740993, "n": 1e+06}, "s": "x", "b": true}`,
		`{"src": {"i": 1.5}}`,
		`{"src": {"i": "12"}, "s": null}`,
		`{"src": {"n": "1234.5"}, "b": "false"}`,
		`{"src": {"i": 1e400}}`,
		`{"s": {"nested": 1}}`,
		`{"src": 3, "b": 0}`,
		`{}`,
	} {
		f.Add(s)
	}
	m := mustModel(f, roundTripSchema)
	recv := NewReceiver()
	recv.Add("loc", recvRule(f, m, "src.i", "i", "src[n]", "n", "s", "s", "b", "b"))
	push := NewPushMixer()
	rule, err := NewPushRule(m, "out", []PushField{
		{Field: "i", Target: MustPath("t.i"), SearchKey: true},
		{Field: "n", Target: MustPath("n")},
		{Field: "s", Target: MustPath("s"), SearchKey: true},
		{Field: "b", Target: MustPath("flags[b]")},
	})
	if err != nil {
		f.Fatal(err)
	}
	push.Add("thing", rule)
	sources := map[string]Path{"i": MustPath("src.i"), "n": MustPath("src.n"), "s": MustPath("s"), "b": MustPath("b")}
	targets := map[string]Path{"i": MustPath("t.i"), "n": MustPath("n"), "s": MustPath("s"), "b": MustPath("flags.b")}

	f.Fuzz(func(t *testing.T, input string) {
		d := json.NewDecoder(strings.NewReader(input))
		d.UseNumber()
		var fields map[string]any
		if d.Decode(&fields) != nil || fields == nil {
			return
		}
		for _, op := range []Op{OpUpsert, OpDelete} {
			res := recv.Receive(&Record{Location: "loc", Op: op, Fields: fields, Complete: true}, nil)
			for _, r := range res {
				if r.Err != nil {
					var ve *ValidationError
					if !errors.As(r.Err, &ve) {
						t.Fatalf("error %v (%T) is not a ValidationError", r.Err, r.Err)
					}
					continue
				}
				checkObject(t, &r.Object, fields, sources)
				for _, pr := range push.Push(&r.Object, nil) {
					if pr.Err != nil {
						if op == OpDelete && errors.Is(pr.Err, ErrNoSearchKey) {
							continue
						}
						t.Fatalf("push: %v", pr.Err)
					}
					checkTarget(t, &r.Object, &pr.Record, targets)
				}
			}
		}
	})
}

func checkObject(t *testing.T, obj *Object, src map[string]any, sources map[string]Path) {
	t.Helper()
	for field, p := range sources {
		sv, present := p.Lookup(src)
		ov, has := obj.Fields[field]
		if present != has {
			t.Fatalf("field %s: present in source %v, in object %v", field, present, has)
		}
		if !has {
			continue
		}
		if n, ok := ov.(json.Number); ok {
			if strings.ContainsAny(string(n), "eE") {
				t.Fatalf("field %s: exponent in %s", field, n)
			}
			if !sameNumber(sv, n) {
				t.Fatalf("field %s: source %v became %s", field, sv, n)
			}
		}
	}
}

func checkTarget(t *testing.T, obj *Object, rec *TargetRecord, targets map[string]Path) {
	t.Helper()
	if rec.Op == OpDelete {
		if rec.Key == nil {
			t.Fatal("delete without key")
		}
		return
	}
	for field, p := range targets {
		ov, has := obj.Fields[field]
		tv, present := p.Lookup(rec.Fields)
		isKey := field == "i" || field == "s"
		if has && ov == nil && isKey {
			has = false // null identities are not written
		}
		if has != present {
			t.Fatalf("field %s: in object %v, in target %v (%#v)", field, has, present, rec.Fields)
		}
		if has && tv != ov {
			t.Fatalf("field %s: object %#v, target %#v", field, ov, tv)
		}
	}
}

// sameNumber compares a source value with a converted number exactly.
func sameNumber(src any, n json.Number) bool {
	var text string
	switch x := src.(type) {
	case json.Number:
		text = string(x)
	case string:
		text = x
	default:
		return true // booleans never become numbers here
	}
	a, ok1 := new(big.Rat).SetString(text)
	b, ok2 := new(big.Rat).SetString(string(n))
	return ok1 && ok2 && a.Cmp(b) == 0
}

func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"0", "1e+06", "-1.5E-3", "9007199254740993", "12.50", "+7", "1e4000", "0.0e0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeNumber(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(string(n), "eE+") {
			t.Fatalf("%q normalized to %q", s, n)
		}
		if !json.Valid([]byte(n)) {
			t.Fatalf("%q normalized to invalid JSON %q", s, n)
		}
		if !sameNumber(strings.TrimPrefix(s, "+"), n) {
			t.Fatalf("%q normalized to a different number %q", s, n)
		}
	})
}

const diffSchema = `{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "diff", "type": "object",
	"additionalProperties": false,
	"properties": {
		"i": {"type": "integer"},
		"in": {"type": ["integer", "null"], "description": "annotated"},
		"n": {"type": "number"},
		"s": {"type": ["string", "null"]},
		"b": {"type": "boolean"},
		"any": {},
		"min": {"type": "number", "minimum": 3},
		"t": {"type": "string", "format": "date-time"},
		"tn": {"type": ["string", "null"], "format": "date-time", "description": "a timestamp"},
		"ie": {"type": "integer", "format": "email"},
		"u": {"format": "uuid"},
		"e": {"enum": ["a", 1, null]},
		"o": {"type": "object"},
		"an": {"type": ["array", "null"]},
		"os": {"type": ["object", "string"], "properties": {"x": {"type": "integer"}}}
	}}`

// FuzzFieldValidation checks that field-by-field validation, with its fast
// path for type-only properties, accepts exactly what the schema library
// accepts for the whole object.
func FuzzFieldValidation(f *testing.F) {
	for _, s := range []string{`{"i": 1, "n": 1.5, "s": null, "b": true}`, `{"i": 1.5}`, `{"i": "1"}`, `{"in": null, "any": {"x": 1}}`,
		`{"min": 2}`, `{"t": "2024-01-02T03:04:05Z"}`, `{"t": "nope"}`, `{"e": 1.0}`, `{"i": 10.000}`, `{"b": 1}`, `{"n": null}`,
		`{"tn": "2024-01-02T03:04:05.5+05:30"}`, `{"tn": null}`, `{"tn": "2024-13-02T03:04:05Z"}`, `{"ie": "x@y"}`, `{"ie": "x'y"}`,
		`{"u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}`, `{"u": 5}`, `{"o": {"a": 1}, "an": [1]}`, `{"o": [], "an": {}}`,
		`{"os": {"x": 1.5}}`, `{"os": "s", "an": null}`, `{"any": [null], "e": "a"}`} {
		f.Add(s)
	}
	m := mustModel(f, diffSchema)
	if !m.perField {
		f.Fatal("the model should validate field by field")
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat = true
	if err := c.AddResource("mem:///diff.json", strings.NewReader(diffSchema)); err != nil {
		f.Fatal(err)
	}
	whole, err := c.Compile("mem:///diff.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input string) {
		d := json.NewDecoder(strings.NewReader(input))
		d.UseNumber()
		var fields map[string]any
		if d.Decode(&fields) != nil || fields == nil {
			return
		}
		for k := range fields {
			if m.Property(k) == nil {
				delete(fields, k) // objects only ever hold model fields
			}
		}
		for k, v := range fields { // and numbers in plain notation
			if n, ok := v.(json.Number); ok {
				nn, err := NormalizeNumber(string(n))
				if err != nil {
					delete(fields, k)
					continue
				}
				fields[k] = nn
			}
		}
		mine := m.Validate(fields, nil)
		lib := whole.Validate(fields)
		if (mine == nil) != (lib == nil) {
			t.Fatalf("fields %v: field validation says %v, library says %v", fields, mine, lib)
		}
		// The same values held as JSON values validate the same.
		asJSON := make(map[string]any, len(fields))
		for k, v := range fields {
			j, err := jsonTextOf(v)
			if err != nil {
				t.Fatal(err)
			}
			asJSON[k] = j
		}
		if got := m.Validate(asJSON, nil); (got == nil) != (mine == nil) {
			t.Fatalf("fields %v: as plain values %v, as JSON values %v", fields, mine, got)
		}
		var ve *ValidationError
		if errors.As(mine, &ve) {
			for _, p := range ve.Fields {
				if strings.Contains(p.Reason, "is not valid") && !strings.Contains(lib.Error(), p.Reason) {
					t.Fatalf("fields %v: %q is not how the library words it: %v", fields, p.Reason, lib)
				}
			}
		}
	})
}

// FuzzJSONColumn sends a JSON column's text through the receive mixer and
// an envelope: the field that maps the column whole holds it byte for byte
// at the end, whatever it holds (duplicate keys, whitespace, JSON null), and
// a path into it reads what encoding/json reads there.
func FuzzJSONColumn(f *testing.F) {
	for _, s := range []string{`{"a": 1, "a": "<dup>"}`, ` null `, `{"a": {"b": [1e2]}}`, `[1, {"a": 2}]`, `"\u003c"`, `{"a": null}`} {
		f.Add(s)
	}
	m := mustModel(f, `{"title": "doc", "properties": {"whole": {}, "a": {}}}`)
	recv := NewReceiver()
	recv.Add("loc", recvRule(f, m, "doc", "whole", "doc.a", "a"))
	f.Fuzz(func(t *testing.T, text string) {
		j, err := ParseJSONText([]byte(text))
		if err != nil {
			return
		}
		res := recv.Receive(&Record{Location: "loc", Op: OpUpsert, Fields: map[string]any{"doc": j}}, nil)
		if len(res) != 1 || res[0].Err != nil {
			t.Fatalf("receive: %+v", res)
		}
		obj := res[0].Object
		decoded, err := j.Decode()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"whole": j}
		if d, ok := decoded.(map[string]any); ok {
			if a, has := d["a"]; has {
				if want["a"], err = ToModel(a, m.Property("a")); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !reflect.DeepEqual(obj.Fields, want) {
			t.Fatalf("object %#v, want %#v", obj.Fields, want)
		}
		enc, err := AppendEnvelope(nil, &Envelope{Object: obj, Source: "s", Location: "loc"})
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeEnvelope(enc)
		if err != nil || !reflect.DeepEqual(back.Fields, obj.Fields) {
			t.Fatalf("envelope %q: %#v, %v", enc, back.Fields, err)
		}
	})
}
