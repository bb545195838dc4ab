// Package connectortest holds behaviours every Sink must have, run against
// each implementation by its own tests with a real target: upserting twice
// changes nothing, deleting a missing row is fine, absent fields stay
// untouched, a row's changes in one batch apply in order, a bad value fails
// the whole batch as permanent, exact numbers survive.
package connectortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// The model every target of the suite receives.
const ItemSchema = `{"title": "item", "type": "object", "properties": {
	"id": {"type": "integer"},
	"name": {"type": ["string", "null"]},
	"qty": {"type": ["integer", "null"]},
	"price": {"type": ["number", "null"]},
	"note": {"type": ["string", "null"]}}}`

// Features says what a sink supports beyond the common behaviours.
type Features struct {
	// InsertWithoutKey: an upsert whose search key has no value creates a
	// row and the target assigns its key.
	InsertWithoutKey bool
	// Truncate: a truncate record empties the location.
	Truncate bool
	// Fencing: the sink keeps fences with the data and refuses a write
	// whose fence is older than one it has seen (connectors.ErrFenced).
	Fencing bool
}

// Target is a fresh, empty target location and its sink, opened.
type Target struct {
	Sink connectors.Sink
	// Get reads a row by id: its fields as JSON values (numbers as
	// json.Number), and whether it exists.
	Get func(ctx context.Context, id int64) (map[string]any, bool, error)
	// Count returns the number of rows.
	Count func(ctx context.Context) (int, error)
}

// Harness makes targets for the suite.
type Harness struct {
	Features Features
	// Create makes an empty location whose columns are id (the search key,
	// assigned by the target when absent), name, qty, price and note, with
	// the model fields mapped to the same names, and returns it with its
	// sink opened. Its location is passed to the push rule by Create itself.
	Create func(t *testing.T, model *mixer.Model) (location string, target Target)
}

// Run runs every behaviour.
func Run(t *testing.T, h Harness) {
	model, err := mixer.CompileModel("mem:///item.json", []byte(ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	type env struct {
		ctx context.Context
		tgt Target
		rec func(op mixer.Op, fields map[string]any) mixer.TargetRecord
	}
	setup := func(t *testing.T) env {
		loc, tgt := h.Create(t, model)
		rule, err := mixer.NewPushRule(model, loc, []mixer.PushField{
			{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
			{Field: "name", Target: mixer.MustPath("name")},
			{Field: "qty", Target: mixer.MustPath("qty")},
			{Field: "price", Target: mixer.MustPath("price")},
			{Field: "note", Target: mixer.MustPath("note")},
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := func(op mixer.Op, fields map[string]any) mixer.TargetRecord {
			r, err := rule.Apply(&mixer.Object{Model: "item", Op: op, Fields: fields})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		return env{ctx: context.Background(), tgt: tgt, rec: rec}
	}
	write := func(t *testing.T, e env, recs ...mixer.TargetRecord) {
		t.Helper()
		if err := e.tgt.Sink.Write(e.ctx, recs, nil); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	get := func(t *testing.T, e env, id int64) map[string]any {
		t.Helper()
		row, ok, err := e.tgt.Get(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return nil
		}
		return row
	}
	n := func(s string) json.Number { return json.Number(s) }
	item := func(id int64, name string, qty string) map[string]any {
		return map[string]any{"id": n(fmt.Sprint(id)), "name": name, "qty": n(qty), "price": n("1.50"), "note": "x"}
	}

	t.Run("UpsertTwiceIsIdempotent", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		r := e.rec(mixer.OpUpsert, item(1, "a", "3"))
		write(t, e, r)
		write(t, e, r)
		if c, _ := e.tgt.Count(e.ctx); c != 1 {
			t.Fatalf("%d rows after the same upsert twice", c)
		}
		if row := get(t, e, 1); row["name"] != "a" || row["qty"] != n("3") {
			t.Fatalf("row = %v", row)
		}
	})
	t.Run("DeleteOfMissingRowIsFine", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		write(t, e, e.rec(mixer.OpDelete, map[string]any{"id": n("404")}))
		write(t, e, e.rec(mixer.OpUpsert, item(1, "a", "3")), e.rec(mixer.OpDelete, map[string]any{"id": n("1")}))
		write(t, e, e.rec(mixer.OpDelete, map[string]any{"id": n("1")}))
		if c, _ := e.tgt.Count(e.ctx); c != 0 {
			t.Fatalf("%d rows left", c)
		}
	})
	t.Run("AbsentFieldsStayUntouchedNullSetsNull", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		write(t, e, e.rec(mixer.OpUpsert, item(7, "full", "5")))
		write(t, e, e.rec(mixer.OpUpsert, map[string]any{"id": n("7"), "name": "renamed", "note": nil}))
		row := get(t, e, 7)
		if row["name"] != "renamed" || row["qty"] != n("5") || row["price"] != n("1.50") || row["note"] != nil {
			t.Fatalf("row = %v: absent qty/price must stay, null note must be null", row)
		}
	})
	t.Run("ChangesOfOneRowApplyInOrderWithinABatch", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		write(t, e,
			e.rec(mixer.OpUpsert, item(1, "v1", "1")),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("1"), "qty": n("2")}),
			e.rec(mixer.OpDelete, map[string]any{"id": n("1")}),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("1"), "name": "v3"}),
			e.rec(mixer.OpUpsert, item(2, "gone", "1")),
			e.rec(mixer.OpDelete, map[string]any{"id": n("2")}),
			e.rec(mixer.OpUpsert, item(3, "a", "1")),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("3"), "name": "b"}),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("3"), "qty": n("9")}),
		)
		if row := get(t, e, 1); row["name"] != "v3" || row["qty"] != nil {
			t.Fatalf("row 1 = %v: deleted then recreated with only a name", row)
		}
		if row := get(t, e, 2); row != nil {
			t.Fatalf("row 2 = %v: upserted then deleted", row)
		}
		if row := get(t, e, 3); row["name"] != "b" || row["qty"] != n("9") || row["note"] != "x" {
			t.Fatalf("row 3 = %v: partial upserts must merge", row)
		}
	})
	t.Run("NullsAndValuesMergeWithinABatch", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		write(t, e,
			e.rec(mixer.OpUpsert, item(4, "a", "1")),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("4"), "note": nil, "name": nil}),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("4"), "name": "c", "qty": nil}),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("5"), "note": nil}),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("5"), "note": "set"}),
		)
		if row := get(t, e, 4); row["name"] != "c" || row["note"] != nil || row["qty"] != nil || row["price"] != n("1.50") {
			t.Fatalf("row 4 = %v: later nulls and values must win column by column", row)
		}
		if row := get(t, e, 5); row["note"] != "set" {
			t.Fatalf("row 5 = %v: a value after a null must win", row)
		}
	})
	t.Run("BadValueFailsTheBatchAsPermanent", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		err := e.tgt.Sink.Write(e.ctx, []mixer.TargetRecord{
			e.rec(mixer.OpUpsert, item(1, "good", "1")),
			e.rec(mixer.OpUpsert, map[string]any{"id": n("2"), "qty": n("1.5")}),
		}, nil)
		if !errors.Is(err, connectors.ErrPermanent) {
			t.Fatalf("a fraction into an integer column: %v, want ErrPermanent", err)
		}
		var re *connectors.RecordError
		if errors.As(err, &re) && re.Index != 1 {
			t.Fatalf("record error names record %d, want 1", re.Index)
		}
		if c, _ := e.tgt.Count(e.ctx); c != 0 {
			t.Fatalf("%d rows written by a failed batch", c)
		}
	})
	t.Run("ExactValues", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		write(t, e, e.rec(mixer.OpUpsert, map[string]any{"id": n("9007199254740993"), "qty": n("1e+06"), "price": n("12345678901234567890.123456789")}))
		row := get(t, e, 9007199254740993)
		if row == nil || row["qty"] != n("1000000") || row["price"] != n("12345678901234567890.123456789") {
			t.Fatalf("row = %v", row)
		}
	})
	t.Run("ManyRowsInOneWrite", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		var recs []mixer.TargetRecord
		for i := 1; i <= 2000; i++ {
			recs = append(recs, e.rec(mixer.OpUpsert, item(int64(i), fmt.Sprintf("n%d", i), fmt.Sprint(i))))
		}
		write(t, e, recs...)
		if c, _ := e.tgt.Count(e.ctx); c != 2000 {
			t.Fatalf("%d rows", c)
		}
		if row := get(t, e, 1234); row["qty"] != n("1234") {
			t.Fatalf("row = %v", row)
		}
	})
	if h.Features.InsertWithoutKey {
		t.Run("InsertWithoutKey", func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			write(t, e, e.rec(mixer.OpUpsert, map[string]any{"id": nil, "name": "new"}), e.rec(mixer.OpUpsert, map[string]any{"name": "newer"}))
			if c, _ := e.tgt.Count(e.ctx); c != 2 {
				t.Fatalf("%d rows, want 2 created", c)
			}
		})
	}
	if h.Features.Truncate {
		t.Run("Truncate", func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			trunc := e.rec(mixer.OpUpsert, map[string]any{"id": n("1")})
			trunc.Op, trunc.Fields, trunc.Key = mixer.OpTruncate, nil, nil
			write(t, e, e.rec(mixer.OpUpsert, item(1, "a", "1")), e.rec(mixer.OpUpsert, item(2, "b", "1")), trunc, e.rec(mixer.OpUpsert, item(3, "c", "1")))
			if c, _ := e.tgt.Count(e.ctx); c != 1 || get(t, e, 3) == nil {
				t.Fatalf("%d rows after truncate, want only row 3", c)
			}
		})
	}
	if h.Features.Fencing {
		t.Run("OlderFenceIsRefused", func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			part := fmt.Sprintf("%s/%x", t.Name(), rand.Uint64()) // a partition of this run alone
			other := part + "-other"
			fenced := func(token uint64, recs ...mixer.TargetRecord) error {
				return e.tgt.Sink.Write(e.ctx, recs, []connectors.Fence{{Key: other, Token: 1}, {Key: part, Token: token}})
			}
			if err := fenced(10, e.rec(mixer.OpUpsert, item(1, "tenure 10", "1"))); err != nil {
				t.Fatal(err)
			}
			if err := fenced(10, e.rec(mixer.OpUpsert, item(2, "tenure 10 again", "1"))); err != nil {
				t.Fatalf("a second write of the same tenure: %v", err)
			}
			if err := fenced(11, e.rec(mixer.OpUpsert, item(1, "tenure 11", "1"))); err != nil {
				t.Fatal(err)
			}
			err := fenced(10, e.rec(mixer.OpUpsert, item(1, "stale", "1")), e.rec(mixer.OpUpsert, item(3, "stale", "1")))
			if !errors.Is(err, connectors.ErrFenced) {
				t.Fatalf("a write of an older tenure: %v, want ErrFenced", err)
			}
			if row := get(t, e, 1); row["name"] != "tenure 11" {
				t.Fatalf("row 1 = %v after a refused write", row)
			}
			if _, ok, _ := e.tgt.Get(e.ctx, 3); ok {
				t.Fatal("a refused write applied a row")
			}
			if err := fenced(12, e.rec(mixer.OpDelete, map[string]any{"id": n("2")})); err != nil {
				t.Fatal(err)
			}
			if c, _ := e.tgt.Count(e.ctx); c != 1 {
				t.Fatalf("%d rows, want 1", c)
			}
		})
	}
}
