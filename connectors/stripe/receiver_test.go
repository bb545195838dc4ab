package stripe

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/stripe/stripefake"
	"github.com/sqlpipe/remix/mixer"
)

// published records what a receiver publishes.
type published struct {
	mu         sync.Mutex
	deliveries []string
	changes    []connectors.Change
	answer     func(id string) connectors.DeliveryResult
}

func (p *published) publish(_ context.Context, id string, changes []connectors.Change) (connectors.DeliveryResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deliveries = append(p.deliveries, id)
	p.changes = append(p.changes, changes...)
	if p.answer != nil {
		return p.answer(id), nil
	}
	return connectors.DeliveryResult{Published: len(changes)}, nil
}

func testReceiver(t *testing.T, sys *config.System, secrets string) (*Receiver, *published) {
	t.Helper()
	s := *sys
	s.Settings = config.Settings{}
	for k, v := range sys.Settings {
		s.Settings[k] = v
	}
	s.Settings[SettingWebhookSecret] = config.Setting{Value: config.NewSecret(secrets)}
	p := &published{}
	r, err := newReceiver(&s, connectors.ReceiverDeps{Publish: p.publish, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

func productEvent(id, typ string, created int64, key string) []byte {
	k := "null"
	if key != "" {
		k = `"` + key + `"`
	}
	return []byte(fmt.Sprintf(`{"id": "evt_%s_%d", "object": "event", "type": %q, "created": %d, "api_version": "2019-01-01",
		"data": {"object": {"id": %q, "object": "product", "name": "Gold", "updated": %d, "metadata": {"id": "3"}}},
		"request": {"id": "req_1", "idempotency_key": %s}}`, id, created, typ, created, id, created, k))
}

func post(h http.Handler, body []byte, header string) int {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/gw", strings.NewReader(string(body)))
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// TestWebhookSignatures: forged, stale, unsigned, malformed and oversized
// deliveries are refused and publish nothing; a good one is published
// under its event id; during a rotation either secret is accepted.
func TestWebhookSignatures(t *testing.T) {
	t.Parallel()
	sys := stripeSystem(t, loadConfig(t, twoTables, "http://127.0.0.1:1"))
	r, p := testReceiver(t, sys, "whsec_old, whsec_new")
	body := productEvent("prod_1", "product.updated", time.Now().Unix(), "")
	now := time.Now()
	refused := map[string]string{
		"forged":       stripefake.Sign(body, now, "whsec_someone_else"),
		"stale":        stripefake.Sign(body, now.Add(-SignatureTolerance-time.Second), "whsec_new"),
		"unsigned":     "",
		"no signature": fmt.Sprintf("t=%d", now.Unix()),
		"malformed":    "garbage",
		"other body":   stripefake.Sign([]byte(strings.Replace(string(body), "Gold", "Lead", 1)), now, "whsec_new"),
	}
	for name, header := range refused {
		if code := post(r, body, header); code != http.StatusBadRequest {
			t.Errorf("%s delivery: %d, want 400", name, code)
		}
	}
	big := append(append([]byte(nil), body...), make([]byte, maxDeliveryBytes)...)
	if code := post(http.MaxBytesHandler(r, maxDeliveryBytes), big, stripefake.Sign(big, now, "whsec_new")); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized delivery: %d, want 413", code)
	}
	if len(p.deliveries) != 0 {
		t.Fatalf("refused deliveries published %v", p.deliveries)
	}
	for _, secret := range []string{"whsec_old", "whsec_new"} {
		if code := post(r, body, stripefake.Sign(body, now, secret)); code != http.StatusOK {
			t.Fatalf("signed with %s: %d", secret, code)
		}
	}
	if code := post(r, body, stripefake.Sign(body, now, "whsec_unknown", "whsec_new")); code != http.StatusOK {
		t.Fatalf("signed with two secrets during Stripe's rotation: %d", code)
	}
	if len(p.deliveries) != 3 || p.deliveries[0] != "evt_prod_1_"+fmt.Sprint(now.Unix()) {
		t.Fatalf("deliveries %v", p.deliveries)
	}
	// No secret at all: every delivery is refused.
	none, p2 := testReceiver(t, sys, "")
	if code := post(none, body, stripefake.Sign(body, now, "whsec_new")); code != http.StatusBadRequest || len(p2.deliveries) != 0 {
		t.Fatalf("without a secret: %d, %v", code, p2.deliveries)
	}
}

// TestEventMapping: events map by the type of data.object; deletes;
// created flags; versions; the origin an idempotency key names.
func TestEventMapping(t *testing.T) {
	t.Parallel()
	m := newMapper("gw", []string{"product", "price", "subscription", "checkout.session"})
	ev := func(typ, obj, key string) connectors.Change {
		t.Helper()
		k := "null"
		if key != "" {
			k = `"` + key + `"`
		}
		e, o, err := parseEvent([]byte(fmt.Sprintf(`{"id": "evt_1", "type": %q, "created": 1767225600, "data": {"object": %s}, "request": {"id": null, "idempotency_key": %s}}`, typ, obj, k)))
		if err != nil {
			t.Fatal(err)
		}
		c, ok := m.eventChange(e, o)
		if !ok {
			t.Fatalf("%s not mapped", typ)
		}
		return c
	}
	sub := ev("customer.subscription.updated", `{"id": "sub_1", "object": "subscription", "status": "active"}`, "")
	if sub.Record.Location != "subscription" || sub.Key != "gw/subscription/sub_1" || sub.Record.Op != mixer.OpUpsert || sub.Version != "000001767225600.000000000000000" {
		t.Fatalf("subscription: %+v", sub)
	}
	if c := ev("checkout.session.completed", `{"id": "cs_1", "object": "checkout.session"}`, ""); c.Record.Location != "checkout.session" {
		t.Fatalf("checkout session: %+v", c)
	}
	if c := ev("product.deleted", `{"id": "prod_1", "object": "product", "updated": 1767225599}`, ""); c.Record.Op != mixer.OpDelete || c.Version != "000001767225600.000001767225599" {
		t.Fatalf("deleted: %+v", c)
	}
	if _, o, _ := parseEvent([]byte(`{"id": "evt_2", "type": "invoice.paid", "created": 1, "data": {"object": {"id": "in_1", "object": "invoice"}}}`)); o != nil {
		if _, ok := m.eventChange(&event{ID: "evt_2", Type: "invoice.paid"}, o); ok {
			t.Fatal("an unmapped object type was mapped")
		}
	}
	key := "remix:prod-db:product:0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		typ, obj, key, origin string
		created               bool
	}{
		{"product.created", `{"id": "prod_1", "object": "product"}`, key, "", true},         // the id flows back
		{"product.updated", `{"id": "prod_1", "object": "product"}`, key, "prod-db", false}, // Remix's own write
		{"price.created", `{"id": "price_1", "object": "price"}`, key, "prod-db", true},     // made on the side of a product
		{"price.created", `{"id": "price_1", "object": "price"}`, strings.Replace(key, ":product:", ":price:", 1), "", true},
		{"product.updated", `{"id": "prod_1", "object": "product"}`, "some-other-key", "", false}, // someone else's
		{"product.updated", `{"id": "prod_1", "object": "product"}`, "remix:gw:product:00", "", false},
	}
	for _, c := range cases {
		got := ev(c.typ, c.obj, c.key)
		if got.Origin != c.origin || got.Record.Created != c.created {
			t.Errorf("%s with key %q: origin %q created %v, want %q %v", c.typ, c.key, got.Origin, got.Record.Created, c.origin, c.created)
		}
	}
	if a, b := eventVersion(1767225600, 1767225600), readVersion(time.Unix(1767225600, 0), 1767225600); !(a < b) || !(b < eventVersion(1767225601, 0)) {
		t.Fatalf("versions out of order: %s %s", a, b)
	}
}

// TestTieIsSettledByReadingTheObject: when the ingest reports the event's
// version tied with one already published, the receiver reads the object
// and publishes what it is now, under a delivery id of its own.
func TestTieIsSettledByReadingTheObject(t *testing.T) {
	t.Parallel()
	f := stripefake.New(t)
	sys := stripeSystem(t, loadConfig(t, twoTables, f.URL))
	r, p := testReceiver(t, sys, testSecret)
	prod := dashboard(t, f, http.MethodPost, "/v1/products", formOf("name", "Gold", "metadata[id]", "3"))
	dashboard(t, f, http.MethodPost, "/v1/products/"+prod["id"].(string), formOf("name", "Platinum"))
	p.answer = func(id string) connectors.DeliveryResult {
		if strings.HasSuffix(id, "/read") {
			return connectors.DeliveryResult{Published: 1}
		}
		return connectors.DeliveryResult{Tied: 1}
	}
	body := productEvent(prod["id"].(string), "product.updated", time.Now().Unix(), "")
	if code := post(r, body, stripefake.Sign(body, time.Now(), testSecret)); code != http.StatusOK {
		t.Fatalf("delivery: %d", code)
	}
	if len(p.changes) != 2 || !strings.HasSuffix(p.deliveries[1], "/read") {
		t.Fatalf("published %v", p.deliveries)
	}
	got := p.changes[1]
	if got.Record.Fields["name"] != "Platinum" || got.Version <= p.changes[0].Version || got.Key != p.changes[0].Key {
		t.Fatalf("after a tie: %+v (first %+v)", got, p.changes[0])
	}
}

func formOf(kv ...string) map[string][]string {
	out := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = []string{kv[i+1]}
	}
	return out
}
