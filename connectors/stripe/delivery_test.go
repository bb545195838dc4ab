package stripe_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors/stripe/stripefake"
)

// steppedClock makes the fake stamp each change a second after the last,
// starting an hour ago: every event of an object has its own version.
func steppedClock(f *stripefake.Fake) {
	var mu sync.Mutex
	clock := time.Now().Add(-time.Hour)
	f.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	})
}

func deliver(t *testing.T, target string, body []byte, header string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestShuffledRepeatedDeliveries: every event delivered three times, in a
// shuffled order, to the ingest's endpoint: the row ends as the newest
// state. Forged, stale, unsigned and oversized deliveries are refused and
// change nothing.
func TestShuffledRepeatedDeliveries(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "stripe_postgresql_two_tables", fleetOptions{settings: map[string]string{"poll_interval": "1h"}})
	steppedClock(f.fake)
	f.dashboard(http.MethodPost, "/v1/products", url.Values{"name": {"v0"}, "metadata[id]": {"1"}})
	var prod struct {
		Data struct {
			Object struct{ ID string } `json:"object"`
		} `json:"data"`
	}
	_ = json.Unmarshal(f.fake.Events()[0], &prod)
	for i := 1; i <= 6; i++ {
		f.dashboard(http.MethodPost, "/v1/products/"+prod.Data.Object.ID, url.Values{"name": {"v" + itoa(i)}})
	}
	events := f.fake.Events()
	var all [][]byte
	for range 3 {
		for _, e := range events {
			all = append(all, e)
		}
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, e := range all {
		if code := deliver(t, f.url, e, stripefake.Sign(e, time.Now(), secret)); code != http.StatusOK {
			t.Fatalf("delivery answered %d", code)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.text(`SELECT product_name FROM products WHERE id = 1`) != "v6" {
		if time.Now().After(deadline) {
			t.Fatalf("after shuffled deliveries the row says %q, want v6 (%d row writes)",
				f.text(`SELECT product_name FROM products WHERE id = 1`), f.rowWrites("products"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.settle(time.Second)
	if got := f.text(`SELECT product_name FROM products WHERE id = 1`); got != "v6" {
		t.Fatalf("after %d shuffled deliveries the row says %q, want v6", len(all), got)
	}
	writes := f.rowWrites("products")
	t.Logf("%d deliveries of %d events: %d row writes, %d Stripe reads", len(all), len(events), writes, len(f.fake.Calls()))

	// A newer state, delivered only in ways that must be refused.
	f.dashboard(http.MethodPost, "/v1/products/"+prod.Data.Object.ID, url.Values{"name": {"forged"}})
	evs := f.fake.Events()
	last := evs[len(evs)-1]
	big := append(append([]byte(nil), last...), bytes.Repeat([]byte(" "), 1<<20)...)
	for name, c := range map[string]struct {
		body   []byte
		header string
		want   int
	}{
		"forged":    {last, stripefake.Sign(last, time.Now(), "whsec_not_ours"), http.StatusBadRequest},
		"stale":     {last, stripefake.Sign(last, time.Now().Add(-6*time.Minute), secret), http.StatusBadRequest},
		"unsigned":  {last, "", http.StatusBadRequest},
		"oversized": {big, stripefake.Sign(big, time.Now(), secret), http.StatusRequestEntityTooLarge},
	} {
		if code := deliver(t, f.url, c.body, c.header); code != c.want {
			t.Errorf("%s delivery: %d, want %d", name, code, c.want)
		}
	}
	f.settle(time.Second)
	if got, n := f.text(`SELECT product_name FROM products WHERE id = 1`), f.rowWrites("products"); got != "v6" || n != writes {
		t.Fatalf("refused deliveries changed the row: %q, %d writes (before %d)", got, n, writes)
	}
}

// TestCatchUpAloneConverges: with no webhook delivered at all, the Events
// API catch-up brings every change.
func TestCatchUpAloneConverges(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "stripe_postgresql_two_tables", fleetOptions{settings: map[string]string{"poll_interval": "1s"}})
	steppedClock(f.fake)
	f.dashboard(http.MethodPost, "/v1/products", url.Values{"name": {"first"}, "metadata[id]": {"1"}})
	var prod struct {
		Data struct {
			Object struct{ ID string } `json:"object"`
		} `json:"data"`
	}
	_ = json.Unmarshal(f.fake.Events()[0], &prod)
	f.dashboard(http.MethodPost, "/v1/products/"+prod.Data.Object.ID, url.Values{"name": {"second"}})
	f.dashboard(http.MethodPost, "/v1/prices", url.Values{"product": {prod.Data.Object.ID}, "unit_amount": {"700"}, "currency": {"eur"}, "metadata[id]": {"1"}})
	f.waitFor("the catch-up to bring the product and its price", 60*time.Second, func() bool {
		return f.text(`SELECT product_name FROM products WHERE id = 1`) == "second" &&
			f.text(`SELECT unit_amount::text || currency FROM prices WHERE id = 1`) == "700eur"
	})
}
