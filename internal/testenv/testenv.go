// Package testenv gives tests the real servers they need: the shared
// PostgreSQL and Redis that scripts/test-servers.sh starts (through
// REMIX_TEST_POSTGRES_URL and REMIX_TEST_REDIS_URL), a fresh database or key
// namespace per test, and private server processes for tests that kill or
// restart one. Without a server a test skips, unless CI is set: then it fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Missing skips the test, or fails it under CI, for a server it cannot reach.
func Missing(t testing.TB, what string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and "+what, args...)
	}
	t.Skipf(what+" (run scripts/test-servers.sh; under CI this fails)", args...)
}

// PostgresURL returns the shared test PostgreSQL's URL.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REMIX_TEST_POSTGRES_URL")
	if u == "" {
		Missing(t, "REMIX_TEST_POSTGRES_URL is not set")
	}
	return u
}

// RedisURL returns the shared test Redis's URL.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REMIX_TEST_REDIS_URL")
	if u == "" {
		Missing(t, "REMIX_TEST_REDIS_URL is not set")
	}
	return u
}

// UniqueName returns prefix_ followed by 10 random hex digits: a valid,
// lowercase PostgreSQL identifier and a Redis-safe name.
func UniqueName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Context returns a context cancelled at the end of the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// NewDatabase creates a database for this test on the shared PostgreSQL and
// returns its URL; the database, and any replication slot left in it, is
// dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabaseOn(t, PostgresURL(t))
}

func newDatabaseOn(t testing.TB, serverURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		Missing(t, "cannot reach PostgreSQL at %s: %v", redactURL(serverURL), err)
	}
	defer conn.Close(ctx)
	name := UniqueName("remix_t")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(serverURL, name) })
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Querier is what WaitSlotReleased needs of a connection or pool.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// WaitSlotReleased waits until no walsender holds replication slot slot:
// the server lets go of it a moment after its client went away.
func WaitSlotReleased(t testing.TB, q Querier, slot string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var active bool
		if err := q.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active); err != nil {
			t.Fatalf("slot %s: %v", slot, err)
		}
		if !active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s is still held 10s after its reader went away", slot)
		}
	}
}

func dropDatabase(serverURL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	// Slots belong to a database and keep it from being dropped.
	_, _ = conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
	_, _ = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// Redis returns a client of the shared test Redis, closed at the end of the
// test, and a namespace unique to the test for its keys.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("REMIX_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		Missing(t, "cannot reach Redis at %s: %v", opts.Addr, err)
	}
	ns := UniqueName("t")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		deleteNamespace(ctx, c, ns)
		c.Close()
	})
	return c, ns
}

func deleteNamespace(ctx context.Context, c *redis.Client, ns string) {
	iter := c.Scan(ctx, 0, "*"+ns+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Unlink(ctx, keys...)
	}
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Getenv returns a lookup function over a fixed map, for config.Options.
func Getenv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// Short reports whether long fault and load tests should be cut down.
func Short() bool { return testing.Short() || strings.EqualFold(os.Getenv("REMIX_TEST_QUICK"), "true") }
