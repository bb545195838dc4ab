package connectortest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/sqlpipe/remix/mixer"
)

// runLog runs the behaviours of an append-only log.
func (s *sinkSuite) runLog(t *testing.T) {
	t.Run("ReadBackInOrderPerPartition", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		var want [2][]mixer.TargetRecord
		add := func(p int, op mixer.Op, fields map[string]any) mixer.TargetRecord {
			r := e.recIn(t, p, op, fields)
			want[p] = append(want[p], r)
			return r
		}
		e.write(t,
			add(0, mixer.OpUpsert, item(1, "a", "1")),
			add(1, mixer.OpUpsert, item(10, "j", "1")),
			add(0, mixer.OpUpsert, item(2, "b", "2")),
		)
		e.write(t,
			add(1, mixer.OpUpsert, item(11, "k", "1")),
			add(0, mixer.OpUpsert, map[string]any{"id": n("1"), "name": "a2", "note": nil}),
			add(0, mixer.OpDelete, map[string]any{"id": n("2")}),
			add(1, mixer.OpDelete, map[string]any{"id": n("10")}),
		)
		// One stream entry packs several objects: the same Entry, Index 0
		// and 1.
		first := add(0, mixer.OpUpsert, item(3, "c", "3"))
		second := e.recIn(t, 0, mixer.OpUpsert, item(4, "d", "4"))
		second.Origin.Entry, second.Origin.Index = first.Origin.Entry, 1
		want[0] = append(want[0], second)
		e.write(t, first, second)

		got := byPartition(e.read(t))
		for p := range want {
			checkLogOrder(t, p, got[p], want[p])
		}
		if len(got) != 2 {
			t.Fatalf("records of %d partitions read back, want 2", len(got))
		}
	})
	t.Run("RepeatedWriteShowsAsRepeats", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		a := []mixer.TargetRecord{
			e.rec(t, mixer.OpUpsert, item(1, "a", "1")),
			e.rec(t, mixer.OpUpsert, item(2, "b", "1")),
			e.rec(t, mixer.OpDelete, map[string]any{"id": n("1")}),
		}
		b := []mixer.TargetRecord{e.rec(t, mixer.OpUpsert, item(3, "c", "1"))}
		e.write(t, a...)
		// The write is retried (its success was not seen), then the
		// partition is read again after a takeover: a and what follows it.
		e.write(t, a...)
		e.write(t, append(append([]mixer.TargetRecord(nil), a...), b...)...)
		got := byPartition(e.read(t))
		want := append(append([]mixer.TargetRecord(nil), a...), b...)
		checkLogOrder(t, 0, got[0], want)
	})
}

// byPartition groups records read back by partition, keeping their order.
func byPartition(recs []mixer.TargetRecord) map[int][]mixer.TargetRecord {
	out := map[int][]mixer.TargetRecord{}
	for _, r := range recs {
		out[r.Origin.Partition] = append(out[r.Origin.Partition], r)
	}
	return out
}

// checkLogOrder checks the records a log holds for one partition against
// those written to it, in stream order: each record read back is one that
// was written (location, operation, fields and origin alike), a copy of
// one read before it is a repeat that the same Entry and Index identify,
// and the first copies come in the order written, none missing.
func checkLogOrder(t *testing.T, part int, got, want []mixer.TargetRecord) {
	t.Helper()
	type id struct {
		entry string
		index int
	}
	written := map[id]mixer.TargetRecord{}
	for _, w := range want {
		written[id{w.Origin.Entry, w.Origin.Index}] = w
	}
	seen := map[id]bool{}
	var order []id
	for i, g := range got {
		k := id{g.Origin.Entry, g.Origin.Index}
		w, ok := written[k]
		if !ok {
			t.Fatalf("partition %d, record %d: entry %s object %d was never written to it (%+v)", part, i, k.entry, k.index, g)
		}
		if err := sameRecord(g, w); err != nil {
			t.Fatalf("partition %d, record %d (entry %s object %d): %v", part, i, k.entry, k.index, err)
		}
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}
	if len(order) != len(want) {
		t.Fatalf("partition %d: %d of %d records read back", part, len(order), len(want))
	}
	for i, w := range want {
		if k := (id{w.Origin.Entry, w.Origin.Index}); order[i] != k {
			t.Fatalf("partition %d: record %d read back is entry %s object %d, want entry %s object %d (stream order)",
				part, i, order[i].entry, order[i].index, k.entry, k.index)
		}
	}
}

// sameRecord compares a record read back with the one written.
func sameRecord(got, want mixer.TargetRecord) error {
	switch {
	case got.Location != want.Location:
		return fmt.Errorf("location %q, want %q", got.Location, want.Location)
	case got.Op != want.Op:
		return fmt.Errorf("%v, want %v", got.Op, want.Op)
	case !reflect.DeepEqual(got.Fields, want.Fields):
		return fmt.Errorf("fields %v, want %v", got.Fields, want.Fields)
	case got.Created != want.Created:
		return fmt.Errorf("created %v, want %v", got.Created, want.Created)
	}
	g, w := got.Origin, want.Origin
	if g.Model != w.Model || g.Partition != w.Partition || g.Source != w.Source || g.Position != w.Position ||
		!g.CommitTime.Equal(w.CommitTime) || g.System != w.System {
		return fmt.Errorf("origin %+v, want %+v", g, w)
	}
	return nil
}
