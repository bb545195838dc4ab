// Package metrics declares every Prometheus metric Remix exports, in this
// one catalogue, on a registry of its own (no global state). A nil *Metrics
// is valid and records nothing, so components take metrics as an optional
// collaborator.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the instruments of one process.
type Metrics struct {
	Registry *prometheus.Registry

	// Ingest.
	IngestChanges         *prometheus.CounterVec   // changes read from a source
	IngestPublished       *prometheus.CounterVec   // objects appended to streams, by model
	IngestEntryBytes      *prometheus.CounterVec   // packed entry bytes published, before compression
	IngestStoredBytes     *prometheus.CounterVec   // what Redis was given for them, after compression
	IngestDeadLettered    *prometheus.CounterVec   // bad records and objects held behind them
	IngestPublishTime     *prometheus.HistogramVec // seconds per publish round
	IngestLag             *prometheus.GaugeVec     // seconds from source commit to publish, last batch
	IngestLatency         *prometheus.HistogramVec // seconds from source commit to publish, per change
	IngestLeader          *prometheus.GaugeVec     // 1 while this process reads the source
	SnapshotRows          *prometheus.GaugeVec     // rows copied by the initial snapshot
	SnapshotEstimate      *prometheus.GaugeVec     // rows the snapshot expects to copy
	SourceConfirmedOffset *prometheus.GaugeVec     // position confirmed to the source, as a number (PostgreSQL: WAL byte offset)
	SourceReadOffset      *prometheus.GaugeVec     // position read from the source, as a number
	SourceDegraded        *prometheus.GaugeVec     // 1 while a source dead-letters changes for a problem of its own (a mapped column gone)
	SourceRetained        *prometheus.GaugeVec     // bytes the source system keeps for Remix (PostgreSQL: WAL held by the slot)

	// Pusher.
	PushEntries      *prometheus.CounterVec   // stream entries applied to a target
	PushWrites       *prometheus.CounterVec   // write round trips to a target, by outcome
	PushWriteTime    *prometheus.HistogramVec // seconds per write
	PushLatency      *prometheus.HistogramVec // seconds from source commit to target write
	PushDeadLettered *prometheus.CounterVec   // entries a target refused
	PushPartitions   *prometheus.GaugeVec     // partitions this process owns
	PushLeaseLapses  *prometheus.CounterVec   // tenures this process stopped trusting before renewing them
	PushStalled      *prometheus.GaugeVec     // owned partitions that cannot move
	PushEchoes       *prometheus.CounterVec   // changes not written back to the system they came from
	PushConflicts    *prometheus.CounterVec   // two-way changes that lost to a newer row
	PushBulkRecords  *prometheus.CounterVec   // records a target took through its bulk path (COPY)
	PushBulkRefused  *prometheus.CounterVec   // writes through the bulk path written again as upserts
	PushRateLimited  *prometheus.CounterVec   // seconds spent waiting on a target's shared rate limit

	// Backlog of each target, per model, read from Redis by its pushers:
	// the autoscaling signal.
	TargetBacklogEntries *prometheus.GaugeVec // stream entries the target has not applied
	TargetBacklogAge     *prometheus.GaugeVec // seconds the oldest of them has waited

	// Dead letters, per system, read from Redis.
	DeadLetters        *prometheus.GaugeVec // dead letters held
	DeadLetterBytes    *prometheus.GaugeVec // bytes they hold
	DeadLettersDropped *prometheus.GaugeVec // dropped to make room, ever
}

// New builds the catalogue on a fresh registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "remix", Name: name, Help: help}, labels)
		f(c)
		return c
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "remix", Name: name, Help: help}, labels)
		f(g)
		return g
	}
	hist := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "remix", Name: name, Help: help,
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, labels)
		f(h)
		return h
	}
	return &Metrics{
		Registry:              r,
		IngestChanges:         counter("ingest_changes_total", "Changes read from a source.", "system"),
		IngestPublished:       counter("ingest_objects_published_total", "Objects appended to the streams.", "system", "model"),
		IngestEntryBytes:      counter("ingest_entry_bytes_total", "Bytes of packed stream entries published, before compression.", "system"),
		IngestStoredBytes:     counter("ingest_entry_stored_bytes_total", "Bytes Redis was given for those entries, after compression (--entry-compression).", "system"),
		IngestDeadLettered:    counter("ingest_dead_letters_total", "Bad records dead-lettered, and objects held behind them.", "system"),
		IngestPublishTime:     hist("ingest_publish_seconds", "Time to publish one batch to Redis.", "system"),
		IngestLag:             gauge("ingest_lag_seconds", "Seconds from the source commit to its publish, for the last batch.", "system"),
		IngestLatency:         hist("ingest_latency_seconds", "Seconds from the source commit to its publish to Redis, per change.", "system"),
		IngestLeader:          gauge("ingest_leader", "1 while this process holds the source's reader lock.", "system"),
		SnapshotRows:          gauge("source_snapshot_rows", "Rows copied by the initial snapshot.", "system"),
		SnapshotEstimate:      gauge("source_snapshot_estimated_rows", "Rows the initial snapshot expects to copy.", "system"),
		SourceConfirmedOffset: gauge("source_confirmed_offset", "Source position confirmed as durable downstream, as a number where positions have one (PostgreSQL: the WAL byte offset of the confirmed LSN).", "system"),
		SourceReadOffset:      gauge("source_read_offset", "Source position read, as a number where positions have one (PostgreSQL: the WAL byte offset); read minus confirmed is what is in flight.", "system"),
		SourceRetained:        gauge("source_retained_bytes", "Bytes the source system keeps for Remix, read by the leading ingest every 2 s (PostgreSQL: the WAL the replication slot holds, from its restart position to the server's current one; see max_slot_wal_keep_size).", "system"),
		SourceDegraded:        gauge("source_degraded", "1 while a source dead-letters changes for a problem of its own, such as a column its receive mixer reads renamed or dropped; /readyz says which.", "system"),
		PushEntries:           counter("pusher_entries_total", "Stream entries applied to a target.", "target", "model"),
		PushWrites:            counter("pusher_writes_total", "Write round trips to a target, by outcome.", "target", "outcome"),
		PushWriteTime:         hist("pusher_write_seconds", "Time of one write to a target.", "target"),
		PushLatency:           hist("pusher_latency_seconds", "Seconds from the source commit to the target write.", "target"),
		PushDeadLettered:      counter("pusher_dead_letters_total", "Entries a target refused.", "target"),
		PushPartitions:        gauge("pusher_partitions_owned", "Partitions this process owns.", "target"),
		PushLeaseLapses:       counter("pusher_lease_lapses_total", "Partition tenures this process stopped trusting before it could renew them (it was frozen or cut off for most of a lease); what it had read was read again.", "target"),
		PushStalled:           gauge("pusher_stalled_partitions", "Partitions this process owns that cannot move: writes failing without a classification past the retry limit, or a full dead-letter queue.", "target"),
		PushRateLimited:       counter("pusher_rate_limit_wait_seconds_total", "Seconds this process waited on a target's shared rate limit before writing (rate_limit; the limit is shared by every pusher through Redis).", "target"),
		PushEchoes:            counter("pusher_echoes_suppressed_total", "Changes not written into a target because they were made there (or written into their source by Remix on its behalf): two-way sync without echo.", "target"),
		PushConflicts:         counter("pusher_conflicts_resolved_total", "Two-way sync: changes a target did not apply because the row there was newer (or deleted later): concurrent edits resolved by the last-writer rule.", "target"),
		PushBulkRecords:       counter("pusher_bulk_records_total", "Records a target took through its bulk path (PostgreSQL: COPY of rows new at their source, see copy_min_rows).", "target"),
		PushBulkRefused:       counter("pusher_bulk_fallbacks_total", "Writes through a target's bulk path that the target refused (PostgreSQL: a new row was there already) and that were written again as upserts; the table then upserts its next batches for a while.", "target"),
		TargetBacklogEntries:  gauge("target_backlog_entries", "Stream entries a target has not applied yet, summed over the model's partitions (every pusher of the target reports the same figure: aggregate with max).", "target", "model"),
		TargetBacklogAge:      gauge("target_backlog_age_seconds", "Seconds the oldest stream entry a target has not applied has waited since it was published (0 when none waits).", "target", "model"),
		DeadLetters:           gauge("dead_letters", "Dead letters a system's queue holds.", "system"),
		DeadLetterBytes:       gauge("dead_letter_bytes", "Bytes a system's dead letters hold.", "system"),
		DeadLettersDropped:    gauge("dead_letters_dropped", "Dead letters dropped to make room (dead_letter_when_full: drop_oldest), ever.", "system"),
	}
}

// ObserveDeadLetters records a system's dead-letter queue figures.
func (m *Metrics) ObserveDeadLetters(system string, entries, bytes, dropped int64) {
	if m == nil {
		return
	}
	m.DeadLetters.WithLabelValues(system).Set(float64(entries))
	m.DeadLetterBytes.WithLabelValues(system).Set(float64(bytes))
	m.DeadLettersDropped.WithLabelValues(system).Set(float64(dropped))
}

// ObserveRateLimitWait records time spent waiting on a target's shared rate
// limit.
func (m *Metrics) ObserveRateLimitWait(target string, waited time.Duration) {
	if m == nil {
		return
	}
	m.PushRateLimited.WithLabelValues(target).Add(waited.Seconds())
}

// ObserveBacklog records a target's backlog of one model.
func (m *Metrics) ObserveBacklog(target, model string, entries int64, age float64) {
	if m == nil {
		return
	}
	m.TargetBacklogEntries.WithLabelValues(target, model).Set(float64(entries))
	m.TargetBacklogAge.WithLabelValues(target, model).Set(age)
}
