package memsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/toy/memsource"
	"github.com/sqlpipe/remix/mixer"
)

// system builds a memory system the way the loader would, with the spec's
// defaults, reading feed with a receive mixer.
func system(name, feed string, recv *mixer.Receiver) *config.System {
	s := &config.System{Name: name, Type: memsource.Type, Spec: memsource.Spec(), Settings: config.Settings{}, Receive: recv}
	for _, st := range s.Spec.Settings {
		if st.Default != nil {
			s.Settings[st.Name] = config.Setting{Value: st.Default}
		}
	}
	s.Settings[memsource.SettingFeed] = config.Setting{Value: feed, Set: true}
	return s
}

func TestSourceConformance(t *testing.T) {
	t.Parallel()
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	hub := memsource.NewHub()
	connectortest.RunSource(t, connectortest.SourceHarness{
		Features: connectortest.SourceFeatures{LosePosition: true, Undecodable: true},
		Create: func(t *testing.T) connectortest.SourceLocation {
			rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{
				{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("name"), Field: "name"},
			})
			if err != nil {
				t.Fatal(err)
			}
			recv := mixer.NewReceiver()
			recv.Add("items", rule)
			name := t.Name() // unique within the hub
			feed := hub.Feed(name)
			sys := system("memory", name, recv)
			id := func(id int64) json.Number { return json.Number(fmt.Sprint(id)) }
			upsert := func(_ context.Context, i int64, name string) error {
				_, err := feed.Upsert("items", map[string]any{"id": id(i), "name": name})
				return err
			}
			return connectortest.SourceLocation{
				Location: "items",
				Insert:   upsert,
				Update:   upsert,
				Delete: func(_ context.Context, i int64) error {
					_, err := feed.Delete("items", map[string]any{"id": id(i)})
					return err
				},
				Open: func(ctx context.Context, cps connectors.Checkpoints) (connectors.Source, error) {
					src, err := hub.NewSource(sys, connectors.SourceDeps{Checkpoints: cps})
					if err != nil {
						return nil, err
					}
					return src, src.Open(ctx)
				},
				// A change no source read yet is forgotten: the feed no longer
				// holds what follows the confirmed position.
				LosePosition: func(ctx context.Context) error {
					if err := upsert(ctx, 99, "never read"); err != nil {
						return err
					}
					return feed.Forget(feed.Last())
				},
				Undecodable: func(_ context.Context, i int64) error {
					feed.AppendRaw("items", []byte(fmt.Sprintf(`{"op": "upsert", "fields": {"id": %d, "name": `, i)))
					return nil
				},
			}
		},
	})
}

// A change of a location the receive mixer does not map is skipped, and
// its position confirmed with the next batch.
func TestUnmappedLocationIsSkipped(t *testing.T) {
	t.Parallel()
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{{Source: mixer.MustPath("id"), Field: "id"}})
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add("items", rule)
	hub := memsource.NewHub()
	feed := hub.Feed("f")
	for _, loc := range []string{"other", "items"} {
		if _, err := feed.Upsert(loc, map[string]any{"id": json.Number("1")}); err != nil {
			t.Fatal(err)
		}
	}
	src, err := hub.NewSource(system("memory", "f", recv), connectors.SourceDeps{Checkpoints: &connectortest.Checkpoints{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Changes) != 1 || b.Changes[0].Record.Location != "items" || b.Changes[0].Key != "memory/items/1" || b.Position != "2" {
		t.Fatalf("batch %+v", b)
	}
}
