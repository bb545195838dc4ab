// Package connectors declares what Remix needs of a system: a Source that
// reads its changes and a Sink that writes to it. Each system type has its
// own package (postgres, stripe); package builtin maps type names to them.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sqlpipe/remix/mixer"
)

// Change is one change read from a source.
type Change struct {
	Record mixer.Record
	// Key is the change's source identity, system/location/primary key: the
	// partition key that keeps one row's changes in order.
	Key string
	// Err is set when the source could not decode the change: the ingest
	// dead-letters it with this reason instead of mapping it.
	Err error
	// CommitTime, when set, is when this change was committed at the
	// source, if it differs from its batch's (a snapshot row keeps the
	// commit time of the transaction that last wrote it).
	CommitTime time.Time
	// Origin is the system where the change was first made, when Remix
	// wrote it into this source on that system's behalf (two-way sync): a
	// PostgreSQL transaction under a replication origin named for it, an
	// API request with Remix's idempotency key. "" for a change made here.
	Origin string
	// Version, for systems whose changes come in no order (webhooks),
	// orders the change among those of its object: it is published only
	// when greater (compared as strings: pad it) than the last version
	// published for the same object, else skipped. "" for sources that
	// deliver in order.
	Version string
}

// Batch is a run of changes handed over together, in commit order.
type Batch struct {
	Changes []Change
	// Position, when not empty, may be confirmed (Source.Confirm) once the
	// changes of this batch and of every earlier batch are durable
	// downstream. A long transaction may span several batches; only its last
	// one carries a position.
	Position string
	// Label, when not empty, is the position the batch's objects carry
	// instead of Position (what a dataset shows as _remix_position): a
	// short one where Position is a long resume state that means nothing
	// to a reader, such as a snapshot chunk's. Every object carries it, so
	// a long one costs its bytes on every object in Redis and every decode.
	Label string
	// CommitTime is the source commit time of the last change; zero if
	// unknown.
	CommitTime time.Time
}

// Source reads the changes of one system.
type Source interface {
	// Open checks the system and gets ready to read.
	Open(ctx context.Context) error
	// Next returns the next batch, waiting until there is one or ctx ends.
	Next(ctx context.Context) (Batch, error)
	// Confirm says that every batch up to the one that carried position is
	// durable downstream: the source may let go of it.
	Confirm(ctx context.Context, position string) error
	// Close stops reading.
	Close(ctx context.Context) error
}

// Sink writes records to one target system.
//
// Write is called from several goroutines at once (one per consumer
// worker, each with its own share of the partitions), so a sink must be
// safe for concurrent use. The records of one partition never come in two
// Writes at once, and come in stream order (Record.Origin says which
// partition); records of different partitions may interleave.
type Sink interface {
	// Open checks the target against its push mixer (locations, fields,
	// search keys) and connects.
	Open(ctx context.Context) error
	// Write applies records in order, all or nothing: when it returns an
	// error, none of them may have been applied. Errors are classified with
	// ErrPermanent (or a *RecordError wrapping it: that record is set
	// aside), ErrUnavailable and ErrFenced. An error the sink does not
	// classify is retried until it succeeds, never dead-lettered: only the
	// sink's own verdict sets a record aside. A sink that can keeps the
	// fences with the data and refuses (ErrFenced) a write whose fence is
	// older than one it has. A record may be written again after a crash or
	// a takeover: writes must be idempotent, or (append-only sinks) carry
	// Origin so a reader can tell repeats apart.
	Write(ctx context.Context, records []mixer.TargetRecord, fences []Fence) error
	// Close releases connections.
	Close(ctx context.Context) error
}

// Checkpoints persist a source's own progress (for example how far its
// initial snapshot got), fenced so only the current reader writes them.
type Checkpoints interface {
	Load(ctx context.Context, name string) (value string, ok bool, err error)
	Save(ctx context.Context, name, value string) error
}

// SourceDeps are what a source gets from the ingest.
type SourceDeps struct {
	Checkpoints Checkpoints
	Logger      *slog.Logger
	// Limiter is the system's rate_limit, shared by the whole fleet; nil
	// without one. A source that calls an API charges its calls to it.
	Limiter RateLimiter
}

// RateLimiter is a system's rate limit shared by the fleet (rate_limit,
// rate_bucket_size): Wait blocks until n requests are allowed or ctx ends.
type RateLimiter interface {
	Wait(ctx context.Context, n int) error
}

// Fence is the tenure of a pusher's partition lease a write was made under.
// Key names the partition of one target; Token grows with every new tenure.
// A pusher that stalled (a long pause, a frozen VM) while another took its
// partition over still holds a write of older changes: a target that keeps
// the highest token per key, atomically with the data, refuses it, so it
// cannot overwrite what the new owner wrote.
type Fence struct {
	Key   string
	Token uint64
}

// SinkDeps are what a sink gets from the pusher.
type SinkDeps struct {
	Logger *slog.Logger
	// Limiter is the target's rate_limit, shared by the whole fleet; nil
	// without one. The pusher charges each write's cost to it before the
	// write, unless the sink paces its own calls (SelfPacing).
	Limiter RateLimiter
	// Models are the configuration's models by title, for sinks that lay
	// out what they write from the models' types (a dataset's columns). A
	// sink that needs them refuses to open without them.
	Models map[string]*mixer.Model
}

var (
	// ErrPermanent marks what retrying cannot fix: a value the target
	// refuses, a constraint violation. The record is dead-lettered. Only a
	// sink's own classification sets a record aside: an error it does not
	// classify is retried until it succeeds (and reported past a limit).
	ErrPermanent = errors.New("permanent")
	// ErrUnavailable marks trouble of the system as a whole (down,
	// unreachable, a table missing): retried until it is fixed, never
	// dead-lettered.
	ErrUnavailable = errors.New("unavailable")
	// ErrFenced marks a write refused for an older fence: nothing of it was
	// applied, and the partition belongs to another pusher now.
	ErrFenced = errors.New("fenced: a newer owner of the partition wrote first")
	// ErrPositionLost means a source cannot resume where it stopped: the
	// position its checkpoint names is gone (a dropped replication slot,
	// purged binlogs, events older than the API keeps). Changes made since
	// are lost to it, so the ingest stops reading the source and says so,
	// rather than start again somewhere that would skip them; `remix reset`
	// starts it over with a fresh snapshot.
	ErrPositionLost = errors.New("source position lost")
)

// RecordError says which record of a Write failed; with ErrPermanent inside,
// only that record is bad.
type RecordError struct {
	Index int
	Err   error
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %d: %v", e.Index, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

// MissingFieldsError is the error of a change whose record lacks fields the
// receive mixer reads because the source changed shape (a column renamed or
// dropped). Mapped without them, targets would keep stale values or get
// nulls, so the ingest dead-letters the change, keeping Have beside the
// record: a replay can then tell a field that is gone from one that is only
// absent (an unchanged TOASTed value).
type MissingFieldsError struct {
	Location string   `json:"location"`
	Missing  []string `json:"missing"` // the fields the receive mixer reads that the source no longer has
	Have     []string `json:"have"`    // every field the source has now
}

func (e *MissingFieldsError) Error() string {
	return fmt.Sprintf("%s has no field %s that the receive mixer reads (renamed or dropped at the source); it has %s",
		e.Location, strings.Join(e.Missing, ", "), strings.Join(e.Have, ", "))
}

// Sleep waits d, or until ctx is done (then its error). Connectors wait
// with it between retries, polls and a source's linger.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
