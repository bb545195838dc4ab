package coord_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
)

// TestPublishAndReadThroughALostScriptCache: Redis that lost its script
// cache (SCRIPT FLUSH here; a restart, a failover or an eviction in life)
// between publishes and reads costs nothing: every change goes through a
// script, none fails, nothing is lost, order holds, and the cursors move
// past everything. (Scripts queued in pipelines carry their text: sent by
// hash, a call Redis no longer knows would fail, and one sent again after
// its pipeline would run after the pipeline's WAITAOF, or after a later
// cursor move of its partition, whose count of entries read it would then
// miss.)
func TestPublishAndReadThroughALostScriptCache(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t, false) // private: SCRIPT FLUSH empties the whole server's cache
	rdb := redisClient(t, srv.URL())
	c, err := coord.New(rdb, fastConfig("sc"))
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{c: c, rdb: rdb, ns: "sc", ctx: testenv.Context(t)}
	l := b.lock(t, "src")
	rec := newRecorder()
	runConsumer(t, b, "target", rec, "product")

	const keys, rounds, perRound = 20, 3, 30
	next := make([]int, keys)
	published := 0
	for r := 0; r < rounds; r++ {
		if err := rdb.ScriptFlush(b.ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < perRound; i++ {
			var items []coord.Item
			for k := 0; k < keys; k++ {
				items = append(items, obj("product", fmt.Sprintf("src/public.t/%d", k), seqPayload(next[k])))
				next[k]++
			}
			if res := b.publish(t, l, items...); res.Published != keys {
				t.Fatalf("round %d: published %d of %d", r, res.Published, keys)
			}
			published += keys
		}
		want := published
		waitFor(t, fmt.Sprintf("round %d applied", r), 20*time.Second, rec.notify, func() bool { return rec.count() >= want })
	}
	for k := 0; k < keys; k++ {
		got := rec.get(fmt.Sprintf("src/public.t/%d", k))
		for i, p := range got {
			if p != seqPayload(i) {
				t.Fatalf("key %d: entry %d is %s: out of order %v", k, i, p, got)
			}
		}
		if len(got) < rounds*perRound {
			t.Fatalf("key %d: %d entries applied, want %d", k, len(got), rounds*perRound)
		}
	}
	// The cursors moved past everything: trimming empties the streams.
	waitFor(t, "streams trimmed", 10*time.Second, nil, func() bool {
		var total int64
		for p := 0; p < 4; p++ {
			total += rdb.XLen(b.ctx, c.StreamKey("product", p)).Val()
		}
		return total == 0
	})
	// And the cursors counted what they passed: no backlog is left, and
	// every entry published counts as applied.
	bl, _, err := c.Backlog(b.ctx, "target", []string{"product"})
	if err != nil || len(bl) != 1 || bl[0].Entries != 0 || bl[0].Applied < int64(rounds*perRound) {
		t.Fatalf("backlog %+v, %v: want none left and at least %d entries applied", bl, err, rounds*perRound)
	}
}
