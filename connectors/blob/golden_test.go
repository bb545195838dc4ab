package blob

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const goldenModel = `{"title": "thing", "type": "object", "properties": {
	"id": {"type": "integer"},
	"big": {"type": ["integer", "null"], "format": "uint64"},
	"amount": {"type": ["number", "null"], "format": "decimal(30,4)"},
	"small": {"type": ["number", "null"], "format": "decimal(9,2)"},
	"ratio": {"type": ["number", "null"], "format": "double"},
	"exact": {"type": ["number", "null"]},
	"label": {"type": ["string", "null"]},
	"either": {"type": ["string", "integer", "null"]},
	"flag": {"type": ["boolean", "null"]},
	"day": {"type": ["string", "null"], "format": "date"},
	"at": {"type": ["string", "null"], "format": "date-time"},
	"doc": {"type": ["object", "null"]}}}`

// The files of each format, as a reader sees them, are pinned by golden
// files (testdata/*.golden): a change to what Remix writes is a visible
// diff. go test ./connectors/blob -run Golden -update rewrites them.
func TestGoldenFiles(t *testing.T) {
	t.Parallel()
	for _, format := range []string{FormatParquet, FormatJSONL} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			model, err := mixer.CompileModel("mem:///thing.json", []byte(goldenModel))
			if err != nil {
				t.Fatal(err)
			}
			var fields []mixer.PushField
			for _, f := range model.Fields() {
				fields = append(fields, mixer.PushField{Field: f, Target: mixer.MustPath(f), SearchKey: f == "id"})
			}
			rule, err := mixer.NewPushRule(model, "things", fields)
			if err != nil {
				t.Fatal(err)
			}
			push := mixer.NewPushMixer()
			push.Add("thing", rule)
			dir := t.TempDir()
			s := openSink(t, system(TypeFile, push, map[string]any{SettingPath: dir, SettingFormat: format}), map[string]*mixer.Model{"thing": model})
			n := func(s string) json.Number { return json.Number(s) }
			objs := []mixer.Object{
				{Model: "thing", Op: mixer.OpUpsert, Created: true, Fields: map[string]any{"id": n("9007199254740993"), "big": n("18446744073709551615"),
					"amount": n("12345678901234567890123456.5"), "small": n("-12.30"), "ratio": n("0.125"), "exact": n("3.14159265358979323846"),
					"label": "ünï \"code\" <tag>", "either": n("7"), "flag": true, "day": "2026-12-05", "at": "2026-12-05T10:11:12.123456Z",
					"doc": mixer.JSONText(`{"a": [1, 2.50, null]}`)}},
				{Model: "thing", Op: mixer.OpUpsert, Fields: map[string]any{"id": n("-1"), "label": nil, "flag": false, "either": "text"}},
				{Model: "thing", Op: mixer.OpDelete, Fields: map[string]any{"id": n("9007199254740993")}},
			}
			var recs []mixer.TargetRecord
			for i, o := range objs {
				r, err := rule.Apply(&o)
				if err != nil {
					t.Fatal(err)
				}
				r.Created = o.Created
				r.Origin = mixer.Origin{Model: "thing", Partition: 2, Entry: fmt.Sprintf("1764929472000-%d", i), Index: i % 2,
					Source: "shop", Position: "0/16B3748", CommitTime: time.Date(2026, 12, 5, 10, 11, 12, 0, time.UTC), System: []string{"shop", "erp"}[i%2]}
				recs = append(recs, r)
			}
			if err := s.Write(t.Context(), recs, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(t.Context(), []connectors.Partition{{Model: "thing", Index: 2}}); err != nil {
				t.Fatal(err)
			}
			names, err := filepath.Glob(filepath.Join(dir, "things", "date=*", "part-*"))
			if err != nil || len(names) != 1 {
				t.Fatalf("files %v: %v", names, err)
			}
			name := names[0]
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.TrimPrefix(name, dir) + "\n" + describe(t, data, format)
			golden := filepath.Join("testdata", format+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from %s (-update to rewrite it):\n%s", filepath.Base(name), golden, got)
			}
		})
	}
}

// describe is a file as a reader sees it: the Parquet schema and each
// row's values, or the JSON lines.
func describe(t *testing.T, data []byte, format string) string {
	t.Helper()
	if format == FormatJSONL {
		gz, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(gz)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(f.Schema().String() + "\n")
	rows, err := DecodeFile(data, ".parquet")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%#v ", k, r[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}
