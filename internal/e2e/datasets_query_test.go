package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	rblob "github.com/sqlpipe/remix/connectors/blob"
	"github.com/sqlpipe/remix/mixer"
)

// The latest-state query on files the sink writes, through DuckDB, for
// each case it has to get right: files that overlap after a takeover, a
// change published twice, an update that leaves a column absent, a null
// set on purpose, a delete, a key inserted again, and a truncate.
func TestLatestStateQuery(t *testing.T) {
	t.Parallel()
	for _, format := range []string{rblob.FormatParquet, rblob.FormatJSONL} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			model, err := mixer.CompileModel("mem:///item.json", []byte(`{"title": "item", "type": "object", "properties": {
				"id": {"type": "integer"}, "name": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]}}}`))
			if err != nil {
				t.Fatal(err)
			}
			rule, err := mixer.NewPushRule(model, "items", []mixer.PushField{
				{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
				{Field: "name", Target: mixer.MustPath("name")}, {Field: "note", Target: mixer.MustPath("note")}})
			if err != nil {
				t.Fatal(err)
			}
			push := mixer.NewPushMixer()
			push.Add("item", rule)
			dir := t.TempDir()
			sys := &config.System{Name: "lake", Type: rblob.TypeFile, Spec: rblob.Spec(rblob.TypeFile), Settings: config.Settings{}, Push: push}
			for _, st := range sys.Spec.Settings {
				if st.Default != nil {
					sys.Settings[st.Name] = config.Setting{Value: st.Default}
				}
			}
			sys.Settings[rblob.SettingPath] = config.Setting{Value: dir, Set: true}
			sys.Settings[rblob.SettingFormat] = config.Setting{Value: format, Set: true}
			models := map[string]*mixer.Model{"item": model}
			open := func() (connectors.Sink, connectors.Buffered) {
				s, err := rblob.NewSink(sys, connectors.SinkDeps{Models: models})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Open(ctx); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close(ctx) })
				return s, s.(connectors.Buffered)
			}
			n := 0
			rec := func(part int, op mixer.Op, fields map[string]any) mixer.TargetRecord {
				n++
				r, err := rule.Apply(&mixer.Object{Model: "item", Op: op, Fields: fields})
				if err != nil {
					t.Fatal(err)
				}
				r.Origin = mixer.Origin{Model: "item", Partition: part, Entry: fmt.Sprintf("%d-0", 1_764_928_800_000+n), Source: "shop", CommitTime: time.Now()}
				return r
			}
			id := func(i int) json.Number { return json.Number(fmt.Sprint(i)) }
			write := func(s connectors.Sink, b connectors.Buffered, part int, recs ...mixer.TargetRecord) {
				t.Helper()
				if err := s.Write(ctx, recs, nil); err != nil {
					t.Fatal(err)
				}
				if err := b.Flush(ctx, []connectors.Partition{{Model: "item", Index: part}}); err != nil {
					t.Fatal(err)
				}
			}
			s1, b1 := open()
			a := []mixer.TargetRecord{
				rec(0, mixer.OpUpsert, map[string]any{"id": id(1), "name": "one", "note": "kept"}),
				rec(0, mixer.OpUpsert, map[string]any{"id": id(2), "name": "two", "note": "x"}),
				rec(1, mixer.OpUpsert, map[string]any{"id": id(3), "name": "three", "note": "y"}),
			}
			write(s1, b1, 0, a[0], a[1])
			write(s1, b1, 1, a[2])
			// A new owner of partition 0 reads from before the last file and
			// cuts elsewhere: the first two changes twice, in two files.
			s2, b2 := open()
			more := []mixer.TargetRecord{
				rec(0, mixer.OpUpsert, map[string]any{"id": id(1), "name": "uno"}), // note absent: kept
				rec(0, mixer.OpUpsert, map[string]any{"id": id(2), "note": nil}),   // note set to null
				rec(1, mixer.OpDelete, map[string]any{"id": id(3)}),
				rec(1, mixer.OpUpsert, map[string]any{"id": id(4), "name": "four", "note": "z"}),
			}
			write(s2, b2, 0, a[0], a[1], more[0], more[1])
			write(s2, b2, 1, more[2], more[3])
			// The ingest published a change again (a crash before it
			// confirmed): a later version of the same change.
			again := rec(1, mixer.OpUpsert, map[string]any{"id": id(4), "name": "four", "note": "z"})
			write(s2, b2, 1, again)
			db, err := sql.Open("duckdb", "")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ds, err := rblob.Datasets(sys, models)
			if err != nil {
				t.Fatal(err)
			}
			state := func() []string {
				t.Helper()
				q := `SELECT concat_ws('|', id, coalesce(name, '∅'), coalesce(note, '∅')) FROM (` + ds[0].DuckDBQuery(filepath.ToSlash(dir)+"/items/") + `) ORDER BY id`
				rows, err := textRows(ctx, db, q)
				if err != nil {
					t.Fatal(err)
				}
				return rows
			}
			if got, want := state(), []string{"1|uno|kept", "2|two|∅", "4|four|z"}; !slices.Equal(got, want) {
				t.Fatalf("latest state %v, want %v", got, want)
			}
			// A truncate: what came before is gone, what comes after stays.
			if err := s2.Write(ctx, []mixer.TargetRecord{{Location: "items", Op: mixer.OpTruncate}, rec(0, mixer.OpUpsert, map[string]any{"id": id(5), "name": "five"})}, nil); err != nil {
				t.Fatal(err)
			}
			if err := b2.Flush(ctx, []connectors.Partition{{Model: "item", Index: 0}}); err != nil {
				t.Fatal(err)
			}
			if got, want := state(), []string{"5|five|∅"}; !slices.Equal(got, want) {
				t.Fatalf("after a truncate %v, want %v", got, want)
			}
		})
	}
}
