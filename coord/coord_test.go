package coord_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestPublishConsumeKeepsKeyOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	l := b.lock(t, "src")
	rec := newRecorder()
	// Two consumers of one target share the partitions; a second target
	// reads everything on its own.
	runConsumer(t, b, "target-a", rec, "product")
	runConsumer(t, b, "target-a", rec, "product")
	other := newRecorder()
	runConsumer(t, b, "target-b", other, "product")

	const keys, perKey = 100, 20
	var items []coord.Item
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			items = append(items, obj("product", fmt.Sprintf("src/public.t/%d", k), seqPayload(i)))
		}
	}
	for len(items) > 0 {
		n := min(len(items), 150)
		res := b.publish(t, l, items[:n]...)
		if res.Published != n {
			t.Fatalf("published %d of %d", res.Published, n)
		}
		items = items[n:]
	}
	waitFor(t, "every entry applied by target-a", 20*time.Second, rec.notify, func() bool { return rec.count() >= keys*perKey })
	waitFor(t, "every entry applied by target-b", 20*time.Second, other.notify, func() bool { return other.count() >= keys*perKey })
	for _, r := range []*recorder{rec, other} {
		for k := 0; k < keys; k++ {
			got := r.get(fmt.Sprintf("src/public.t/%d", k))
			if len(got) != perKey {
				t.Fatalf("key %d: %d entries applied, want %d", k, len(got), perKey)
			}
			for i, p := range got {
				if p != seqPayload(i) {
					t.Fatalf("key %d: entry %d is %s: out of order %v", k, i, p, got)
				}
			}
		}
	}
	// Once both groups acknowledged everything, trimming empties the streams.
	waitFor(t, "streams trimmed", 10*time.Second, nil, func() bool {
		var total int64
		for p := 0; p < 4; p++ {
			total += b.rdb.XLen(b.ctx, b.c.StreamKey("product", p)).Val()
		}
		return total == 0
	})
}

func TestPublishIsFenced(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	first := b.lock(t, "src")
	if err := first.Release(b.ctx); err != nil {
		t.Fatal(err)
	}
	second := b.lock(t, "src")
	if second.Token() <= first.Token() {
		t.Fatalf("tokens %d then %d: not increasing", first.Token(), second.Token())
	}
	_, err := b.c.Publish(b.ctx, "src", first, []coord.Item{obj("product", "k", "stale")})
	if !errors.Is(err, coord.ErrFenced) {
		t.Fatalf("publish with a released lock: %v, want ErrFenced", err)
	}
	if err := b.c.SaveCheckpoint(b.ctx, "src", "events", first, coord.Checkpoint{Position: "evt_1"}); !errors.Is(err, coord.ErrFenced) {
		t.Fatalf("checkpoint with a released lock: %v", err)
	}
	for p := 0; p < 4; p++ {
		if n := b.rdb.XLen(b.ctx, b.c.StreamKey("product", p)).Val(); n != 0 {
			t.Fatalf("a fenced publish wrote %d entries", n)
		}
	}
	if res := b.publish(t, second, obj("product", "k", "fresh")); res.Published != 1 {
		t.Fatalf("holder's publish: %+v", res)
	}
}

func TestBadRecordParksItsKeyUntilReplay(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	res := b.publish(t, l,
		obj("product", "k1", "v1"),
		coord.Item{Model: "product", Key: "k1", Payload: []byte(`{"row":"v2"}`), Bad: true, Location: "public.products", Reason: "field price: expected number"},
		obj("product", "k1", "v3"),
		obj("product", "k2", "w1"),
		obj("price", "k1", "p1"), // another model of the same key is not held back
	)
	if res.Published != 3 || res.DeadLettered != 1 || res.Diverted != 1 {
		t.Fatalf("publish result %+v", res)
	}
	dls, err := b.c.DeadLetters(b.ctx, "src", "", 10)
	if err != nil || len(dls) != 2 {
		t.Fatalf("dead letters %v, %v", dls, err)
	}
	if d := dls[0]; d.Kind != coord.KindRecord || d.Stage != "receive" || d.Reason != "field price: expected number" || d.Location != "public.products" || string(d.Payload) != `{"row":"v2"}` || d.Time.IsZero() {
		t.Fatalf("first dead letter %+v", d)
	}
	if d := dls[1]; d.Kind != coord.KindObject || string(d.Payload) != "v3" || !strings.Contains(d.Reason, "parked") {
		t.Fatalf("second dead letter %+v", d)
	}
	if parked, _ := b.c.Parked(b.ctx, "src", "receive"); !reflect.DeepEqual(parked, map[string]int64{"product|k1": 2}) {
		t.Fatalf("parked %v", parked)
	}

	// A replay that cannot map the record (config not fixed yet) keeps both.
	failing := func(_ context.Context, d *coord.DeadLetter) ([]coord.Item, error) {
		if d.Kind == coord.KindRecord {
			return nil, errors.New("still invalid")
		}
		return []coord.Item{{Model: d.Model, Payload: d.Payload}}, nil
	}
	rr, err := b.c.Replay(b.ctx, "src", nil, failing)
	if err != nil || rr.Failed != 1 || rr.Skipped != 1 || rr.Replayed != 0 {
		t.Fatalf("failed replay: %+v, %v", rr, err)
	}
	// After the fix, the record maps to v2 and both go out in order.
	fixed := func(_ context.Context, d *coord.DeadLetter) ([]coord.Item, error) {
		if d.Kind == coord.KindRecord {
			return []coord.Item{{Model: d.Model, Payload: []byte("v2")}}, nil
		}
		return []coord.Item{{Model: d.Model, Payload: d.Payload}}, nil
	}
	rr, err = b.c.Replay(b.ctx, "src", nil, fixed)
	if err != nil || rr.Replayed != 2 {
		t.Fatalf("replay: %+v, %v", rr, err)
	}
	var k1 []string
	for _, o := range streamObjects(t, b, b.c.StreamKey("product", 0)) {
		if o.Key == "k1" {
			k1 = append(k1, string(o.Payload))
		}
	}
	if !reflect.DeepEqual(k1, []string{"v1", "v2", "v3"}) {
		t.Fatalf("k1 in the stream: %v", k1)
	}
	if parked, _ := b.c.Parked(b.ctx, "src", "receive"); len(parked) != 0 {
		t.Fatalf("still parked: %v", parked)
	}
	if n, _ := b.c.DeadLetterCount(b.ctx, "src"); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
	// Unparked: the next change goes straight to the stream.
	if res := b.publish(t, l, obj("product", "k1", "v4")); res.Published != 1 {
		t.Fatalf("after replay: %+v", res)
	}
}

// TestRefusedEntryIsDeadLetteredAndReplayed: an entry the target refuses
// (a permanent error) is set aside with the reason, the rest of the
// partition flows, later changes of its key wait behind it, and a replay
// once the target accepts it delivers them in order.
func TestRefusedEntryIsDeadLetteredAndReplayed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	rec := newRecorder()
	healed := atomic.Bool{}
	rec.fail = func(batch []coord.Delivery) error {
		for i, d := range batch {
			if string(d.Payload) == "poison" && !healed.Load() {
				return &coord.ItemError{Index: i, Err: coord.Permanent(errors.New("violates check constraint"))}
			}
		}
		return nil
	}
	runConsumer(t, b, "tgt", rec, "product")
	b.publish(t, l, obj("product", "a", "a1"), obj("product", "p", "poison"), obj("product", "a", "a2"), obj("product", "b", "b1"))
	waitFor(t, "the rest of the partition", 10*time.Second, rec.notify, func() bool { return rec.count() >= 3 })
	if got := rec.get("a"); !reflect.DeepEqual(got, []string{"a1", "a2"}) {
		t.Fatalf("a: %v", got)
	}
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 10)
	if len(dls) != 1 || string(dls[0].Payload) != "poison" || dls[0].Attempts != 1 || dls[0].Reason != "violates check constraint" || dls[0].Origin == "" {
		t.Fatalf("dead letters: %+v", dls)
	}
	// A later change of the parked key waits behind it.
	b.publish(t, l, obj("product", "p", "p2"), obj("product", "b", "b2"))
	waitFor(t, "b2", 10*time.Second, rec.notify, func() bool { return len(rec.get("b")) == 2 })
	if got := rec.get("p"); len(got) != 0 {
		t.Fatalf("parked key applied: %v", got)
	}
	if n, _ := b.c.DeadLetterCount(b.ctx, "tgt"); n != 2 {
		t.Fatalf("%d dead letters, want the poison and the entry parked behind it", n)
	}
	// The single-object entries moved atomically with the cursor: once
	// b2's batch is acknowledged, nothing is left before the cursor.
	waitFor(t, "nothing unacknowledged after dead-lettering", 5*time.Second, nil, func() bool {
		return unacknowledgedOf(b, "product", 1) == 0
	})
	// Once fixed, ask for a replay (as `remix dlq replay` does): the
	// partition's owner replays the key's dead letters in order when it
	// reaches the marker.
	healed.Store(true)
	n, err := b.c.RequestReplay(b.ctx, "tgt", nil)
	if err != nil || n != 1 {
		t.Fatalf("replay request: %d keys, %v", n, err)
	}
	waitFor(t, "the replay", 10*time.Second, rec.notify, func() bool { return len(rec.get("p")) == 2 })
	if got := rec.get("p"); !reflect.DeepEqual(got, []string{"poison", "p2"}) {
		t.Fatalf("p after replay: %v", got)
	}
	waitFor(t, "the queue to empty", 10*time.Second, nil, func() bool {
		n, _ := b.c.DeadLetterCount(b.ctx, "tgt")
		parked, _ := b.c.Parked(b.ctx, "tgt", "push")
		return n == 0 && len(parked) == 0
	})
	b.publish(t, l, obj("product", "p", "p3"))
	waitFor(t, "p3 flows again", 10*time.Second, rec.notify, func() bool { return len(rec.get("p")) == 3 })
}

// TestUnclassifiedErrorsNeverDeadLetter: a target failing in a way it does
// not classify (a sink that forgot to mark an outage) keeps its entries:
// they are retried past MaxAttempts, the partition is reported as stalled,
// nothing is dead-lettered, and everything applies in order once it heals.
func TestUnclassifiedErrorsNeverDeadLetter(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	rec := newRecorder()
	var failures atomic.Int64
	healed := atomic.Bool{}
	rec.fail = func(batch []coord.Delivery) error {
		if !healed.Load() {
			failures.Add(1)
			return errors.New("connection reset by peer")
		}
		return nil
	}
	cs := runConsumer(t, b, "tgt", rec, "product")
	b.publish(t, l, obj("product", "a", "a1"), obj("product", "a", "a2"), obj("product", "b", "b1"))
	waitFor(t, "the partition reported as stalled", 10*time.Second, nil, func() bool {
		st := cs.Stalled()
		return len(st) == 1 && strings.Contains(st[0], "connection reset by peer")
	})
	if n := failures.Load(); n < 3 {
		t.Fatalf("reported after %d tries, want MaxAttempts=3 first", n)
	}
	if n, _ := b.c.DeadLetterCount(b.ctx, "tgt"); n != 0 {
		t.Fatalf("%d entries dead-lettered for an unclassified error", n)
	}
	healed.Store(true)
	waitFor(t, "everything applied once healed", 10*time.Second, rec.notify, func() bool { return rec.count() == 3 })
	if got := rec.get("a"); !reflect.DeepEqual(got, []string{"a1", "a2"}) {
		t.Fatalf("a: %v", got)
	}
	waitFor(t, "the stall report cleared", 5*time.Second, nil, func() bool { return len(cs.Stalled()) == 0 })
}

// unacknowledgedOf counts the entries after a target group's cursor in the
// partitions of a model.
func unacknowledgedOf(b *bundle, model string, partitions int) int64 {
	var n int64
	for p := 0; p < partitions; p++ {
		stream := b.c.StreamKey(model, p)
		groups, err := b.rdb.XInfoGroups(b.ctx, stream).Result()
		if err != nil || len(groups) != 1 {
			return -1
		}
		n += int64(len(b.rdb.XRange(b.ctx, stream, "("+groups[0].LastDeliveredID, "+").Val()))
	}
	return n
}

// TestReplayKeepsOrderAndTargets: a replay marker replays only for its
// target; another target sharing the stream skips it; changes of the key
// written after the marker apply after the replayed ones.
func TestReplayKeepsOrderAndTargets(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	a := newRecorder()
	var broken atomic.Bool
	broken.Store(true)
	a.fail = func(batch []coord.Delivery) error {
		for i, d := range batch {
			if broken.Load() && strings.HasPrefix(string(d.Payload), "k:") {
				return &coord.ItemError{Index: i, Err: coord.Permanent(errors.New("refused"))}
			}
		}
		return nil
	}
	other := newRecorder()
	runConsumer(t, b, "a", a, "product")
	runConsumer(t, b, "b", other, "product")
	b.publish(t, l, obj("product", "k", "k:1"))
	b.publish(t, l, obj("product", "k", "k:2"))
	b.publish(t, l, obj("product", "x", "x:1"))
	waitFor(t, "both targets", 10*time.Second, nil, func() bool { return a.count() == 1 && other.count() == 3 })
	broken.Store(false)
	if n, err := b.c.RequestReplay(b.ctx, "a", nil); err != nil || n != 1 {
		t.Fatalf("request: %d, %v", n, err)
	}
	b.publish(t, l, obj("product", "k", "k:3")) // after the marker
	waitFor(t, "the replay and k:3", 10*time.Second, a.notify, func() bool { return len(a.get("k")) == 3 })
	if got := a.get("k"); !reflect.DeepEqual(got, []string{"k:1", "k:2", "k:3"}) {
		t.Fatalf("target a applied %v", got)
	}
	waitFor(t, "target b", 10*time.Second, other.notify, func() bool { return other.count() == 4 })
	if got := other.get("k"); !reflect.DeepEqual(got, []string{"k:1", "k:2", "k:3"}) {
		t.Fatalf("target b applied %v: the marker was for a", got)
	}
}

func TestPermanentErrorsAreIsolated(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	rec := newRecorder()
	rec.fail = func(batch []coord.Delivery) error {
		for i, d := range batch {
			switch string(d.Payload) {
			case "bad-item": // the handler knows which entry
				return &coord.ItemError{Index: i, Err: coord.Permanent(errors.New("violates check constraint"))}
			case "bad-batch": // it does not: the consumer bisects
				return coord.Permanent(errors.New("invalid input syntax for type bigint"))
			}
		}
		return nil
	}
	runConsumer(t, b, "tgt", rec, "product")
	var items []coord.Item
	for i := 0; i < 40; i++ {
		p := fmt.Sprintf("ok-%02d", i)
		switch i {
		case 7:
			p = "bad-item"
		case 23:
			p = "bad-batch"
		}
		items = append(items, obj("product", fmt.Sprintf("k%d", i), p))
	}
	b.publish(t, l, items...)
	waitFor(t, "38 good entries", 10*time.Second, rec.notify, func() bool { return rec.count() >= 38 })
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 10)
	reasons := map[string]string{}
	for _, d := range dls {
		reasons[string(d.Payload)] = d.Reason
	}
	if len(dls) != 2 || !strings.Contains(reasons["bad-item"], "violates check constraint") || !strings.Contains(reasons["bad-batch"], "invalid input syntax") {
		t.Fatalf("dead letters: %v", reasons)
	}
}

func TestUnavailableTargetIsRetriedWithoutEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	l := b.lock(t, "src")
	rec := newRecorder()
	var down atomic.Int64
	down.Store(20) // far more failures than MaxAttempts
	rec.fail = func([]coord.Delivery) error {
		if down.Add(-1) >= 0 {
			return coord.Unavailable(errors.New("connection refused"))
		}
		return nil
	}
	runConsumer(t, b, "tgt", rec, "product")
	b.publish(t, l, obj("product", "a", "1"), obj("product", "b", "1"))
	waitFor(t, "both applied after the outage", 15*time.Second, rec.notify, func() bool { return rec.count() == 2 })
	if n, _ := b.c.DeadLetterCount(b.ctx, "tgt"); n != 0 {
		t.Fatalf("%d entries dead-lettered for an outage", n)
	}
}

func TestPanickingHandlerDeadLettersTheEntry(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	rec := newRecorder()
	rec.fail = func(batch []coord.Delivery) error {
		for _, d := range batch {
			if string(d.Payload) == "boom" {
				panic("index out of range")
			}
		}
		return nil
	}
	runConsumer(t, b, "tgt", rec, "product")
	b.publish(t, l, obj("product", "a", "a1"), obj("product", "crash", "boom"), obj("product", "a", "a2"))
	waitFor(t, "the healthy entries", 10*time.Second, rec.notify, func() bool { return len(rec.get("a")) == 2 })
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 10)
	if len(dls) != 1 || string(dls[0].Payload) != "boom" || !strings.Contains(dls[0].Reason, "the handler panicked: index out of range") {
		t.Fatalf("dead letters: %+v", dls)
	}
	if got := rec.get("a"); !reflect.DeepEqual(got, []string{"a1", "a2"}) {
		t.Fatalf("a: %v", got)
	}
}

// TestBadEntryDoesNotOvertakeEarlierChangesOfItsKey: when the handler
// refuses the second change of a key in a batch, the first is still applied
// (not parked behind the second).
func TestBadEntryDoesNotOvertakeEarlierChangesOfItsKey(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	rec := newRecorder()
	rec.fail = func(batch []coord.Delivery) error {
		for i, d := range batch {
			if string(d.Payload) == "k:2-bad" {
				return &coord.ItemError{Index: i, Err: coord.Permanent(errors.New("refused"))}
			}
		}
		return nil
	}
	b.publish(t, l, obj("product", "k", "k:1"), obj("product", "k", "k:2-bad"), obj("product", "k", "k:3"))
	runConsumer(t, b, "tgt", rec, "product")
	waitFor(t, "the queue", 10*time.Second, nil, func() bool { n, _ := b.c.DeadLetterCount(b.ctx, "tgt"); return n == 2 })
	if got := rec.get("k"); !reflect.DeepEqual(got, []string{"k:1"}) {
		t.Fatalf("applied %v, want k:1 only (k:3 waits behind the refused k:2)", got)
	}
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 10)
	if string(dls[0].Payload) != "k:2-bad" || string(dls[1].Payload) != "k:3" {
		t.Fatalf("queue order: %s, %s", dls[0].Payload, dls[1].Payload)
	}
}

func TestTrimNeverPassesAnyGroup(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	if err := b.c.EnsureGroups(b.ctx, "product", []string{"fast", "slow"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ { // one entry each
		b.publish(t, l, obj("product", "k", seqPayload(i)))
	}
	stream := b.c.StreamKey("product", 0)
	read := func(group string, n int64) []string {
		res := b.rdb.XReadGroup(b.ctx, &redisXReadGroupArgs{Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: n}).Val()
		var ids []string
		for _, m := range res[0].Messages {
			ids = append(ids, m.ID)
		}
		return ids
	}
	fast := read("fast", 10)
	b.rdb.XAck(b.ctx, stream, "fast", fast...)
	if n, err := b.c.Trim(b.ctx, "product", 0); err != nil || n != 0 {
		t.Fatalf("trim with an idle group removed %d (%v)", n, err)
	}
	slow := read("slow", 6) // 6 delivered, the first 4 acknowledged, 2 pending
	b.rdb.XAck(b.ctx, stream, "slow", slow[:4]...)
	if n, err := b.c.Trim(b.ctx, "product", 0); err != nil || n != 4 {
		t.Fatalf("trim removed %d (%v), want the 4 entries both groups acknowledged", n, err)
	}
	first := b.rdb.XRangeN(b.ctx, stream, "-", "+", 1).Val()
	if len(first) != 1 || first[0].ID != slow[4] {
		t.Fatalf("first entry left is %v, want the oldest pending %s", first, slow[4])
	}
	b.rdb.XAck(b.ctx, stream, "slow", slow[4:]...)
	if n, _ := b.c.Trim(b.ctx, "product", 0); n != 2 {
		t.Fatalf("trim after the pending ones were acknowledged removed %d, want 2", n)
	}
	if left := b.rdb.XLen(b.ctx, stream).Val(); left != 4 {
		t.Fatalf("%d entries left, want the 4 the slow group has not read", left)
	}
}

func TestTopologyMustAgree(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.c.EnsureTopology(b.ctx, []string{"product"}); err != nil {
		t.Fatal(err)
	}
	cfg := b.c.Config()
	cfg.Partitions = 8
	other, _ := coord.New(b.rdb, cfg)
	err := other.EnsureTopology(b.ctx, []string{"product"})
	if !errors.Is(err, coord.ErrTopology) || !strings.Contains(err.Error(), "model product has 4 partitions in Redis but this process is configured with 8") {
		t.Fatalf("err = %v", err)
	}
}

func TestPartitionOfIsStable(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 16 })
	// Pinned: changing the hash would send a key's changes to two partitions
	// during an upgrade and break their order.
	want := map[string]int{"prod-db/public.products/1": 2, "prod-db/public.products/2": 8, "payment-gateway/product/prod_NWjs8kKbJWmuuc": 9, "": 9}
	for key, p := range want {
		if got := b.c.PartitionOf(key); got != p {
			t.Errorf("PartitionOf(%q) = %d, want %d", key, got, p)
		}
	}
}

func TestCheckpointEncodingIsStable(t *testing.T) {
	t.Parallel()
	cp := coord.Checkpoint{Position: "evt_1NG8Du2eZvKYlo2CUI79vXWy", Extra: []byte(`{"created":1680000000}`),
		Updated: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Holder: 7}
	got, err := coord.EncodeCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "checkpoint_v1.golden")
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		_ = os.WriteFile(golden, append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != string(want) {
		t.Fatalf("checkpoint encoding changed:\n got %s\nwant %s", got, want)
	}
	back, err := coord.DecodeCheckpoint(want)
	if err != nil || back.Position != cp.Position || !back.Updated.Equal(cp.Updated) || string(back.Extra) != string(cp.Extra) {
		t.Fatalf("decode: %+v, %v", back, err)
	}
	if _, err := coord.DecodeCheckpoint([]byte(`{"v":2}`)); err == nil {
		t.Fatal("a future version decoded")
	}
}

func TestCheckpointSaveLoad(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	l := b.lock(t, "stripe")
	if _, ok, err := b.c.LoadCheckpoint(b.ctx, "stripe", "events"); ok || err != nil {
		t.Fatalf("empty load: %v %v", ok, err)
	}
	if err := b.c.SaveCheckpoint(b.ctx, "stripe", "events", l, coord.Checkpoint{Position: "evt_9"}); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := b.c.LoadCheckpoint(b.ctx, "stripe", "events")
	if err != nil || !ok || cp.Position != "evt_9" || cp.Holder != l.Token() {
		t.Fatalf("load: %+v %v %v", cp, ok, err)
	}
}

func TestReaderLockStandbyTakesOver(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	leader := b.lock(t, "src")
	got := make(chan *coord.ReaderLock, 1)
	go func() {
		l, err := b.c.AcquireReader(b.ctx, "src")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("the standby took the lock while the leader holds it")
	case <-time.After(2 * b.c.Config().LockTTL): // the leader keeps extending
	}
	start := time.Now()
	if err := leader.Release(b.ctx); err != nil {
		t.Fatal(err)
	}
	standby := <-got
	if standby == nil {
		t.FailNow()
	}
	defer standby.Release(context.Background())
	t.Logf("standby took over %v after a release", time.Since(start))
	if standby.Token() <= leader.Token() {
		t.Fatal("the standby's token is not larger")
	}
	select {
	case <-leader.Lost():
	default:
		t.Fatal("a released lock does not say it is gone")
	}
}

func TestDurabilityCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	d, err := b.c.CheckDurability(b.ctx)
	if err != nil || !d.AOF || d.RequireDurable(false) != nil {
		t.Fatalf("shared test redis: %+v %v", d, err)
	}
	volatile := testenv.StartRedis(t, false)
	rdb := redisClient(t, volatile.URL())
	c, _ := coord.New(rdb, fastConfig("t"))
	d, err = c.CheckDurability(b.ctx)
	if err != nil || d.AOF {
		t.Fatalf("redis without AOF: %+v %v", d, err)
	}
	err = d.RequireDurable(false)
	if !errors.Is(err, coord.ErrNotDurable) || !strings.Contains(err.Error(), "appendonly") || !strings.Contains(err.Error(), "--accept-redis-data-loss") {
		t.Fatalf("refusal: %v", err)
	}
	if d.RequireDurable(true) != nil {
		t.Fatal("the accepted risk is still refused")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cfg  coord.Config
		want string
	}{
		{coord.Config{Namespace: "a b"}, "namespace"},
		{coord.Config{Partitions: 5000}, "partitions"},
		{coord.Config{LeaseTTL: time.Second, ReadBlock: time.Second}, "read block"},
		{coord.Config{LockTTL: time.Millisecond}, "lock TTL"},
	}
	for _, c := range cases {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
	if err := (coord.Config{}).Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

// TestTruncateGetsAnEntryOfItsOwn: an object for every partition is
// published in an entry of its own in each partition, between the entries
// of what came before and after it, so a partition's cursor just before it
// means everything before it is applied (see Barrier).
func TestTruncateGetsAnEntryOfItsOwn(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	l := b.lock(t, "src")
	var items []coord.Item
	for i := range 20 {
		items = append(items, obj("product", fmt.Sprint("k", i), "before"))
	}
	items = append(items, coord.Item{Model: "product", Key: "t", Payload: []byte("TRUNCATE"), AllPartitions: true})
	for i := range 20 {
		items = append(items, obj("product", fmt.Sprint("k", i), "after"))
	}
	b.publish(t, l, items...)
	for p := 0; p < 4; p++ {
		entries := b.rdb.XRange(b.ctx, b.c.StreamKey("product", p), "-", "+").Val()
		at := -1
		for i, e := range entries {
			body, _ := e.Values["b"].(string)
			if strings.Contains(body, "TRUNCATE") {
				if at >= 0 || e.Values["n"] != "1" {
					t.Fatalf("partition %d: the truncate shares entry %s (%v objects) or comes twice", p, e.ID, e.Values["n"])
				}
				at = i
				continue
			}
			if before := strings.Contains(body, "before"); before != (at < 0) || strings.Contains(body, "after") == (at < 0) {
				t.Fatalf("partition %d: entry %d (%q) on the wrong side of the truncate (entry %d)", p, i, body, at)
			}
		}
		if at < 0 {
			t.Fatalf("partition %d has no truncate", p)
		}
	}
}
