package blob

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/mixer"
)

// TestEntrySplitAcrossFiles: a batch may end inside a stream entry (batches
// are sized in objects), and a flush may seal the file there; the rest of
// the entry then begins a file of its own. Both files hold only that entry,
// and both are kept: the second's name says where in the entry it begins.
func TestEntrySplitAcrossFiles(t *testing.T) {
	t.Parallel()
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	push := itemsRule(t, model, "items")
	s := openSink(t, system(TypeFile, push, map[string]any{SettingPath: t.TempDir()}), map[string]*mixer.Model{model.Title: model})
	rule := push.Rules(model.Title)[0]
	part := []connectors.Partition{{Model: model.Title, Index: 3}}
	write := func(from, to int) {
		t.Helper()
		var recs []mixer.TargetRecord
		for i := from; i < to; i++ {
			o := mixer.Object{Model: model.Title, Op: mixer.OpUpsert, Fields: map[string]any{"id": json.Number(strconv.Itoa(i)), "name": "item " + strconv.Itoa(i)}}
			r, err := rule.Apply(&o)
			if err != nil {
				t.Fatal(err)
			}
			r.Origin = mixer.Origin{Model: model.Title, Partition: 3, Entry: "1764929472000-7", Index: i}
			recs = append(recs, r)
		}
		if err := s.Write(t.Context(), recs, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(t.Context(), part); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 3) // the batch ends inside the entry and the file is sealed
	write(3, 5) // the rest of the entry
	files, err := listDataset(t.Context(), s.st.bucket, s.st.prefix, "items")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].name.FirstIndex != 0 || files[1].name.FirstIndex != 3 {
		t.Fatalf("files %+v: want two, the second beginning at object 3 of the entry", files)
	}
	recs, err := readRecords(t.Context(), s, "items")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("%d rows read back, want 5", len(recs))
	}
}
