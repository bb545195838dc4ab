package stripe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// TestCheckKey: a key Stripe accepts passes, a restricted one too, one it
// refuses is an error at api_key, an API that does not answer one at
// api_base.
func TestCheckKey(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/balance" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Header.Get("Authorization") {
		case "Bearer sk_test_good":
			w.Write([]byte(`{"object": "balance", "available": []}`))
		case "Bearer rk_test_restricted":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error": {"type": "invalid_request_error", "message": "The provided key does not have the required permissions"}}`))
		default:
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****"}}`))
		}
	}))
	defer srv.Close()
	check := func(base, key string) config.Errors {
		sys := &config.System{Name: "billing", Type: Type, Settings: config.Settings{
			SettingAPIKey:  config.Setting{Value: config.NewSecret(key), Set: true},
			SettingAPIBase: config.Setting{Value: base, Set: true},
		}}
		errs, _ := newSink(sys, connectors.SinkDeps{}, nil).Check(context.Background(), nil)
		return errs
	}
	if errs := check(srv.URL, "sk_test_good"); len(errs) != 0 {
		t.Fatalf("a good key: %v", errs)
	}
	if errs := check(srv.URL, "rk_test_restricted"); len(errs) != 0 {
		t.Fatalf("a restricted key: %v", errs)
	}
	if errs := check(srv.URL, "sk_test_bad"); len(errs) != 1 || errs[0].Key != "billing.api_key" || !strings.Contains(errs[0].Msg, "Stripe refuses the API key") {
		t.Fatalf("a bad key: %v", errs)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if errs := check(closed.URL, "sk_test_good"); len(errs) != 1 || errs[0].Key != "billing.api_base" {
		t.Fatalf("no API: %v", errs)
	}
}
