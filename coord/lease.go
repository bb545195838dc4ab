package coord

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// partition is one partition stream a consumer may own.
type partition struct {
	model     string
	index     int
	stream    string
	lease     string
	fence     string // the lease's fence counter
	tenureKey string // the tenure counter (see openScript)
	// backlog holds entries read and held back (deferred); they are handled
	// before anything newer is read.
	backlog []Delivery
	// pausedUntil holds the partition back after a deferral.
	pausedUntil time.Time
	// gen numbers this tenure of the lease: deliveries read under an earlier
	// tenure are never written or acknowledged under this one. It changes
	// when the lease is acquired, and when the tenure lapses locally.
	gen uint64
	// token is this tenure's fencing token (see acquireScript).
	token uint64
	// validUntil is when this consumer must assume the lease lost, counted
	// from when it last asked Redis to extend it, less a margin: past it,
	// nothing of the partition is read or written.
	validUntil time.Time
	// worker is the consumer worker that claimed the partition, plus one;
	// 0 when none did (see claim).
	worker int
	// batch is set while entries of the partition are in a batch being
	// written: a stopping consumer gives the partition up after it.
	batch bool
	// acking counts cursor moves of the partition waiting for a worker's
	// next read: it is given up only once they are sent.
	acking int
	// flushNow asks for the flush of what a Holder holds of the partition
	// at the worker's next chance: a barrier waits for it (see Barrier).
	flushNow bool
	// lastBatch is when entries of the partition last went into a batch,
	// in the consumer's count of such batch places (see fetch).
	lastBatch uint64
	// releasing is set when the consumer owns more than its share: nothing
	// new is read from it, and its lease is released after the batch in
	// flight.
	releasing bool
	// next is the id of the last entry read under this tenure: the next read
	// starts after it.
	next string
	// resync is set when entries read under this tenure were dropped before
	// they were applied (the tenure lapsed): reading starts again from the
	// group's cursor before anything else of the partition is handled.
	resync bool
	// tenures is how many tenures in a row started at the cursor: the first
	// entry read counts them as its deliveries.
	tenures int
	// inflight tracks the entries read and not yet acknowledged.
	inflight inflight
	// held are entries a Holder accepted and holds, acknowledged once
	// flushed (see hold.go).
	held []heldEntry
}

// leaseTick is how often leases are renewed and rebalanced.
func (c *Consumer) leaseTick() time.Duration { return c.c.cfg.LeaseTTL / 3 }

// leaseLoop renews, acquires and releases partition leases until ctx ends:
// every lease tick, and at once when the target's consumers change (one
// joins, one gives partitions up: see announce) or when a lease this
// consumer waits for expires.
func (c *Consumer) leaseLoop(ctx context.Context) {
	defer close(c.leaseDone)
	lastTrim := time.Now()
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.kick:
		}
		next, err := c.rebalance(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("lease rebalance failed", "target", c.target, "error", err)
		}
		if time.Since(lastTrim) >= c.c.cfg.TrimInterval {
			c.trimOwned(ctx)
			lastTrim = time.Now()
		}
		if next <= 0 || next > c.leaseTick() {
			next = c.leaseTick()
		}
		if !tick.Stop() {
			select {
			case <-tick.C:
			default:
			}
		}
		tick.Reset(next)
	}
}

// poke asks the lease loop for a round now.
func (c *Consumer) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// announce tells the target's other consumers that the partitions should
// be shared again (a consumer joined, or gave partitions up), so they do
// not wait for their next lease tick: a hand-over waits for the batch in
// flight, not for a tick.
func (c *Consumer) announce(ctx context.Context, what string) {
	if err := c.c.rdb.Publish(ctx, c.c.keys.rebalance(c.target), c.id+" "+what).Err(); err != nil && ctx.Err() == nil {
		c.log.Debug("announcing a rebalance failed; the others see it at their next tick", "error", err)
	}
}

// subscribe listens to the target's announcements; it returns once Redis
// confirmed the subscription, so nothing announced after it is missed.
func (c *Consumer) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := c.c.rdb.Subscribe(ctx, c.c.keys.rebalance(c.target))
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("subscribing to the rebalancing of %s: %w", c.target, err)
	}
	return ps, nil
}

// listen pokes the lease loop whenever another consumer of the target
// announces a change, until ctx ends.
func (c *Consumer) listen(ctx context.Context, ps *redis.PubSub) {
	defer ps.Close()
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if !strings.HasPrefix(m.Payload, c.id+" ") {
				c.poke()
			}
		}
	}
}

// rebalance runs one round: heartbeat, renew what is owned, then take or
// give up partitions so every live consumer of the target owns its share.
// It returns when to run again, if sooner than the next tick (0: at the
// tick).
func (c *Consumer) rebalance(ctx context.Context) (time.Duration, error) {
	ttl := c.c.cfg.LeaseTTL.Milliseconds()
	hb, err := heartbeatScript.Run(ctx, c.c.rdb, []string{c.c.keys.members(c.target)}, c.id, ttl).Int64Slice()
	if err != nil {
		return 0, err
	}
	if len(hb) != 3 {
		return 0, fmt.Errorf("heartbeat of %s: unexpected reply %v", c.target, hb)
	}
	live, rank := hb[0], hb[1]
	// A member that stops beating (killed) stops counting when its time
	// runs out, at about when its leases expire: run again then, not at
	// the next tick, so its partitions move after the lease TTL.
	var memberExpiry time.Duration
	if hb[2] >= 0 {
		memberExpiry = time.Duration(hb[2])*time.Millisecond + 5*time.Millisecond
	}
	if !c.joined {
		c.joined = true
		c.announce(ctx, "joined")
	}
	if err := c.renew(ctx, ttl); err != nil {
		return 0, err
	}
	share := shareOf(len(c.all), int(live), int(rank))

	c.mu.Lock()
	owned := len(c.owned)
	var keeping []*partition
	mine := map[string]int{}
	for _, p := range c.owned {
		mine[p.model]++
		if !p.releasing {
			keeping = append(keeping, p)
		}
	}
	extra := surplus(keeping, len(keeping)-share)
	var idle []*partition // given up now: no batch of them is being written
	for _, p := range extra {
		p.releasing = true
		if !p.batch && p.canGo(c.leaving) {
			idle = append(idle, p)
			delete(c.owned, p.stream)
		}
	}
	var free []*partition
	if owned < share {
		for _, p := range c.all {
			if _, mine := c.owned[p.stream]; !mine {
				free = append(free, p)
			}
		}
	}
	c.mu.Unlock()
	c.release(ctx, idle)
	if len(extra) > len(idle) {
		c.signal()
	}
	if len(free) == 0 {
		return memberExpiry, nil
	}
	next, err := c.acquire(ctx, balancedOrder(free, mine), share-owned, ttl)
	if memberExpiry > 0 && (next <= 0 || memberExpiry < next) {
		next = memberExpiry
	}
	return next, err
}

// shareOf is how many of total partitions the consumer of the given rank
// among live consumers owns: total/live, and one more for the first
// total%live of them, so every consumer has partitions as long as there
// are at least as many partitions as consumers (16 over 5: 4, 3, 3, 3, 3).
// A consumer past the partition count owns none and stands by.
func shareOf(total, live, rank int) int {
	live = max(live, 1)
	share := total / live
	if rank < total%live {
		share++
	}
	return share
}

// renew extends every owned lease; a lease that is no longer ours is
// dropped with what was read under it (the new owner reads it again from
// the cursor).
func (c *Consumer) renew(ctx context.Context, ttl int64) error {
	c.mu.Lock()
	owned := make([]*partition, 0, len(c.owned))
	for _, p := range c.owned {
		owned = append(owned, p)
	}
	c.mu.Unlock()
	if len(owned) == 0 {
		return nil
	}
	sent := time.Now()
	pipe := c.c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(owned))
	for i, p := range owned {
		cmds[i] = renewScript.Eval(ctx, pipe, []string{p.lease}, c.id, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
		// Network trouble: keep the leases for now; they expire on their own
		// if renewal keeps failing, and process() stops writing for lost ones.
		return err
	}
	lost := 0
	var discard []PartitionRef
	c.mu.Lock()
	for i, p := range owned {
		if n, _ := cmds[i].Int64(); n != 1 {
			if c.owned[p.stream] == p {
				delete(c.owned, p.stream)
				if len(p.held) > 0 {
					discard = append(discard, PartitionRef{p.model, p.index})
				}
			}
			lost++
			continue
		}
		p.validUntil = c.validity(sent)
	}
	c.mu.Unlock()
	c.discardHeld(discard)
	if lost > 0 {
		c.log.Warn("partition leases lost", "target", c.target, "count", lost)
		c.signal()
	}
	return nil
}

// acquire tries to take up to want of the free partitions and opens a
// tenure on each: reading starts at the group's cursor. When it got fewer
// than it wants, it returns when the first lease it missed expires (a dead
// consumer's), so the takeover waits for the lease TTL, not a tick more.
func (c *Consumer) acquire(ctx context.Context, free []*partition, want int, ttl int64) (time.Duration, error) {
	if want <= 0 {
		return 0, nil
	}
	var got []*partition
	var tokens []uint64
	var missed []*partition
	sent := time.Now()
	for len(free) > 0 && len(got) < want {
		n := min(want-len(got), len(free))
		try := free[:n]
		free = free[n:]
		pipe := c.c.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(try))
		for i, p := range try {
			cmds[i] = acquireScript.Eval(ctx, pipe, []string{p.lease, p.fence}, c.id, ttl)
		}
		if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
			return 0, err
		}
		for i, p := range try {
			if token, _ := cmds[i].Int64(); token > 0 {
				got = append(got, p)
				tokens = append(tokens, uint64(token))
			} else {
				missed = append(missed, p)
			}
		}
	}
	for i, p := range got {
		fresh := &partition{model: p.model, index: p.index, stream: p.stream, lease: p.lease, fence: p.fence, tenureKey: p.tenureKey,
			gen: c.gens.Add(1), token: tokens[i], validUntil: c.validity(sent)}
		cursor, tenures, err := c.open(ctx, fresh)
		if err != nil {
			// Give it back, with the others not yet set up, and try again
			// next round.
			for _, q := range got[i:] {
				releaseScript.Run(ctx, c.c.rdb, []string{q.lease}, c.id)
			}
			return 0, err
		}
		fresh.next, fresh.tenures = cursor, tenures
		fresh.inflight.reset(cursor)
		c.mu.Lock()
		c.owned[p.stream] = fresh
		c.mu.Unlock()
		c.takeovers.Add(1)
		if tenures > 1 {
			c.log.Warn("partition taken over where its previous owner stopped without handing it over",
				"target", c.target, "model", p.model, "partition", p.index, "tenures_here", tenures)
		}
	}
	if len(got) > 0 {
		c.log.Debug("partitions taken", "target", c.target, "id", c.id, "taken", len(got), "wanted", want, "owned", c.ownedCount())
		c.signal()
	}
	if len(got) >= want || len(missed) == 0 {
		return 0, nil
	}
	return c.firstExpiry(ctx, missed), nil
}

// firstExpiry is how long until the first of some leases expires (plus a
// few milliseconds), 0 when it cannot tell.
func (c *Consumer) firstExpiry(ctx context.Context, parts []*partition) time.Duration {
	pipe := c.c.rdb.Pipeline()
	cmds := make([]*redis.DurationCmd, len(parts))
	for i, p := range parts {
		cmds[i] = pipe.PTTL(ctx, p.lease)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
		return 0
	}
	var first time.Duration
	for _, cmd := range cmds {
		if d := cmd.Val(); d > 0 && (first == 0 || d < first) {
			first = d
		}
	}
	if first == 0 {
		return 0
	}
	return first + 5*time.Millisecond
}

// validity is how long a lease asked to be extended at sent may be relied
// on: its TTL less a tenth, for the time the request took and clock drift.
func (c *Consumer) validity(sent time.Time) time.Time {
	ttl := c.c.cfg.LeaseTTL
	return sent.Add(ttl - ttl/10)
}

// releaseIdle gives up the leases of worker w's partitions marked for
// release; it is called between the worker's batches, when none of their
// entries is in flight.
func (c *Consumer) releaseIdle(ctx context.Context, w int) {
	c.mu.Lock()
	var rel []*partition
	for k, p := range c.owned {
		if p.releasing && p.canGo(c.leaving) && (!p.batch || c.mine(p, w)) {
			rel = append(rel, p)
			delete(c.owned, k)
		}
	}
	c.mu.Unlock()
	c.release(ctx, rel)
}

func (c *Consumer) release(ctx context.Context, parts []*partition) {
	if len(parts) == 0 {
		return
	}
	defer c.announce(ctx, "released")
	c.log.Debug("partitions given up", "target", c.target, "id", c.id, "released", len(parts), "owned", c.ownedCount())
	pipe := c.c.rdb.Pipeline()
	for _, p := range parts {
		releasePartitionScript.Eval(ctx, pipe, []string{p.lease, p.tenureKey}, c.id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
		c.log.Warn("releasing leases failed; they expire on their own", "target", c.target, "error", err)
	}
}

// leave starts a graceful stop: the consumer leaves the members and gives
// up at once every partition that no batch is being written for (a worker
// may be waiting in a read on it: what that read returns is dropped); the
// others are given up as their batches are acknowledged (releaseIdle), and
// whatever remains when the consumer stops by releaseAll.
func (c *Consumer) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c.mu.Lock()
	c.leaving = true // no partition waits to finish an entry: nothing more is read
	var idle []*partition
	for k, p := range c.owned {
		p.releasing = true
		if !p.batch && p.canGo(true) {
			idle = append(idle, p)
			delete(c.owned, k)
		}
	}
	c.mu.Unlock()
	c.c.rdb.ZRem(ctx, c.c.keys.members(c.target), c.id)
	if len(idle) == 0 {
		c.announce(ctx, "leaving")
	}
	c.release(ctx, idle)
}

// releaseAll gives up every lease and leaves the member set, so the other
// consumers take over at once instead of after the lease TTL.
func (c *Consumer) releaseAll(ctx context.Context) {
	c.mu.Lock()
	parts := make([]*partition, 0, len(c.owned))
	for k, p := range c.owned {
		parts = append(parts, p)
		delete(c.owned, k)
	}
	c.mu.Unlock()
	// Out of the members first: the others, woken by the announcement of
	// the release, must not count this consumer in their shares.
	c.c.rdb.ZRem(ctx, c.c.keys.members(c.target), c.id)
	c.release(ctx, parts)
}

// trimOwned trims the owned partitions below what every group acknowledged.
func (c *Consumer) trimOwned(ctx context.Context) {
	c.mu.Lock()
	streams := make([]string, 0, len(c.owned))
	for k := range c.owned {
		streams = append(streams, k)
	}
	c.mu.Unlock()
	if len(streams) == 0 {
		return
	}
	pipe := c.c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(streams))
	for i, s := range streams {
		cmds[i] = trimScript.Eval(ctx, pipe, []string{s})
	}
	_, _ = pipe.Exec(ctx)
	var trimmed int64
	for _, cmd := range cmds {
		n, err := cmd.Int64()
		if err != nil && ctx.Err() == nil {
			c.log.Warn("trimming failed", "target", c.target, "error", err)
			return
		}
		trimmed += n
	}
	c.trimmed.Add(trimmed)
}

// ownedCount is how many partitions the consumer owns now.
func (c *Consumer) ownedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.owned)
}

func isRedisNil(err error) bool { return err == redis.Nil }

func consumerName(host string) string {
	return host + "-" + strconv.Itoa(pid) + "-" + strconv.FormatUint(rand.Uint64()&0xffffff, 36)
}
