package coord

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrFenced means a write was refused because the writer no longer
	// holds its lock or lease: a publish or checkpoint of an ingest whose
	// reader lock another ingest took over, or, returned by a Handler, a
	// target write of a pusher whose partition another pusher took over.
	ErrFenced = errors.New("fenced: a newer holder of the lock or lease took over")
	// ErrLockLost means the reader lock could not be extended before it
	// expired; the holder must stop reading and publishing.
	ErrLockLost = errors.New("reader lock lost")
	// ErrNotDurable means Redis keeps no append-only file, so an ingest
	// would confirm source positions for data a Redis crash could lose.
	ErrNotDurable = errors.New("redis is not durable")
	// ErrTopology means this process disagrees with Redis about a model's
	// partition count.
	ErrTopology = errors.New("partition count mismatch")

	// ErrPermanent marks an error that retrying cannot fix (a bad record, a
	// constraint violation): the entry goes to the dead-letter queue at once.
	ErrPermanent = errors.New("permanent")
	// ErrUnavailable marks an error of the target as a whole (down,
	// unreachable): entries are retried without end and never dead-lettered
	// for it. Any other error is retried the same way, and reported after
	// MaxAttempts (see Handler).
	ErrUnavailable = errors.New("target unavailable")
	// ErrDeadLettersFull means a system's dead-letter queue reached its
	// limit and may not drop its oldest entries: what would go there waits
	// (the target, or the source's publishing, pauses) until someone makes
	// room (replay, drop) or raises the limit.
	ErrDeadLettersFull = errors.New("dead-letter queue full")
	// ErrDefer, in an *ItemError, holds that entry and the rest of its
	// partition back for a moment (a barrier not yet reached by every
	// partition) while the other partitions flow. Nothing is counted.
	ErrDefer = errors.New("deferred")
)

// ItemError says which entry of a batch a handler could not apply. With
// ErrPermanent in Err, that entry is dead-lettered and the rest retried
// without it.
type ItemError struct {
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("entry %d: %v", e.Index, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// Permanent wraps err as permanent.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Unavailable wraps err as a whole-target outage.
func Unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// scriptError maps the error replies of our Lua scripts to sentinels.
func scriptError(err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), "FENCED") {
		return ErrFenced
	}
	if strings.HasPrefix(err.Error(), "DLQFULL") {
		return ErrDeadLettersFull
	}
	return err
}
