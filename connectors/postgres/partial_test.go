package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// TestPartialRecordUpdatesTheRowThatExists: a record that leaves out a NOT
// NULL column without a default (Stripe bringing back the id it assigned,
// keyed by the row's id) updates the row that exists instead of failing
// the insert PostgreSQL checks first; for a row that does not exist it is
// refused for the missing column (a bad record, not an outage).
func TestPartialRecordUpdatesTheRowThatExists(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL, stripe_id text UNIQUE, attrs jsonb)`,
		`INSERT INTO products VALUES (1, 'Gold', NULL, '{"kept": true}')`)
	model, _ := mixer.CompileModel("mem:///p.json", []byte(`{"title": "product", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "stripe_id": {"type": "string"}, "color": {"type": "string"}}}`))
	sink, rule := openSink(t, url, model, "public.products", []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
		{Field: "name", Target: mixer.MustPath("name")},
		{Field: "stripe_id", Target: mixer.MustPath("stripe_id")},
		{Field: "color", Target: mixer.MustPath("attrs.color")},
	})
	ctx := context.Background()
	rec := func(fields map[string]any) mixer.TargetRecord {
		r, err := rule.Apply(&mixer.Object{Model: "product", Op: mixer.OpUpsert, Fields: fields})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := sink.Write(ctx, []mixer.TargetRecord{rec(map[string]any{"id": json.Number("1"), "stripe_id": "prod_1", "color": "red"})}, nil); err != nil {
		t.Fatal(err)
	}
	var name, sid, attrs string
	if err := conn.QueryRow(ctx, `SELECT name, stripe_id, attrs::text FROM products WHERE id = 1`).Scan(&name, &sid, &attrs); err != nil {
		t.Fatal(err)
	}
	if name != "Gold" || sid != "prod_1" || attrs != `{"kept": true, "color": "red"}` {
		t.Fatalf("row: %q %q %s", name, sid, attrs)
	}
	err := sink.Write(ctx, []mixer.TargetRecord{rec(map[string]any{"id": json.Number("2"), "stripe_id": "prod_2"})}, nil)
	var re *connectors.RecordError
	if !errors.As(err, &re) || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a partial record of a missing row: %v", err)
	}
	// A whole row still inserts, in the same statement shape as before.
	if err := sink.Write(ctx, []mixer.TargetRecord{rec(map[string]any{"id": json.Number("3"), "name": "Silver", "stripe_id": "prod_3"})}, nil); err != nil {
		t.Fatal(err)
	}
}
