package pusher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/mixer"
)

// handler writes batches of stream entries to one target. The consumer's
// workers call it concurrently: it keeps no state between calls, except
// buffers and maps for later batches (scratch).
type handler struct {
	t          *target
	sink       connectors.Sink
	limiter    *coord.Limiter
	consumer   *coord.Consumer
	partitions int
	releases   bool      // the sink lets go of records after Write: see releasesRecords
	scratch    sync.Pool // of *scratch
}

// scratch is what handling a batch needs besides its deliveries, kept from
// batch to batch: slices a batch's length, and the field maps of envelopes
// and of records.
type scratch struct {
	records []mixer.TargetRecord // reused when the sink is a connectors.RecordReleaser
	owners  []int
	commits []time.Time
	results []mixer.PushResult
	maps    mixer.FieldMaps // the envelopes', one at a time
	recMaps mixer.FieldMaps // the written records' (Keep: a batch's worth)
}

// keepRecordMaps bounds the field maps a batch hands to later ones: more
// than a batch holds. A cleared map keeps its size: a few hundred bytes for
// a narrow row, a few KB for a wide one, about a batch's working set.
const keepRecordMaps = 8192

// releasesRecords reports whether the sink keeps nothing of a batch's
// records once its write returned, so their maps can serve again. A
// Buffered sink keeps them until Flush, whatever it claims.
func releasesRecords(s connectors.Sink) bool {
	r, ok := s.(connectors.RecordReleaser)
	_, buffered := s.(connectors.Buffered)
	return ok && r.ReleasesRecords() && !buffered
}

// Handle maps a batch through the push mixer and writes it in one sink
// write, all or nothing. An entry the push mixer cannot map is permanent for
// that entry alone. A truncate waits, as a barrier, until every partition
// of its model reached it (everything before it applied), then one pusher
// empties the target locations before anything after it is written.
func (h *handler) Handle(ctx context.Context, batch []coord.Delivery) error {
	sc, _ := h.scratch.Get().(*scratch)
	if sc == nil {
		sc = &scratch{recMaps: mixer.FieldMaps{Keep: keepRecordMaps}}
	}
	err := h.handle(ctx, batch, sc)
	// Not reached when handle panics: the scratch is then dropped, since
	// the panic's value might refer to a record (the consumer formats it).
	h.recycle(sc)
	return err
}

// recycle readies a batch's scratch for the next: the records' maps are
// done with, when the sink keeps none of them (the write has returned),
// and nothing is kept alive by the old values.
func (h *handler) recycle(sc *scratch) {
	if h.releases {
		for i := range sc.records {
			sc.recMaps.Put(sc.records[i].Fields)
		}
		clear(sc.records)
		sc.records = sc.records[:0]
	} else {
		sc.records = nil // the sink may keep them (a Buffered one does)
	}
	clear(sc.results)
	sc.owners, sc.commits, sc.results = sc.owners[:0], sc.commits[:0], sc.results[:0]
	h.scratch.Put(sc)
}

func (h *handler) handle(ctx context.Context, batch []coord.Delivery, sc *scratch) error {
	// The records, and their maps, come from earlier batches when the sink
	// keeps none of them; a sink that keeps records gets new ones.
	var recMaps *mixer.FieldMaps
	records := sc.records[:0]
	if h.releases {
		recMaps = &sc.recMaps
	} else {
		records = make([]mixer.TargetRecord, 0, len(batch))
	}
	owners := sc.owners[:0] // the entry each record came from; -1 for a truncate
	commits := sc.commits[:0]
	results := sc.results[:0]
	defer func() { sc.records, sc.owners, sc.commits, sc.results = records, owners, commits, results }()
	var truncs []mixer.TargetRecord
	var barriers []string
	var seen seenPartitions       // partitions with an entry earlier in the batch
	var fences []connectors.Fence // one per partition: the lease tenure the batch is written under
	// An object's fields are done with once it is mapped to target records
	// (which hold its values, not its map): the next object reuses the map.
	maps := &sc.maps
	for i := range batch {
		d := &batch[i]
		env, err := mixer.DecodeEnvelopeText(d.Text(), maps)
		if err != nil {
			return &coord.ItemError{Index: i, Err: coord.Permanent(err)}
		}
		part := batchPartition{d.Model, d.Partition}
		if !seen.has(part) {
			fences = append(fences, connectors.Fence{Key: h.consumer.FenceKey(d.Model, d.Partition), Token: d.Fence})
		}
		if env.Op == mixer.OpTruncate {
			if seen.has(part) { // what comes before it in its partition goes first
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
			seen.add(part)
			continue
		}
		seen.add(part)
		if env.OriginSystem() == h.t.sys.Name || env.Source == h.t.sys.Name {
			// Made in this very system (or written into another by Remix on
			// its behalf), or read from it: writing it back would echo.
			if m := h.t.svc.cfg.Metrics; m != nil {
				m.PushEchoes.WithLabelValues(h.t.sys.Name).Inc()
			}
			continue
		}
		results = h.t.sys.Push.PushWith(&env.Object, results[:0], recMaps)
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

// batchPartition is a partition of a model, in a batch.
type batchPartition struct {
	model string
	n     int
}

// seenPartitions are the partitions met so far in a batch. A batch comes
// partition by partition, so the last one met answers most questions
// without hashing (asked for every object).
type seenPartitions struct {
	last batchPartition
	any  bool
	all  map[batchPartition]bool
}

func (s *seenPartitions) has(p batchPartition) bool { return s.any && p == s.last || s.all[p] }

func (s *seenPartitions) add(p batchPartition) {
	if s.any && p == s.last {
		return
	}
	if s.all == nil {
		s.all = make(map[batchPartition]bool, 8)
	}
	s.all[p] = true
	s.last, s.any = p, true
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
