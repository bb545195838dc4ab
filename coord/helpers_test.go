package coord_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
)

type bundle struct {
	c   *coord.Client
	rdb *redis.Client
	ns  string
	ctx context.Context
}

// fastConfig keeps leases and locks short so tests see takeovers quickly.
func fastConfig(ns string) coord.Config {
	return coord.Config{
		Namespace: ns, Partitions: 4, LeaseTTL: 900 * time.Millisecond, ReadBlock: 100 * time.Millisecond,
		LockTTL: 900 * time.Millisecond, RetryBackoff: 2 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond,
		TrimInterval: 100 * time.Millisecond, MaxAttempts: 3,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
}

func setup(t *testing.T, mod func(*coord.Config)) *bundle { return setupTB(t, mod) }

func setupB(b *testing.B) *bundle {
	return setupTB(b, func(c *coord.Config) {
		c.Partitions = 16
		c.LeaseTTL = 10 * time.Second
		c.ReadBlock = time.Second
		c.LockTTL = 10 * time.Second
	})
}

func setupTB(t testing.TB, mod func(*coord.Config)) *bundle {
	t.Helper()
	rdb, ns := testenv.Redis(t)
	cfg := fastConfig(ns)
	if mod != nil {
		mod(&cfg)
	}
	c, err := coord.New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{c: c, rdb: rdb, ns: ns, ctx: testenv.Context(t)}
}

// lock takes the reader lock of source for the test.
func (b *bundle) lock(t testing.TB, source string) *coord.ReaderLock {
	t.Helper()
	l, err := b.c.AcquireReader(b.ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

func (b *bundle) publish(t *testing.T, l *coord.ReaderLock, items ...coord.Item) coord.PublishResult {
	t.Helper()
	res, err := b.c.Publish(b.ctx, "src", l, items)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func obj(model, key, payload string) coord.Item {
	return coord.Item{Model: model, Key: key, Payload: []byte(payload)}
}

// recorder is a handler target: what was applied, per key, in order.
type recorder struct {
	mu      sync.Mutex
	applied map[string][]string
	total   int
	calls   int
	fail    func(batch []coord.Delivery) error
	notify  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{applied: map[string][]string{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) Handle(_ context.Context, batch []coord.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(batch); err != nil {
			return err
		}
	}
	for _, d := range batch {
		r.applied[d.Key] = append(r.applied[d.Key], string(d.Payload))
		r.total++
	}
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return r.total }

func (r *recorder) get(key string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.applied[key]...)
}

// waitFor polls cond, waking on the recorder's notifications, until it holds
// or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, notify <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.After(within)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		case <-notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runConsumer runs a consumer until the test ends.
func runConsumer(t *testing.T, b *bundle, target string, h coord.Handler, models ...string) *coord.Consumer {
	t.Helper()
	cs := b.c.NewConsumer(target, models)
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- cs.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	return cs
}

func seqPayload(i int) string { return fmt.Sprintf("%06d", i) }

type (
	redisXReadGroupArgs = redis.XReadGroupArgs
	redisXAddArgs       = redis.XAddArgs
	redisXClaimArgs     = redis.XClaimArgs
)

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// streamObjects reads every object of a stream, in order.
func streamObjects(t testing.TB, b *bundle, stream string) []coord.EntryObject {
	t.Helper()
	var out []coord.EntryObject
	for _, m := range b.rdb.XRange(b.ctx, stream, "-", "+").Val() {
		objs, err := coord.EntryObjects(m)
		if err != nil {
			t.Fatalf("entry %s: %v", m.ID, err)
		}
		out = append(out, objs...)
	}
	return out
}
