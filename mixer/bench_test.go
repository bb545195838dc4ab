package mixer

import (
	"encoding/json"
	"testing"
)

// BenchmarkReceiveValidatePush is the mapping cost of one PostgreSQL row on
// its way to another PostgreSQL table: receive (conversion and validation
// against the model), push, and rendering each column as PostgreSQL text.
func BenchmarkReceiveValidatePush(b *testing.B) {
	pgRecv, pgPush, _, _ := seedMixers(b)
	row := map[string]any{"id": json.Number("9007199254740993"), "stripe_id": "prod_NWjs8kKbJWmuuc", "product_name": "Gold Plan", "price": json.Number("1000"), "internal_notes": "x"}
	rec := &Record{Location: "public.products", Op: OpUpsert, Fields: row, Complete: true}
	kinds := map[string]ColumnKind{"id": ColInteger, "stripe_id": ColText, "product_name": ColText, "price": ColInteger}
	var res []Result
	var out []PushResult
	b.ReportAllocs()
	for b.Loop() {
		res = pgRecv.Receive(rec, res[:0])
		if res[0].Err != nil {
			b.Fatal(res[0].Err)
		}
		out = pgPush.Push(&res[0].Object, out[:0])
		for col, v := range out[0].Record.Fields {
			if _, _, err := PGText(v, kinds[col]); err != nil {
				b.Fatal(err)
			}
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
		if _, err := FormValues(out[0].Record.Fields); err != nil {
			b.Fatal(err)
		}
	}
}
