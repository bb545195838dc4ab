package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/mixer"
)

// userSystem is a source "db" whose receive mixer reads column col of
// public.users into model user.
func userSystem(t *testing.T, col string) *config.Config {
	t.Helper()
	model, err := mixer.CompileModel("mem:///user.json", []byte(`{"title": "user", "type": "object",
		"properties": {"id": {"type": "integer"}, "handle": {"type": ["string", "null"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath(col), Field: "handle"}})
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add("public.users", rule)
	sys := &config.System{Name: "db", Type: "postgresql", Receive: recv}
	return &config.Config{Systems: []*config.System{sys}, Models: map[string]*mixer.Model{"user": model}}
}

// TestGoneColumnIsDeadLetteredAndReplayedAfterTheFix: a change read while
// the mapped column handle was renamed to nick_name becomes a bad record
// that keeps the whole row and the table's columns. Replaying it with the
// old mixer fails (the field would be absent, not unchanged); with the
// mixer fixed to the new name it maps.
func TestGoneColumnIsDeadLetteredAndReplayedAfterTheFix(t *testing.T) {
	t.Parallel()
	cfg := userSystem(t, "handle")
	gone := &connectors.MissingFieldsError{Location: "public.users", Missing: []string{"handle"}, Have: []string{"id", "nick_name"}}
	change := connectors.Change{Key: "db/public.users/7", Err: gone,
		Record: mixer.Record{Location: "public.users", Op: mixer.OpUpsert, Complete: true, Fields: map[string]any{"id": json.Number("7"), "nick_name": "ada"}}}
	items := newMapper(cfg, cfg.System("db")).items(connectors.Batch{Changes: []connectors.Change{change}})
	if len(items) != 1 || !items[0].Bad || items[0].Key != change.Key || !strings.Contains(items[0].Reason, "public.users has no field handle that the receive mixer reads") {
		t.Fatalf("items: %+v", items)
	}
	var stored storedRecord
	if err := json.Unmarshal(items[0].Payload, &stored); err != nil || stored.Fields["nick_name"] != "ada" || strings.Join(stored.Columns, ",") != "id,nick_name" {
		t.Fatalf("stored record %s (%v)", items[0].Payload, err)
	}
	dl := &coord.DeadLetter{ID: "1-0", Kind: coord.KindRecord, Model: "user", Key: change.Key, Payload: items[0].Payload}

	replay, err := ReplayFunc(cfg, "db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replay(context.Background(), dl); err == nil || !strings.Contains(err.Error(), "public.users had no field handle when this change was read") {
		t.Fatalf("replay with the old mixer: %v", err)
	}

	fixed := userSystem(t, "nick_name")
	replay, err = ReplayFunc(fixed, "db")
	if err != nil {
		t.Fatal(err)
	}
	out, err := replay(context.Background(), dl)
	if err != nil || len(out) != 1 {
		t.Fatalf("replay with the fixed mixer: %v, %+v", err, out)
	}
	env, err := mixer.DecodeEnvelope(out[0].Payload)
	if err != nil || env.Object.Fields["handle"] != "ada" {
		t.Fatalf("replayed object %+v (%v)", env.Object, err)
	}
}

// TestSourceProblemMakesItDegraded: a leading source that reports a
// problem is not ready, and says why.
func TestSourceProblemMakesItDegraded(t *testing.T) {
	t.Parallel()
	svc := &Service{}
	r := &sourceRunner{svc: svc, sys: &config.System{Name: "db"}}
	r.set(stateStreaming, "")
	src := &troubledSource{}
	r.setLeading(src)
	if st, _ := r.status(); st != stateStreaming {
		t.Fatalf("state %s without a problem", st)
	}
	src.problem = errors.New("public.users has no field handle")
	if st, detail := r.status(); st != stateDegraded || detail != src.problem.Error() {
		t.Fatalf("state %s %q with a problem", st, detail)
	}
	src.problem = nil
	src.progress = connectors.Progress{Snapshotting: true, SnapshotRows: 10, SnapshotEstimate: 40}
	if st, detail := r.status(); st != stateSnapshot || detail != "10 of about 40 rows" {
		t.Fatalf("state %s %q while copying", st, detail)
	}
	r.setLeading(nil)
	if st, _ := r.status(); st != stateStreaming {
		t.Fatalf("state %s after the source stopped reporting", st)
	}
}

// troubledSource reports what the test sets.
type troubledSource struct {
	connectors.Source
	problem  error
	progress connectors.Progress
}

func (s *troubledSource) Problem() error                { return s.problem }
func (s *troubledSource) Progress() connectors.Progress { return s.progress }

// TestObjectsCarryTheBatchLabel: a batch's objects carry its Label as their
// position when it has one (a snapshot chunk's resume state stays out of
// every object), else its Position.
func TestObjectsCarryTheBatchLabel(t *testing.T) {
	t.Parallel()
	cfg := userSystem(t, "handle")
	m := newMapper(cfg, cfg.System("db"))
	m.targets["user"] = []string{"warehouse"}
	change := connectors.Change{Key: "db/public.users/7",
		Record: mixer.Record{Location: "public.users", Op: mixer.OpUpsert, Complete: true, Fields: map[string]any{"id": json.Number("7"), "handle": "ada"}}}
	resume := `snapshot:{"slot":"remix_db","snapshot":"running","table":"public.users","after":["7"]}`
	for _, tc := range []struct{ position, label, want string }{
		{resume, "snapshot", "snapshot"},
		{"0/16B3748", "", "0/16B3748"},
	} {
		items := m.items(connectors.Batch{Changes: []connectors.Change{change}, Position: tc.position, Label: tc.label})
		if len(items) != 1 || items[0].Bad {
			t.Fatalf("items: %+v", items)
		}
		env, err := mixer.DecodeEnvelope(items[0].Payload)
		if err != nil || env.Position != tc.want {
			t.Fatalf("position %q, want %q (%v)", env.Position, tc.want, err)
		}
		if tc.label != "" && strings.Contains(string(items[0].Payload), "after") {
			t.Fatalf("the resume state went into the object: %s", items[0].Payload)
		}
	}
}
