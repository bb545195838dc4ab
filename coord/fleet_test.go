package coord_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
)

// TestMain runs a helper role instead of the tests when asked: the fault
// tests start real processes of this binary and kill them.
func TestMain(m *testing.M) {
	if role := os.Getenv("REMIX_TEST_HELPER"); role != "" {
		if err := runHelper(role); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
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

func helperClient() (*coord.Client, *redis.Client, error) {
	opts, err := redis.ParseURL(os.Getenv("HELPER_REDIS"))
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(opts)
	cfg := fastConfig(os.Getenv("HELPER_NS"))
	cfg.Partitions = envInt("HELPER_PARTITIONS", 4)
	cfg.LeaseTTL = envDuration("HELPER_LEASE_TTL", cfg.LeaseTTL)
	cfg.LockTTL = envDuration("HELPER_LOCK_TTL", cfg.LockTTL)
	cfg.ReadCount = envInt("HELPER_READ_COUNT", 0)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := coord.New(rdb, cfg)
	return c, rdb, err
}

func runHelper(role string) error {
	c, rdb, err := helperClient()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	switch role {
	case "consumer":
		// Applies entries to Redis lists, one per key, in one transaction
		// per batch, after a pause that keeps most kills mid-batch.
		cs := c.NewConsumer("tgt", []string{"m"})
		fmt.Printf("id %s\n", cs.ID())
		delay := envDuration("HELPER_APPLY_DELAY", 0)
		ns := os.Getenv("HELPER_NS")
		return cs.Run(ctx, coord.HandlerFunc(func(ctx context.Context, batch []coord.Delivery) error {
			time.Sleep(delay)
			_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				for _, d := range batch {
					p.RPush(ctx, ns+":applied:"+d.Key, d.Payload)
				}
				return nil
			})
			return err
		}))
	case "limiter":
		l, err := c.NewLimiter("stripe", float64(envInt("HELPER_RATE", 50)), envInt("HELPER_BURST", 1))
		if err != nil {
			return err
		}
		// Compete from a second before the window, so the bucket's initial
		// burst is spent before counting starts: the count is the limit's
		// steady rate.
		ms, _ := strconv.ParseInt(os.Getenv("HELPER_START_AT"), 10, 64)
		startAt := time.UnixMilli(ms)
		time.Sleep(time.Until(startAt.Add(-time.Second)))
		end := startAt.Add(envDuration("HELPER_DURATION", 10*time.Second))
		wctx, cancel := context.WithDeadline(ctx, end)
		defer cancel()
		n := 0
		for {
			if err := l.Wait(wctx, 1); err != nil {
				break
			}
			now := time.Now()
			if now.After(end) {
				break
			}
			if !now.Before(startAt) {
				n++
			}
		}
		fmt.Printf("admitted %d\n", n)
		return nil
	case "locker":
		// Takes the reader lock (standing by until it can), then publishes
		// numbered entries until it is fenced.
		name := os.Getenv("HELPER_NAME")
		l, err := c.AcquireReader(ctx, "src")
		if err != nil {
			return err
		}
		fmt.Printf("acquired %d\n", l.Token())
		for i := 0; ; i++ {
			_, err := c.Publish(ctx, "src", l, []coord.Item{{Model: "m", Key: "k", Payload: []byte(fmt.Sprintf("%s:%d", name, i))}})
			if errors.Is(err, coord.ErrFenced) {
				fmt.Printf("fenced after %d\n", i)
				return nil
			}
			if err != nil {
				return err
			}
			select {
			case <-l.Lost():
				fmt.Printf("lost after %d\n", i+1)
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("unknown helper role %q", role)
}

// TestConsumerFleetKeepsOrderThroughKill runs four consumer processes on one
// target while 10 000 entries over 1 000 keys are published, kills one of
// them with SIGKILL while it holds a batch, and checks that its partitions
// and pending entries move to the others within the lease time, and that
// every key's entries were applied in publish order with none lost.
func TestConsumerFleetKeepsOrderThroughKill(t *testing.T) {
	t.Parallel()
	const keys, perKey, partitions = 1000, 10, 8
	leaseTTL := 1500 * time.Millisecond
	b := setup(t, func(c *coord.Config) { c.Partitions = partitions; c.LeaseTTL = leaseTTL })
	env := []string{"HELPER_REDIS=" + testenv.RedisURL(t), "HELPER_NS=" + b.ns, "HELPER_PARTITIONS=" + strconv.Itoa(partitions),
		"HELPER_LEASE_TTL=" + leaseTTL.String(), "HELPER_APPLY_DELAY=40ms", "HELPER_READ_COUNT=1"}
	var procs []*testenv.Process
	ids := map[string]*testenv.Process{}
	for i := 0; i < 4; i++ {
		p := testenv.StartHelper(t, fmt.Sprintf("consumer-%d", i), "consumer", env...)
		procs = append(procs, p)
		ids[strings.TrimPrefix(p.WaitLine("id ", 30*time.Second), "id ")] = p
	}
	l := b.lock(t, "src")
	publishDone := make(chan error, 1)
	go func() {
		for seq := 0; seq < perKey; seq++ {
			items := make([]coord.Item, 0, keys)
			for k := 0; k < keys; k++ {
				items = append(items, obj("m", fmt.Sprintf("key-%04d", k), seqPayload(seq)))
			}
			for len(items) > 0 {
				n := min(200, len(items))
				if _, err := b.c.Publish(b.ctx, "src", l, items[:n]); err != nil {
					publishDone <- err
					return
				}
				items = items[n:]
				time.Sleep(20 * time.Millisecond)
			}
		}
		publishDone <- nil
	}()

	// Once the four share the partitions, pick one that holds unacknowledged
	// entries (mid-batch) and kill it.
	waitFor(t, "the partitions shared by all four consumers", 30*time.Second, nil, func() bool {
		for id := range ids {
			if len(leasesOf(b, id, partitions)) != partitions/4 {
				return false
			}
		}
		return true
	})
	var victim string
	var owned []int
	var pendingAtKill int64
	var tops map[int]string
	deadline := time.Now().Add(30 * time.Second)
	for victim == "" && time.Now().Before(deadline) {
		for id := range ids {
			parts := leasesOf(b, id, partitions)
			pending := unacknowledgedIn(b, parts)
			if len(parts) > 0 && pending > 0 {
				ids[id].Kill()
				victim, owned, pendingAtKill = id, parts, pending
				tops = topsOf(b, parts)
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if victim == "" {
		t.Fatal("no consumer was ever mid-batch")
	}
	killedAt := time.Now()
	var takeover, drained time.Duration
	for takeover == 0 || drained == 0 {
		if takeover == 0 && time.Since(killedAt) > 3*leaseTTL || time.Since(killedAt) > 30*time.Second {
			t.Fatalf("after %v: partitions %v still with the dead consumer (leases %v), %d unacknowledged", time.Since(killedAt), owned, leasesOf(b, victim, partitions), unacknowledgedIn(b, owned))
		}
		if takeover == 0 && len(leasesOf(b, victim, partitions)) == 0 && allLeased(b, owned) {
			takeover = time.Since(killedAt)
		}
		if drained == 0 && cursorsPassed(b, tops) {
			drained = time.Since(killedAt)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("killed %s holding partitions %v and %d unacknowledged entries; partitions taken over after %v, the entries it held applied after %v (lease TTL %v)",
		victim, owned, pendingAtKill, takeover.Round(time.Millisecond), drained.Round(time.Millisecond), leaseTTL)
	if limit := leaseTTL + leaseTTL/3 + 300*time.Millisecond; takeover > limit {
		t.Errorf("takeover took longer than the lease TTL plus one lease tick (%v)", limit)
	}
	if err := <-publishDone; err != nil {
		t.Fatal(err)
	}

	// Every key ends with all its entries, applied in order (a redelivered
	// batch may repeat entries, never go back).
	waitFor(t, "every entry applied", 60*time.Second, nil, func() bool {
		n := 0
		for k := 0; k < keys; k += 50 {
			if last, err := b.rdb.LIndex(b.ctx, b.ns+":applied:"+fmt.Sprintf("key-%04d", k), -1).Result(); err == nil && last == seqPayload(perKey-1) {
				n++
			}
		}
		return n == keys/50 && streamsDrained(b, partitions)
	})
	dups := 0
	for k := 0; k < keys; k++ {
		got := b.rdb.LRange(b.ctx, b.ns+":applied:"+fmt.Sprintf("key-%04d", k), 0, -1).Val()
		seen := map[string]bool{}
		for i := range got {
			if i > 0 && got[i] < got[i-1] {
				t.Fatalf("key-%04d applied out of order: %v", k, got)
			}
			if seen[got[i]] {
				dups++
			}
			seen[got[i]] = true
		}
		if len(seen) != perKey || got[len(got)-1] != seqPayload(perKey-1) {
			t.Fatalf("key-%04d lost entries: %v", k, got)
		}
	}
	t.Logf("all %d entries applied in order; %d applied twice after the kill", keys*perKey, dups)
}

// leasesOf returns the partitions whose lease holds id.
func leasesOf(b *bundle, id string, partitions int) []int {
	var out []int
	for p := 0; p < partitions; p++ {
		if v, _ := b.rdb.Get(b.ctx, b.ns+":{m:"+strconv.Itoa(p)+"}:lease:tgt").Result(); v == id {
			out = append(out, p)
		}
	}
	return out
}

func allLeased(b *bundle, parts []int) bool {
	for _, p := range parts {
		if n := b.rdb.Exists(b.ctx, b.ns+":{m:"+strconv.Itoa(p)+"}:lease:tgt").Val(); n == 0 {
			return false
		}
	}
	return true
}

// unacknowledgedIn counts the entries after the target's cursor in some
// partitions.
func unacknowledgedIn(b *bundle, parts []int) int64 {
	var n int64
	for _, p := range parts {
		stream := b.c.StreamKey("m", p)
		groups, err := b.rdb.XInfoGroups(b.ctx, stream).Result()
		if err != nil || len(groups) != 1 {
			continue
		}
		n += int64(len(b.rdb.XRange(b.ctx, stream, "("+groups[0].LastDeliveredID, "+").Val()))
	}
	return n
}

// topsOf returns the last entry id of each partition.
func topsOf(b *bundle, parts []int) map[int]string {
	out := map[int]string{}
	for _, p := range parts {
		if last := b.rdb.XRevRangeN(b.ctx, b.c.StreamKey("m", p), "+", "-", 1).Val(); len(last) == 1 {
			out[p] = last[0].ID
		}
	}
	return out
}

// cursorsPassed reports whether the target's cursor of each partition is
// at or after the given entry.
func cursorsPassed(b *bundle, tops map[int]string) bool {
	for p, top := range tops {
		groups, err := b.rdb.XInfoGroups(b.ctx, b.c.StreamKey("m", p)).Result()
		if err != nil || len(groups) != 1 || len(b.rdb.XRange(b.ctx, b.c.StreamKey("m", p), "("+groups[0].LastDeliveredID, top).Val()) > 0 {
			return false
		}
	}
	return true
}

func streamsDrained(b *bundle, partitions int) bool {
	for p := 0; p < partitions; p++ {
		groups, err := b.rdb.XInfoGroups(b.ctx, b.c.StreamKey("m", p)).Result()
		if err != nil || len(groups) != 1 || groups[0].Lag != 0 {
			return false
		}
	}
	return true
}

// TestRedisKillLosesNothingAcknowledged publishes continuously to a private
// Redis with AOF (appendfsync everysec), kills it with SIGKILL, restarts it,
// and checks that every publish it acknowledged is still there.
func TestRedisKillLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t, true)
	rdb := redisClient(t, srv.URL())
	cfg := fastConfig("kill")
	cfg.LockTTL = time.Minute // keep the lock through the outage
	c, err := coord.New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t)
	l, err := c.AcquireReader(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var lastErr atomic.Value // the last publish error, for the failure message
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var items []coord.Item
				for j := 0; j < 20; j++ {
					items = append(items, obj("m", fmt.Sprintf("k%d", j), fmt.Sprintf("w%d-%d-%d", w, i, j)))
				}
				if _, err := c.Publish(ctx, "src", l, items); err != nil {
					lastErr.Store(err.Error())
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				for _, it := range items {
					acked[string(it.Payload)] = true
				}
				mu.Unlock()
			}
		}(w)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, "some publishes", 10*time.Second, nil, func() bool { return count() > 2000 })
	srv.Kill()
	before := count()
	srv.Start()
	restarted := time.Now()
	for count() <= before+1000 {
		if time.Since(restarted) > 30*time.Second {
			t.Fatalf("no publishes within 30s of the restart; last error: %v", lastErr.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	stored := map[string]bool{}
	for p := 0; p < cfg.Partitions; p++ {
		for _, m := range rdb.XRange(ctx, c.StreamKey("m", p), "-", "+").Val() {
			objs, err := coord.EntryObjects(m)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				stored[string(o.Payload)] = true
			}
		}
	}
	var lost []string
	for p := range acked {
		if !stored[p] {
			lost = append(lost, p)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged entries lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	t.Logf("%d entries acknowledged (%d before the kill), all present after the restart", len(acked), before)
}

// TestSharedRateLimitAcrossProcesses runs four processes against one limit
// of 50/s and counts what is admitted over 10 s: together they must be
// admitted 500 ± 5%. They compete from a second before the window, so the
// initial burst is spent before counting; the burst of 10 lets a waiter that
// wakes up to 200 ms late (a loaded machine) still use its slot, which GCRA
// would otherwise never give back.
func TestSharedRateLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	startAt := time.Now().Add(4 * time.Second).UnixMilli()
	env := []string{"HELPER_REDIS=" + testenv.RedisURL(t), "HELPER_NS=" + b.ns, "HELPER_RATE=50", "HELPER_BURST=10",
		"HELPER_DURATION=10s", "HELPER_START_AT=" + strconv.FormatInt(startAt, 10)}
	var procs []*testenv.Process
	for i := 0; i < 4; i++ {
		procs = append(procs, testenv.StartHelper(t, fmt.Sprintf("limiter-%d", i), "limiter", env...))
	}
	total := 0
	var each []int
	for _, p := range procs {
		n, _ := strconv.Atoi(strings.TrimPrefix(p.WaitLine("admitted ", 30*time.Second), "admitted "))
		each = append(each, n)
		total += n
	}
	t.Logf("4 processes sharing 50/s for 10s were admitted %d in all (%v)", total, each)
	if total < 475 || total > 525 {
		t.Fatalf("admitted %d, want 500 ± 5%%", total)
	}
}

// TestStalledLockHolderPublishesNothingAfterTakeover stops the reader-lock
// holder with SIGSTOP past the lock's TTL; a standby takes over; the stalled
// holder resumes (SIGCONT) and must not publish anything more.
func TestStalledLockHolderPublishesNothingAfterTakeover(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	lockTTL := time.Second
	env := []string{"HELPER_REDIS=" + testenv.RedisURL(t), "HELPER_NS=" + b.ns, "HELPER_LOCK_TTL=" + lockTTL.String()}
	a := testenv.StartHelper(t, "holder", "locker", append(env, "HELPER_NAME=a")...)
	a.WaitLine("acquired", 30*time.Second)
	standby := testenv.StartHelper(t, "standby", "locker", append(env, "HELPER_NAME=b")...)
	stream := b.c.StreamKey("m", b.c.PartitionOf("k"))
	waitFor(t, "the holder publishing", 10*time.Second, nil, func() bool { return len(streamObjects(t, b, stream)) > 10 })
	a.Signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	standby.WaitLine("acquired", 10*time.Second)
	t.Logf("the standby took over %v after the holder stalled (lock TTL %v)", time.Since(stoppedAt).Round(time.Millisecond), lockTTL)
	waitFor(t, "the new holder publishing", 10*time.Second, nil, func() bool {
		objs := streamObjects(t, b, stream)
		return len(objs) > 0 && strings.HasPrefix(string(objs[len(objs)-1].Payload), "b:")
	})
	time.Sleep(time.Until(stoppedAt.Add(3 * lockTTL)))
	a.Signal(syscall.SIGCONT)
	select {
	case <-a.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled holder kept running after it resumed")
	}
	out := strings.Join(a.Output(), "\n")
	if !strings.Contains(out, "fenced after") && !strings.Contains(out, "lost after") {
		t.Fatalf("the stalled holder did not stop on its fence or its lost lock:\n%s", out)
	}
	t.Logf("the stalled holder, resumed: %s", a.Output()[len(a.Output())-1])
	time.Sleep(100 * time.Millisecond) // the new holder goes on publishing
	msgs := streamObjects(t, b, stream)
	firstB := -1
	for i, m := range msgs {
		d := string(m.Payload)
		if strings.HasPrefix(d, "b:") && firstB < 0 {
			firstB = i
		}
		if firstB >= 0 && strings.HasPrefix(d, "a:") {
			t.Fatalf("entry %d (%s) from the stalled holder came after the takeover", i, d)
		}
	}
	if firstB < 0 {
		t.Fatal("the new holder published nothing")
	}
	t.Logf("%d entries from the first holder, %d from the second, none from the first after the takeover", firstB, len(msgs)-firstB)
}
