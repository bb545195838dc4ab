package coord

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// StreamEnds returns the id of the last entry of each partition stream
// ("" for an empty or missing stream): what a target must pass to have
// applied everything published so far.
func (c *Client) StreamEnds(ctx context.Context, parts []PartitionRef) (map[PartitionRef]string, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(parts))
	for i, p := range parts {
		cmds[i] = pipe.XRevRangeN(ctx, c.keys.stream(p.Model, p.Partition), "+", "-", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
		return nil, fmt.Errorf("reading stream ends: %w", err)
	}
	out := make(map[PartitionRef]string, len(parts))
	for i, p := range parts {
		out[p] = ""
		if ms := cmds[i].Val(); len(ms) > 0 {
			out[p] = ms[0].ID
		}
	}
	return out, nil
}

// AwaitCursors waits until a target's cursor on each partition stands at
// or after the given entry id (see StreamEnds), polling every poll, until
// ctx ends. It returns the partitions still behind when ctx ended (nil:
// all passed).
func (c *Client) AwaitCursors(ctx context.Context, target string, ends map[PartitionRef]string, poll time.Duration) ([]PartitionRef, error) {
	left := map[PartitionRef]string{}
	for p, id := range ends {
		if id != "" {
			left[p] = id
		}
	}
	for len(left) > 0 {
		pipe := c.rdb.Pipeline()
		cmds := map[PartitionRef]*redis.XInfoGroupsCmd{}
		for p := range left {
			cmds[p] = pipe.XInfoGroups(ctx, c.keys.stream(p.Model, p.Partition))
		}
		if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil && !isRedisNil(err) && !isScriptReplyErr(err) {
			return nil, fmt.Errorf("reading cursors of %s: %w", target, err)
		}
		for p, cmd := range cmds {
			for _, g := range cmd.Val() {
				if g.Name == target && !idLess(g.LastDeliveredID, left[p]) {
					delete(left, p)
				}
			}
		}
		if len(left) == 0 {
			break
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			behind := make([]PartitionRef, 0, len(left))
			for p := range left {
				behind = append(behind, p)
			}
			return behind, nil
		case <-t.C:
		}
	}
	return nil, nil
}
