package pusher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/mixer"
)

// handler writes batches of stream entries to one target. The consumer's
// workers call it concurrently: it keeps no state between calls.
type handler struct {
	t          *target
	sink       connectors.Sink
	limiter    *coord.Limiter
	consumer   *coord.Consumer
	partitions int
}

// Handle maps a batch through the push mixer and writes it in one sink
// write, all or nothing. An entry the push mixer cannot map is permanent for
// that entry alone. A truncate waits, as a barrier, until every partition
// of its model reached it (everything before it applied), then one pusher
// empties the target locations before anything after it is written.
func (h *handler) Handle(ctx context.Context, batch []coord.Delivery) error {
	records := make([]mixer.TargetRecord, 0, len(batch))
	owners := make([]int, 0, len(batch)) // the entry each record came from; -1 for a truncate
	var results []mixer.PushResult
	var truncs []mixer.TargetRecord
	var barriers []string
	type partition struct {
		model string
		n     int
	}
	seen := make(map[partition]bool, 8) // partitions with an entry earlier in the batch
	var fences []connectors.Fence       // one per partition: the lease tenure the batch is written under
	commits := make([]time.Time, 0, len(batch))
	// An object's fields are done with once it is mapped to target records
	// (which hold its values, not its map): the next object reuses the map.
	var maps mixer.FieldMaps
	for i := range batch {
		d := &batch[i]
		env, err := mixer.DecodeEnvelopeText(d.Text(), &maps)
		if err != nil {
			return &coord.ItemError{Index: i, Err: coord.Permanent(err)}
		}
		part := partition{d.Model, d.Partition}
		if !seen[part] {
			fences = append(fences, connectors.Fence{Key: h.consumer.FenceKey(d.Model, d.Partition), Token: d.Fence})
		}
		if env.Op == mixer.OpTruncate {
			if seen[part] { // what comes before it in its partition goes first
				return &coord.ItemError{Index: i, Err: coord.ErrDefer}
			}
			id := barrierID(&env)
			st, err := h.consumer.Barrier(ctx, id, d)
			if err != nil {
				return err
			}
			switch st {
			case coord.BarrierWait:
				return &coord.ItemError{Index: i, Err: coord.ErrDefer}
			case coord.BarrierApply:
				if !slices.Contains(barriers, id) {
					barriers = append(barriers, id)
					for _, rule := range h.t.sys.Push.Rules(env.Model) {
						truncs = append(truncs, mixer.TargetRecord{Location: rule.Location(), Op: mixer.OpTruncate})
					}
				}
			}
			seen[part] = true
			continue
		}
		seen[part] = true
		if env.OriginSystem() == h.t.sys.Name || env.Source == h.t.sys.Name {
			// Made in this very system (or written into another by Remix on
			// its behalf), or read from it: writing it back would echo.
			if m := h.t.svc.cfg.Metrics; m != nil {
				m.PushEchoes.WithLabelValues(h.t.sys.Name).Inc()
			}
			continue
		}
		results = h.t.sys.Push.Push(&env.Object, results[:0])
		maps.Put(env.Fields)
		origin := mixer.Origin{Model: d.Model, Partition: d.Partition, Entry: d.ID, Index: d.Index,
			Source: env.Source, Position: env.Position, CommitTime: env.CommitTime, System: env.OriginSystem()}
		for _, r := range results {
			if r.Err != nil {
				return &coord.ItemError{Index: i, Err: coord.Permanent(r.Err)}
			}
			r.Record.Origin = origin
			r.Record.Created = env.Created
			records = append(records, r.Record)
			owners = append(owners, i)
		}
		if !env.CommitTime.IsZero() {
			commits = append(commits, env.CommitTime)
		}
	}
	if len(truncs) > 0 { // every partition has arrived: what follows in this batch comes after the truncate
		records = append(append([]mixer.TargetRecord(nil), truncs...), records...)
		owners = append(make([]int, len(truncs)), owners...)
		for i := range truncs {
			owners[i] = -1
		}
		h.t.log.Info("applying a truncate", "locations", len(truncs))
	}
	if len(records) > 0 {
		if h.limiter != nil && !pacesCalls(h.sink) {
			cost := 1
			if c, ok := h.sink.(connectors.Coster); ok {
				cost = c.WriteCost(records)
			}
			waited := time.Now()
			if err := h.limiter.Wait(ctx, cost); err != nil {
				return err
			}
			h.t.svc.cfg.Metrics.ObserveRateLimitWait(h.t.sys.Name, time.Since(waited))
		}
		start := time.Now()
		err := h.sink.Write(ctx, records, fences)
		h.observe(batch, commits, start, err)
		if errors.Is(err, connectors.ErrFenced) {
			return fmt.Errorf("%w: %w", coord.ErrFenced, err)
		}
		if err != nil && len(truncs) > 0 {
			// A truncate must happen, whatever else the batch holds: it
			// is retried until the target takes it, never dead-lettered.
			return coord.Unavailable(fmt.Errorf("applying a truncate: %w", err))
		}
		if err != nil {
			return mapError(err, owners)
		}
	}
	for _, id := range barriers {
		if err := h.consumer.BarrierDone(ctx, id); err != nil {
			// The owner changed while we applied it (a very slow write):
			// the new owner applies it too; this batch is tried again and
			// finds the barrier done.
			return coord.Unavailable(fmt.Errorf("marking the truncate applied: %w", err))
		}
	}
	return nil
}

// barrierID names a truncate: the same in every partition's copy.
func barrierID(e *mixer.Envelope) string {
	return e.Model + "|" + e.Source + "|" + e.Location + "|" + e.Position
}

func (h *handler) observe(batch []coord.Delivery, commits []time.Time, start time.Time, err error) {
	m := h.t.svc.cfg.Metrics
	if m == nil {
		return
	}
	name := h.t.sys.Name
	m.PushWriteTime.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		m.PushWrites.WithLabelValues(name, "error").Inc()
		return
	}
	m.PushWrites.WithLabelValues(name, "ok").Inc()
	now := time.Now()
	latency := m.PushLatency.WithLabelValues(name) // looked up once: this runs for every object
	for _, c := range commits {
		latency.Observe(now.Sub(c).Seconds())
	}
	for i := 0; i < len(batch); { // entries counted per run of one model
		j := i + 1
		for j < len(batch) && batch[j].Model == batch[i].Model {
			j++
		}
		m.PushEntries.WithLabelValues(name, batch[i].Model).Add(float64(j - i))
		i = j
	}
}

// mapError turns a sink's error into the consumer's classes.
func mapError(err error, owners []int) error {
	var re *connectors.RecordError
	if errors.As(err, &re) && errors.Is(err, connectors.ErrPermanent) && re.Index >= 0 && re.Index < len(owners) && owners[re.Index] >= 0 {
		return &coord.ItemError{Index: owners[re.Index], Err: coord.Permanent(re.Err)}
	}
	switch {
	case errors.Is(err, connectors.ErrPermanent):
		return coord.Permanent(err)
	case errors.Is(err, connectors.ErrUnavailable):
		return coord.Unavailable(err)
	}
	return err
}

func limiterFor(c *coord.Client, sys *config.System) (*coord.Limiter, error) {
	if sys.RateLimit <= 0 {
		return nil, nil
	}
	return c.NewLimiter(sys.Name, sys.RateLimit, sys.RateBucketSize)
}

// bufferedHandler lets the consumer hold the entries of a Buffered sink's
// records until the sink flushed them (coord.Holder).
type bufferedHandler struct {
	coord.Handler
	sink connectors.Buffered
}

func (b *bufferedHandler) Pending(p coord.PartitionRef) (held, due bool) {
	return b.sink.Pending(connectors.Partition{Model: p.Model, Index: p.Partition})
}

func (b *bufferedHandler) Flush(ctx context.Context, parts []coord.PartitionRef) error {
	return b.sink.Flush(ctx, toPartitions(parts))
}

func (b *bufferedHandler) Discard(parts []coord.PartitionRef) { b.sink.Discard(toPartitions(parts)) }

func toPartitions(refs []coord.PartitionRef) []connectors.Partition {
	out := make([]connectors.Partition, len(refs))
	for i, r := range refs {
		out[i] = connectors.Partition{Model: r.Model, Index: r.Partition}
	}
	return out
}

// Supersedes reports whether an entry is a complete version of its key for
// this target (coord.Superseder): a delete, or an upsert that holds every
// field the target's push rules for its model write. A parked key's dead
// letters are set aside for such an entry, which is applied.
func (h *handler) Supersedes(d coord.Delivery) bool {
	env, err := mixer.DecodeEnvelope(d.Payload)
	if err != nil {
		return false
	}
	switch env.Op {
	case mixer.OpDelete:
		return true
	case mixer.OpUpsert:
		for _, rule := range h.t.sys.Push.Rules(env.Model) {
			for _, f := range rule.Fields() {
				if f.HasHardcode {
					continue
				}
				if _, ok := env.Fields[f.Field]; !ok {
					return false
				}
			}
		}
		return true
	}
	return false
}

func (b *bufferedHandler) Supersedes(d coord.Delivery) bool {
	s, ok := b.Handler.(coord.Superseder)
	return ok && s.Supersedes(d)
}

// pacesCalls reports whether a sink charges the rate limit per call itself.
func pacesCalls(s connectors.Sink) bool {
	p, ok := s.(connectors.SelfPacing)
	return ok && p.PacesCalls()
}
