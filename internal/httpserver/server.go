// Package httpserver is the HTTP server of the ingest and pusher binaries:
// /healthz (the process is up), /readyz (it does its job), /metrics, and
// whatever else a service mounts (Stripe webhooks).
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	netpprof "net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sqlpipe/remix/internal/metrics"
)

// Readiness reports whether a service does its job; the reasons say what
// is wrong when it does not.
type Readiness func(ctx context.Context) (ready bool, reasons []string)

// Server serves the endpoints on one address.
type Server struct {
	srv *http.Server
	mux *http.ServeMux
	log *slog.Logger
	ln  net.Listener
}

// New builds the server. m may be nil (no /metrics). With pprof set it
// also serves Go's profiles under /debug/pprof/ (for the operator's own
// network only: profiles show code paths, not data).
func New(addr string, ready Readiness, m *metrics.Metrics, pprof bool, log *slog.Logger) (*Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		ok, reasons := ready(ctx)
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "not ready:\n"+ReasonLines(reasons))
			return
		}
		fmt.Fprint(w, "ready\n"+ReasonLines(reasons))
	})
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	}
	if pprof {
		mux.HandleFunc("/debug/pprof/", netpprof.Index)
		mux.HandleFunc("/debug/pprof/profile", netpprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", netpprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", netpprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http server on %s: %w", addr, err)
	}
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, mux: mux, log: log, ln: ln}, nil
}

// Handle mounts a handler on a pattern.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Addr is where the server listens.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts down within 5s.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(sctx)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	}
}

// ReasonLines formats readiness reasons one to a line, without trailing
// spaces; a reason that spans lines (a list of problems) has its further
// lines indented under it, so no two reasons run together.
func ReasonLines(reasons []string) string {
	var b strings.Builder
	for _, r := range reasons {
		for i, line := range strings.Split(strings.TrimSpace(r), "\n") {
			line = strings.TrimRight(line, " \t\r")
			if line == "" {
				continue
			}
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
