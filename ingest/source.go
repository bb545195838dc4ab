package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/metrics"
)

// run keeps reading the source until ctx ends: take the lock (or stand by),
// lead, and after a failure try again with a growing pause.
func (r *sourceRunner) run(ctx context.Context) {
	c := r.svc.cfg.Coord
	pause := time.Second
	for ctx.Err() == nil {
		r.set(stateStandby, "waiting for the reader lock")
		lock, err := c.AcquireReader(ctx, r.sys.Name)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("reader lock", "error", err)
				connectors.Sleep(ctx, pause)
			}
			continue
		}
		r.gauge(1)
		r.token.Store(lock.Token())
		err = r.lead(ctx, lock)
		r.token.Store(0)
		r.gauge(0)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = lock.Release(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, connectors.ErrPositionLost):
			r.set(stateStopped, err.Error())
			r.log.Error("SOURCE STOPPED: it cannot resume where it stopped; nothing is read until an operator acts", "error", err)
			connectors.Sleep(ctx, time.Minute) // check again later: `remix reset` may have fixed it
		case errors.Is(err, coord.ErrLockLost), errors.Is(err, coord.ErrFenced):
			r.log.Warn("lost the reader lock; standing by", "error", err)
		case errors.Is(err, coord.ErrDeadLettersFull):
			r.set(stateFailing, "the dead-letter queue is full: replay or drop dead letters (remix dlq), or raise dead_letter_max_entries / dead_letter_max_bytes")
			r.log.Error("the source's dead-letter queue is full: nothing more is published (or confirmed) until room is made", "error", err, "in", pause)
			connectors.Sleep(ctx, pause)
			pause = min(pause*2, 30*time.Second)
			continue
		default:
			r.set(stateFailing, err.Error())
			r.log.Error("reading failed; trying again", "error", err, "in", pause)
			connectors.Sleep(ctx, pause)
			pause = min(pause*2, 30*time.Second)
			continue
		}
		pause = time.Second
	}
}

func (r *sourceRunner) gauge(v float64) {
	if m := r.svc.cfg.Metrics; m != nil {
		m.IngestLeader.WithLabelValues(r.sys.Name).Set(v)
	}
}

// lead reads the source while this process holds its lock: source →
// receive mixer → fenced publish → confirm.
func (r *sourceRunner) lead(ctx context.Context, lock *coord.ReaderLock) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lock.Lost():
			cancel(coord.ErrLockLost)
		case <-ctx.Done():
		}
	}()
	c := r.svc.cfg.Coord
	m := newMapper(r.svc.cfg.Config, r.sys)
	if err := c.EnsureTopology(ctx, m.models()); err != nil {
		return err
	}
	for model, targets := range m.targets {
		if err := c.EnsureGroups(ctx, model, targets); err != nil {
			return err
		}
	}
	conn := r.svc.cfg.Connectors[r.sys.Type]
	deps := connectors.SourceDeps{Checkpoints: FencedCheckpoints(c, r.sys.Name, lock), Logger: r.log}
	if r.sys.RateLimit > 0 {
		lim, err := c.NewLimiter(r.sys.Name, r.sys.RateLimit, r.sys.RateBucketSize)
		if err != nil {
			return err
		}
		deps.Limiter = lim
	}
	src, err := conn.NewSource(r.sys, deps)
	if err != nil {
		return err
	}
	if err := src.Open(ctx); err != nil {
		return causeOr(ctx, sourceError(err))
	}
	defer src.Close(context.WithoutCancel(ctx))
	r.setLeading(src)
	defer r.setLeading(nil)
	r.log.Info("reading source", "token", lock.Token())
	// Two stages: this goroutine reads and maps; publish runs on another
	// and confirms positions strictly in order, so mapping the next batch
	// overlaps the Redis round trip of this one.
	// One job waits while another is published: a deeper queue adds only
	// memory (a snapshot job is a whole chunk), not overlap.
	jobs := make(chan job, 1)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for j := range jobs {
			if err := r.publish(ctx, lock, src, j); err != nil {
				cancel(err)
				for range jobs { // drain: nothing more may be confirmed
				}
				return
			}
		}
	}()
	defer func() {
		close(jobs)
		<-published
	}()
	r.set(stateStreaming, "") // or snapshot: status asks the source
	for {
		batch, err := src.Next(ctx)
		if err != nil {
			return causeOr(ctx, sourceError(err))
		}
		j := job{batch: batch, items: m.items(batch), changes: len(batch.Changes), commits: commitRuns(batch.Changes)}
		if rc, ok := src.(connectors.Recycler); ok {
			rc.Recycle(batch.Changes)
		}
		j.batch.Changes = nil // mapped: only the items are published
		select {
		case jobs <- j:
		case <-ctx.Done():
			return causeOr(ctx, ctx.Err())
		}
	}
}

// job is a mapped batch on its way to Redis.
type job struct {
	batch   connectors.Batch // its Changes dropped once mapped
	items   []coord.Item
	changes int // how many changes the batch had
	commits []commitRun
}

// commitRun is a run of n changes of one commit time: what the latency
// histogram observes once per change, without keeping the changes.
type commitRun struct {
	at int64 // Unix nanoseconds: 16 bytes a run, where a time.Time would make 32
	n  int
}

// commitRuns lists the commit times of a batch's changes, run by run (a
// transaction's changes share one); changes without one (a snapshot's)
// are left out.
func commitRuns(changes []connectors.Change) []commitRun {
	var runs []commitRun
	for i := range changes {
		if changes[i].CommitTime.IsZero() {
			continue
		}
		at := changes[i].CommitTime.UnixNano()
		if len(runs) > 0 && runs[len(runs)-1].at == at {
			runs[len(runs)-1].n++
		} else {
			runs = append(runs, commitRun{at: at, n: 1})
		}
	}
	return runs
}

// publish makes a batch durable in Redis, then confirms its position.
func (r *sourceRunner) publish(ctx context.Context, lock *coord.ReaderLock, src connectors.Source, j job) error {
	start := time.Now()
	res, err := r.svc.cfg.Coord.Publish(ctx, r.sys.Name, lock, j.items)
	if err != nil {
		return err
	}
	if j.batch.Position != "" {
		if err := src.Confirm(ctx, j.batch.Position); err != nil {
			return err
		}
	}
	if res.DeadLettered > 0 {
		r.log.Warn("records dead-lettered", "count", res.DeadLettered, "reasons", strings.Join(badReasons(j.items), " | "))
	}
	if res.DeadLettered+res.Diverted > 0 {
		if st, err := r.svc.cfg.Coord.DeadLetterStats(ctx, r.sys.Name); err == nil {
			r.svc.cfg.Metrics.ObserveDeadLetters(r.sys.Name, st.Entries, st.Bytes, st.Dropped)
		}
	}
	observe(r.svc.cfg.Metrics, r.sys.Name, j, res, start, src)
	r.degradedGauge(src)
	return nil
}

// setLeading records the source this runner reads while it leads (nil:
// it stopped), for status to ask how it is doing.
func (r *sourceRunner) setLeading(src connectors.Source) {
	r.mu.Lock()
	r.leading = src
	r.mu.Unlock()
	if src == nil {
		r.degradedGauge(nil)
	}
}

// degradedGauge is 1 while the source reports a problem.
func (r *sourceRunner) degradedGauge(src connectors.Source) {
	m := r.svc.cfg.Metrics
	if m == nil {
		return
	}
	v := 0.0
	if p, ok := src.(connectors.ProblemReporter); ok && p.Problem() != nil {
		v = 1
	}
	m.SourceDegraded.WithLabelValues(r.sys.Name).Set(v)
}

// sourceError labels an error that makes the source unavailable as the
// source's: "source unavailable: ...". (connectors.ErrUnavailable's own text
// names no side.)
func sourceError(err error) error {
	if !errors.Is(err, connectors.ErrUnavailable) {
		return err
	}
	if strings.HasPrefix(err.Error(), connectors.ErrUnavailable.Error()) {
		return fmt.Errorf("source %w", err)
	}
	return fmt.Errorf("source %w: %w", connectors.ErrUnavailable, err)
}

// causeOr prefers the reason ctx was cancelled (a lost lock) over the error
// the cancellation produced.
func causeOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

func firstBad(items []coord.Item) string {
	for _, it := range items {
		if it.Bad {
			return it.Reason
		}
	}
	return ""
}

// badReasons lists the distinct reasons of a batch's bad records, each
// once, in order: a log line that says what to fix for every one of them.
func badReasons(items []coord.Item) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		if it.Bad && !seen[it.Reason] {
			seen[it.Reason] = true
			out = append(out, it.Reason)
		}
	}
	return out
}

// progressOf is the source's Progress, when it reports one.
func progressOf(src connectors.Source) (connectors.Progress, bool) {
	if p, ok := src.(connectors.ProgressReporter); ok {
		return p.Progress(), true
	}
	return connectors.Progress{}, false
}

func observe(m *metrics.Metrics, system string, j job, res coord.PublishResult, start time.Time, src connectors.Source) {
	if m == nil {
		return
	}
	b, items := j.batch, j.items
	m.IngestChanges.WithLabelValues(system).Add(float64(j.changes))
	m.IngestPublishTime.WithLabelValues(system).Observe(time.Since(start).Seconds())
	m.IngestDeadLettered.WithLabelValues(system).Add(float64(res.DeadLettered + res.Diverted))
	m.IngestEntryBytes.WithLabelValues(system).Add(float64(res.Bytes))
	m.IngestStoredBytes.WithLabelValues(system).Add(float64(res.StoredBytes))
	for _, it := range items {
		if !it.Bad {
			m.IngestPublished.WithLabelValues(system, it.Model).Inc()
		}
	}
	if !b.CommitTime.IsZero() {
		m.IngestLag.WithLabelValues(system).Set(time.Since(b.CommitTime).Seconds())
	}
	if len(j.commits) > 0 {
		now, latency := time.Now().UnixNano(), m.IngestLatency.WithLabelValues(system)
		for _, r := range j.commits {
			d := float64(now-r.at) / 1e9
			for range r.n {
				latency.Observe(d)
			}
		}
	}
	if p, ok := progressOf(src); ok {
		m.SnapshotRows.WithLabelValues(system).Set(float64(p.SnapshotRows))
		m.SnapshotEstimate.WithLabelValues(system).Set(float64(p.SnapshotEstimate))
		m.SourceConfirmedOffset.WithLabelValues(system).Set(float64(p.ConfirmedOffset))
		m.SourceReadOffset.WithLabelValues(system).Set(float64(p.ReadOffset))
	}
}

// FencedCheckpoints keeps a source's checkpoints in Redis, written only by
// the holder of its reader lock.
func FencedCheckpoints(c *coord.Client, source string, lock *coord.ReaderLock) connectors.Checkpoints {
	return &fencedCheckpoints{c: c, source: source, lock: lock}
}

type fencedCheckpoints struct {
	c      *coord.Client
	source string
	lock   *coord.ReaderLock
}

func (f *fencedCheckpoints) Load(ctx context.Context, name string) (string, bool, error) {
	cp, ok, err := f.c.LoadCheckpoint(ctx, f.source, name)
	return cp.Position, ok, err
}

func (f *fencedCheckpoints) Save(ctx context.Context, name, value string) error {
	return f.c.SaveCheckpoint(ctx, f.source, name, f.lock, coord.Checkpoint{Position: value})
}
