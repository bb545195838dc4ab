package testenv

import (
	"net/http"
	"os"
	"testing"
	"time"
)

// StripeMockURL returns the address of the stripe-mock that
// scripts/test-servers.sh starts (REMIX_TEST_STRIPE_MOCK_URL): Stripe's API
// validator, which checks every request against Stripe's OpenAPI
// specification and answers with fixtures. Without it the test skips, or
// fails under CI.
func StripeMockURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REMIX_TEST_STRIPE_MOCK_URL")
	if u == "" {
		Missing(t, "REMIX_TEST_STRIPE_MOCK_URL is not set")
	}
	req, err := http.NewRequest(http.MethodGet, u+"/v1/products?limit=1", nil)
	if err != nil {
		t.Fatalf("REMIX_TEST_STRIPE_MOCK_URL: %v", err)
	}
	req.SetBasicAuth("sk_test_remix", "")
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		Missing(t, "cannot reach stripe-mock at %s: %v", u, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		Missing(t, "stripe-mock at %s answered %s", u, res.Status)
	}
	return u
}
