package mixer

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The product model of the seed description, plus a required variant.
const productSchema = `{
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "product",
    "type": "object",
    "properties": {
        "id": {"type": ["number", "null", "string"]},
        "stripe_id": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "price": {"type": ["number", "null"]}
    }
}`

func mustModel(t testing.TB, schema string) *Model {
	t.Helper()
	m, err := CompileModel("mem:///"+t.Name()+".json", []byte(schema))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return m
}

func recvRule(t testing.TB, m *Model, pairs ...string) *ReceiveRule {
	t.Helper()
	var fields []ReceiveField
	for i := 0; i < len(pairs); i += 2 {
		fields = append(fields, ReceiveField{Source: MustPath(pairs[i]), Field: pairs[i+1]})
	}
	r, err := NewReceiveRule(m, fields)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// seedMixers builds the seed's prod-db and payment-gateway mixers.
func seedMixers(t testing.TB) (pgRecv *Receiver, pgPush *PushMixer, stripeRecv *Receiver, stripePush *PushMixer) {
	m := mustModel(t, productSchema)
	pgRecv = NewReceiver()
	pgRecv.Add("public.products", recvRule(t, m, "id", "id", "stripe_id", "stripe_id", "product_name", "name", "price", "price"))
	pgPush = NewPushMixer()
	r, err := NewPushRule(m, "public.products", []PushField{
		{Field: "id", Target: MustPath("id"), SearchKey: true},
		{Field: "stripe_id", Target: MustPath("stripe_id"), SearchKey: true},
		{Field: "name", Target: MustPath("product_name")},
		{Field: "price", Target: MustPath("price")},
	})
	if err != nil {
		t.Fatal(err)
	}
	pgPush.Add("product", r)

	stripeRecv = NewReceiver()
	stripeRecv.Add("product", recvRule(t, m, "id", "stripe_id", "name", "name", "metadata.id", "id"))
	stripeRecv.Add("price", recvRule(t, m, "product", "stripe_id", "unit_amount", "price"))
	stripePush = NewPushMixer()
	r, err = NewPushRule(m, "products", []PushField{
		{Field: "id", Target: MustPath("metadata[id]")},
		{Field: "stripe_id", Target: MustPath("id"), SearchKey: true},
		{Field: "name", Target: MustPath("name")},
	})
	if err != nil {
		t.Fatal(err)
	}
	stripePush.Add("product", r)
	return
}

func decodeJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The seed's Stripe product object.
const stripeProduct = `{
  "id": "prod_NWjs8kKbJWmuuc", "object": "product", "active": true, "created": 1678833149,
  "default_price": "price_1MoBy5LkdIwHu7ixZhnattbh", "description": null, "images": [],
  "marketing_features": [], "livemode": false, "metadata": {"id": 3}, "name": "Gold Plan",
  "package_dimensions": null, "shippable": null, "statement_descriptor": null, "tax_code": null,
  "unit_label": null, "updated": 1678833149, "url": null
}`

const stripePrice = `{
  "id": "price_1MoBy5LkdIwHu7ixZhnattbh", "object": "price", "active": true, "currency": "usd",
  "product": "prod_NWjs8kKbJWmuuc", "unit_amount": 1000, "unit_amount_decimal": "1000", "type": "one_time"
}`

func TestSeedStripeToPostgres(t *testing.T) {
	t.Parallel()
	_, pgPush, stripeRecv, _ := seedMixers(t)

	// A product webhook makes a product object: id=metadata.id, name, stripe_id=id.
	res := stripeRecv.Receive(&Record{Location: "product", Op: OpUpsert, Fields: decodeJSON(t, stripeProduct), Complete: true}, nil)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("receive product: %+v", res)
	}
	want := map[string]any{"id": json.Number("3"), "name": "Gold Plan", "stripe_id": "prod_NWjs8kKbJWmuuc"}
	if !reflect.DeepEqual(res[0].Object.Fields, want) {
		t.Fatalf("product object = %#v, want %#v", res[0].Object.Fields, want)
	}
	// Pushed to PostgreSQL it upserts by id (the first search key with a value)
	// and renames name to product_name; price is absent, so it is not written.
	out := pgPush.Push(&res[0].Object, nil)
	if len(out) != 1 || out[0].Err != nil {
		t.Fatalf("push: %+v", out)
	}
	rec := out[0].Record
	if rec.Key == nil || rec.Key.Field != "id" || rec.Key.Value != json.Number("3") {
		t.Fatalf("search key = %+v, want id=3", rec.Key)
	}
	wantRow := map[string]any{"id": json.Number("3"), "stripe_id": "prod_NWjs8kKbJWmuuc", "product_name": "Gold Plan"}
	if !reflect.DeepEqual(rec.Fields, wantRow) {
		t.Fatalf("row = %#v, want %#v", rec.Fields, wantRow)
	}

	// A price webhook makes a product object with stripe_id and price only:
	// the name is absent, not null, and the row is found by stripe_id.
	res = stripeRecv.Receive(&Record{Location: "price", Op: OpUpsert, Fields: decodeJSON(t, stripePrice), Complete: true}, nil)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("receive price: %+v", res)
	}
	want = map[string]any{"stripe_id": "prod_NWjs8kKbJWmuuc", "price": json.Number("1000")}
	if !reflect.DeepEqual(res[0].Object.Fields, want) {
		t.Fatalf("price object = %#v, want %#v", res[0].Object.Fields, want)
	}
	out = pgPush.Push(&res[0].Object, nil)
	rec = out[0].Record
	if out[0].Err != nil || rec.Key == nil || rec.Key.Field != "stripe_id" {
		t.Fatalf("price push: %+v", out[0])
	}
	if _, has := rec.Fields["product_name"]; has {
		t.Fatalf("absent name was written: %#v", rec.Fields)
	}
	if !reflect.DeepEqual(rec.Fields, map[string]any{"stripe_id": "prod_NWjs8kKbJWmuuc", "price": json.Number("1000")}) {
		t.Fatalf("price row = %#v", rec.Fields)
	}
}

func TestSeedPostgresToStripe(t *testing.T) {
	t.Parallel()
	pgRecv, _, _, stripePush := seedMixers(t)
	row := map[string]any{"id": json.Number("3"), "stripe_id": nil, "product_name": "Gold Plan", "price": json.Number("1000"), "internal_notes": "never read"}
	res := pgRecv.Receive(&Record{Location: "public.products", Op: OpUpsert, Fields: row, Complete: true}, nil)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("receive: %+v", res)
	}
	if _, leaked := res[0].Object.Fields["internal_notes"]; leaked || len(res[0].Object.Fields) != 4 {
		t.Fatalf("object = %#v", res[0].Object.Fields)
	}
	out := stripePush.Push(&res[0].Object, nil)
	rec := out[0].Record
	// stripe_id is null: no search key has a value, so this creates; the null
	// identity is not sent; metadata[id] carries the database id.
	if out[0].Err != nil || rec.Key != nil {
		t.Fatalf("push = %+v", out[0])
	}
	if want := map[string]any{"metadata": map[string]any{"id": json.Number("3")}, "name": "Gold Plan"}; !reflect.DeepEqual(rec.Fields, want) {
		t.Fatalf("record = %#v", rec.Fields)
	}
	// Once Stripe's id has flowed back, the same row updates by it.
	row["stripe_id"] = "prod_NWjs8kKbJWmuuc"
	res = pgRecv.Receive(&Record{Location: "public.products", Op: OpUpsert, Fields: row, Complete: true}, nil)
	out = stripePush.Push(&res[0].Object, nil)
	if k := out[0].Record.Key; k == nil || k.Target.String() != "id" || k.Value != "prod_NWjs8kKbJWmuuc" {
		t.Fatalf("key = %+v", k)
	}
}

func TestAbsentNullAndUnchangedToast(t *testing.T) {
	t.Parallel()
	pgRecv, pgPush, _, _ := seedMixers(t)
	// An update whose TOASTed product_name did not change: the column is
	// absent from the record, and must stay absent through to the target.
	res := pgRecv.Receive(&Record{Location: "public.products", Op: OpUpsert, Fields: map[string]any{"id": json.Number("1"), "stripe_id": nil, "price": nil}}, nil)
	obj := res[0].Object
	if _, has := obj.Get("name"); has {
		t.Fatalf("absent field became present: %#v", obj.Fields)
	}
	if v, has := obj.Get("price"); !has || v != nil {
		t.Fatalf("null price = %v, %v", v, has)
	}
	out := pgPush.Push(&obj, nil)
	if _, has := out[0].Record.Fields["product_name"]; has {
		t.Fatal("absent name written to target")
	}
	if v, has := out[0].Record.Fields["price"]; !has || v != nil {
		t.Fatal("explicit null price not written as null")
	}
}

func TestSearchKeyOrder(t *testing.T) {
	t.Parallel()
	_, pgPush, _, _ := seedMixers(t)
	cases := []struct {
		fields map[string]any
		key    string
	}{
		{map[string]any{"id": json.Number("1"), "stripe_id": "p"}, "id"},
		{map[string]any{"id": nil, "stripe_id": "p"}, "stripe_id"},
		{map[string]any{"stripe_id": "p"}, "stripe_id"},
		{map[string]any{"id": nil, "stripe_id": nil, "name": "x"}, ""},
	}
	for _, c := range cases {
		out := pgPush.Push(&Object{Model: "product", Op: OpUpsert, Fields: c.fields}, nil)
		got := ""
		if k := out[0].Record.Key; k != nil {
			got = k.Field
		}
		if got != c.key || out[0].Err != nil {
			t.Errorf("fields %v: key %q (err %v), want %q", c.fields, got, out[0].Err, c.key)
		}
	}
}

func TestDeletes(t *testing.T) {
	t.Parallel()
	pgRecv, pgPush, _, stripePush := seedMixers(t)
	// A delete with the default replica identity carries the primary key only.
	res := pgRecv.Receive(&Record{Location: "public.products", Op: OpDelete, Fields: map[string]any{"id": json.Number("9007199254740993")}}, nil)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("receive delete: %+v", res)
	}
	if !reflect.DeepEqual(res[0].Object.Fields, map[string]any{"id": json.Number("9007199254740993")}) || res[0].Object.Op != OpDelete {
		t.Fatalf("delete object = %+v", res[0].Object)
	}
	out := pgPush.Push(&res[0].Object, nil)
	if out[0].Err != nil || out[0].Record.Op != OpDelete || out[0].Record.Key.Value != json.Number("9007199254740993") {
		t.Fatalf("delete push = %+v", out[0])
	}
	if !reflect.DeepEqual(out[0].Record.Fields, map[string]any{"id": json.Number("9007199254740993")}) {
		t.Fatalf("delete record = %#v", out[0].Record.Fields)
	}
	// Stripe finds products by stripe_id only: a delete without it is a bad record.
	out = stripePush.Push(&res[0].Object, nil)
	if !errors.Is(out[0].Err, ErrNoSearchKey) {
		t.Fatalf("delete without stripe_id: err = %v", out[0].Err)
	}
	// A delete that carries no mapped field at all cannot be mapped.
	res = pgRecv.Receive(&Record{Location: "public.products", Op: OpDelete, Fields: map[string]any{"other": json.Number("1")}}, nil)
	if len(res) != 1 || res[0].Err == nil {
		t.Fatalf("empty delete: %+v", res)
	}
}

func TestValidationErrorsNameTheField(t *testing.T) {
	t.Parallel()
	m := mustModel(t, `{"title": "account", "type": "object", "required": ["email"],
		"properties": {
			"id": {"type": "integer", "minimum": 1},
			"email": {"type": "string", "format": "email"},
			"tier": {"enum": ["free", "pro"]},
			"seen": {"type": ["string", "null"], "format": "date-time"}
		}}`)
	recv := NewReceiver()
	recv.Add("public.accounts", recvRule(t, m, "id", "id", "email", "email", "tier", "tier", "seen_at", "seen"))
	cases := []struct {
		name     string
		fields   map[string]any
		complete bool
		want     []string
	}{
		{name: "valid", fields: map[string]any{"id": json.Number("1"), "email": "a@b.co", "tier": "pro", "seen_at": "2024-01-02T03:04:05Z"}, complete: true},
		{name: "below minimum", fields: map[string]any{"id": json.Number("0"), "email": "a@b.co"}, complete: true, want: []string{"field id: must be >= 1 but found 0"}},
		{name: "fraction into integer", fields: map[string]any{"id": json.Number("1.5")}, want: []string{"field id: from id: cannot convert 1.5 to integer without losing its fraction"}},
		{name: "bad format and enum", fields: map[string]any{"id": json.Number("2"), "email": "nope", "tier": "gold"}, complete: true, want: []string{"field email:", "is not valid 'email'", "field tier:"}},
		{name: "required absent in a complete row", fields: map[string]any{"id": json.Number("2")}, complete: true, want: []string{"field email: required by the model but absent"}},
		{name: "required absent in a partial row is fine", fields: map[string]any{"id": json.Number("2")}},
		{name: "required absent and a bad value, in field order", fields: map[string]any{"seen_at": "yesterday", "id": json.Number("2")}, complete: true,
			want: []string{"field email: required by the model but absent; field seen:"}},
		{name: "bad date-time", fields: map[string]any{"id": json.Number("2"), "email": "a@b.co", "seen_at": "yesterday"}, complete: true, want: []string{"field seen:", "date-time"}},
	}
	for _, c := range cases {
		res := recv.Receive(&Record{Location: "public.accounts", Op: OpUpsert, Fields: c.fields, Complete: c.complete}, nil)
		if len(res) != 1 {
			t.Fatalf("%s: %d results", c.name, len(res))
		}
		if len(c.want) == 0 {
			if res[0].Err != nil {
				t.Errorf("%s: unexpected error %v", c.name, res[0].Err)
			}
			continue
		}
		if res[0].Err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		var ve *ValidationError
		if !errors.As(res[0].Err, &ve) {
			t.Errorf("%s: error %T is not a *ValidationError", c.name, res[0].Err)
		}
		for _, w := range c.want {
			if !strings.Contains(res[0].Err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, res[0].Err, w)
			}
		}
	}
}

func TestHardcode(t *testing.T) {
	t.Parallel()
	m := mustModel(t, `{"title": "price", "type": "object", "properties": {
		"id": {"type": "string"}, "amount": {"type": "integer"}, "currency": {"type": "string"}, "source": {"type": "string"}}}`)
	recv := NewReceiver()
	r, err := NewReceiveRule(m, []ReceiveField{
		{Source: MustPath("id"), Field: "id"},
		{Source: MustPath("cents"), Field: "amount"},
		{Field: "source", Hardcode: "billing-db", HasHardcode: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	recv.Add("public.prices", r)
	res := recv.Receive(&Record{Location: "public.prices", Op: OpUpsert, Fields: map[string]any{"id": "p1", "cents": json.Number("500")}}, nil)
	if res[0].Err != nil || res[0].Object.Fields["source"] != "billing-db" {
		t.Fatalf("receive hardcode: %+v", res[0])
	}
	push := NewPushMixer()
	pr, err := NewPushRule(m, "prices", []PushField{
		{Field: "id", Target: MustPath("id"), SearchKey: true},
		{Field: "amount", Target: MustPath("unit_amount")},
		{Field: "currency", Target: MustPath("currency"), Hardcode: "usd", HasHardcode: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	push.Add("price", pr)
	out := push.Push(&res[0].Object, nil)
	if got := out[0].Record.Fields; !reflect.DeepEqual(got, map[string]any{"id": "p1", "unit_amount": json.Number("500"), "currency": "usd"}) {
		t.Fatalf("push hardcode: %#v", got)
	}
	if _, err := NewReceiveRule(m, []ReceiveField{{Field: "amount", Hardcode: "many", HasHardcode: true}}); err == nil {
		t.Error("a hardcoded string accepted for an integer field")
	}
	if _, err := NewPushRule(m, "prices", []PushField{{Field: "id", Target: MustPath("id"), SearchKey: true, Hardcode: "x", HasHardcode: true}}); err == nil {
		t.Error("a hardcoded search key accepted")
	}
}

func TestPushRuleChecks(t *testing.T) {
	t.Parallel()
	m := mustModel(t, productSchema)
	cases := []struct {
		fields []PushField
		err    string
	}{
		{[]PushField{{Field: "name", Target: MustPath("name")}}, "has no search key"},
		{[]PushField{{Field: "nope", Target: MustPath("x"), SearchKey: true}}, `has no field "nope"`},
		{[]PushField{{Field: "id", Target: MustPath("x"), SearchKey: true}, {Field: "name", Target: MustPath("x")}}, "is written by both"},
		{[]PushField{{Field: "id", Target: MustPath("meta"), SearchKey: true}, {Field: "name", Target: MustPath("meta.name")}}, "holds a value and also nested field"},
	}
	for _, c := range cases {
		if _, err := NewPushRule(m, "loc", c.fields); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("NewPushRule(%+v) = %v, want %q", c.fields, err, c.err)
		}
	}
}

func TestCompileModelErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		schema, ptr, msg string
	}{
		{`{"type": "object"}`, "", `missing "title"`},
		{`{"title": "", "type": "object"}`, "/title", "non-empty string"},
		{`{"title": "x", "type": "array"}`, "/type", "must be an object schema"},
		{`{"title": "x", "properties": {"a": {"type": "strin"}}}`, "/properties/a/type", "not a valid JSON Schema"},
		{`{"title": "x", "required": ["b"], "properties": {"a": {}}}`, "/required/0", `"b" is not among`},
		{`{"title": "x", "properties": {"a": {"$ref": "other.json"}}}`, "", "may only reference its own definitions"},
		{`[1]`, "", "must be a JSON object"},
		{`{"title": "x"} {}`, "", "more than one value"},
	}
	for _, c := range cases {
		_, err := CompileModel("mem:///x.json", []byte(c.schema))
		var me *ModelError
		if !errors.As(err, &me) {
			t.Errorf("%s: error %v is not a *ModelError", c.schema, err)
			continue
		}
		if me.Pointer != c.ptr || !strings.Contains(me.Msg, c.msg) {
			t.Errorf("%s: got (%q, %q), want (%q, ~%q)", c.schema, me.Pointer, me.Msg, c.ptr, c.msg)
		}
	}
	m := mustModel(t, `{"title": "x", "$defs": {"money": {"type": ["integer", "null"]}}, "properties": {"amount": {"$ref": "#/$defs/money"}, "b": {"type": "string"}}}`)
	if p := m.Property("amount"); p == nil || p.Types != TypeInteger|TypeNull {
		t.Fatalf("$ref property = %+v", p)
	}
	if !reflect.DeepEqual(m.Fields(), []string{"amount", "b"}) {
		t.Fatalf("field order = %v", m.Fields())
	}
}
