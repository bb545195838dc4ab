package coord

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Config holds the settings of the Redis substrate. Every process of a fleet
// must use the same Namespace and Partitions.
type Config struct {
	// Namespace prefixes every key. Default "remix".
	Namespace string
	// Partitions is the number of streams per model. It is recorded in Redis
	// the first time a model is used and cannot change afterwards. Default 16.
	Partitions int
	// LeaseTTL is how long a pusher owns a partition without renewing it; a
	// dead pusher's partitions are taken over after at most LeaseTTL plus one
	// lease tick (LeaseTTL/3). Default 10s.
	LeaseTTL time.Duration
	// ReadBlock is how long a read waits for new entries. Default 1s.
	ReadBlock time.Duration
	// ReadCount is the most stream entries read from one partition at a
	// time; each entry packs the objects one publish sent to the partition.
	// Default 4. Small entries (a publish of a transaction or a few) are
	// read more at a time against a fast target: up to 64 over all the
	// partitions one read covers, two such reads at once (see readSize).
	ReadCount int
	// MaxBatch is the most objects handed to a handler at once; what a read
	// brings beyond it waits in memory for the next batch, and reads take
	// fewer entries when entries are large. Default 2000.
	MaxBatch int
	// MaxBatchBytes is the most payload bytes handed to a handler at once; a
	// batch holds at least one object, however large. It bounds what a
	// worker keeps decoded while it writes, whatever the width of the rows
	// (a decoded object takes a few times its payload); what a read brought
	// beyond the batch waits undecoded, up to about MaxBatch objects.
	// Default 1 MiB.
	MaxBatchBytes int
	// BatchTime is about how long a batch should take to write. Batches are
	// sized from the target's recent writes (a fixed cost per write and a
	// cost per object) to take about this long, between 1 object and
	// MaxBatch, or up to twice the fixed cost where that is longer. A
	// partition changes hands only between batches, so this bounds how long
	// a partition moving to a joining pusher waits. Default 250ms; negative
	// sizes by MaxBatch alone.
	BatchTime time.Duration
	// Workers is how many batches a consumer handles at once, unless the
	// consumer is given its own count (Consumer.SetWorkers). Each worker
	// claims free owned partitions up to its share and holds them until its
	// batch is acknowledged, so one key's changes still apply in order: one
	// worker writes while another reads, and the target gets that many
	// concurrent writers. Default 2.
	Workers int
	// MaxAttempts is how many times a write that fails without a
	// classification is tried before its partitions are reported as
	// stalled (they are still retried; only errors typed as permanent send
	// an entry to the dead-letter queue). Default 5.
	MaxAttempts int
	// RetryBackoff is the first wait before retrying a failed batch; it
	// doubles up to MaxRetryBackoff. Defaults 100ms and 10s.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// LockTTL is the validity of a source's reader lock; the holder extends
	// it every LockTTL/3 and stops publishing when it cannot. Default 8s.
	LockTTL time.Duration
	// TrimInterval is how often a pusher trims the streams it owns below
	// what every group has acknowledged. Default 5s.
	TrimInterval time.Duration
	// EntryCompression is how a publish writes the packed entries of a
	// partition: "s2" compresses each body of 1 KiB or more with S2 when
	// that saves at least an eighth (see entry.go), "none" writes every
	// body plain. Readers read both, whatever their own setting. Default
	// "s2".
	EntryCompression string
	// DeadLetterLimits caps the dead-letter queue of each system, by
	// system name; systems not listed get DefaultDeadLetterLimit.
	DeadLetterLimits map[string]DeadLetterLimit
	// Logger receives actionable events. Default slog.Default().
	Logger *slog.Logger
}

// DeadLetterLimit caps one system's dead-letter queue. When a dead letter
// would not fit, what would go there waits (ErrDeadLettersFull: the target
// pauses, or the source stops publishing) until room is made, unless
// DropOldest is set: then the oldest dead letters are dropped, and counted.
type DeadLetterLimit struct {
	// MaxEntries is the most dead letters kept; 0 means no limit.
	MaxEntries int64
	// MaxBytes is the most bytes they hold (their fields' values); 0 means
	// no limit.
	MaxBytes int64
	// DropOldest drops the oldest dead letters to make room instead of
	// waiting. Later changes of a key parked behind a dropped one then flow
	// again without it.
	DropOldest bool
}

// DefaultDeadLetterLimit is the limit of systems without one of their own:
// 100 000 dead letters or 256 MiB, waiting when full.
var DefaultDeadLetterLimit = DeadLetterLimit{MaxEntries: 100_000, MaxBytes: 256 << 20}

// deadLetterLimit returns a system's limit.
func (c Config) deadLetterLimit(system string) DeadLetterLimit {
	if l, ok := c.DeadLetterLimits[system]; ok {
		return l
	}
	return DefaultDeadLetterLimit
}

// dlqArgs are the limit arguments of the dead-letter scripts: base, most
// entries, most bytes, drop flag.
func (c *Client) dlqArgs(system string) []any {
	l := c.cfg.deadLetterLimit(system)
	drop := "0"
	if l.DropOldest {
		drop = "1"
	}
	return []any{c.keys.dlqBase(system), l.MaxEntries, l.MaxBytes, drop}
}

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// withDefaults returns a copy with every zero field set to its default.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Namespace == "" {
		c.Namespace = "remix"
	}
	if c.EntryCompression == "" {
		c.EntryCompression = CompressionS2
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	set(&c.LeaseTTL, 10*time.Second)
	set(&c.ReadBlock, time.Second)
	if c.ReadCount == 0 {
		c.ReadCount = 4
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 2000
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 << 20
	}
	set(&c.BatchTime, 250*time.Millisecond)
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	set(&c.RetryBackoff, 100*time.Millisecond)
	set(&c.MaxRetryBackoff, 10*time.Second)
	set(&c.LockTTL, 8*time.Second)
	set(&c.TrimInterval, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !namespaceRE.MatchString(c.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: use 1-64 letters, digits, '_', '-' or '.'", c.Namespace))
	}
	if c.Partitions < 1 || c.Partitions > 4096 {
		errs = append(errs, fmt.Errorf("partitions %d: must be between 1 and 4096", c.Partitions))
	}
	if c.LeaseTTL < 300*time.Millisecond {
		errs = append(errs, fmt.Errorf("lease TTL %v: must be at least 300ms", c.LeaseTTL))
	}
	if c.ReadBlock >= c.LeaseTTL/3 {
		errs = append(errs, fmt.Errorf("read block %v: must be below a third of the lease TTL (%v)", c.ReadBlock, c.LeaseTTL))
	}
	if c.LockTTL < 300*time.Millisecond {
		errs = append(errs, fmt.Errorf("lock TTL %v: must be at least 300ms", c.LockTTL))
	}
	if c.EntryCompression != CompressionS2 && c.EntryCompression != CompressionNone {
		errs = append(errs, fmt.Errorf("entry compression %q: must be %q or %q", c.EntryCompression, CompressionS2, CompressionNone))
	}
	if c.ReadCount < 1 || c.MaxBatch < 1 || c.MaxBatchBytes < 1 || c.MaxAttempts < 1 || c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("read count, max batch (objects and bytes) and max attempts must be at least 1, workers between 1 and 64"))
	}
	return errors.Join(errs...)
}
