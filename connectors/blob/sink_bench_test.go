package blob

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/mixer"
)

// BenchmarkSinkWrite measures the sink alone (conversion, encoding, spool
// and upload to a local folder): records of the suite's item model in
// writes of 500 across 8 partitions, flushed at the end.
func BenchmarkSinkWrite(b *testing.B) {
	for _, format := range []string{FormatParquet, FormatJSONL} {
		b.Run(format, func(b *testing.B) {
			model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
			if err != nil {
				b.Fatal(err)
			}
			rule, err := mixer.NewPushRule(model, "items", []mixer.PushField{
				{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
				{Field: "name", Target: mixer.MustPath("name")}, {Field: "qty", Target: mixer.MustPath("qty")},
				{Field: "price", Target: mixer.MustPath("price")}, {Field: "note", Target: mixer.MustPath("note")},
			})
			if err != nil {
				b.Fatal(err)
			}
			push := mixer.NewPushMixer()
			push.Add("item", rule)
			sys := system(TypeFile, push, map[string]any{SettingPath: b.TempDir(), SettingFormat: format})
			s, err := NewSink(sys, connectors.SinkDeps{Models: map[string]*mixer.Model{"item": model}})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Open(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer s.Close(b.Context())
			const parts, batch = 8, 500
			base := time.Now().UnixMilli()
			recs := make([]mixer.TargetRecord, 0, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; {
				recs = recs[:0]
				p := (i / batch) % parts
				for j := 0; j < batch && i < b.N; j++ {
					id := json.Number(fmt.Sprint(i))
					recs = append(recs, mixer.TargetRecord{Location: "items", Op: mixer.OpUpsert,
						Fields: map[string]any{"id": id, "name": "item name", "qty": json.Number("3"), "price": json.Number("12.50"), "note": nil},
						Key:    &mixer.SearchKey{Field: "id", Value: id},
						Origin: mixer.Origin{Model: "item", Partition: p, Entry: fmt.Sprintf("%d-%d", base, i), Source: "shop", Position: "0/16B3748", CommitTime: time.Now()}})
					i++
				}
				if err := s.Write(b.Context(), recs, nil); err != nil {
					b.Fatal(err)
				}
			}
			all := make([]connectors.Partition, parts)
			for p := range all {
				all[p] = connectors.Partition{Model: "item", Index: p}
			}
			if err := s.(connectors.Buffered).Flush(b.Context(), all); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
