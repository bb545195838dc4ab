package coord_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
)

// TestScriptsOutliveALostScriptCache: cursor moves and leases queue their
// scripts by SHA1, and Redis that lost its script cache (SCRIPT FLUSH here;
// a restart or a failover in life) gets them again by body: nothing fails,
// nothing is lost, order holds. Between flushes their bodies do not travel.
func TestScriptsOutliveALostScriptCache(t *testing.T) {
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

	// Publishes go by body (their calls keep their order, and WAITAOF
	// follows them); cursor moves, at least one a publish here, and leases
	// by SHA1, with bodies only after each flush, once for each script
	// queued in a pipeline in flight then (a few per partition at most).
	stats := rdb.Info(b.ctx, "commandstats").Val()
	evals, shas := calls(stats, "eval"), calls(stats, "evalsha")
	t.Logf("EVAL %d calls, EVALSHA %d", evals, shas)
	if publishes := rounds * perRound; shas < publishes || evals > publishes+rounds*25 {
		t.Fatalf("EVAL %d calls, EVALSHA %d: scripts are not queued by SHA1\n%s", evals, shas, stats)
	}
}

// calls reads a command's call count from INFO commandstats.
func calls(stats, cmd string) int {
	for _, line := range strings.Split(stats, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		return n
	}
	return 0
}
