package coord

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/klauspost/compress/s2"
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
	// Supersedes marks a complete version of the key (a whole row, a
	// delete): when the key is parked behind dead letters, they are set
	// aside as superseded and the object is published instead of waiting
	// behind them.
	Supersedes bool
	// Version, when set, orders the object among the versions of its
	// model|key: it is published only when greater (as a string: pad it)
	// than the last one published, else skipped as stale or tied. For
	// sources whose deliveries come in no order (webhooks).
	Version string
}

// PublishResult counts what a publish did.
type PublishResult struct {
	Published    int  // objects appended to partition streams
	Diverted     int  // held in the dead-letter queue behind an earlier dead letter of their key
	DeadLettered int  // bad records
	Superseded   int  // dead letters set aside by a newer complete version of their key
	Stale        int  // objects skipped: an older version than one already published
	Tied         int  // objects skipped: the same version as one already published
	Repeat       bool // the delivery was published before: nothing was
	// Bytes is the size of the packed entry bodies written, StoredBytes
	// what Redis was given for them: less where they were compressed.
	// Both are zero for the per-object path.
	Bytes, StoredBytes int
}

// maxEntryBody bounds one packed entry; a partition's share of a batch
// larger than this goes out as several entries, in order.
const maxEntryBody = 1 << 20

// maxItemsPerScript bounds one per-object script call's arguments.
const maxItemsPerScript = 1000

// Publish appends items for a source, in order, fenced by the source's
// reader lock: the script that writes checks that fence is the current
// holder, so a stalled former holder cannot publish after a takeover
// (ErrFenced). When Publish returns nil, every item is in Redis, acknowledged
// by a server that appends it to its AOF before replying. The objects of one
// partition go out packed into one entry; a batch with bad records, or
// published while keys are parked, takes the slower per-object path that
// parks and diverts.
func (c *Client) Publish(ctx context.Context, source string, fence Fence, items []Item) (PublishResult, error) {
	if len(items) == 0 {
		return PublishResult{}, nil
	}
	slow := false
	for i := range items {
		slow = slow || items[i].Bad || items[i].Version != ""
	}
	if !slow {
		res, parked, err := c.publishPacked(ctx, source, fence, items)
		if err != nil || !parked {
			return res, err
		}
	}
	return c.publishEach(ctx, source, fence, "", items)
}

// deliveryWindow is how long a delivery id and an object version are kept:
// longer than a sender retries (Stripe: 30 days).
const deliveryWindow = 31 * 24 * time.Hour

// PublishDelivery publishes what one delivery pushed to Remix (a webhook
// event) brought, without a reader lock: any ingest replica may receive a
// delivery. Deliveries are deduplicated by id for 31 days (a repeat
// publishes nothing and reports Repeat), and items with a Version are
// ordered per object (an older or equal version is skipped). The whole
// delivery is one atomic script call, so a delivery is published once or
// not at all; when it returns nil the objects are durable in Redis.
// A source's own catch-up (under its lock) passes its fence to Publish
// with the same Versions, so both paths agree on every object's order.
func (c *Client) PublishDelivery(ctx context.Context, source, id string, items []Item) (PublishResult, error) {
	if len(items) > maxItemsPerScript {
		return PublishResult{}, fmt.Errorf("a delivery of %d objects is more than one call takes (%d)", len(items), maxItemsPerScript)
	}
	return c.publishEach(ctx, source, nil, id, items)
}

// publishPacked writes the batch as packed entries in one script call;
// parked is true when nothing was written because keys are parked.
func (c *Client) publishPacked(ctx context.Context, source string, fence Fence, items []Item) (res PublishResult, parked bool, err error) {
	// Objects are grouped per destination (model and partition) in two
	// passes: the first sizes each destination, so every body is allocated
	// once instead of growing object by object.
	type dest struct {
		model string
		p     int
	}
	type entry struct {
		stream string
		n      int
		body   []byte
	}
	packedSize := func(it *Item) int {
		return len(it.Key) + len(it.Payload) + 2*binary.MaxVarintLen32
	}
	parts := make([]int, len(items))
	remaining := make(map[dest]int)
	for i := range items {
		it := &items[i]
		if it.AllPartitions {
			parts[i] = -1
			for p := 0; p < c.cfg.Partitions; p++ {
				remaining[dest{it.Model, p}] += packedSize(it)
			}
			continue
		}
		parts[i] = c.PartitionOf(it.Key)
		remaining[dest{it.Model, parts[i]}] += packedSize(it)
	}
	// Every body is cut from one buffer, and so is every compressed one:
	// buffers kept from earlier publishes, since nothing refers to them
	// once this publish has been written to Redis.
	total := 0
	for _, n := range remaining {
		total += n
	}
	bodies := takeSlab(total)
	defer bodies.release()
	var entries []*entry
	open := make(map[dest]*entry, len(remaining))
	// An object for every partition (a truncate) gets an entry of its own:
	// the entries before it then hold everything that comes before it, so
	// a partition whose cursor stands just before that entry has applied
	// all of it (see Barrier), and nothing of an entry that holds the
	// truncate is written again after it by a pusher that reads the entry
	// anew.
	add := func(it *Item, p int, alone bool) {
		d := dest{it.Model, p}
		e := open[d]
		if e == nil || len(e.body) >= maxEntryBody || alone {
			e = &entry{stream: c.keys.stream(it.Model, p), body: bodies.cut(min(remaining[d], maxEntryBody+packedSize(it)))}
			open[d] = e
			entries = append(entries, e)
		}
		remaining[d] -= packedSize(it)
		e.body = appendPacked(e.body, it.Key, it.Payload)
		e.n++
		res.Published++
		if alone {
			delete(open, d) // what follows starts an entry of its own too
		}
	}
	for i := range items {
		it := &items[i]
		if parts[i] < 0 {
			for p := 0; p < c.cfg.Partitions; p++ {
				add(it, p, true)
			}
			continue
		}
		add(it, parts[i], false)
	}
	keys := make([]string, 0, 2+len(entries))
	keys = append(keys, c.keys.readerLock(source), c.keys.parked(source, stageReceive))
	args := make([]any, 0, 1+3*len(entries))
	args = append(args, fence.Value())
	compress := c.cfg.EntryCompression == CompressionS2
	var zs *slab
	if compress {
		zs = takeSlab(s2.MaxEncodedLen(total) + len(entries)*s2.MaxEncodedLen(0))
		defer zs.release()
	}
	for _, e := range entries {
		keys = append(keys, e.stream)
		field, value := "b", e.body
		if compress && len(e.body) >= compressMin {
			field, value = compressBody(e.body, zs.cut(s2.MaxEncodedLen(len(e.body))))
		}
		args = append(args, strconv.Itoa(e.n), field, value)
		res.Bytes += len(e.body)
		res.StoredBytes += len(value)
	}
	// EVAL, not EVALSHA: after a Redis restart EVALSHA fails with NOSCRIPT,
	// and the body is small next to the objects.
	pipe := c.rdb.Pipeline()
	cmd := packedPublishScript.Eval(ctx, pipe, keys, args...)
	wait := c.waitAOFCmd(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	if err := cmd.Err(); err != nil {
		return PublishResult{}, false, fmt.Errorf("publishing %d items for %s: %w", len(items), source, scriptError(err))
	}
	if n, _ := cmd.Int64(); n < 0 {
		return PublishResult{}, true, nil
	}
	if err := checkWaitAOF(wait); err != nil {
		return res, false, fmt.Errorf("publishing for %s: %w", source, err)
	}
	return res, false, nil
}

// publishEach writes one entry per object, parking and diverting as the
// script decides.
func (c *Client) publishEach(ctx context.Context, source string, fence Fence, delivery string, items []Item) (PublishResult, error) {
	var res PublishResult
	for start := 0; start < len(items); {
		pipe := c.rdb.Pipeline()
		var cmds []*redis.Cmd
		for start < len(items) && len(cmds) < 64 {
			end := min(start+maxItemsPerScript, len(items))
			keys, args := c.publishArgs(source, fence, delivery, items[start:end])
			cmds = append(cmds, publishScript.Eval(ctx, pipe, keys, args...))
			start = end
		}
		wait := c.waitAOFCmd(ctx, pipe)
		_, _ = pipe.Exec(ctx)
		for i, cmd := range cmds {
			if err := cmd.Err(); err != nil {
				return res, fmt.Errorf("publishing %d items for %s (call %d): %w", len(items), source, i, scriptError(err))
			}
			counts, _ := cmd.Slice()
			res.Published += toInt(counts, 0)
			res.Diverted += toInt(counts, 1)
			res.DeadLettered += toInt(counts, 2)
			res.Superseded += toInt(counts, 3)
			res.Stale += toInt(counts, 4)
			res.Tied += toInt(counts, 5)
			res.Repeat = res.Repeat || toInt(counts, 6) == 1
		}
		if err := checkWaitAOF(wait); err != nil {
			return res, fmt.Errorf("publishing for %s: %w", source, err)
		}
	}
	return res, nil
}

// waitAOFCmd ends a pipeline with WAITAOF when the server has it (see
// CheckDurability): the same connection as the writes it covers.
func (c *Client) waitAOFCmd(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	if !c.waitAOF.Load() {
		return nil
	}
	return pipe.Do(ctx, "WAITAOF", 1, 0, 5000)
}

func checkWaitAOF(cmd *redis.Cmd) error {
	if cmd == nil {
		return nil
	}
	if acks, err := cmd.Slice(); err != nil || len(acks) == 0 || acks[0] != int64(1) {
		return fmt.Errorf("the AOF fsync was not confirmed within 5s (WAITAOF: %v)", err)
	}
	return nil
}

func toInt(vals []any, i int) int {
	if i >= len(vals) {
		return 0
	}
	n, _ := vals[i].(int64)
	return int(n)
}

func (c *Client) publishArgs(source string, fence Fence, delivery string, items []Item) ([]string, []any) {
	lock, value := "", ""
	if fence != nil {
		lock, value = c.keys.readerLock(source), fence.Value()
	}
	keys := []string{lock, c.keys.parked(source, stageReceive)}
	streamIdx := map[string]int{}
	args := make([]any, 0, 9+len(items)*8)
	args = append(args, value)
	args = append(args, c.dlqArgs(source)...)
	args = append(args, 0, delivery, c.keys.sourcePrefix(source), int64(deliveryWindow/time.Second)) // the count is filled in below
	for _, it := range items {
		if it.Bad {
			args = append(args, "r", 0, it.Key, it.Model, it.Payload, it.Location, it.Reason, "")
			continue
		}
		parts := []int{c.PartitionOf(it.Key)}
		if it.AllPartitions {
			parts = make([]int, c.cfg.Partitions)
			for i := range parts {
				parts[i] = i
			}
		}
		body := appendPacked(nil, it.Key, it.Payload)
		kind := "o"
		if it.Supersedes {
			kind = "c"
		}
		for _, p := range parts {
			sk := c.keys.stream(it.Model, p)
			idx, ok := streamIdx[sk]
			if !ok {
				keys = append(keys, sk)
				idx = len(keys) // Lua indexes from 1
				streamIdx[sk] = idx
			}
			args = append(args, kind, idx, it.Key, it.Model, it.Payload, strconv.Itoa(p), body, it.Version)
		}
	}
	args[5] = (len(args) - 9) / 8
	return keys, args
}
