package connectortest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/mixer"
)

// The suite run against an in-memory object API: a keyed store that takes
// one call per record, refuses an item whose qty is not an integer, and
// can be taken down. It checks the suite's keyed and per-call behaviours
// without a server.
func TestSinkSuiteOnAnObjectAPI(t *testing.T) {
	t.Parallel()
	connectortest.RunSink(t, connectortest.SinkHarness{
		Features: connectortest.SinkFeatures{Keyed: true, PerCall: true},
		Refused:  map[string]any{"qty": json.Number("1.5")},
		Create: func(t *testing.T, _ *mixer.Model) (string, connectortest.Target) {
			api := &objectAPI{objects: map[string]map[string]any{}}
			sink := &apiSink{api: api}
			if err := sink.Open(t.Context()); err != nil {
				t.Fatal(err)
			}
			return "items", connectortest.Target{
				Sink: sink,
				Get: func(ctx context.Context, id int64) (map[string]any, bool, error) {
					return api.get(fmt.Sprint(id))
				},
				Count: func(ctx context.Context) (int, error) {
					api.mu.Lock()
					defer api.mu.Unlock()
					return len(api.objects), nil
				},
				Calls:   api.callCount,
				SetDown: api.setDown,
			}
		},
	})
}

var errRefused = errors.New("the API refuses the object")

// objectAPI is what a remote API would hold: objects by id.
type objectAPI struct {
	mu      sync.Mutex
	objects map[string]map[string]any
	calls   int
	down    bool
}

func (a *objectAPI) callCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func (a *objectAPI) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = down
}

func (a *objectAPI) get(id string) (map[string]any, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.objects[id]
	if !ok {
		return nil, false, nil
	}
	return maps.Clone(o), true, nil
}

// call is one request: an upsert merges the fields into the object, a
// delete removes it.
func (a *objectAPI) call(op mixer.Op, id string, fields map[string]any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.down {
		return errors.New("connection refused")
	}
	if op == mixer.OpDelete {
		delete(a.objects, id)
		return nil
	}
	vals := map[string]any{}
	for k, v := range fields {
		if num, ok := v.(json.Number); ok {
			norm, err := mixer.NormalizeNumber(string(num))
			if err != nil {
				return fmt.Errorf("%w: %s: %v", errRefused, k, err)
			}
			if _, integral := mixer.IntegralText(norm); k == "qty" && !integral {
				return fmt.Errorf("%w: qty %s is not an integer", errRefused, num)
			}
			v = norm
		}
		vals[k] = v
	}
	o := a.objects[id]
	if o == nil {
		o = map[string]any{}
		a.objects[id] = o
	}
	maps.Copy(o, vals)
	return nil
}

// apiSink writes each record with a call of its own.
type apiSink struct{ api *objectAPI }

func (s *apiSink) Open(ctx context.Context) error  { return ctx.Err() }
func (s *apiSink) Close(ctx context.Context) error { return nil }

// WriteCost is a call per record (connectors.Coster).
func (s *apiSink) WriteCost(recs []mixer.TargetRecord) int { return len(recs) }

func (s *apiSink) Write(ctx context.Context, recs []mixer.TargetRecord, _ []connectors.Fence) error {
	for i, r := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.Key == nil {
			return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: no id", connectors.ErrPermanent)}
		}
		err := s.api.call(r.Op, fmt.Sprint(r.Key.Value), r.Fields)
		switch {
		case errors.Is(err, errRefused):
			return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: %w", connectors.ErrPermanent, err)}
		case err != nil:
			return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
		}
	}
	return nil
}
