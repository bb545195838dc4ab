package coord

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Fence is what a publisher proves its right to publish with: the value of
// the reader lock it holds.
type Fence interface {
	Value() string
}

// Item is one thing an ingest publishes for a source change.
type Item struct {
	Key     string // partition key: the change's source identity (system/location/primary key)
	Model   string
	Payload []byte // the encoded object; for a bad record, the source record
	// Bad marks a record that could not be mapped or validated: it goes to
	// the source's dead-letter queue with Reason, and parks Model|Key.
	Bad      bool
	Location string
	Reason   string
	// AllPartitions puts a copy of the object in every partition of its
	// model, in the same atomic step: a change that concerns every key (a
	// truncate) then stands at the same point of every partition's order.
	AllPartitions bool
}

// PublishResult counts what a publish did.
type PublishResult struct {
	Published    int // appended to partition streams
	Diverted     int // held in the dead-letter queue behind an earlier dead letter of their key
	DeadLettered int // bad records
}

// maxItemsPerScript bounds one script call's arguments; a batch larger than
// this is sent as several calls in one pipeline.
const maxItemsPerScript = 1000

// Publish appends items for a source, in order, fenced by the source's
// reader lock: every script call checks that fence is the current holder,
// so a stalled former holder cannot publish after a takeover (ErrFenced).
// When Publish returns nil, every item is in Redis (acknowledged by a server
// that appends it to its AOF before replying). One round trip per batch.
func (c *Client) Publish(ctx context.Context, source string, fence Fence, items []Item) (PublishResult, error) {
	var res PublishResult
	for start := 0; start < len(items); {
		pipe := c.rdb.Pipeline()
		var cmds []*redis.Cmd
		for start < len(items) && len(cmds) < 64 {
			end := min(start+maxItemsPerScript, len(items))
			keys, args := c.publishArgs(source, fence, items[start:end])
			// EVAL, not EVALSHA: a pipeline of EVALSHA after a Redis restart
			// fails with NOSCRIPT, and retrying one call after later ones ran
			// would reorder a partition. The body is small next to the items.
			cmds = append(cmds, publishScript.Eval(ctx, pipe, keys, args...))
			start = end
		}
		var wait *redis.Cmd
		if c.waitAOF.Load() {
			wait = pipe.Do(ctx, "WAITAOF", 1, 0, 5000)
		}
		_, _ = pipe.Exec(ctx)
		if wait != nil {
			if acks, err := wait.Slice(); err != nil || len(acks) == 0 || acks[0] != int64(1) {
				return res, fmt.Errorf("publishing for %s: the AOF fsync was not confirmed within 5s (WAITAOF: %v)", source, err)
			}
		}
		for i, cmd := range cmds {
			if err := cmd.Err(); err != nil {
				return res, fmt.Errorf("publishing %d items for %s (call %d): %w", len(items), source, i, scriptError(err))
			}
			counts, _ := cmd.Slice()
			res.Published += toInt(counts, 0)
			res.Diverted += toInt(counts, 1)
			res.DeadLettered += toInt(counts, 2)
		}
	}
	return res, nil
}

func toInt(vals []any, i int) int {
	if i >= len(vals) {
		return 0
	}
	n, _ := vals[i].(int64)
	return int(n)
}

func (c *Client) publishArgs(source string, fence Fence, items []Item) ([]string, []any) {
	keys := []string{c.keys.readerLock(source), c.keys.parked(source, stageReceive), c.keys.dlq(source)}
	streamIdx := map[string]int{}
	args := make([]any, 0, 2+len(items)*7)
	args = append(args, fence.Value(), 0) // the count is filled in below
	for _, it := range items {
		if it.Bad {
			args = append(args, "r", 0, it.Key, it.Model, it.Payload, it.Location, it.Reason)
			continue
		}
		parts := []int{c.PartitionOf(it.Key)}
		if it.AllPartitions {
			parts = make([]int, c.cfg.Partitions)
			for i := range parts {
				parts[i] = i
			}
		}
		for _, p := range parts {
			sk := c.keys.stream(it.Model, p)
			idx, ok := streamIdx[sk]
			if !ok {
				keys = append(keys, sk)
				idx = len(keys) // Lua indexes from 1
				streamIdx[sk] = idx
			}
			args = append(args, "o", idx, it.Key, it.Model, it.Payload, strconv.Itoa(p), "")
		}
	}
	args[1] = (len(args) - 2) / 7
	return keys, args
}
