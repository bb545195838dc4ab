package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// BenchmarkSinkWrite measures batched upserts of 500 rows over 8
// partitions into a real PostgreSQL, with and without fences (the cost of
// recording the batch's fencing tokens in the same transaction).
func BenchmarkSinkWrite(b *testing.B) {
	url := testenv.NewDatabase(b)
	conn := connect(b, url)
	exec(b, conn, `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty integer, price numeric, updated timestamptz)`)
	model, err := mixer.CompileModel("mem:///item.json", []byte(`{"title": "item", "properties": {
		"id": {"type": "integer"}, "name": {"type": "string"}, "qty": {"type": "integer"},
		"price": {"type": "number"}, "updated": {"type": "string", "format": "date-time"}}}`))
	if err != nil {
		b.Fatal(err)
	}
	sink, rule := openSink(b, url, model, "public.items", []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
		{Field: "name", Target: mixer.MustPath("name")}, {Field: "qty", Target: mixer.MustPath("qty")},
		{Field: "price", Target: mixer.MustPath("price")}, {Field: "updated", Target: mixer.MustPath("updated")},
	})
	ctx := context.Background()

	const rows, partitions, rounds = 500, 8, 40
	batches := make([][]mixer.TargetRecord, rounds) // 20 000 keys: inserts first, then updates
	for r := range batches {
		batches[r] = make([]mixer.TargetRecord, rows)
		for i := range batches[r] {
			id := strconv.Itoa(r*rows + i)
			batches[r][i], err = rule.Apply(&mixer.Object{Model: "item", Op: mixer.OpUpsert, Fields: map[string]any{
				"id": json.Number(id), "name": "item " + id, "qty": json.Number("3"),
				"price": json.Number("12.50"), "updated": "2026-12-05T06:00:00Z"}})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	var token uint64 // grows across the benchmark's runs, as a new tenure's would
	for _, fenced := range []bool{false, true} {
		name := "unfenced"
		if fenced {
			name = "fenced"
		}
		b.Run(name, func(b *testing.B) {
			var fences []connectors.Fence
			for i := 0; i < b.N; i++ {
				if fenced {
					token++
					fences = fences[:0]
					for p := 0; p < partitions; p++ {
						fences = append(fences, connectors.Fence{Key: "target/item/" + strconv.Itoa(p), Token: token})
					}
				}
				if err := sink.Write(ctx, batches[i%rounds], fences); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
