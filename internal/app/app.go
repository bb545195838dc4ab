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
	"sync"

	"github.com/sqlpipe/remix/config"
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
}

// Setup builds the logger, loads the configuration and connects to Redis.
func Setup(ctx context.Context, c cli.Common, f cli.Fleet, stderr io.Writer) (*Env, error) {
	log, err := c.Logger(stderr)
	if err != nil {
		return nil, err
	}
	cli.QuietRedis(log)
	cfg, err := c.Load()
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			return nil, fmt.Errorf("the configuration has %d problems:\n%w", len(errs), err)
		}
		return nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w.Error())
	}
	cc, err := c.Coord(ctx, f, log)
	if err != nil {
		return nil, err
	}
	return &Env{Log: log, Config: cfg, Coord: cc}, nil
}

// Run runs an ingest, a pusher or both until ctx ends.
func Run(ctx context.Context, o Options, stderr io.Writer) error {
	env, err := Setup(ctx, o.Common, o.Fleet, stderr)
	if err != nil {
		return err
	}
	defer env.Coord.Redis().Close()
	m := metrics.New()
	var ready []httpserver.Readiness
	var runs []func(context.Context) error
	if o.Ingest {
		svc, err := ingest.New(ingest.Config{Config: env.Config, Coord: env.Coord, Connectors: builtin.Connectors(),
			Systems: o.Sources, AcceptNonDurableRedis: o.AcceptLoss, Logger: env.Log.With("role", "ingest"), Metrics: m})
		if err != nil {
			return err
		}
		ready = append(ready, svc.Ready)
		runs = append(runs, svc.Run)
	}
	if o.Pusher {
		svc, err := pusher.New(pusher.Config{Config: env.Config, Coord: env.Coord, Connectors: builtin.Connectors(),
			Systems: o.Targets, Logger: env.Log.With("role", "pusher"), Metrics: m})
		if err != nil {
			return err
		}
		ready = append(ready, svc.Ready)
		runs = append(runs, svc.Run)
	}
	srv, err := httpserver.New(o.HTTPAddr, all(ready), m, o.PProf, env.Log)
	if err != nil {
		return err
	}
	env.Log.Info("http listening", "addr", srv.Addr(), "systems", len(env.Config.Systems), "models", len(env.Config.Models))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	runs = append(runs, srv.Serve)
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	env.Log.Info("stopped")
	return nil
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
