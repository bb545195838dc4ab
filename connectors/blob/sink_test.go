package blob

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/mixer"
)

// suite runs the sink suite against one store, in both formats.
func suite(t *testing.T, typ string, settings func(t *testing.T) map[string]any) {
	for _, format := range []string{FormatParquet, FormatJSONL} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			connectortest.RunSink(t, connectortest.SinkHarness{
				Features: connectortest.SinkFeatures{AppendOnly: true, Buffered: true},
				Create: func(t *testing.T, model *mixer.Model) (string, connectortest.Target) {
					set := settings(t)
					set[SettingFormat] = format
					set[SettingMaxFileAge] = 200 * time.Millisecond
					sys := system(typ, itemsRule(t, model, "items"), set)
					s := openSink(t, sys, map[string]*mixer.Model{model.Title: model})
					return "items", connectortest.Target{
						Sink: s,
						Read: func(ctx context.Context) ([]mixer.TargetRecord, error) { return readRecords(ctx, s, "items") },
					}
				},
			})
		})
	}
}

func TestFileSinkConformance(t *testing.T) {
	t.Parallel()
	suite(t, TypeFile, func(t *testing.T) map[string]any { return map[string]any{SettingPath: t.TempDir()} })
}

// remix validate --online: a dataset's columns are checked against the
// models, and a store that cannot be reached is an error.
func TestCheck(t *testing.T) {
	t.Parallel()
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	sys := system(TypeFile, itemsRule(t, model, "items"), map[string]any{SettingPath: t.TempDir()})
	s, err := NewSink(sys, connectors.SinkDeps{})
	if err != nil {
		t.Fatal(err)
	}
	ch := s.(connectors.Checker)
	if errs, _ := ch.Check(t.Context(), map[string]*mixer.Model{"item": model}); len(errs) != 0 {
		t.Fatalf("a good system: %v", errs)
	}
	if errs, _ := ch.Check(t.Context(), map[string]*mixer.Model{}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "model item is not loaded") {
		t.Fatalf("without its model: %v", errs)
	}
}
