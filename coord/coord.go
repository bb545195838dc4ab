package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"
)

// Client is a namespace of Remix state in one Redis.
type Client struct {
	rdb  redis.UniversalClient
	cfg  Config
	keys keys
	log  *slog.Logger
	// waitAOF makes Publish end its pipeline with WAITAOF; see CheckDurability.
	waitAOF atomic.Bool
	// dlqReads counts dead letters read for replays, for tests.
	dlqReads atomic.Int64
}

// New returns a client over rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("coord config: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Client{rdb: rdb, cfg: cfg, keys: keys{ns: cfg.Namespace}, log: cfg.Logger}, nil
}

// Redis returns the underlying client.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// Config returns the settings in use, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// PartitionOf returns the partition of a partition key: xxhash64 of the key
// modulo the partition count. It must never change: per-key order depends
// on every process agreeing (a golden test pins it).
func (c *Client) PartitionOf(key string) int {
	return int(xxhash.Sum64String(key) % uint64(c.cfg.Partitions))
}

// StreamKey returns the key of a model's partition stream.
func (c *Client) StreamKey(model string, partition int) string {
	return c.keys.stream(model, partition)
}

// EnsureTopology records the partition count of each model in Redis, or
// checks it against what is recorded: a fleet whose processes disagree would
// break per-key order.
func (c *Client) EnsureTopology(ctx context.Context, models []string) error {
	want := strconv.Itoa(c.cfg.Partitions)
	for _, m := range models {
		if err := c.rdb.HSetNX(ctx, c.keys.topology(), m, want).Err(); err != nil {
			return fmt.Errorf("recording topology of %s: %w", m, err)
		}
		got, err := c.rdb.HGet(ctx, c.keys.topology(), m).Result()
		if err != nil {
			return fmt.Errorf("reading topology of %s: %w", m, err)
		}
		if got != want {
			return fmt.Errorf("%w: model %s has %s partitions in Redis but this process is configured with %s; "+
				"every process must use the same count (changing it needs a new namespace)", ErrTopology, m, got, want)
		}
	}
	return nil
}

// EnsureGroups creates the consumer group of each target on every partition
// stream of a model, reading from the start of what is retained. Ingests call
// it before they publish, so no entry is trimmed before a target has seen it.
func (c *Client) EnsureGroups(ctx context.Context, model string, targets []string) error {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, 0, c.cfg.Partitions*len(targets))
	for p := 0; p < c.cfg.Partitions; p++ {
		for _, t := range targets {
			cmds = append(cmds, pipe.XGroupCreateMkStream(ctx, c.keys.stream(model, p), t, "0"))
		}
	}
	_, _ = pipe.Exec(ctx)
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !isBusyGroup(err) {
			return fmt.Errorf("creating consumer groups of %s: %w", model, err)
		}
	}
	return nil
}

func isBusyGroup(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && len(re.Error()) >= 9 && re.Error()[:9] == "BUSYGROUP"
}

// loadScripts loads every script so pipelines can use EVALSHA.
func (c *Client) loadScripts(ctx context.Context, scripts ...*redis.Script) error {
	for _, s := range scripts {
		if err := s.Load(ctx, c.rdb).Err(); err != nil {
			return fmt.Errorf("loading script: %w", err)
		}
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && len(err.Error()) >= 8 && err.Error()[:8] == "NOSCRIPT"
}
