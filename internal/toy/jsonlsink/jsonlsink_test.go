package jsonlsink_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/toy/jsonlsink"
	"github.com/sqlpipe/remix/mixer"
)

// system builds a jsonl system the way the loader would, with the spec's
// defaults and settings.
func system(push *mixer.PushMixer, settings map[string]any) *config.System {
	s := &config.System{Name: "files", Type: jsonlsink.Type, Spec: jsonlsink.Spec(), Settings: config.Settings{}, Push: push}
	for _, st := range s.Spec.Settings {
		if st.Default != nil {
			s.Settings[st.Name] = config.Setting{Value: st.Default}
		}
	}
	for k, v := range settings {
		s.Settings[k] = config.Setting{Value: v, Set: true}
	}
	return s
}

// open opens a sink that writes model items to dir/items.
func open(t *testing.T, model *mixer.Model, dir string) connectors.Sink {
	t.Helper()
	rule, err := mixer.NewPushRule(model, "items", []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
		{Field: "name", Target: mixer.MustPath("name")}, {Field: "qty", Target: mixer.MustPath("qty")},
		{Field: "price", Target: mixer.MustPath("price")}, {Field: "note", Target: mixer.MustPath("note")},
	})
	if err != nil {
		t.Fatal(err)
	}
	push := mixer.NewPushMixer()
	push.Add("item", rule)
	sink, err := jsonlsink.NewSink(system(push, map[string]any{jsonlsink.SettingDir: dir, jsonlsink.SettingMaxAge: 200 * time.Millisecond}), connectors.SinkDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sink.Close(context.WithoutCancel(t.Context())); err != nil {
			t.Error(err)
		}
	})
	return sink
}

func readRecords(dir string) ([]mixer.TargetRecord, error) {
	lines, err := jsonlsink.ReadDir(dir, "items")
	if err != nil {
		return nil, err
	}
	out := make([]mixer.TargetRecord, len(lines))
	for i, l := range lines {
		if out[i], err = l.Record(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func TestSinkConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunSink(t, connectortest.SinkHarness{
		Features: connectortest.SinkFeatures{AppendOnly: true, Buffered: true},
		Create: func(t *testing.T, model *mixer.Model) (string, connectortest.Target) {
			dir := t.TempDir()
			return "items", connectortest.Target{
				Sink: open(t, model, dir),
				Read: func(context.Context) ([]mixer.TargetRecord, error) { return readRecords(dir) },
			}
		},
	})
}

// A flush of the same entries rewrites the same file; entries flushed
// again with later ones land in a file of their own.
func TestFileNamesComeFromTheEntries(t *testing.T) {
	t.Parallel()
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sink := open(t, model, dir)
	rec := func(entry string, id string) mixer.TargetRecord {
		return mixer.TargetRecord{Location: "items", Op: mixer.OpUpsert, Fields: map[string]any{"id": json.Number(id)},
			Origin: mixer.Origin{Model: "item", Partition: 3, Entry: entry}}
	}
	p3 := []connectors.Partition{{Model: "item", Index: 3}}
	flush := func(recs ...mixer.TargetRecord) {
		t.Helper()
		if err := sink.Write(t.Context(), recs, nil); err != nil {
			t.Fatal(err)
		}
		if err := sink.(connectors.Buffered).Flush(t.Context(), p3); err != nil {
			t.Fatal(err)
		}
	}
	flush(rec("5-0", "1"), rec("10-2", "2"))
	flush(rec("5-0", "1"), rec("10-2", "2"))
	flush(rec("5-0", "1"), rec("10-2", "2"), rec("10-3", "3"))
	des, err := os.ReadDir(filepath.Join(dir, "items"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if want := []string{"item.3.5-0.10-2.jsonl", "item.3.5-0.10-3.jsonl"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
}

// A truncate is refused as permanent, naming the record.
func TestTruncateIsRefused(t *testing.T) {
	t.Parallel()
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	sink := open(t, model, t.TempDir())
	err = sink.Write(t.Context(), []mixer.TargetRecord{{Location: "items", Op: mixer.OpTruncate}}, nil)
	var re *connectors.RecordError
	if !errors.As(err, &re) || re.Index != 0 || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a truncate: %v", err)
	}
}
