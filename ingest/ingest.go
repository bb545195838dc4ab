// Package ingest runs the first half of Remix: for each source system it
// takes the source's reader lock (or stands by while another ingest holds
// it), reads changes, maps them through the receive mixer, validates them
// against the models and publishes the objects to Redis, confirming a source
// position only once everything before it is durable there. Records that
// cannot be mapped or validated go to the source's dead-letter queue.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/metrics"
)

// Config holds what an ingest needs.
type Config struct {
	// Config is the loaded configuration. Required.
	Config *config.Config
	// Coord is the Redis substrate. Required.
	Coord *coord.Client
	// Connectors builds sources by type. Required.
	Connectors connectors.Registry
	// Systems limits the sources this process reads. Default: every system
	// with a receive mixer whose connector can read.
	Systems []string
	// AcceptNonDurableRedis lets the ingest run against a Redis that keeps no
	// AOF, where a Redis restart loses objects whose source positions were
	// already confirmed. Default false: refuse.
	AcceptNonDurableRedis bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *metrics.Metrics
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Config == nil || c.Coord == nil || c.Connectors == nil {
		return errors.New("ingest: Config, Coord and Connectors are required")
	}
	return nil
}

// Service is a running ingest.
type Service struct {
	cfg       Config
	log       *slog.Logger
	sources   []*sourceRunner
	receivers map[string]*receiver // by system name
}

// New checks the configuration and prepares a runner per source.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	systems, err := cfg.Connectors.Select(cfg.Config, cfg.Systems, connectors.Read, s.log)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	for _, sys := range systems {
		conn := cfg.Connectors[sys.Type]
		if conn.NewSource != nil {
			s.sources = append(s.sources, &sourceRunner{svc: s, sys: sys, log: s.log.With("source", sys.Name)})
		}
		if conn.NewReceiver != nil {
			if err := s.addReceiver(sys, conn); err != nil {
				s.closeReceivers(context.Background())
				return nil, fmt.Errorf("ingest: %s: %w", sys.Name, err)
			}
		}
	}
	return s, nil
}

// Run checks Redis's durability, then reads every source until ctx ends.
// While Redis does not answer the check is tried again, with a growing
// pause (readiness says why meanwhile); a Redis without AOF is refused
// unless the risk was accepted.
func (s *Service) Run(ctx context.Context) error {
	d, err := s.durability(ctx)
	if err != nil {
		return nil // ctx ended
	}
	if err := d.RequireDurable(s.cfg.AcceptNonDurableRedis); err != nil {
		return err
	}
	if !d.AOF {
		s.log.Warn("running on a Redis without AOF: a Redis restart can lose changes already confirmed to the sources")
	}
	defer s.closeReceivers(context.WithoutCancel(ctx))
	defer s.startReporting(ctx)()
	var wg sync.WaitGroup
	for _, r := range s.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// durability reads Redis's persistence settings, trying again until Redis
// answers or ctx ends.
func (s *Service) durability(ctx context.Context) (coord.Durability, error) {
	pause := time.Second
	for {
		d, err := s.cfg.Coord.CheckDurability(ctx)
		if err == nil || ctx.Err() != nil {
			return d, ctx.Err()
		}
		s.log.Error("cannot read Redis's persistence settings; trying again", "error", err, "in", pause)
		connectors.Sleep(ctx, pause)
		pause = min(2*pause, 15*time.Second)
	}
}

// Ready reports whether every source is read or stood by for, and Redis
// answers.
func (s *Service) Ready(ctx context.Context) (bool, []string) {
	ready := true
	var reasons []string
	if err := s.cfg.Coord.Redis().Ping(ctx).Err(); err != nil {
		ready = false
		reasons = append(reasons, "redis: "+err.Error())
	}
	for _, r := range s.sources {
		st, detail := r.status()
		reason := r.sys.Name + ": " + st
		if detail != "" {
			reason += ": " + detail
		}
		reasons = append(reasons, reason)
		if st != stateStreaming && st != stateSnapshot && st != stateStandby {
			ready = false
		}
	}
	return ready, reasons
}

// Source states, for readiness.
const (
	stateStarting  = "starting"
	stateStandby   = "standby"   // another ingest holds the reader lock
	stateSnapshot  = "snapshot"  // leading, copying the tables
	stateStreaming = "streaming" // leading, reading changes
	stateFailing   = "failing"   // leading attempt failed; retrying
	stateStopped   = "stopped"   // needs an operator (a lost slot)
	stateDegraded  = "degraded"  // leading, but some changes are dead-lettered for a problem of the source (connectors.ProblemReporter)
)

type sourceRunner struct {
	svc *Service
	sys *config.System
	log *slog.Logger

	mu      sync.Mutex
	state   string
	detail  string
	since   time.Time
	leading connectors.Source // the source read while leading
	token   atomic.Int64      // the reader lock's holder number while this runner holds it, for status reports
}

func (r *sourceRunner) set(state, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != state {
		r.since = time.Now()
	}
	r.state, r.detail = state, detail
}

func (r *sourceRunner) status() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == "" {
		return stateStarting, ""
	}
	if r.leading != nil && r.state == stateStreaming {
		if p, ok := r.leading.(connectors.ProblemReporter); ok {
			if err := p.Problem(); err != nil {
				return stateDegraded, err.Error()
			}
		}
		if p, ok := progressOf(r.leading); ok && p.Snapshotting {
			return stateSnapshot, fmt.Sprintf("%d of about %d rows", p.SnapshotRows, p.SnapshotEstimate)
		}
	}
	return r.state, r.detail
}
