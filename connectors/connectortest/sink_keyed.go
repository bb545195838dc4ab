package connectortest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// runKeyed runs the behaviours of a store of rows by key.
func (s *sinkSuite) runKeyed(t *testing.T) {
	t.Run("UpsertTwiceIsIdempotent", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		r := e.rec(t, mixer.OpUpsert, item(1, "a", "3"))
		e.write(t, r)
		e.write(t, r)
		if c := e.count(t); c != 1 {
			t.Fatalf("%d rows after the same upsert twice", c)
		}
		if row := e.get(t, 1); row["name"] != "a" || row["qty"] != n("3") {
			t.Fatalf("row = %v", row)
		}
	})
	t.Run("DeleteOfMissingRowIsFine", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		e.write(t, e.rec(t, mixer.OpDelete, map[string]any{"id": n("404")}))
		e.write(t, e.rec(t, mixer.OpUpsert, item(1, "a", "3")), e.rec(t, mixer.OpDelete, map[string]any{"id": n("1")}))
		e.write(t, e.rec(t, mixer.OpDelete, map[string]any{"id": n("1")}))
		if c := e.count(t); c != 0 {
			t.Fatalf("%d rows left", c)
		}
	})
	t.Run("AbsentFieldsStayUntouchedNullSetsNull", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		e.write(t, e.rec(t, mixer.OpUpsert, item(7, "full", "5")))
		e.write(t, e.rec(t, mixer.OpUpsert, map[string]any{"id": n("7"), "name": "renamed", "note": nil}))
		row := e.get(t, 7)
		if row["name"] != "renamed" || row["qty"] != n("5") || row["price"] != n("1.50") || row["note"] != nil {
			t.Fatalf("row = %v: absent qty/price must stay, null note must be null", row)
		}
	})
	t.Run("ChangesOfOneRowApplyInOrderWithinABatch", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		e.write(t,
			e.rec(t, mixer.OpUpsert, item(1, "v1", "1")),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("1"), "qty": n("2")}),
			e.rec(t, mixer.OpDelete, map[string]any{"id": n("1")}),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("1"), "name": "v3"}),
			e.rec(t, mixer.OpUpsert, item(2, "gone", "1")),
			e.rec(t, mixer.OpDelete, map[string]any{"id": n("2")}),
			e.rec(t, mixer.OpUpsert, item(3, "a", "1")),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("3"), "name": "b"}),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("3"), "qty": n("9")}),
		)
		if row := e.get(t, 1); row["name"] != "v3" || row["qty"] != nil {
			t.Fatalf("row 1 = %v: deleted then recreated with only a name", row)
		}
		if row := e.get(t, 2); row != nil {
			t.Fatalf("row 2 = %v: upserted then deleted", row)
		}
		if row := e.get(t, 3); row["name"] != "b" || row["qty"] != n("9") || row["note"] != "x" {
			t.Fatalf("row 3 = %v: partial upserts must merge", row)
		}
	})
	t.Run("NullsAndValuesMergeWithinABatch", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		e.write(t,
			e.rec(t, mixer.OpUpsert, item(4, "a", "1")),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("4"), "note": nil, "name": nil}),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("4"), "name": "c", "qty": nil}),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("5"), "note": nil}),
			e.rec(t, mixer.OpUpsert, map[string]any{"id": n("5"), "note": "set"}),
		)
		if row := e.get(t, 4); row["name"] != "c" || row["note"] != nil || row["qty"] != nil || row["price"] != n("1.50") {
			t.Fatalf("row 4 = %v: later nulls and values must win column by column", row)
		}
		if row := e.get(t, 5); row["note"] != "set" {
			t.Fatalf("row 5 = %v: a value after a null must win", row)
		}
	})
	if s.h.Refused != nil {
		t.Run("RefusedValueIsPermanent", func(t *testing.T) {
			t.Parallel()
			e := s.setup(t)
			bad := map[string]any{"id": n("2")}
			maps.Copy(bad, s.h.Refused)
			err := e.put(e.ctx, []mixer.TargetRecord{
				e.rec(t, mixer.OpUpsert, item(1, "good", "1")),
				e.rec(t, mixer.OpUpsert, bad),
			}, nil)
			if !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("a value the system refuses: %v, want ErrPermanent", err)
			}
			var re *connectors.RecordError
			if errors.As(err, &re) && re.Index != 1 {
				t.Fatalf("record error names record %d, want 1", re.Index)
			}
			// A system taking one call per record may have taken the good
			// one; a batch write is all or nothing.
			if c := e.count(t); c != 0 && !s.h.Features.PerCall {
				t.Fatalf("%d rows written by a failed batch", c)
			}
		})
	}
	t.Run("ExactValues", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		e.write(t, e.rec(t, mixer.OpUpsert, map[string]any{"id": n("9007199254740993"), "qty": n("1e+06"), "price": n("12345678901234567890.123456789")}))
		row := e.get(t, 9007199254740993)
		if row == nil || row["qty"] != n("1000000") || row["price"] != n("12345678901234567890.123456789") {
			t.Fatalf("row = %v", row)
		}
	})
	t.Run("ManyRowsInOneWrite", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		var recs []mixer.TargetRecord
		for i := 1; i <= 2000; i++ {
			recs = append(recs, e.rec(t, mixer.OpUpsert, item(int64(i), fmt.Sprintf("n%d", i), fmt.Sprint(i))))
		}
		e.write(t, recs...)
		if c := e.count(t); c != 2000 {
			t.Fatalf("%d rows", c)
		}
		if row := e.get(t, 1234); row["qty"] != n("1234") {
			t.Fatalf("row = %v", row)
		}
	})
	if s.h.Features.InsertWithoutKey {
		t.Run("InsertWithoutKey", func(t *testing.T) {
			t.Parallel()
			e := s.setup(t)
			e.write(t, e.rec(t, mixer.OpUpsert, map[string]any{"id": nil, "name": "new"}), e.rec(t, mixer.OpUpsert, map[string]any{"name": "newer"}))
			if c := e.count(t); c != 2 {
				t.Fatalf("%d rows, want 2 created", c)
			}
		})
	}
	if s.h.Features.Truncate {
		t.Run("Truncate", func(t *testing.T) {
			t.Parallel()
			e := s.setup(t)
			trunc := mixer.TargetRecord{Location: e.rule.Location(), Op: mixer.OpTruncate} // as the pusher makes it: no origin
			e.write(t, e.rec(t, mixer.OpUpsert, item(1, "a", "1")), e.rec(t, mixer.OpUpsert, item(2, "b", "1")), trunc, e.rec(t, mixer.OpUpsert, item(3, "c", "1")))
			if c := e.count(t); c != 1 || e.get(t, 3) == nil {
				t.Fatalf("%d rows after truncate, want only row 3", c)
			}
		})
	}
	if s.h.Features.Fencing {
		t.Run("OlderFenceIsRefused", s.olderFenceIsRefused)
	}
}

// olderFenceIsRefused: a write under an older tenure of a partition than
// one already written is refused whole.
func (s *sinkSuite) olderFenceIsRefused(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	part := fmt.Sprintf("%s/%x", t.Name(), rand.Uint64()) // a partition of this run alone
	other := part + "-other"
	fenced := func(token uint64, recs ...mixer.TargetRecord) error {
		return e.put(e.ctx, recs, []connectors.Fence{{Key: other, Token: 1}, {Key: part, Token: token}})
	}
	if err := fenced(10, e.rec(t, mixer.OpUpsert, item(1, "tenure 10", "1"))); err != nil {
		t.Fatal(err)
	}
	if err := fenced(10, e.rec(t, mixer.OpUpsert, item(2, "tenure 10 again", "1"))); err != nil {
		t.Fatalf("a second write of the same tenure: %v", err)
	}
	if err := fenced(11, e.rec(t, mixer.OpUpsert, item(1, "tenure 11", "1"))); err != nil {
		t.Fatal(err)
	}
	err := fenced(10, e.rec(t, mixer.OpUpsert, item(1, "stale", "1")), e.rec(t, mixer.OpUpsert, item(3, "stale", "1")))
	if !errors.Is(err, connectors.ErrFenced) {
		t.Fatalf("a write of an older tenure: %v, want ErrFenced", err)
	}
	if row := e.get(t, 1); row["name"] != "tenure 11" {
		t.Fatalf("row 1 = %v after a refused write", row)
	}
	if e.get(t, 3) != nil {
		t.Fatal("a refused write applied a row")
	}
	if err := fenced(12, e.rec(t, mixer.OpDelete, map[string]any{"id": n("2")})); err != nil {
		t.Fatal(err)
	}
	if c := e.count(t); c != 1 {
		t.Fatalf("%d rows, want 1", c)
	}
}

// releasedRecords: a sink that claims connectors.RecordReleaser keeps
// nothing of a batch once Write returned. The pusher clears the records'
// maps and fills them with the next batch's rows; here they are first
// scribbled over, then reused for later batches that change the same rows
// (a sink that kept a map to compare with would find it equal to the new
// row), and every row must read back as last written.
func (s *sinkSuite) releasedRecords(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	push := mixer.NewPushMixer()
	push.Add(itemModel, e.rule)
	maps := &mixer.FieldMaps{}
	batch := func(objs ...*mixer.Object) []mixer.TargetRecord {
		var recs []mixer.TargetRecord
		for _, o := range objs {
			out := push.PushWith(o, nil, maps)
			if out[0].Err != nil {
				t.Fatal(out[0].Err)
			}
			recs = append(recs, out[0].Record)
		}
		return recs
	}
	written := func(recs []mixer.TargetRecord) { // the write returned: the maps serve again
		for _, r := range recs {
			for k := range r.Fields {
				r.Fields[k] = "scribbled"
			}
		}
		for _, r := range recs {
			maps.Put(r.Fields)
		}
	}
	up := func(id int64, name, qty string) *mixer.Object {
		return &mixer.Object{Model: itemModel, Op: mixer.OpUpsert, Fields: item(id, name, qty)}
	}
	first := batch(up(1, "one", "1"), up(2, "two", "2"))
	e.write(t, first...)
	written(first)
	second := batch(up(2, "deux", "22"), up(3, "three", "3")) // row 2 in the map row 2 was written from
	e.write(t, second...)
	written(second)
	third := batch(&mixer.Object{Model: itemModel, Op: mixer.OpDelete, Fields: map[string]any{"id": n("3")}}, up(1, "un", "11"))
	e.write(t, third...)
	written(third)
	for id, want := range map[int64]map[string]any{1: {"name": "un", "qty": n("11")}, 2: {"name": "deux", "qty": n("22")}} {
		row := e.get(t, id)
		if row["name"] != want["name"] || row["qty"] != want["qty"] {
			t.Fatalf("row %d = %v, want %v: the sink read a record's map after its write returned", id, row, want)
		}
	}
	if row := e.get(t, 3); row != nil {
		t.Fatalf("row 3 = %v, want it deleted", row)
	}
}
