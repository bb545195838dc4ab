package coord

import (
	"context"

	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RequestReplay asks the pushers of a target to replay dead letters: for
// each parked key of the target's push stage that keep accepts (nil: all),
// a replay marker goes into the key's partition. The partition's owner
// replays the key's dead letters when it reaches the marker: after every
// earlier entry of the partition, before every later one, so the key's
// changes stay in order. It returns how many keys were asked for.
func (c *Client) RequestReplay(ctx context.Context, target string, keep func(model, key string) bool) (int, error) {
	parked, err := c.Parked(ctx, target, stagePush)
	if err != nil {
		return 0, err
	}
	pipe := c.rdb.Pipeline()
	n := 0
	for mk := range parked {
		model, key, ok := strings.Cut(mk, "|")
		if !ok || keep != nil && !keep(model, key) {
			continue
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: c.keys.stream(model, c.PartitionOf(key)),
			Values: []any{"c", "replay", "t", target, "m", model, "k", key}})
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("requesting replays for %s: %w", target, err)
	}
	return n, nil
}

// replayKey replays, in order, the target's dead letters of one model and
// key, through the handler, one at a time. It stops at the first that fails
// for good: it stays, with the later ones behind it, and the key stays
// parked. It returns whether the key is free again.
func (cs *Consumer) replayKey(ctx context.Context, h Handler, marker Delivery) (bool, error) {
	m := marker.replay
	letters, err := cs.c.deadLettersOf(ctx, cs.target, stagePush, m.model, m.key)
	if err != nil {
		return false, err
	}
	var b backoff
	for i := range letters {
		d := &letters[i]
		one := []Delivery{{Model: d.Model, Partition: d.Partition, ID: d.ID, Count: 1, Key: d.Key, Payload: d.Payload, Deliveries: 1, Fence: marker.Fence}}
		attempts := 0
		for {
			err := handle(ctx, h, one)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			attempts++
			if errors.Is(err, ErrFenced) {
				return false, err
			}
			if errors.Is(err, ErrDefer) { // a barrier cannot be passed out of its partition's order
				cs.log.Warn("a dead letter waits at a barrier; replay it later", "model", d.Model, "key", d.Key, "dead_letter", d.ID)
				return false, nil
			}
			if errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrPermanent) && attempts < cs.c.cfg.MaxAttempts {
				if !b.wait(ctx, cs.c.cfg) {
					return false, ctx.Err()
				}
				continue
			}
			cs.log.Warn("replay failed; the key stays parked", "model", d.Model, "key", d.Key, "dead_letter", d.ID, "error", err)
			return false, nil
		}
		b.reset()
		left, err := cs.c.Resolve(ctx, d)
		if err != nil {
			return false, err
		}
		if left == 0 {
			return true, nil
		}
	}
	return len(letters) == 0, nil
}

// deadLettersOf returns the dead letters of one model|key of a system's
// stage, in order, through the key's index: a replay reads what it needs,
// however many other dead letters the queue holds. Dead letters written
// before the index existed are found by reading the whole queue.
func (c *Client) deadLettersOf(ctx context.Context, system, stage, model, key string) ([]DeadLetter, error) {
	park := model + "|" + key
	pipe := c.rdb.Pipeline()
	ids := pipe.LRange(ctx, c.keys.dlqIndex(system, stage, park), 0, -1)
	held := pipe.HGet(ctx, c.keys.parked(system, stage), park)
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
		return nil, fmt.Errorf("reading the dead letters of %s: %w", park, err)
	}
	n, _ := held.Int64()
	if int64(len(ids.Val())) < n { // some predate the index
		var out []DeadLetter
		err := c.EachDeadLetter(ctx, system, func(d *DeadLetter) error {
			if d.Stage == stage && d.Model == model && d.Key == key {
				out = append(out, *d)
			}
			return nil
		})
		return out, err
	}
	if len(ids.Val()) == 0 {
		return nil, nil
	}
	pipe = c.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(ids.Val()))
	for i, id := range ids.Val() {
		cmds[i] = pipe.XRange(ctx, c.keys.dlq(system), id, id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading the dead letters of %s: %w", park, err)
	}
	c.dlqReads.Add(int64(len(cmds)))
	out := make([]DeadLetter, 0, len(cmds))
	for _, cmd := range cmds {
		for _, m := range cmd.Val() {
			out = append(out, parseDeadLetter(system, m))
		}
	}
	return out, nil
}
