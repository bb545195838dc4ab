package mixer

import (
	"encoding/json"
	"testing"
)

// BenchmarkReceiveValidatePush is the mapping cost of one PostgreSQL row on
// its way to another PostgreSQL table: receive (conversion and validation
// against the model) and push. (Rendering the columns as PostgreSQL text is
// the sink's: see connectors/postgres.)
func BenchmarkReceiveValidatePush(b *testing.B) {
	pgRecv, pgPush, _, _ := seedMixers(b)
	row := map[string]any{"id": json.Number("9007199254740993"), "stripe_id": "prod_NWjs8kKbJWmuuc", "product_name": "Gold Plan", "price": json.Number("1000"), "internal_notes": "x"}
	rec := &Record{Location: "public.products", Op: OpUpsert, Fields: row, Complete: true}
	// New maps is every object and record with a map of its own; reused
	// maps hands each object's map back once it is pushed, as the ingest
	// does once it has encoded an object, and each record's once it is
	// written, as a pusher does when its sink lets go of records.
	for _, reuse := range []bool{false, true} {
		name := "new maps"
		if reuse {
			name = "reused maps"
		}
		b.Run(name, func(b *testing.B) {
			var res []Result
			var out []PushResult
			var maps, recMaps *FieldMaps
			if reuse {
				maps, recMaps = &FieldMaps{}, &FieldMaps{}
			}
			b.ReportAllocs()
			for b.Loop() {
				res = pgRecv.ReceiveWith(rec, res[:0], maps)
				if res[0].Err != nil {
					b.Fatal(res[0].Err)
				}
				out = pgPush.PushWith(&res[0].Object, out[:0], recMaps)
				if out[0].Err != nil {
					b.Fatal(out[0].Err)
				}
				maps.Put(res[0].Object.Fields)
				recMaps.Put(out[0].Record.Fields)
			}
		})
	}
}

// BenchmarkReceiveJSON maps a row with a jsonb document carried whole into
// an object field and two fields read through paths into it.
func BenchmarkReceiveJSON(b *testing.B) {
	m := mustModel(b, `{"title": "doc", "properties": {"id": {"type": "integer"}, "body": {"type": ["object", "null"]},
		"kind": {"type": ["string", "null"]}, "amount": {"type": ["integer", "null"]}}}`)
	recv := NewReceiver()
	recv.Add("public.docs", recvRule(b, m, "id", "id", "body", "body", "body.kind", "kind", "body.price.amount", "amount"))
	body, err := ParseJSONText([]byte(`{"kind": "invoice", "tags": ["a", "b"], "price": {"amount": 1250, "currency": "usd"}, "note": "<b>gold</b>"}`))
	if err != nil {
		b.Fatal(err)
	}
	rec := &Record{Location: "public.docs", Op: OpUpsert, Fields: map[string]any{"id": json.Number("7"), "body": body}, Complete: true}
	var res []Result
	b.ReportAllocs()
	for b.Loop() {
		res = recv.Receive(rec, res[:0])
		if res[0].Err != nil {
			b.Fatal(res[0].Err)
		}
	}
}

// BenchmarkReceiveStripe maps the seed's Stripe product object.
func BenchmarkReceiveStripe(b *testing.B) {
	_, _, stripeRecv, stripePush := seedMixers(b)
	rec := &Record{Location: "product", Op: OpUpsert, Fields: decodeJSON(b, stripeProduct), Complete: true}
	var res []Result
	var out []PushResult
	b.ReportAllocs()
	for b.Loop() {
		res = stripeRecv.Receive(rec, res[:0])
		out = stripePush.Push(&res[0].Object, out[:0])
		if out[0].Err != nil {
			b.Fatal(out[0].Err)
		}
	}
}
