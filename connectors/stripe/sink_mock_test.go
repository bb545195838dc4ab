package stripe

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// TestStripeMockAcceptsEveryRequest sends every kind of request the sink
// makes (creates, updates, a default price replaced, a price replaced,
// archives, deletes) to stripe-mock, which checks each against Stripe's
// OpenAPI specification: every one must be accepted.
func TestStripeMockAcceptsEveryRequest(t *testing.T) {
	t.Parallel()
	base := testenv.StripeMockURL(t)
	ctx := testenv.Context(t)
	two := stripeSystem(t, loadConfig(t, twoTables, base))
	cat := stripeSystem(t, loadConfig(t, catalog, base))
	rec := &recorder{}
	twoSink, catSink := testSink(t, two, rec), testSink(t, cat, rec)

	type step struct {
		name  string
		sink  *Sink
		recs  []mixer.TargetRecord
		calls int // at least
	}
	steps := []step{
		{"product create", twoSink, records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num("4"), "stripe_id": nil, "name": "Silver Plan"}, "prod-db", "0/10"), 1},
		{"product update", twoSink, records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num("4"), "stripe_id": "prod_NWjs8kKbJWmuuc", "name": "Silver Plan II"}, "prod-db", "0/11"), 1},
		{"product delete", twoSink, records(t, two, "product", mixer.OpDelete, map[string]any{"stripe_id": "prod_NWjs8kKbJWmuuc"}, "prod-db", "0/12"), 1},
		{"price create", twoSink, records(t, two, "price", mixer.OpUpsert, map[string]any{"id": num("8"), "stripe_id": nil, "product_stripe_id": "prod_NWjs8kKbJWmuuc",
			"unit_amount": num("1e+06"), "currency": "eur"}, "prod-db", "0/13"), 1},
		{"price metadata update", twoSink, records(t, two, "price", mixer.OpUpsert, map[string]any{"id": num("8"), "stripe_id": "price_1MoBy5LkdIwHu7ixZhnattbh"}, "prod-db", "0/14"), 1},
		{"price amount update", twoSink, records(t, two, "price", mixer.OpUpsert, map[string]any{"id": num("8"), "stripe_id": "price_1MoBy5LkdIwHu7ixZhnattbh",
			"product_stripe_id": "prod_NWjs8kKbJWmuuc", "unit_amount": num("2500"), "currency": "usd"}, "prod-db", "0/15"), 3},
		{"price delete (archive)", twoSink, records(t, two, "price", mixer.OpDelete, map[string]any{"stripe_id": "price_1MoBy5LkdIwHu7ixZhnattbh"}, "prod-db", "0/16"), 1},
		{"product create with a default price", catSink, records(t, cat, "item", mixer.OpUpsert, map[string]any{"id": num("5"), "stripe_id": nil, "name": "Gold", "price": num("1999")}, "shop", "0/17"), 1},
		{"product update with a new default price", catSink, records(t, cat, "item", mixer.OpUpsert, map[string]any{"id": num("5"), "stripe_id": "prod_NWjs8kKbJWmuuc", "name": "Gold", "price": num("2999")}, "shop", "0/18"), 3},
	}
	for _, s := range steps {
		if err := s.sink.Write(ctx, s.recs, nil); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		calls := rec.take()
		if len(calls) < s.calls {
			t.Fatalf("%s: %d calls, want at least %d", s.name, len(calls), s.calls)
		}
		if cost := s.sink.WriteCost(s.recs); len(calls) > cost {
			t.Fatalf("%s: %d calls, more than WriteCost's %d", s.name, len(calls), cost)
		}
		for _, c := range calls {
			t.Logf("%s: %s %s %s -> %d", s.name, c.Method, c.Path, c.Form.Encode(), c.Status)
			if c.Status != http.StatusOK {
				t.Fatalf("%s: stripe-mock refused %s %s %s: %d %s", s.name, c.Method, c.Path, c.Form.Encode(), c.Status, c.Body)
			}
			if c.Method != http.MethodGet && !strings.HasPrefix(c.Key, "remix:") {
				t.Fatalf("%s: %s %s without Remix's idempotency key (%q)", s.name, c.Method, c.Path, c.Key)
			}
			if strings.Contains(c.Form.Encode(), "e%2B") {
				t.Fatalf("%s: a number in exponent notation: %s", s.name, c.Form.Encode())
			}
		}
	}
}

// TestStripeMockTakesTheCatchUpReads: the source's reads (the newest
// event, a page of events, a page of each object type) are accepted too.
func TestStripeMockTakesTheCatchUpReads(t *testing.T) {
	t.Parallel()
	base := testenv.StripeMockURL(t)
	ctx := context.Background()
	sys := stripeSystem(t, loadConfig(t, twoTables, base))
	rec := &recorder{}
	src := newSource(sys, sourceDeps(), &http.Client{Transport: rec})
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // prices, products, then the end of the backfill
		if _, err := src.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range rec.take() {
		if c.Status != http.StatusOK {
			t.Fatalf("stripe-mock refused %s %s?%s: %d %s", c.Method, c.Path, c.Form.Encode(), c.Status, c.Body)
		}
	}
}
