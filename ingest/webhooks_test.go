package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// echoReceiver takes a JSON delivery {"id": ..., "changes": [{"id": n,
// "handle": ..., "version": ...}]} and publishes it: enough of a webhook
// connector to drive the ingest's side.
type echoReceiver struct{ deps connectors.ReceiverDeps }

func (e *echoReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var d struct {
		ID      string `json:"id"`
		Changes []struct {
			ID      json.Number `json:"id"`
			Handle  string      `json:"handle"`
			Version string      `json:"version"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var changes []connectors.Change
	for _, c := range d.Changes {
		changes = append(changes, connectors.Change{Key: "hooks/users/" + c.ID.String(), Version: c.Version,
			Record: mixer.Record{Location: "users", Op: mixer.OpUpsert, Complete: true, Fields: map[string]any{"id": c.ID, "handle": c.Handle}}})
	}
	res, err := e.deps.Publish(r.Context(), d.ID, changes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	json.NewEncoder(w).Encode(res)
}

func (e *echoReceiver) Close(context.Context) error { return nil }

// webhookFleet is an ingest serving system "hooks" (an echoReceiver) whose
// model "user" system "wh" pushes.
func webhookFleet(t *testing.T) (*Service, *coord.Client) {
	t.Helper()
	model, err := mixer.CompileModel("mem:///user.json", []byte(`{"title": "user", "type": "object",
		"properties": {"id": {"type": "integer"}, "handle": {"type": ["string", "null"], "maxLength": 10}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("handle"), Field: "handle"}})
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add("users", rule)
	push, err := mixer.NewPushRule(model, "public.users", []mixer.PushField{{Field: "id", Target: mixer.MustPath("id"), SearchKey: true}, {Field: "handle", Target: mixer.MustPath("handle")}})
	if err != nil {
		t.Fatal(err)
	}
	pm := mixer.NewPushMixer()
	pm.Add("user", push)
	cfg := &config.Config{Models: map[string]*mixer.Model{"user": model}, Systems: []*config.System{
		{Name: "hooks", Type: "echo", Receive: recv}, {Name: "wh", Type: "postgresql", Push: pm}}}
	rdb, ns := testenv.Redis(t)
	cc, err := coord.New(rdb, coord.Config{Namespace: ns, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	reg := connectors.Registry{"echo": {NewReceiver: func(_ *config.System, deps connectors.ReceiverDeps) (connectors.Receiver, error) {
		return &echoReceiver{deps: deps}, nil
	}}}
	svc, err := New(Config{Config: cfg, Coord: cc, Connectors: reg, Systems: []string{"hooks"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return svc, cc
}

// TestWebhookDeliveriesArePublishedOnceInOrder: a delivery POSTed to
// /webhooks/{system} is published without a reader lock; a repeat
// publishes nothing; an older version of an object is skipped; a change
// that does not fit its model is set aside; an unknown system is 404, a GET
// 405, an oversized body 413.
func TestWebhookDeliveriesArePublishedOnceInOrder(t *testing.T) {
	t.Parallel()
	svc, cc := webhookFleet(t)
	srv := httptest.NewServer(svc.Webhooks())
	t.Cleanup(srv.Close)
	post := func(path, body string) (int, connectors.DeliveryResult) {
		t.Helper()
		res, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out connectors.DeliveryResult
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	if code, r := post("/webhooks/hooks", `{"id": "evt_2", "changes": [{"id": 1, "handle": "new", "version": "0002"}]}`); code != 200 || r.Published != 1 {
		t.Fatalf("first delivery: %d %+v", code, r)
	}
	if code, r := post("/webhooks/hooks", `{"id": "evt_2", "changes": [{"id": 1, "handle": "new", "version": "0002"}]}`); code != 200 || !r.Repeat || r.Published != 0 {
		t.Fatalf("repeat: %d %+v", code, r)
	}
	if code, r := post("/webhooks/hooks", `{"id": "evt_1", "changes": [{"id": 1, "handle": "old", "version": "0001"}]}`); code != 200 || r.Stale != 1 {
		t.Fatalf("late older delivery: %d %+v", code, r)
	}
	if code, r := post("/webhooks/hooks", `{"id": "evt_3", "changes": [{"id": 2, "handle": "far too long a handle", "version": "0001"}]}`); code != 200 || r.Bad != 1 {
		t.Fatalf("bad change: %d %+v", code, r)
	}
	if code, _ := post("/webhooks/nobody", `{}`); code != http.StatusNotFound {
		t.Fatalf("unknown system: %d", code)
	}
	if res, err := http.Get(srv.URL + "/webhooks/hooks"); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", res, err)
	}
	big := `{"id": "evt_big", "changes": [{"id": 3, "handle": "` + strings.Repeat("x", MaxDeliveryBytes) + `"}]}`
	if code, _ := post("/webhooks/hooks", big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized delivery: %d", code)
	}
	var got []string
	for p := 0; p < 2; p++ {
		for _, m := range cc.Redis().XRange(context.Background(), cc.StreamKey("user", p), "-", "+").Val() {
			objs, _ := coord.EntryObjects(m)
			for _, o := range objs {
				env, _ := mixer.DecodeEnvelope(o.Payload)
				got = append(got, o.Key+"="+env.Fields["handle"].(string))
			}
		}
	}
	if len(got) != 1 || got[0] != "hooks/users/1=new" {
		t.Fatalf("published %v", got)
	}
	if n, _ := cc.DeadLetterCount(context.Background(), "hooks"); n != 1 {
		t.Fatalf("%d dead letters, want the bad change", n)
	}
}
