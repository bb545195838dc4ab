// Package app assembles Remix processes from their settings: an ingest, a
// pusher, or both in one process (`remix run`), with their HTTP server; and
// the operator commands (dead letters, reset). The binaries in cmd/ only
// parse flags and call it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/ingest"
	"github.com/sqlpipe/remix/internal/cli"
	"github.com/sqlpipe/remix/internal/httpserver"
	"github.com/sqlpipe/remix/internal/metrics"
	"github.com/sqlpipe/remix/pusher"
)

// Options say what a process runs.
type Options struct {
	cli.Common
	cli.Fleet
	HTTPAddr   string
	Ingest     bool
	Pusher     bool
	Sources    []string // --system for the ingest
	Targets    []string // --system for the pusher
	AcceptLoss bool     // --accept-redis-data-loss
	PProf      bool     // --pprof: serve /debug/pprof on the HTTP address
}

// Env is what every command starts from: logger, configuration, Redis.
type Env struct {
	Log    *slog.Logger
	Config *config.Config
	Coord  *coord.Client
	// Redis says which Redis and namespace the command reads, for the
	// output: "127.0.0.1:6379 db 0, namespace remix".
	Redis string
}

// ErrReported is returned by a command that has printed what went wrong
// (for each of several items) and must exit non-zero.
var ErrReported = errors.New("failures reported above")

// RequireFleet refuses a namespace where no Remix process has recorded
// anything: the command would otherwise read an empty queue of another
// Redis (REDIS_URL unset: the default one) and say that all is well.
func (e *Env) RequireFleet(ctx context.Context) error {
	ok, err := e.Coord.HasTopology(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no Remix fleet has run in %s: check --redis (REDIS_URL) and --namespace (REMIX_NAMESPACE)", e.Redis)
	}
	return nil
}

// Setup builds the logger, loads the configuration and connects to Redis
// (one attempt: the operator commands fail at once when Redis is down),
// for a command that also connects to the sources or targets.
func Setup(ctx context.Context, c cli.Common, f cli.Fleet, stderr io.Writer) (*Env, error) {
	return setup(ctx, c, f, stderr, false)
}

// SetupRedis is Setup for a command that reads and writes Redis alone
// (status, the dead-letter commands): an unset ${NAME} in the configuration
// is not an error, so an operator can run it without the systems' secrets
// (DSNs, API keys) at hand.
func SetupRedis(ctx context.Context, c cli.Common, f cli.Fleet, stderr io.Writer) (*Env, error) {
	return setup(ctx, c, f, stderr, true)
}

func setup(ctx context.Context, c cli.Common, f cli.Fleet, stderr io.Writer, redisOnly bool) (*Env, error) {
	log, cfg, err := load(c, stderr, redisOnly)
	if err != nil {
		return nil, err
	}
	cc, err := c.Coord(ctx, f, cfg, log)
	if err != nil {
		return nil, err
	}
	opts, _ := c.RedisOptions() // Coord parsed it already
	where := fmt.Sprintf("the Redis at %s db %d, namespace %s", opts.Addr, opts.DB, cc.Config().Namespace)
	return &Env{Log: log, Config: cfg, Coord: cc, Redis: where}, nil
}

// load builds the logger and loads the configuration; unsetOK tolerates
// an unset ${NAME} (and says nothing of it), for commands that never use
// the values.
func load(c cli.Common, stderr io.Writer, unsetOK bool) (*slog.Logger, *config.Config, error) {
	log, err := c.Logger(stderr)
	if err != nil {
		return nil, nil, err
	}
	cli.QuietRedis(log)
	var cfg *config.Config
	if unsetOK {
		cfg, err = c.LoadUnsetWarn()
	} else {
		cfg, err = c.Load()
	}
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			return nil, nil, fmt.Errorf("the configuration has %s:\n%w", cli.Plural(len(errs), "problem", "problems"), err)
		}
		return nil, nil, err
	}
	for _, w := range cfg.Warnings {
		if !slices.Contains(cfg.Unset, w) {
			log.Warn("configuration: " + w.Error())
		}
	}
	return log, cfg, nil
}

// Run runs an ingest, a pusher or both until ctx ends. The HTTP server
// starts first: while Redis cannot be reached the process keeps trying,
// with /healthz 200 and /readyz 503 saying why, as it does for a source or
// target that is down.
func Run(ctx context.Context, o Options, stderr io.Writer) error {
	log, cfg, err := load(o.Common, stderr, false)
	if err != nil {
		return err
	}
	// What waiting for Redis cannot fix fails now: a malformed URL, a
	// --system that names no system this process can serve.
	if _, err := o.Common.RedisOptions(); err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	if _, err := builtin.Connectors().Select(cfg, o.Sources, connectors.Read, quiet); o.Ingest && err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if _, err := builtin.Connectors().Select(cfg, o.Targets, connectors.Write, quiet); o.Pusher && err != nil {
		return fmt.Errorf("pusher: %w", err)
	}
	m := metrics.New()
	st := &startup{}
	st.waiting("connecting to Redis")
	srv, err := httpserver.New(o.HTTPAddr, st.ready, m, o.PProf, log)
	if err != nil {
		return err
	}
	log.Info("http listening", "addr", srv.Addr(), "systems", len(cfg.Systems), "models", len(cfg.Models))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := func(run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				cancel(err)
			}
		}()
	}
	start(srv.Serve)
	cc, err := runServices(ctx, o, log, cfg, m, st, srv, start)
	if err != nil {
		cancel(err)
	}
	wg.Wait()
	if cc != nil {
		cc.Redis().Close()
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped")
	return nil
}

// runServices connects to Redis, retrying until it answers or ctx ends,
// then starts the ingest and the pusher and hands readiness over to them.
// It returns the Redis connection for the caller to close once they stop
// (nil when ctx ended first).
func runServices(ctx context.Context, o Options, log *slog.Logger, cfg *config.Config, m *metrics.Metrics, st *startup,
	srv *httpserver.Server, start func(func(context.Context) error)) (*coord.Client, error) {
	cc, err := connect(ctx, o, cfg, log, st)
	if cc == nil {
		return nil, err
	}
	var ready []httpserver.Readiness
	var runs []func(context.Context) error
	if o.Ingest {
		svc, err := ingest.New(ingest.Config{Config: cfg, Coord: cc, Connectors: builtin.Connectors(),
			Systems: o.Sources, AcceptNonDurableRedis: o.AcceptLoss, Logger: log.With("role", "ingest"), Metrics: m})
		if err != nil {
			return cc, err
		}
		ready = append(ready, svc.Ready)
		runs = append(runs, svc.Run)
		if h := svc.Webhooks(); h != nil {
			// Every replica takes deliveries, leading or standing by.
			srv.Handle("/webhooks/", h)
			log.Info("accepting webhooks", "systems", svc.WebhookSystems(), "path", "/webhooks/{system}")
		}
	}
	if o.Pusher {
		svc, err := pusher.New(pusher.Config{Config: cfg, Coord: cc, Connectors: builtin.Connectors(),
			Systems: o.Targets, Logger: log.With("role", "pusher"), Metrics: m})
		if err != nil {
			return cc, err
		}
		ready = append(ready, svc.Ready)
		runs = append(runs, svc.Run)
	}
	st.set(all(ready))
	for _, run := range runs {
		start(run)
	}
	return cc, nil
}

// all is ready when every part is.
func all(parts []httpserver.Readiness) httpserver.Readiness {
	return func(ctx context.Context) (bool, []string) {
		ok := true
		var reasons []string
		for _, p := range parts {
			r, why := p(ctx)
			ok = ok && r
			reasons = append(reasons, why...)
		}
		return ok, reasons
	}
}
