package mixer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseJSONText(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{`{"a":1,"a":2}`, ` [1, "<"] `, `null`, `"x"`, `1e400`, `true`} {
		j, err := ParseJSONText([]byte(ok))
		if err != nil || string(j) != ok {
			t.Errorf("ParseJSONText(%q) = %q, %v; want it unchanged", ok, j, err)
		}
	}
	for _, bad := range []string{``, ` `, `{"a":}`, `1 2`, "\"\xff\"", `{"a":1}x`} {
		if j, err := ParseJSONText([]byte(bad)); err == nil {
			t.Errorf("ParseJSONText(%q) = %q, want an error", bad, j)
		}
	}
	kinds := map[JSONText]string{`{}`: "object", ` [1]`: "array", `"s"`: "string", `-1.5`: "number", `false`: "boolean", `null`: "null"}
	for j, want := range kinds {
		if got := j.Kind(); got != want {
			t.Errorf("%q.Kind() = %q, want %q", j, got, want)
		}
	}
	b, err := json.Marshal(map[string]any{"v": JSONText(`{"a": [1, 2]}`)})
	if err != nil || string(b) != `{"v":{"a":[1,2]}}` {
		t.Fatalf("a JSON value inside encoding/json = %s, %v", b, err)
	}
}

func TestToModelJSONValues(t *testing.T) {
	t.Parallel()
	prop := func(types TypeSet) *Property { return &Property{Name: "f", Types: types} }
	doc := JSONText(`{"b": 1, "a": [true, null], "b": "<dup>"}`)
	cases := []struct {
		name string
		in   any
		p    *Property
		want any
		err  string
	}{
		{name: "object to untyped, whole", in: doc, p: prop(0), want: doc},
		{name: "object to object, whole", in: doc, p: prop(TypeObject), want: doc},
		{name: "JSON null stays JSON null", in: JSONText(`null`), p: prop(TypeObject | TypeNull), want: JSONText(`null`)},
		{name: "SQL NULL stays nil", in: nil, p: prop(TypeObject | TypeNull), want: nil},
		{name: "scalar to untyped, whole", in: JSONText(`"text"`), p: prop(0), want: JSONText(`"text"`)},
		{name: "object to string, its text", in: doc, p: prop(TypeString), want: string(doc)},
		{name: "JSON string to string", in: JSONText(`"text"`), p: prop(TypeString), want: "text"},
		{name: "JSON number to integer", in: JSONText(`1e3`), p: prop(TypeInteger), want: json.Number("1000")},
		{name: "JSON null to string", in: JSONText(`null`), p: prop(TypeString | TypeNull), want: nil},
		{name: "object to integer", in: doc, p: prop(TypeInteger), err: "cannot put a JSON object into a model field of type integer"},
		{name: "nested map to object", in: map[string]any{"x": "<", "n": json.Number("1e3")}, p: prop(TypeObject), want: JSONText(`{"n":1e3,"x":"<"}`)},
		{name: "nested array to untyped", in: []any{json.Number("1"), "a"}, p: prop(0), want: JSONText(`[1,"a"]`)},
		{name: "nested map to string", in: map[string]any{"x": "<"}, p: prop(TypeString), want: `{"x":"<"}`},
		{name: "nested map to number", in: map[string]any{"x": 1}, p: prop(TypeNumber), err: "make the field an object"},
		{name: "array to object or array", in: JSONText(`[]`), p: prop(TypeObject | TypeArray), want: JSONText(`[]`)},
	}
	for _, c := range cases {
		got, err := ToModel(c.in, c.p)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: ToModel = %#v, %v; want error containing %q", c.name, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: ToModel = %#v, %v; want %#v", c.name, got, err, c.want)
		}
	}
}

func TestValidateJSONValues(t *testing.T) {
	t.Parallel()
	schema := `{"title": "doc", "properties": {
		"any": {},
		"obj": {"type": "object"},
		"opt": {"type": ["array", "null"]},
		"addr": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
		"code": {"format": "uuid"}}}`
	perField := mustModel(t, schema)
	whole := mustModel(t, strings.Replace(schema, `"title": "doc",`, `"title": "doc", "not": {"required": ["never"]},`, 1))
	if !perField.perField || whole.perField {
		t.Fatal("the test needs one model of each validation path")
	}
	cases := []struct {
		fields map[string]any
		err    string
	}{
		{fields: map[string]any{"any": JSONText(`[1]`), "obj": JSONText(` {"a": 1} `), "opt": JSONText(`null`), "addr": JSONText(`{"city": "Oslo"}`)}},
		{fields: map[string]any{"opt": nil, "code": JSONText(`"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`)}},
		{fields: map[string]any{"obj": JSONText(`[1]`)}, err: "field obj: expected object, but got array"},
		{fields: map[string]any{"obj": JSONText(`null`)}, err: "field obj: expected object, but got null"},
		{fields: map[string]any{"addr": JSONText(`{"town": "Oslo"}`)}, err: "missing properties: 'city'"},
		{fields: map[string]any{"addr": JSONText(`{"city": 5}`)}, err: "expected string, but got number"},
		{fields: map[string]any{"code": JSONText(`"nope"`)}, err: "is not valid 'uuid'"},
	}
	for _, m := range []*Model{perField, whole} {
		for _, c := range cases {
			err := m.Validate(c.fields, nil)
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("perField %v: Validate(%v) = %v, want %q", m.perField, c.fields, err, c.err)
			}
		}
	}
}

// A JSON column maps whole into an object field, and paths into it reach
// its members: decoded for the path, the document itself untouched.
func TestReceiveJSONColumn(t *testing.T) {
	t.Parallel()
	m := mustModel(t, `{"title": "doc", "properties": {"id": {"type": "integer"}, "body": {"type": ["object", "null"]},
		"kind": {"type": ["string", "null"]}, "amount": {"type": ["integer", "null"]}, "tags": {"type": "array"}, "note": {}}}`)
	recv := NewReceiver()
	recv.Add("public.docs", recvRule(t, m, "id", "id", "body", "body", "body.kind", "kind", "body.price.amount", "amount", "body.tags", "tags", "body.note", "note"))
	body := JSONText(`{"kind": "invoice", "tags": ["a", 1e2], "price": {"amount": 1.25e3}, "note": null, "kind": "bill"}`)
	res := recv.Receive(&Record{Location: "public.docs", Op: OpUpsert, Fields: map[string]any{"id": json.Number("7"), "body": body}}, nil)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("receive: %+v", res)
	}
	want := map[string]any{"id": json.Number("7"), "body": body, "kind": "bill", "amount": json.Number("1250"),
		"tags": JSONText(`["a",1e2]`), "note": nil}
	if !reflect.DeepEqual(res[0].Object.Fields, want) {
		t.Fatalf("object = %#v\nwant %#v", res[0].Object.Fields, want)
	}
	// The columns the rules read: paths into a column need the column.
	if got := recv.SourceFields("public.docs"); !reflect.DeepEqual(got, map[string]bool{"id": true, "body": true}) {
		t.Fatalf("SourceFields = %v", got)
	}
	// JSON null in the column is a JSON value; SQL NULL is nil, and a path
	// below it finds nothing.
	for _, c := range []struct {
		body any
		want any
	}{{JSONText(`null`), JSONText(`null`)}, {nil, nil}} {
		res = recv.Receive(&Record{Location: "public.docs", Op: OpUpsert, Fields: map[string]any{"id": json.Number("8"), "body": c.body}}, nil)
		if res[0].Err != nil || !reflect.DeepEqual(res[0].Object.Fields, map[string]any{"id": json.Number("8"), "body": c.want}) {
			t.Fatalf("body %#v: %#v, %v", c.body, res[0].Object.Fields, res[0].Err)
		}
	}
}

func TestEnvelopeCarriesJSONValues(t *testing.T) {
	t.Parallel()
	fields := map[string]any{
		"id":    json.Number("3"),
		"doc":   JSONText(" {\"b\":1, \"a\":[1,\n2], \"b\":\"<&>\"}\t"),
		"jnull": JSONText(`null`),
		"jstr":  JSONText(`"x"`),
		"jnum":  JSONText(`1E+2`),
		"null":  nil,
		"str":   `"x"`,
	}
	e := &Envelope{Object: Object{Model: "doc", Op: OpUpsert, Fields: fields}, Source: "db", Location: "public.docs", Position: "0/1"}
	enc, err := AppendEnvelope(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "envelope_v2.golden")
	if *update {
		_ = os.WriteFile(golden, append(enc, '\n'), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(enc)+"\n" != string(want) {
		t.Fatalf("envelope encoding changed:\n got %s\nwant %s", enc, want)
	}
	if !json.Valid(enc) {
		t.Fatalf("not valid JSON: %s", enc)
	}
	fast, ok := decodeEnvelopeFast(enc, nil)
	if !ok {
		t.Fatal("the fast decoder gave up on a JSON value")
	}
	slow, err := decodeEnvelopeJSON(enc)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]Envelope{"fast": fast, "slow": slow} {
		if !reflect.DeepEqual(got.Fields, fields) {
			t.Errorf("%s decoder:\n got %#v\nwant %#v", name, got.Fields, fields)
		}
	}
	// Without a JSON value the envelope stays version 1, which older
	// builds read; they refuse version 2 rather than misread it.
	plain, _ := AppendEnvelope(nil, &Envelope{Object: Object{Model: "m", Op: OpUpsert, Fields: map[string]any{"a": "b"}}})
	if !strings.HasPrefix(string(plain), `{"v":1,`) || !strings.HasPrefix(string(enc), `{"v":2,`) {
		t.Fatalf("versions: %s / %s", plain, enc)
	}
	for _, bad := range []string{
		`{"v":4,"m":"m","op":"u","f":{},"s":"","l":""}`,
		`{"v":2,"m":"m","op":"u","f":{"a":[]},"s":"","l":""}`,
		`{"v":2,"m":"m","op":"u","f":{"a":[1,2]},"s":"","l":""}`,
	} {
		if e, err := DecodeEnvelope([]byte(bad)); err == nil {
			t.Errorf("DecodeEnvelope(%s) = %#v, want an error", bad, e.Fields)
		}
	}
}

func TestEnvelopeWritesNestedValuesAsJSON(t *testing.T) {
	t.Parallel()
	e := &Envelope{Object: Object{Model: "m", Op: OpUpsert, Fields: map[string]any{"o": map[string]any{"x": "<"}}}}
	enc, err := AppendEnvelope(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeEnvelope(enc)
	if err != nil || !reflect.DeepEqual(back.Fields, map[string]any{"o": JSONText(`{"x":"<"}`)}) {
		t.Fatalf("%s: %#v, %v", enc, back.Fields, err)
	}
	if _, err := AppendEnvelope(nil, &Envelope{Object: Object{Model: "m", Op: OpUpsert, Fields: map[string]any{"o": []any{json.Number("x")}}}}); err == nil {
		t.Fatalf("an invalid number inside a nested value was written: %v", err)
	}
}
