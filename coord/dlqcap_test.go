package coord_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
)

// refuseBad is a handler failure that refuses entries whose payload starts
// with "bad".
func refuseBad(batch []coord.Delivery) error {
	for i, d := range batch {
		if strings.HasPrefix(string(d.Payload), "bad") {
			return &coord.ItemError{Index: i, Err: coord.Permanent(errors.New("refused: " + string(d.Payload)))}
		}
	}
	return nil
}

// TestFullDeadLetterQueueWaits: a target's queue capped at 3 entries takes
// three refused entries; the fourth waits (its partition reported as
// stalled, nothing dropped, the entries behind it not applied), while
// other partitions flow. Making room lets it through.
func TestFullDeadLetterQueueWaits(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) {
		c.Partitions = 2
		c.DeadLetterLimits = map[string]coord.DeadLetterLimit{"tgt": {MaxEntries: 3}}
	})
	l := b.lock(t, "src")
	rec := newRecorder()
	rec.fail = refuseBad
	cs := runConsumer(t, b, "tgt", rec, "product")
	// Four bad entries of four keys, all in one partition, then a good one
	// behind them; and a good key of the other partition.
	var inP0 []string
	for i := 0; len(inP0) < 5; i++ {
		k := fmt.Sprintf("k%d", i)
		if b.c.PartitionOf(k) == 0 {
			inP0 = append(inP0, k)
		}
	}
	other := ""
	for i := 0; other == ""; i++ {
		if k := fmt.Sprintf("o%d", i); b.c.PartitionOf(k) == 1 {
			other = k
		}
	}
	// One publish: the entries come in one read, so the batch that meets the
	// full queue also holds the other partition's entry, which must not
	// wait with it.
	var items []coord.Item
	for i, k := range inP0[:4] {
		items = append(items, obj("product", k, fmt.Sprintf("bad-%d", i)))
	}
	b.publish(t, l, append(items, obj("product", inP0[4], "good"), obj("product", other, "elsewhere"))...)
	waitFor(t, "the partition waiting for room", 10*time.Second, nil, func() bool {
		st := cs.Stalled()
		return len(st) == 1 && strings.Contains(st[0], "dead-letter queue is full")
	})
	waitFor(t, "the other partition flowing", 10*time.Second, rec.notify, func() bool { return len(rec.get(other)) == 1 })
	st, err := b.c.DeadLetterStats(b.ctx, "tgt")
	if err != nil || st.Entries != 3 || st.Dropped != 0 || st.Bytes <= 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if got := rec.get(inP0[4]); len(got) != 0 {
		t.Fatalf("an entry behind the waiting one was applied: %v", got)
	}
	// Room is made (a dead letter dropped by hand): the fourth goes in and
	// the good entry behind it applies.
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 1)
	if _, err := b.c.Resolve(b.ctx, &dls[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the good entry after room was made", 10*time.Second, rec.notify, func() bool { return len(rec.get(inP0[4])) == 1 })
	if n, _ := b.c.DeadLetterCount(b.ctx, "tgt"); n != 3 {
		t.Fatalf("%d dead letters, want 3", n)
	}
	waitFor(t, "the stall report cleared", 5*time.Second, nil, func() bool { return len(cs.Stalled()) == 0 })
}

// TestFullDeadLetterQueueDropsOldestWhenAsked: with DropOldest, a queue
// capped at 3 keeps the newest three of six dead letters (five refused
// entries and a later change parked behind one) and counts the three it
// dropped; the keys of dropped ones flow again.
func TestFullDeadLetterQueueDropsOldestWhenAsked(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) {
		c.Partitions = 1
		c.DeadLetterLimits = map[string]coord.DeadLetterLimit{"tgt": {MaxEntries: 3, DropOldest: true}}
	})
	l := b.lock(t, "src")
	rec := newRecorder()
	rec.fail = refuseBad
	runConsumer(t, b, "tgt", rec, "product")
	for i := 0; i < 5; i++ {
		b.publish(t, l, obj("product", fmt.Sprintf("k%d", i), fmt.Sprintf("bad-%d", i)))
	}
	// Once the five are in (two of them dropped), later changes of k0 (its
	// dead letter dropped) and k4 (still parked) come.
	waitFor(t, "two dead letters dropped", 10*time.Second, nil, func() bool {
		st, _ := b.c.DeadLetterStats(b.ctx, "tgt")
		return st.Dropped == 2
	})
	b.publish(t, l, obj("product", "k0", "good-0"), obj("product", "k4", "good-4"))
	waitFor(t, "k0 flowing again", 10*time.Second, rec.notify, func() bool { return len(rec.get("k0")) == 1 })
	st, err := b.c.DeadLetterStats(b.ctx, "tgt")
	if err != nil || st.Entries != 3 || st.Dropped != 3 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 10)
	var held []string
	for _, d := range dls {
		held = append(held, string(d.Payload))
	}
	// k4 is still parked: its later change was set aside behind its dead
	// letter, pushing out one more of the oldest.
	if !reflect.DeepEqual(held, []string{"bad-3", "bad-4", "good-4"}) {
		t.Fatalf("held %v", held)
	}
	parked, _ := b.c.Parked(b.ctx, "tgt", "push")
	if len(parked) != 2 || parked["product|k3"] != 1 || parked["product|k4"] != 2 {
		t.Fatalf("parked %v", parked)
	}
}

// TestReplayReadsOnlyItsKey: with hundreds of unrelated dead letters in the
// queue, replaying one key reads that key's dead letters and no others.
func TestReplayReadsOnlyItsKey(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	rec := newRecorder()
	healed := map[string]bool{}
	rec.fail = func(batch []coord.Delivery) error {
		for i, d := range batch {
			if strings.HasPrefix(string(d.Payload), "bad") && !healed[d.Key] {
				return &coord.ItemError{Index: i, Err: coord.Permanent(errors.New("refused"))}
			}
		}
		return nil
	}
	runConsumer(t, b, "tgt", rec, "product")
	const unrelated = 300
	var items []coord.Item
	for i := 0; i < unrelated; i++ {
		items = append(items, obj("product", fmt.Sprintf("junk-%d", i), "bad"))
	}
	b.publish(t, l, items...)
	b.publish(t, l, obj("product", "p", "bad-p1"), obj("product", "p", "p2"))
	waitFor(t, "every refused entry set aside", 60*time.Second, nil, func() bool {
		n, _ := b.c.DeadLetterCount(b.ctx, "tgt")
		return n == unrelated+2
	})
	rec.mu.Lock()
	healed["p"] = true
	rec.mu.Unlock()
	before := coord.DeadLetterReads(b.c)
	if n, err := b.c.RequestReplay(b.ctx, "tgt", func(model, key string) bool { return key == "p" }); err != nil || n != 1 {
		t.Fatalf("replay request: %d, %v", n, err)
	}
	waitFor(t, "p replayed", 10*time.Second, rec.notify, func() bool { return len(rec.get("p")) == 2 })
	if got := rec.get("p"); !reflect.DeepEqual(got, []string{"bad-p1", "p2"}) {
		t.Fatalf("p: %v", got)
	}
	if read := coord.DeadLetterReads(b.c) - before; read != 2 {
		t.Fatalf("the replay read %d dead letters, want the key's 2", read)
	}
}

// TestCompleteVersionSupersedesReceiveDeadLetters: a bad record parks its
// key; a partial change of the key waits behind it; a complete version (a
// whole row) sets both aside as superseded and is published, and the key
// flows again.
func TestCompleteVersionSupersedesReceiveDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	b.publish(t, l, coord.Item{Model: "product", Key: "k", Bad: true, Location: "public.p", Reason: "too long", Payload: []byte("bad row")})
	res := b.publish(t, l, obj("product", "k", "partial"))
	if res.Diverted != 1 {
		t.Fatalf("partial change: %+v", res)
	}
	full := obj("product", "k", "whole row")
	full.Supersedes = true
	res = b.publish(t, l, full, obj("product", "k", "after"))
	if res.Published != 2 || res.Superseded != 2 || res.Diverted != 0 {
		t.Fatalf("complete version: %+v", res)
	}
	st, err := b.c.DeadLetterStats(b.ctx, "src")
	if err != nil || st.Entries != 0 || st.Superseded != 2 || st.Bytes != 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if parked, _ := b.c.Parked(b.ctx, "src", "receive"); len(parked) != 0 {
		t.Fatalf("still parked: %v", parked)
	}
	kept, err := b.c.SupersededDeadLetters(b.ctx, "src", "", 10)
	if err != nil || len(kept) != 2 || string(kept[0].Payload) != "bad row" || kept[0].Reason != "too long" || kept[1].SupersededBy == "" {
		t.Fatalf("superseded %+v, %v", kept, err)
	}
	var got []string
	for _, o := range streamObjects(t, b, b.c.StreamKey("product", 0)) {
		got = append(got, string(o.Payload))
	}
	if !reflect.DeepEqual(got, []string{"whole row", "after"}) {
		t.Fatalf("published %v", got)
	}
}

// superseding refuses "bad" payloads and calls "full" ones complete.
type superseding struct{ *recorder }

func (s superseding) Supersedes(d coord.Delivery) bool {
	return strings.HasPrefix(string(d.Payload), "full")
}

// TestCompleteVersionSupersedesPushDeadLetters: the target refuses a
// change; a later partial change of the key waits behind it; a complete
// version sets both aside and is applied without any replay, and later
// changes flow.
func TestCompleteVersionSupersedesPushDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	rec := newRecorder()
	rec.fail = refuseBad
	runConsumer(t, b, "tgt", superseding{rec}, "product")
	b.publish(t, l, obj("product", "k", "bad-1"))
	b.publish(t, l, obj("product", "k", "partial"))
	waitFor(t, "both set aside", 10*time.Second, nil, func() bool {
		n, _ := b.c.DeadLetterCount(b.ctx, "tgt")
		return n == 2
	})
	b.publish(t, l, obj("product", "k", "full-2"), obj("product", "k", "later"))
	waitFor(t, "the complete version and what follows applied", 10*time.Second, rec.notify, func() bool { return len(rec.get("k")) == 2 })
	if got := rec.get("k"); !reflect.DeepEqual(got, []string{"full-2", "later"}) {
		t.Fatalf("k: %v", got)
	}
	st, _ := b.c.DeadLetterStats(b.ctx, "tgt")
	if st.Entries != 0 || st.Superseded != 2 {
		t.Fatalf("stats %+v", st)
	}
}
