package stripe

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/stripe/stripefake"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// dashboard makes a change in the fake the way someone using Stripe's
// dashboard would: no idempotency key of Remix's.
func dashboard(t testing.TB, f *stripefake.Fake, method, path string, form url.Values) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, f.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodGet {
		req.URL.RawQuery = form.Encode()
	}
	req.Header.Set("Authorization", "Bearer sk_test_dashboard")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	obj, err := decodeObject(b)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s %v", method, path, res.StatusCode, b, err)
	}
	return obj
}

func list(t testing.TB, f *stripefake.Fake, resource string) []map[string]any {
	t.Helper()
	obj := dashboard(t, f, http.MethodGet, "/v1/"+resource, url.Values{"limit": {"100"}})
	var out []map[string]any
	for _, d := range obj["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

func TestSinkAgainstTheFake(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	f := stripefake.New(t)
	two := stripeSystem(t, loadConfig(t, twoTables, f.URL))
	sink := testSink(t, two, nil)

	write := func(recs []mixer.TargetRecord) {
		t.Helper()
		before := len(f.Calls())
		if err := sink.Write(ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
		if calls, cost := len(f.Calls())-before, sink.WriteCost(recs); calls > cost {
			t.Fatalf("%d calls, WriteCost said %d", calls, cost)
		}
	}
	// A row without a Stripe id creates a product; written again (a
	// pusher that died before its acknowledgement) it creates nothing more.
	create := records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num("1"), "stripe_id": nil, "name": "Gold Plan"}, "prod-db", "0/A")
	write(create)
	again := testSink(t, two, nil) // another pusher, no memory of the first call
	if err := again.Write(ctx, create, nil); err != nil {
		t.Fatal(err)
	}
	products := list(t, f, "products")
	if len(products) != 1 || products[0]["name"] != "Gold Plan" || products[0]["metadata"].(map[string]any)["id"] != "1" {
		t.Fatalf("products after a create written twice: %v", products)
	}
	if w := f.Writes(); w != 1 {
		t.Fatalf("%d writes for one create written twice, want 1", w)
	}
	prod := products[0]["id"].(string)

	// A price of it; then its amount changes: a new price, the old one
	// archived, the product's default price moved.
	write(records(t, two, "price", mixer.OpUpsert, map[string]any{"id": num("7"), "stripe_id": nil, "product_stripe_id": prod,
		"unit_amount": num("2000"), "currency": "usd"}, "prod-db", "0/B"))
	prices := list(t, f, "prices")
	if len(prices) != 1 || prices[0]["unit_amount"] != num("2000") {
		t.Fatalf("prices: %v", prices)
	}
	oldPrice := prices[0]["id"].(string)
	dashboard(t, f, http.MethodPost, "/v1/products/"+prod, url.Values{"default_price": {oldPrice}})
	write(records(t, two, "price", mixer.OpUpsert, map[string]any{"id": num("7"), "stripe_id": oldPrice, "product_stripe_id": prod,
		"unit_amount": num("2500"), "currency": "usd"}, "prod-db", "0/C"))
	prices = list(t, f, "prices")
	if len(prices) != 2 {
		t.Fatalf("prices after an amount change: %v", prices)
	}
	newest, old := prices[0], prices[1]
	if newest["unit_amount"] != num("2500") || newest["active"] != true || newest["metadata"].(map[string]any)["id"] != "7" || old["active"] != false {
		t.Fatalf("after an amount change: new %v, old %v", newest, old)
	}
	if p := dashboard(t, f, http.MethodGet, "/v1/products/"+prod, nil); p["default_price"] != newest["id"] {
		t.Fatalf("default price %v, want the new price %v", p["default_price"], newest["id"])
	}
	// The same amount again is one plain update, no new price.
	before := f.Writes()
	write(records(t, two, "price", mixer.OpUpsert, map[string]any{"id": num("7"), "stripe_id": newest["id"], "product_stripe_id": prod,
		"unit_amount": num("2500"), "currency": "usd"}, "prod-db", "0/D"))
	if w := f.Writes() - before; w != 1 || len(list(t, f, "prices")) != 2 {
		t.Fatalf("an unchanged amount made %d writes and %d prices", w, len(list(t, f, "prices")))
	}

	// Deleting the product archives it: Stripe refuses to delete a product
	// that has prices.
	write(records(t, two, "product", mixer.OpDelete, map[string]any{"stripe_id": prod}, "prod-db", "0/E"))
	if p := dashboard(t, f, http.MethodGet, "/v1/products/"+prod, nil); p["active"] != false {
		t.Fatalf("a deleted product with prices: %v, want archived", p)
	}
	// A product without prices is deleted; deleting it again is fine.
	write(records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num("2"), "stripe_id": nil, "name": "Bare"}, "prod-db", "0/F"))
	bare := list(t, f, "products")[0]["id"].(string)
	del := records(t, two, "product", mixer.OpDelete, map[string]any{"stripe_id": bare}, "prod-db", "0/G")
	write(del)
	write(records(t, two, "product", mixer.OpDelete, map[string]any{"stripe_id": bare}, "prod-db", "0/H"))
	if n := len(list(t, f, "products")); n != 1 {
		t.Fatalf("%d products after deleting the bare one, want 1", n)
	}
}

// TestProductDefaultPrice: a product record that maps its price to
// default_price_data creates the price with the product; a changed amount
// makes a new default price and archives the old one.
func TestProductDefaultPrice(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	f := stripefake.New(t)
	cat := stripeSystem(t, loadConfig(t, catalog, f.URL))
	sink := testSink(t, cat, nil)
	if err := sink.Write(ctx, records(t, cat, "item", mixer.OpUpsert, map[string]any{"id": num("5"), "stripe_id": nil, "name": "Gold", "price": num("1999")}, "shop", "1"), nil); err != nil {
		t.Fatal(err)
	}
	p := list(t, f, "products")[0]
	first := p["default_price"].(string)
	for i, amount := range []string{"1999", "2999"} { // the same amount changes nothing
		if err := sink.Write(ctx, records(t, cat, "item", mixer.OpUpsert, map[string]any{"id": num("5"), "stripe_id": p["id"], "name": "Gold", "price": num(amount)}, "shop", "2"+amount), nil); err != nil {
			t.Fatal(err)
		}
		if n := len(list(t, f, "prices")); n != 1+i {
			t.Fatalf("after amount %s: %d prices", amount, n)
		}
	}
	now := dashboard(t, f, http.MethodGet, "/v1/products/"+p["id"].(string), url.Values{"expand[0]": {"default_price"}})
	dp := now["default_price"].(map[string]any)
	if dp["unit_amount"] != num("2999") || dp["id"] == first {
		t.Fatalf("default price %v", dp)
	}
	if old := dashboard(t, f, http.MethodGet, "/v1/prices/"+first, nil); old["active"] != false {
		t.Fatalf("the old default price is %v, want archived", old)
	}
}

// TestSinkErrors: Stripe's refusal of one record is that record's
// permanent error with Stripe's message; a refused key and an outage are
// unavailable; a price without a product waits, then is set aside.
func TestSinkErrors(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	f := stripefake.New(t)
	two := stripeSystem(t, loadConfig(t, twoTables, f.URL))
	sink := testSink(t, two, nil)
	good := records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num("1"), "stripe_id": nil, "name": "A"}, "prod-db", "1")
	bad := records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num("2"), "stripe_id": "prod_missing", "name": "B"}, "prod-db", "2")
	err := sink.Write(ctx, append(good, bad...), nil)
	var re *connectors.RecordError
	if !errors.As(err, &re) || re.Index != 1 || !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "No such product: 'prod_missing'") {
		t.Fatalf("an update of a missing product: %v", err)
	}

	f.SetDown(true)
	sink.api.attempts = 2
	if err := sink.Write(ctx, records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num("3"), "name": "C"}, "prod-db", "3"), nil); !errors.Is(err, connectors.ErrUnavailable) || errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("while Stripe is down: %v", err)
	}
	f.SetDown(false)

	wrongKey := *two
	wrongKey.Settings = map[string]config.Setting{}
	for k, v := range two.Settings {
		wrongKey.Settings[k] = v
	}
	wrongKey.Settings[SettingAPIKey] = config.Setting{Value: config.NewSecret("rk_wrong")}
	if err := testSink(t, &wrongKey, nil).Write(ctx, good, nil); !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "api_key") {
		t.Fatalf("a refused key: %v", err)
	}

	orphan := records(t, two, "price", mixer.OpUpsert, map[string]any{"id": num("9"), "stripe_id": nil, "product_stripe_id": nil,
		"unit_amount": num("100"), "currency": "usd"}, "prod-db", "4")
	sink.wait = 50 * time.Millisecond
	err = sink.Write(ctx, orphan, nil)
	if err == nil || errors.Is(err, connectors.ErrPermanent) || errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "waiting") {
		t.Fatalf("a price without its product: %v, want an unclassified error (retried)", err)
	}
	time.Sleep(60 * time.Millisecond) // the wait itself is what is tested
	if err := sink.Write(ctx, orphan, nil); !errors.As(err, &re) || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a price still without its product after the wait: %v, want permanent", err)
	}
	if n := len(f.Calls()); n == 0 {
		t.Fatal("no calls")
	}
}

// TestRateLimitedAnswers: with 30% of calls answered 429, every record is
// written, each exactly once.
func TestRateLimitedAnswers(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	f := stripefake.New(t)
	f.RateLimit(30, "0")
	two := stripeSystem(t, loadConfig(t, twoTables, f.URL))
	sink := testSink(t, two, nil)
	for i := 0; i < 60; i++ {
		recs := records(t, two, "product", mixer.OpUpsert, map[string]any{"id": num(itoa(i)), "stripe_id": nil, "name": "P" + itoa(i)}, "prod-db", "0/"+itoa(i))
		if err := sink.Write(ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.RateLimit(0, "")
	seen := map[string]int{}
	for _, p := range list(t, f, "products") {
		seen[p["metadata"].(map[string]any)["id"].(string)]++
	}
	limited := 0
	for _, c := range f.Calls() {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if len(seen) != 60 || limited == 0 {
		t.Fatalf("%d distinct products of 60 (%d answers were 429)", len(seen), limited)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("product %s created %d times", id, n)
		}
	}
	t.Logf("60 creates took %d calls, %d of them answered 429", len(f.Calls())-1, limited)
}

func itoa(i int) string { return strconv.Itoa(i) }
