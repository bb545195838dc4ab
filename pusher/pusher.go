// Package pusher runs the second half of Remix: for each target system it
// joins the target's consumer group on the streams of the models it pushes,
// owns its share of the partitions, maps each object through the push mixer
// and writes batches to the target under the rate limit the whole fleet
// shares. Pushers are stateless: run as many as the target can take.
package pusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/metrics"
)

// Config holds what a pusher needs.
type Config struct {
	// Config is the loaded configuration. Required.
	Config *config.Config
	// Coord is the Redis substrate. Required.
	Coord *coord.Client
	// Connectors builds sinks by type. Required.
	Connectors connectors.Registry
	// Systems limits the targets this process serves (--system, to scale one
	// target on its own). Default: every system with a push mixer.
	Systems []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *metrics.Metrics
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Config == nil || c.Coord == nil || c.Connectors == nil {
		return errors.New("pusher: Config, Coord and Connectors are required")
	}
	return nil
}

// Service is a running pusher.
type Service struct {
	cfg     Config
	log     *slog.Logger
	targets []*target
}

// New prepares a runner per target.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	systems, err := cfg.Connectors.Select(cfg.Config, cfg.Systems, connectors.Write, s.log)
	if err != nil {
		return nil, fmt.Errorf("pusher: %w", err)
	}
	for _, sys := range systems {
		s.targets = append(s.targets, &target{svc: s, sys: sys, log: s.log.With("target", sys.Name)})
	}
	return s, nil
}

// Run pushes to every target until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range s.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Ready reports whether every target is open and writable, and Redis
// answers.
func (s *Service) Ready(ctx context.Context) (bool, []string) {
	ready := true
	var reasons []string
	if err := s.cfg.Coord.Redis().Ping(ctx).Err(); err != nil {
		ready = false
		reasons = append(reasons, "redis: "+err.Error())
	}
	for _, t := range s.targets {
		ok, detail := t.status()
		reasons = append(reasons, t.sys.Name+": "+detail)
		ready = ready && ok
	}
	return ready, reasons
}

type target struct {
	svc *Service
	sys *config.System
	log *slog.Logger

	mu       sync.Mutex
	ok       bool
	detail   string
	consumer *coord.Consumer // while consuming
}

func (t *target) set(ok bool, detail string) {
	t.mu.Lock()
	t.ok, t.detail = ok, detail
	t.mu.Unlock()
}

// status says whether the target is open and every partition this process
// owns moves; partitions that cannot (writes failing in a way the target
// does not classify, a full dead-letter queue) are listed.
func (t *target) status() (bool, string) {
	t.mu.Lock()
	ok, detail, cs := t.ok, t.detail, t.consumer
	t.mu.Unlock()
	if detail == "" {
		return false, "starting"
	}
	if cs != nil {
		if stalled := cs.Stalled(); len(stalled) > 0 {
			return false, detail + "; " + strings.Join(stalled, "; ")
		}
	}
	return ok, detail
}

// run opens the sink (retrying while the target is down or does not fit its
// push mixer) and consumes until ctx ends.
func (t *target) run(ctx context.Context) {
	pause := time.Second
	for ctx.Err() == nil {
		deps := connectors.SinkDeps{Logger: t.log, Models: t.svc.cfg.Config.Models}
		if lim, lerr := limiterFor(t.svc.cfg.Coord, t.sys); lerr == nil && lim != nil {
			deps.Limiter = lim
		}
		sink, err := t.svc.cfg.Connectors[t.sys.Type].NewSink(t.sys, deps)
		if err == nil {
			err = sink.Open(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.set(false, "cannot open: "+err.Error())
			t.log.Error("cannot open the target; trying again", "error", err, "in", pause)
			connectors.Sleep(ctx, pause)
			pause = min(pause*2, 30*time.Second)
			continue
		}
		pause = time.Second
		t.set(true, "pushing")
		err = t.consume(ctx, sink)
		_ = sink.Close(context.WithoutCancel(ctx))
		if err != nil && ctx.Err() == nil {
			t.set(false, err.Error())
			t.log.Error("consuming failed; starting again", "error", err)
			connectors.Sleep(ctx, pause)
		}
	}
}

func (t *target) consume(ctx context.Context, sink connectors.Sink) error {
	c := t.svc.cfg.Coord
	models := t.sys.Push.Models()
	if err := c.EnsureTopology(ctx, models); err != nil {
		return err
	}
	limiter, err := limiterFor(c, t.sys)
	if err != nil {
		return err
	}
	cs := c.NewConsumer(t.sys.Name, models)
	cs.SetWorkers(t.sys.WritesInFlight)
	cs.SetBatchTime(t.sys.BatchTime)
	t.mu.Lock()
	t.consumer = cs
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.consumer = nil
		t.mu.Unlock()
	}()
	var h coord.Handler = &handler{t: t, sink: sink, limiter: limiter, consumer: cs, partitions: c.Config().Partitions, releases: releasesRecords(sink)}
	if b, ok := sink.(connectors.Buffered); ok {
		h = &bufferedHandler{Handler: h, sink: b}
	}
	t.log.Info("pushing", "models", models, "consumer", cs.ID(), "writes_in_flight", cs.Workers(), "batch_time", cs.BatchTime())
	stop := make(chan struct{})
	defer close(stop)
	if m := t.svc.cfg.Metrics; m != nil {
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			var dead, lapses, conflicts, bulk, refused int64 // already counted
			var lastBacklog time.Time
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					m.PushPartitions.WithLabelValues(t.sys.Name).Set(float64(len(cs.Owned())))
					_, d, _, _ := cs.Stats()
					m.PushDeadLettered.WithLabelValues(t.sys.Name).Add(float64(d - dead))
					l := cs.Lapses()
					m.PushLeaseLapses.WithLabelValues(t.sys.Name).Add(float64(l - lapses))
					dead, lapses = d, l
					m.PushStalled.WithLabelValues(t.sys.Name).Set(float64(len(cs.Stalled())))
					if cr, ok := sink.(connectors.ConflictReporter); ok {
						n := cr.Conflicts()
						m.PushConflicts.WithLabelValues(t.sys.Name).Add(float64(n - conflicts))
						conflicts = n
					}
					if br, ok := sink.(connectors.BulkReporter); ok {
						n, f := br.BulkWrites()
						m.PushBulkRecords.WithLabelValues(t.sys.Name).Add(float64(n - bulk))
						m.PushBulkRefused.WithLabelValues(t.sys.Name).Add(float64(f - refused))
						bulk, refused = n, f
					}
					if st, err := c.DeadLetterStats(ctx, t.sys.Name); err == nil {
						m.ObserveDeadLetters(t.sys.Name, st.Entries, st.Bytes, st.Dropped)
					}
					if time.Since(lastBacklog) >= backlogEvery {
						lastBacklog = time.Now()
						t.observeBacklog(ctx, c, models)
					}
				}
			}
		}()
	}
	return cs.Run(ctx, h)
}
