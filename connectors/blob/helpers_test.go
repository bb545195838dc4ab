package blob

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// system builds a blob system the way the loader would: the spec's
// defaults, then settings.
func system(typ string, push *mixer.PushMixer, settings map[string]any) *config.System {
	s := &config.System{Name: "lake", Type: typ, Spec: Spec(typ), Settings: config.Settings{}, Push: push}
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

// itemsRule pushes the suite's item model to a location, every field to
// a column of its name.
func itemsRule(t *testing.T, model *mixer.Model, location string) *mixer.PushMixer {
	t.Helper()
	rule, err := mixer.NewPushRule(model, location, []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
		{Field: "name", Target: mixer.MustPath("name")}, {Field: "qty", Target: mixer.MustPath("qty")},
		{Field: "price", Target: mixer.MustPath("price")}, {Field: "note", Target: mixer.MustPath("note")},
	})
	if err != nil {
		t.Fatal(err)
	}
	push := mixer.NewPushMixer()
	push.Add(model.Title, rule)
	return push
}

// openSink opens a sink of sys, closed when the test ends.
func openSink(t *testing.T, sys *config.System, models map[string]*mixer.Model) *Sink {
	t.Helper()
	s, err := NewSink(sys, connectors.SinkDeps{Models: models})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.WithoutCancel(t.Context())); err != nil {
			t.Error(err)
		}
	})
	return s.(*Sink)
}

// dataFile is a dataset file and what its name says.
type dataFile struct {
	key  string
	name FileName
}

// listDataset lists a dataset's files, those of each partition in the
// order of their entries.
func listDataset(ctx context.Context, b *blob.Bucket, prefix, location string) ([]dataFile, error) {
	var out []dataFile
	it := b.List(&blob.ListOptions{Prefix: datasetDir(prefix, location)})
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			if strings.Contains(err.Error(), "EOF") {
				break
			}
			return nil, err
		}
		if strings.Contains(obj.Key, "/_remix/") {
			continue
		}
		f, ok := ParseFileName(path.Base(obj.Key))
		if !ok {
			return nil, fmt.Errorf("%s is not a dataset file name", obj.Key)
		}
		out = append(out, dataFile{obj.Key, f})
	}
	slices.SortFunc(out, func(a, b dataFile) int {
		fa, _ := parseEntry(a.name.First)
		fb, _ := parseEntry(b.name.First)
		la, _ := parseEntry(a.name.Last)
		lb, _ := parseEntry(b.name.Last)
		return cmp.Or(cmp.Compare(a.name.Model, b.name.Model), cmp.Compare(a.name.Partition, b.name.Partition), fa.compare(fb), cmp.Compare(a.name.FirstIndex, b.name.FirstIndex), la.compare(lb))
	})
	return out, nil
}

// readRecords reads a dataset back as the target records it holds, as
// the suite wants them: numbers as json.Number, absent fields left out,
// Origin from the file name and the metadata columns.
func readRecords(ctx context.Context, s *Sink, location string) ([]mixer.TargetRecord, error) {
	files, err := listDataset(ctx, s.st.bucket, s.st.prefix, location)
	if err != nil {
		return nil, err
	}
	l := s.layouts[location]
	var out []mixer.TargetRecord
	for _, f := range files {
		if f.name.Truncate {
			continue
		}
		data, err := s.st.bucket.ReadAll(ctx, f.key)
		if err != nil {
			return nil, err
		}
		rows, err := DecodeFile(data, f.key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		for _, m := range rows {
			r, err := recordOf(l, m)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.key, err)
			}
			r.Origin.Model, r.Origin.Partition = f.name.Model, f.name.Partition
			out = append(out, r)
		}
	}
	return out, nil
}

func recordOf(l *layout, m map[string]any) (mixer.TargetRecord, error) {
	r := mixer.TargetRecord{Location: l.location, Fields: map[string]any{}}
	switch m[ColOp] {
	case "upsert":
		r.Op = mixer.OpUpsert
	case "delete":
		r.Op = mixer.OpDelete
	default:
		return r, fmt.Errorf("operation %v", m[ColOp])
	}
	absent, _ := m[ColAbsent].([]string)
	for _, c := range l.columns {
		if slices.Contains(absent, c.name) {
			continue
		}
		v, ok := m[c.name]
		if !ok {
			continue
		}
		switch x := v.(type) {
		case int64:
			v = json.Number(fmt.Sprint(x))
		case string:
			if c.kind == kindText || c.kind == kindDecimal {
				v = json.Number(x)
			}
		}
		r.Fields[c.name] = v
	}
	vs := fmt.Sprint(m[ColVersion])
	ver, ok := new(big.Int).SetString(vs, 10)
	if !ok {
		return r, fmt.Errorf("version %q", vs)
	}
	_, r.Origin.Entry, r.Origin.Index = SplitVersion(ver)
	r.Origin.Source, _ = m[ColSource].(string)
	r.Origin.Position, _ = m[ColPosition].(string)
	r.Origin.System, _ = m[ColSystem].(string)
	if r.Origin.System == "" {
		r.Origin.System = r.Origin.Source
	}
	switch c := m[ColCommitted].(type) {
	case time.Time:
		r.Origin.CommitTime = c
	case string:
		t, err := time.Parse(time.RFC3339Nano, c)
		if err != nil {
			return r, err
		}
		r.Origin.CommitTime = t
	}
	r.Created, _ = m[ColCreated].(bool)
	return r, nil
}
