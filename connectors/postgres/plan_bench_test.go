package postgres

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/mixer"
)

// benchTable is a table like the benchmarks' items, described by hand so
// that planning can be measured without a server.
func benchTable() *table {
	t := &table{loc: "public.items", quoted: `"public"."items"`, cols: map[string]*column{}}
	for _, c := range []struct {
		name, typ string
		oid       uint32
	}{{"id", "bigint", oidInt8}, {"name", "text", 25}, {"qty", "integer", oidInt4}, {"price", "numeric", oidNumeric}, {"updated", "timestamp with time zone", oidTimestamptz}} {
		col := &column{index: len(t.order), name: c.name, typ: c.typ, cast: c.typ, keyType: c.typ, kind: kindOf(c.oid)}
		t.cols[c.name] = col
		t.order = append(t.order, col)
	}
	return t
}

// BenchmarkPlan is the pusher's own cost of turning a batch of 2 000
// upserts (a snapshot's batch) into its statement and text arrays.
func BenchmarkPlan(b *testing.B) {
	s := &Sink{tables: map[string]*table{"public.items": benchTable()}, sql: map[shape]string{}}
	key := &mixer.SearchKey{Field: "id", Target: mixer.MustPath("id")}
	recs := make([]mixer.TargetRecord, 2000)
	for i := range recs {
		id := strconv.Itoa(i)
		recs[i] = mixer.TargetRecord{Location: "public.items", Op: mixer.OpUpsert, Key: key, Fields: map[string]any{
			"id": json.Number(id), "name": "item " + id, "qty": json.Number("3"),
			"price": json.Number("12.50"), "updated": "2026-12-05T06:00:00Z"}}
	}
	b.ReportAllocs()
	for b.Loop() {
		batch := &pgx.Batch{}
		if err := s.plan(recs, batch, time.Time{}); err != nil {
			b.Fatal(err)
		}
		if batch.Len() != 1 {
			b.Fatalf("%d statements, want 1", batch.Len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/row")
}
