package coord

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The two stages where a change can be dead-lettered.
const (
	stageReceive = "receive" // an ingest could not map or validate a source record
	stagePush    = "push"    // a target refused an object
)

// Kinds of dead letters.
const (
	KindRecord = "record" // a source record that failed its receive mixer or model
	KindObject = "object" // an object held back behind an earlier dead letter of its key
	KindEntry  = "entry"  // a stream entry a target could not apply
)

// DeadLetter is one entry of a system's dead-letter queue. While a model and
// key have dead letters, later changes of the same key are parked behind
// them (dead-lettered too, as KindObject or KindEntry), so replaying the queue
// in order keeps every key's changes in order.
type DeadLetter struct {
	ID        string // the dead letter's own id, in queue order
	System    string
	Stage     string // "receive" or "push"
	Kind      string
	Key       string // partition key
	Model     string
	Location  string // KindRecord: the source location
	Partition int
	Origin    string // KindEntry: the id of the stream entry
	Reason    string
	Attempts  int
	Time      time.Time
	Payload   []byte
	// SupersededBy, in the superseded list, says what set it aside.
	SupersededBy string
}

// ParkKey is what the dead letter parks: model|key.
func (d *DeadLetter) ParkKey() string { return d.Model + "|" + d.Key }

func parseDeadLetter(system string, m redis.XMessage) DeadLetter {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	d := DeadLetter{ID: m.ID, System: system, Stage: str("stage"), Kind: str("kind"), Key: str("key"), Model: str("model"),
		Location: str("location"), Origin: str("origin"), Reason: str("reason"), Payload: []byte(str("payload"))}
	d.Partition, _ = strconv.Atoi(str("partition"))
	d.Attempts, _ = strconv.Atoi(str("attempts"))
	if ms, err := strconv.ParseInt(str("time"), 10, 64); err == nil {
		d.Time = time.UnixMilli(ms).UTC()
	}
	return d
}

// DeadLetters lists up to count dead letters of a system after the id
// after ("" for the start), oldest first.
func (c *Client) DeadLetters(ctx context.Context, system, after string, count int) ([]DeadLetter, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := c.rdb.XRangeN(ctx, c.keys.dlq(system), start, "+", int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing dead letters of %s: %w", system, err)
	}
	out := make([]DeadLetter, len(msgs))
	for i, m := range msgs {
		out[i] = parseDeadLetter(system, m)
	}
	return out, nil
}

// EachDeadLetter calls fn for every dead letter of a system, oldest first,
// until fn returns an error (returned as is).
func (c *Client) EachDeadLetter(ctx context.Context, system string, fn func(*DeadLetter) error) error {
	after := ""
	for {
		page, err := c.DeadLetters(ctx, system, after, 500)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for i := range page {
			after = page[i].ID
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
	}
}

// DeadLetterCount returns how many dead letters a system has.
func (c *Client) DeadLetterCount(ctx context.Context, system string) (int64, error) {
	return c.rdb.XLen(ctx, c.keys.dlq(system)).Result()
}

// DeadLetterStats describes a system's dead-letter queue.
type DeadLetterStats struct {
	Entries    int64 // dead letters held
	Bytes      int64 // the bytes they hold (dead letters of earlier versions count 0)
	Dropped    int64 // dropped to make room (DropOldest), ever
	Superseded int64 // set aside by a newer complete version of their key, ever (the newest are kept: SupersededDeadLetters)
	Limit      DeadLetterLimit
}

// DeadLetterStats reads a system's dead-letter queue figures in one round
// trip.
func (c *Client) DeadLetterStats(ctx context.Context, system string) (DeadLetterStats, error) {
	base := c.keys.dlqBase(system)
	pipe := c.rdb.Pipeline()
	n := pipe.XLen(ctx, c.keys.dlq(system))
	b := pipe.Get(ctx, base+":bytes")
	d := pipe.Get(ctx, base+":dropped")
	sup := pipe.Get(ctx, base+":superseded_count")
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
		return DeadLetterStats{}, fmt.Errorf("reading the dead-letter queue of %s: %w", system, err)
	}
	st := DeadLetterStats{Entries: n.Val(), Limit: c.cfg.deadLetterLimit(system)}
	st.Bytes, _ = b.Int64()
	st.Dropped, _ = d.Int64()
	st.Superseded, _ = sup.Int64()
	return st, nil
}

// SupersededDeadLetters lists up to count dead letters of a system that a
// newer complete version of their key set aside, after the id after (""
// for the start), oldest first. ID is the id in the superseded list;
// SupersededBy says what superseded it.
func (c *Client) SupersededDeadLetters(ctx context.Context, system, after string, count int) ([]DeadLetter, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := c.rdb.XRangeN(ctx, c.keys.dlqBase(system)+":superseded", start, "+", int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing superseded dead letters of %s: %w", system, err)
	}
	out := make([]DeadLetter, len(msgs))
	for i, m := range msgs {
		out[i] = parseDeadLetter(system, m)
		out[i].SupersededBy, _ = m.Values["superseded_by"].(string)
	}
	return out, nil
}

// Parked returns the parked model|keys of a system's stage ("receive" or
// "push") with the number of dead letters holding each.
func (c *Client) Parked(ctx context.Context, system, stage string) (map[string]int64, error) {
	m, err := c.rdb.HGetAll(ctx, c.keys.parked(system, stage)).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k], _ = strconv.ParseInt(v, 10, 64)
	}
	return out, nil
}

// Resolve removes a dead letter (dropped, or replayed into its target) and
// unparks its key when it was the last one holding it. It returns how many
// dead letters still hold the key; -1 when d was already gone.
func (c *Client) Resolve(ctx context.Context, d *DeadLetter) (int64, error) {
	n, err := resolveScript.Run(ctx, c.rdb, []string{c.keys.dlq(d.System)}, c.keys.dlqBase(d.System), d.ID).Int64()
	if err != nil {
		return 0, fmt.Errorf("resolving dead letter %s of %s: %w", d.ID, d.System, err)
	}
	return n, nil
}

// Republish puts a receive-stage dead letter's objects (re-mapped by the
// caller from the stored record, or the stored object itself) into their
// partition streams and resolves it, in one atomic step. It returns how many
// dead letters still hold the key, -1 when d was already gone.
func (c *Client) Republish(ctx context.Context, d *DeadLetter, objects []Item) (int64, error) {
	if d.Stage != stageReceive {
		return 0, fmt.Errorf("dead letter %s is from the %s stage: replay it into its target", d.ID, d.Stage)
	}
	keys := []string{c.keys.dlq(d.System)}
	args := []any{c.keys.dlqBase(d.System), d.ID}
	p := c.PartitionOf(d.Key)
	for _, o := range objects {
		keys = append(keys, c.keys.stream(o.Model, p))
		args = append(args, appendPacked(nil, d.Key, o.Payload))
	}
	n, err := replayPublishScript.Run(ctx, c.rdb, keys, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("republishing dead letter %s of %s: %w", d.ID, d.System, err)
	}
	return n, nil
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Replayed int
	Failed   int // tried and failed again; they stay, with the key still parked
	Skipped  int // not tried: behind a failed dead letter of the same key, or filtered out
}

// replayLockTTL is how long a replay's lock lives without a renewal.
const replayLockTTL = 30 * time.Second

// ErrReplayBusy means another replay of the same system is running.
var ErrReplayBusy = errors.New("another replay of this system is running")

// Replay walks a system's dead letters in order. For each one that filter
// accepts (nil accepts all), apply either republishes it (receive stage:
// apply returns the objects to publish, see Republish) or writes it to the
// target (push stage: apply returns nil objects), after which it is
// resolved. When apply fails, the dead letter stays and every later one of
// the same model|key is skipped, so no key's changes overtake each other.
func (c *Client) Replay(ctx context.Context, system string, filter func(*DeadLetter) bool,
	apply func(context.Context, *DeadLetter) ([]Item, error)) (ReplayResult, error) {
	var res ReplayResult
	lockKey := c.keys.replayLock(system)
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	ok, err := c.rdb.SetNX(ctx, lockKey, token, replayLockTTL).Result()
	if err != nil {
		return res, err
	}
	if !ok {
		return res, ErrReplayBusy
	}
	defer releaseScript.Run(context.WithoutCancel(ctx), c.rdb, []string{lockKey}, token)
	// The lock is renewed while the replay works, however long it takes;
	// if it cannot be, the replay stops (another one may start).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		tick := time.NewTicker(replayLockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if n, err := renewScript.Run(ctx, c.rdb, []string{lockKey}, token, replayLockTTL.Milliseconds()).Int64(); err != nil || n != 1 {
					cancel(fmt.Errorf("the replay lock of %s could not be renewed: %v", system, err))
					return
				}
			}
		}
	}()

	blocked := map[string]bool{}
	after := ""
	for {
		batch, err := c.DeadLetters(ctx, system, after, 200)
		if err != nil {
			return res, err
		}
		if len(batch) == 0 {
			return res, nil
		}
		for i := range batch {
			d := &batch[i]
			after = d.ID
			if blocked[d.ParkKey()] || filter != nil && !filter(d) {
				res.Skipped++
				blocked[d.ParkKey()] = true // a skipped one must not be overtaken either
				continue
			}
			objects, err := apply(ctx, d)
			if err == nil {
				if d.Stage == stageReceive {
					_, err = c.Republish(ctx, d, objects)
				} else {
					_, err = c.Resolve(ctx, d)
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return res, context.Cause(ctx)
				}
				c.log.Warn("replay failed; later dead letters of the key wait", "system", system, "id", d.ID, "model", d.Model, "key", d.Key, "error", err)
				res.Failed++
				blocked[d.ParkKey()] = true
				continue
			}
			res.Replayed++
		}
	}
}
