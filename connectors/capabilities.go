package connectors

import (
	"context"

	"github.com/sqlpipe/remix/mixer"
)

// Optional capabilities. A source or sink implements those that fit its
// system; the ingest and the pusher check for them with a type assertion
// and do without when they are missing.

// Progress is how far a source got, for readiness, metrics and status.
type Progress struct {
	// Snapshotting is set while the source copies what existed before it
	// started reading changes (until that copy is durable downstream).
	Snapshotting bool
	// SnapshotRows is how many rows the copy read so far; SnapshotEstimate
	// how many it expects (0: unknown).
	SnapshotRows, SnapshotEstimate int64
	// ReadPosition and ConfirmedPosition are the last position read and the
	// last one confirmed durable downstream, as the system writes them
	// (PostgreSQL: LSNs such as 0/16B3748); "" when unknown.
	ReadPosition, ConfirmedPosition string
	// ReadOffset and ConfirmedOffset are the same positions as numbers, for
	// systems whose positions have a numeric order (PostgreSQL: the WAL byte
	// offset); 0 otherwise. Their difference is the unconfirmed backlog in
	// the system's own unit.
	ReadOffset, ConfirmedOffset uint64
}

// Recycler is a source that takes back the field maps of its records once
// the ingest has mapped them, for its next records to fill: a map is the
// largest allocation a row makes in a source. The ingest hands back each
// batch's changes, after which nothing reads them; the source must not
// hand out one map in two changes.
type Recycler interface {
	Recycle(changes []Change)
}

// RecordReleaser is a sink that keeps nothing of the records it is given
// once Write returns, whatever it returns: no record, Fields map or map
// nested in one is read or written after the call. The pusher then hands
// the records' field maps to its next batch's records (a map is the
// largest allocation a target record makes). A Buffered sink keeps records
// until Flush by design and must not claim it. The conformance suite
// (connectortest) scribbles over the maps after each write of a sink that
// claims it.
type RecordReleaser interface {
	ReleasesRecords() bool
}

// ProgressReporter is a source that reports its Progress.
type ProgressReporter interface {
	Progress() Progress
}

// ProblemReporter is a source that keeps reading while it cannot deliver
// every change whole: for example while a column its receive mixer reads is
// gone from a table, whose changes are then dead-lettered. Problem says
// what is wrong, or returns nil. The ingest reports a problem in /readyz
// (not ready) and in a metric.
type ProblemReporter interface {
	Problem() error
}

// Coster is a sink that says what a write costs against the system's
// shared rate limit (rate_limit: requests per second). A sink without it
// costs one request per Write: right for a database that takes a batch in
// one round trip, wrong for an API that takes one object per call, whose
// sink returns the number of calls the records will need.
type Coster interface {
	WriteCost(records []mixer.TargetRecord) int
}

// SelfPacing is a sink that charges the shared rate limit itself, one
// call at a time, right before each call (SinkDeps.Limiter): an API sink
// whose write makes many calls, which a single charge before the write
// would let reach the API in one burst. The pusher then charges nothing
// for its writes. Retries of a call are calls, and are charged too.
type SelfPacing interface {
	PacesCalls() bool
}

// BulkReporter is a sink that writes some records through a cheaper bulk
// path and falls back to its usual writes when the target refuses it
// (PostgreSQL: COPY of rows new at their source). It counts the records
// written that way and the writes that fell back.
type BulkReporter interface {
	BulkWrites() (records, fallbacks int64)
}

// ConflictReporter is a sink that resolves concurrent edits of two-way
// sync itself (the last writer wins) and counts the changes that lost.
type ConflictReporter interface {
	Conflicts() int64
}

// Partition names one partition stream of a model.
type Partition struct {
	Model string
	Index int
}

// Buffered is a sink whose Write may keep records without making them
// durable at once: an append-only file rolled over minutes, a batch load
// that pays per call. The pusher keeps the stream entries of what such a
// sink holds unacknowledged, and acknowledges them only after Flush
// returned nil for their partition. Until then they are read again after a
// crash or a takeover, so a store may receive a record twice (in two
// files, say): Origin tells the copies apart.
type Buffered interface {
	// Pending reports whether records written for a partition are held
	// without being durable, and whether they should be flushed now (the
	// sink's size or age threshold reached).
	Pending(p Partition) (held, due bool)
	// Flush makes everything written so far for the partitions durable, all
	// or nothing per partition; an error leaves what it could not flush
	// held.
	Flush(ctx context.Context, parts []Partition) error
	// Discard drops what is held for the partitions, unflushed: they went
	// to another pusher, which reads those records again.
	Discard(parts []Partition)
}
