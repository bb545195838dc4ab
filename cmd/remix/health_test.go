package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("warehouse: target unavailable\n"))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/healthz")
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// A port nothing listens on: taken, then released.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	_ = ln.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"healthy", []string{srv.URL + "/healthz"}, 0, "200 OK\nok\n"},
		{"not ready prints why", []string{srv.URL + "/readyz"}, 1, "503 Service Unavailable\nwarehouse: target unavailable\n"},
		{"a redirect is not health", []string{srv.URL + "/moved"}, 1, "302 Found\n"},
		{"nobody listens", []string{closed}, 1, ""},
		{"no answer in time", []string{"--timeout", "100ms", srv.URL + "/slow"}, 1, ""},
		{"no URL", nil, 2, ""},
		{"not a URL", []string{"127.0.0.1:8080/readyz"}, 2, ""},
		{"two URLs", []string{srv.URL, srv.URL}, 2, ""},
		{"help", []string{"--help"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			start := time.Now()
			code := healthcheck(context.Background(), tc.args, &out, &errOut)
			if code != tc.code || out.String() != tc.out {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q", code, out.String(), errOut.String(), tc.code, tc.out)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

// TestHealthcheckIsACommand: the image's health checks call it as
// `remix healthcheck URL`.
func TestHealthcheckIsACommand(t *testing.T) {
	t.Parallel()
	code, _, errOut := runRemix(t, "healthcheck")
	if code != 2 || !strings.Contains(errOut, "usage: remix healthcheck") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
