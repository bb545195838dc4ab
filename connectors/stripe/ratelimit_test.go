package stripe_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// TestFourPushersShareTheRateLimit: four pushers write to Stripe under
// rate_limit: 25 (bucket 25). In any 10 seconds the calls Stripe
// receives stay within what the shared limiter admits, 25 × 10 + 25,
// counted from the fake's own log of calls; every row becomes exactly one
// product.
//
// The sink charges the shared limit call by call (connectors.SelfPacing),
// so however large a batch, its calls reach Stripe at the limit's pace.
func TestFourPushersShareTheRateLimit(t *testing.T) {
	t.Parallel()
	if testenv.Short() {
		t.Skip("takes about 15 seconds")
	}
	f := newFleet(t, "stripe_postgresql_two_tables", fleetOptions{settings: map[string]string{"poll_interval": "1h"},
		maxBatch: 10, replace: [][2]string{{"  rate_limit: 10\n  rate_bucket_size: 100\n\n  receive_mixer:\n    product:", "  rate_limit: 25\n  rate_bucket_size: 25\n\n  receive_mixer:\n    product:"}}})
	if gw := f.cfg.System("payment-gateway"); gw.RateLimit != 25 || gw.RateBucketSize != 25 {
		t.Fatalf("rate limit %v, bucket %d", gw.RateLimit, gw.RateBucketSize)
	}
	log := slog.New(slog.DiscardHandler)
	for range 3 { // and the fleet's own: four
		f.startPusher(log)
	}
	const rows = 330
	f.app(`INSERT INTO products (product_name) SELECT 'P' || g FROM generate_series(1, $1) g`, rows)
	creates := func() []time.Time {
		var at []time.Time
		for _, c := range f.fake.Calls() {
			if c.Method == http.MethodPost && c.Path == "/v1/products" && strings.HasPrefix(c.IdempotencyKey, "remix:") {
				at = append(at, c.At)
			}
		}
		return at
	}
	f.waitFor("every row in Stripe", 60*time.Second, func() bool { return len(creates()) >= rows })
	at := creates()
	const window, rate, bucket = 10 * time.Second, 25, 25
	worst := 0
	for i := range at { // every window of 10 s that starts at a call
		n := 0
		for _, b := range at[i:] {
			if b.Sub(at[i]) < window {
				n++
			}
		}
		worst = max(worst, n)
	}
	perSecond := map[int]int{}
	for _, a := range at {
		perSecond[int(a.Sub(at[0])/time.Second)]++
	}
	t.Logf("creates per second from the first: %v", perSecond)
	seen := map[string]bool{}
	for _, c := range f.fake.Calls() {
		if c.Method == http.MethodPost && c.Path == "/v1/products" && c.Status == http.StatusOK && !c.Replayed {
			id := c.Params["metadata[id]"][0]
			if seen[id] {
				t.Fatalf("row %s created twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != rows {
		t.Fatalf("%d products for %d rows", len(seen), rows)
	}
	t.Logf("%d creates; busiest 10 s: %d calls (bound %d)", len(at), worst, rate*10+bucket)
	if worst < 200 {
		t.Fatalf("only %d calls in the busiest 10 s: the test did not press on the limit", worst)
	}
	// Calls are counted as they arrive, a moment after the limiter
	// admitted them: a call admitted just before a window may arrive in
	// it. A fifth of a second of that (5 calls at 25/s) is measurement, not
	// the limit.
	if bound := rate*int(window/time.Second) + bucket + rate/5; worst > bound {
		t.Fatalf("%d calls reached Stripe in 10 s, more than the limiter's bound %d (with 0.2 s of arrival jitter)", worst, bound)
	}
}
