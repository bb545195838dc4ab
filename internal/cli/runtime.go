package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/coord"
)

// Fleet are the settings every process of a fleet must share, plus the
// lease and lock timing.
type Fleet struct {
	Namespace  string        // --namespace, REMIX_NAMESPACE: prefix of every Redis key (remix)
	Partitions int           // --partitions, REMIX_PARTITIONS: streams per model (16)
	LeaseTTL   time.Duration // --lease-ttl, REMIX_LEASE_TTL: a dead pusher's partitions move after this (10s)
	LockTTL    time.Duration // --lock-ttl, REMIX_LOCK_TTL: a dead ingest's source moves after this (8s)
	// EntryCompression is how an ingest writes stream entries:
	// --entry-compression, REMIX_ENTRY_COMPRESSION (s2 or none; s2).
	// Readers read both.
	EntryCompression string
}

// Default lease and lock times.
const (
	defaultLeaseTTL = 10 * time.Second
	defaultLockTTL  = 8 * time.Second
)

// Register adds every fleet flag.
func (f *Fleet) Register(fs *flag.FlagSet) {
	f.RegisterNamespace(fs)
	fs.DurationVar(&f.LeaseTTL, "lease-ttl", envDuration("REMIX_LEASE_TTL", defaultLeaseTTL), "partition lease time (env REMIX_LEASE_TTL)")
	fs.DurationVar(&f.LockTTL, "lock-ttl", envDuration("REMIX_LOCK_TTL", defaultLockTTL), "source reader lock time (env REMIX_LOCK_TTL)")
}

// RegisterPublish adds what only a process that publishes (an ingest)
// uses: --entry-compression.
func (f *Fleet) RegisterPublish(fs *flag.FlagSet) {
	fs.StringVar(&f.EntryCompression, "entry-compression", EnvOr("REMIX_ENTRY_COMPRESSION", coord.CompressionS2),
		"s2: compress stream entries of 1 KiB or more (what Redis parses, logs and keeps is about a fifth); none: write them plain. Pushers read both (env REMIX_ENTRY_COMPRESSION)")
}

// RegisterNamespace adds --namespace and --partitions, what a command that
// only reads and manages a fleet's Redis state needs (the lease and lock
// times keep their defaults, or REMIX_LEASE_TTL and REMIX_LOCK_TTL).
func (f *Fleet) RegisterNamespace(fs *flag.FlagSet) {
	fs.StringVar(&f.Namespace, "namespace", EnvOr("REMIX_NAMESPACE", "remix"), "prefix of every Redis key (env REMIX_NAMESPACE)")
	fs.IntVar(&f.Partitions, "partitions", envInt("REMIX_PARTITIONS", 16), "streams per model; fixed once used (env REMIX_PARTITIONS)")
	f.LeaseTTL = envDuration("REMIX_LEASE_TTL", defaultLeaseTTL)
	f.LockTTL = envDuration("REMIX_LOCK_TTL", defaultLockTTL)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// RedisOptions parses --redis (else REDIS_URL); its error shows the URL
// with the password redacted.
func (c *Common) RedisOptions() (*redis.Options, error) {
	raw := c.redisURL()
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, redisURLError(raw, err)
	}
	return opts, nil
}

// Coord connects to Redis and builds the coord client: one attempt, which
// fails when Redis does not answer within 10s. The configuration, when
// given, sets each system's dead-letter limit.
func (c *Common) Coord(ctx context.Context, f Fleet, cfg *config.Config, log *slog.Logger) (*coord.Client, error) {
	if err := (coord.Config{EntryCompression: f.EntryCompression}).Validate(); err != nil {
		// Before Redis is reached, and named as the operator set it.
		return nil, fmt.Errorf("--entry-compression (REMIX_ENTRY_COMPRESSION): %w", err)
	}
	opts, err := c.RedisOptions()
	if err != nil {
		return nil, err
	}
	opts.ClientName = "remix"
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, unreachable{fmt.Errorf("connecting to Redis at %s: %w", opts.Addr, err)}
	}
	readBlock := min(time.Second, f.LeaseTTL/4)
	limits := map[string]coord.DeadLetterLimit{}
	if cfg != nil {
		for _, s := range cfg.Systems {
			limits[s.Name] = coord.DeadLetterLimit{MaxEntries: s.DeadLetters.MaxEntries, MaxBytes: s.DeadLetters.MaxBytes, DropOldest: s.DeadLetters.DropOldest}
		}
	}
	cl, err := coord.New(rdb, coord.Config{Namespace: f.Namespace, Partitions: f.Partitions, LeaseTTL: f.LeaseTTL, LockTTL: f.LockTTL,
		EntryCompression: f.EntryCompression, ReadBlock: readBlock, DeadLetterLimits: limits, Logger: log})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return cl, nil
}

// redisURL is --redis, else REDIS_URL, else the default.
func (c *Common) redisURL() string {
	if c.RedisURL != "" {
		return c.RedisURL
	}
	return EnvOr("REDIS_URL", defaultRedisURL)
}

// ErrRedisUnreachable is in the error of Coord when Redis did not answer:
// worth trying again, unlike a malformed URL or bad fleet settings.
var ErrRedisUnreachable = errors.New("redis unreachable")

type unreachable struct{ error }

func (u unreachable) Unwrap() error        { return u.error }
func (u unreachable) Is(target error) bool { return target == ErrRedisUnreachable }

// Systems is a repeatable --system flag.
type Systems []string

func (s *Systems) String() string     { return strings.Join(*s, ",") }
func (s *Systems) Set(v string) error { *s = append(*s, v); return nil }

// EnvSystems is a repeatable --system flag whose default is a
// comma-separated environment variable; the first --system replaces that
// default instead of adding to it.
type EnvSystems struct {
	list *[]string
	set  bool
}

// NewEnvSystems fills list from the variable name and returns the flag.
func NewEnvSystems(list *[]string, name string) *EnvSystems {
	*list = nil
	for _, s := range strings.Split(os.Getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			*list = append(*list, s)
		}
	}
	return &EnvSystems{list: list}
}

func (e *EnvSystems) String() string {
	if e == nil || e.list == nil {
		return ""
	}
	return strings.Join(*e.list, ",")
}

// Set adds a system, dropping the environment's list on first use.
func (e *EnvSystems) Set(v string) error {
	if !e.set {
		*e.list, e.set = nil, true
	}
	*e.list = append(*e.list, v)
	return nil
}

// Main runs a binary: it reads the settings of an env file beside the
// binary (see EnvFileName) that the environment does not set; the first
// SIGINT or SIGTERM cancels the context so
// the process drains and stops; another one exits at once, unless it comes
// within a second of the first (see watchSignals).
//
// Unless GOGC or GOMEMLIMIT say otherwise, the garbage collector runs at
// GOGC=400 under a soft memory limit: the hot paths allocate many
// short-lived values, and collecting them four times less often is worth
// more CPU than the memory it costs, while the limit keeps a process near
// its usual footprint. The limit is 80% of the container's memory limit
// (cgroup v2 or v1) when there is one, else the binary's own (see
// IngestMemoryLimit and FleetMemoryLimit). Unless GOMAXPROCS says
// otherwise, the process runs on one P while it uses less than a core,
// and on the runtime's default while it needs more (see followLoad).
func Main(defaultLimit int64, run func(ctx context.Context) error) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(cgroupMemoryLimit(), defaultLimit))
	}
	if _, err := loadEnvFile(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	followLoad(ctx, os.Getenv)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go watchSignals(sigs, cancel, func() {
		fmt.Fprintln(os.Stderr, "second signal: exiting now")
		os.Exit(1)
	}, time.Now)
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// redisLogger sends go-redis's own log lines to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// QuietRedis routes go-redis's internal log lines into log.
func QuietRedis(log *slog.Logger) { redis.SetLogger(redisLogger{log: log}) }

// The soft memory limits outside a container, by binary, from the heap
// each keeps live at its busiest (a 1 000 000-row snapshot: see
// docs/performance.md), with room for the collector to run seldom, and
// under 128 MB resident with the binary's own pages (about 20 MB for the
// ingest, 50 MB for a binary with the cloud stores' SDKs).
const (
	// IngestMemoryLimit: the ingest keeps a few snapshot chunks or
	// gathered transactions in flight, about 25 MB live; under 80 MiB it
	// collects no more often than under 160 (CPU per row the same within
	// the noise) and peaks near 105 MB resident.
	IngestMemoryLimit = 80 << 20
	// FleetMemoryLimit (pusher, remix): a pusher keeps every writer's batch
	// decoded while it is written, at most 2 000 objects and 1 MiB of
	// payload each (coord.Config), 10–20 MB live with the default writers.
	// Under 72 MiB it peaked at 117–131 MB resident in snapshots; under 64
	// MiB at 112 MB, for 0.2–0.3 µs of CPU a row more (within the noise).
	FleetMemoryLimit = 64 << 20
)

// memoryLimit is the soft limit for a container limit (0: none) and the
// binary's default.
func memoryLimit(container, defaultLimit int64) int64 {
	if container <= 0 {
		return defaultLimit
	}
	return container / 10 * 8
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup, 0 when
// there is none (or it cannot be read).
func cgroupMemoryLimit() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // v1 reports a huge number for "no limit"
			return 0
		}
		return n
	}
	return 0
}
