package blob

import (
	"context"
	"testing"
	"time"

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
