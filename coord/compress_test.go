package coord_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/coord"
)

// envelopeLike is a payload shaped like a snapshot row's envelope: the
// same names and values over and over, what S2 shrinks.
func envelopeLike(key, seq int) string {
	return fmt.Sprintf(`{"v":1,"m":"product","op":"u","f":{"id":%d,"name":"product %d","qty":%d,"seq":%d},"s":"shop","l":"public.products","p":"0/16B3748","t":1765000000123456}`, key, key, key%7, seq)
}

// TestCompressedEntriesReadBack: entries written compressed and plain, by
// publishers set either way, in one partition's order, are read back as
// the same objects in that order; a small publish stays plain, and a
// compressed body Redis keeps is a fraction of the plain one.
func TestCompressedEntriesReadBack(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 2 })
	plainCfg := b.c.Config()
	plainCfg.EntryCompression = coord.CompressionNone
	plain, err := coord.New(b.rdb, plainCfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.c.Config().EntryCompression != coord.CompressionS2 {
		t.Fatalf("default entry compression %q, want s2", b.c.Config().EntryCompression)
	}
	l := b.lock(t, "src")
	const keys = 40
	seq := 0
	publish := func(c *coord.Client, perKey int) coord.PublishResult {
		t.Helper()
		var items []coord.Item
		for i := 0; i < perKey; i++ {
			for k := 0; k < keys; k++ {
				items = append(items, coord.Item{Model: "product", Key: fmt.Sprintf("src/public.products/%d", k), Payload: []byte(envelopeLike(k, seq))})
			}
			seq++
		}
		res, err := c.Publish(b.ctx, "src", l, items)
		if err != nil || res.Published != len(items) {
			t.Fatalf("publish: %+v, %v", res, err)
		}
		return res
	}
	if res := publish(plain, 3); res.Bytes == 0 || res.StoredBytes != res.Bytes {
		t.Fatalf("plain publish: %d bytes, %d stored; want them equal", res.Bytes, res.StoredBytes)
	}
	if res := publish(b.c, 3); res.StoredBytes*3 > res.Bytes {
		t.Fatalf("compressed publish: %d bytes, %d stored; want a third or less", res.Bytes, res.StoredBytes)
	}
	publish(plain, 2)
	publish(b.c, 5)
	// One object: a body under the threshold stays plain.
	one := coord.Item{Model: "product", Key: "src/public.products/0", Payload: []byte(envelopeLike(0, seq))}
	if _, err := b.c.Publish(b.ctx, "src", l, []coord.Item{one}); err != nil {
		t.Fatal(err)
	}
	seq++

	var fields []string
	var zBytes, zObjects int
	for _, m := range b.rdb.XRange(b.ctx, b.c.StreamKey("product", b.c.PartitionOf(one.Key)), "-", "+").Val() {
		switch {
		case m.Values["z"] != nil:
			fields = append(fields, "z")
			zBytes += len(m.Values["z"].(string))
			objs, err := coord.EntryObjects(m)
			if err != nil {
				t.Fatalf("entry %s: %v", m.ID, err)
			}
			for _, o := range objs {
				zObjects += len(o.Key) + len(o.Payload)
			}
		case m.Values["b"] != nil:
			fields = append(fields, "b")
		}
	}
	if want := []string{"b", "z", "b", "z", "b"}; strings.Join(fields, "") != strings.Join(want, "") {
		t.Fatalf("entry fields %v, want %v (plain, compressed, plain, compressed, the single object plain)", fields, want)
	}
	if zBytes*3 > zObjects {
		t.Fatalf("compressed entries hold %d bytes for %d of keys and payloads: less than a third saved", zBytes, zObjects)
	}

	rec := newRecorder()
	runConsumer(t, b, "tgt", rec, "product")
	waitFor(t, "every object applied", 20*time.Second, rec.notify, func() bool { return rec.count() >= keys*13+1 })
	for k := 0; k < keys; k++ {
		got := rec.get(fmt.Sprintf("src/public.products/%d", k))
		want := 13
		if k == 0 {
			want++
		}
		if len(got) != want {
			t.Fatalf("key %d: %d objects applied, want %d", k, len(got), want)
		}
		for i, p := range got {
			if p != envelopeLike(k, i) {
				t.Fatalf("key %d: object %d is %s, want %s", k, i, p, envelopeLike(k, i))
			}
		}
	}
}

// TestDamagedCompressedEntryIsDeadLettered: an entry whose compressed body
// does not decode reaches the handler as one delivery holding the bytes
// Redis had, which it refuses into the dead-letter queue; the entries after
// it are still applied.
func TestDamagedCompressedEntryIsDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	l := b.lock(t, "src")
	b.publish(t, l, obj("product", "k", "k:1"))
	if err := b.rdb.XAdd(b.ctx, &redisXAddArgs{Stream: b.c.StreamKey("product", 0), Values: []any{"n", "2", "z", "\x80\x80not s2"}}).Err(); err != nil {
		t.Fatal(err)
	}
	b.publish(t, l, obj("product", "j", "j:1"))
	rec := refusingRaw()
	runConsumer(t, b, "tgt", rec, "product")
	waitFor(t, "the damaged entry dead-lettered", 10*time.Second, nil, func() bool { n, _ := b.c.DeadLetterCount(b.ctx, "tgt"); return n == 1 })
	waitFor(t, "the entries around it applied", 10*time.Second, rec.notify, func() bool { return rec.count() == 2 })
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 10)
	if len(dls) != 1 || string(dls[0].Payload) != "\x80\x80not s2" {
		t.Fatalf("dead letters %+v, want the entry's compressed bytes as they were", dls)
	}
}

// TestEntryClaimingTooManyObjectsIsDeadLettered: an entry whose count is
// more than its body can hold (a corrupt or foreign entry) sizes nothing by
// that count; it reaches the handler as one delivery, which it refuses into
// the dead-letter queue, and the entries beside it are applied.
func TestEntryClaimingTooManyObjectsIsDeadLettered(t *testing.T) {
	t.Parallel()
	// Four workers: a read that finds the consumer behind keeps one
	// partition for the batch and holds the others' entries back, sized by
	// what they hold.
	b := setup(t, func(c *coord.Config) { c.Workers = 4 })
	l := b.lock(t, "src")
	key := ""
	for i := 0; key == ""; i++ { // a key of partition 0: it is read before partition 1's entry
		if k := fmt.Sprintf("k%d", i); b.c.PartitionOf(k) == 0 {
			key = k
		}
	}
	b.publish(t, l, obj("product", key, "k:1"))
	body := "\x01k\x01v" // one object, key "k", payload "v"
	if err := b.rdb.XAdd(b.ctx, &redisXAddArgs{Stream: b.c.StreamKey("product", 1), Values: []any{"n", "100000000000", "b", body}}).Err(); err != nil {
		t.Fatal(err)
	}
	rec := refusingRaw()
	runConsumer(t, b, "tgt", rec, "product")
	waitFor(t, "the entry dead-lettered", 10*time.Second, nil, func() bool { n, _ := b.c.DeadLetterCount(b.ctx, "tgt"); return n == 1 })
	waitFor(t, "the entry beside it applied", 10*time.Second, rec.notify, func() bool { return rec.count() == 1 })
	dls, _ := b.c.DeadLetters(b.ctx, "tgt", "", 10)
	if len(dls) != 1 || string(dls[0].Payload) != body {
		t.Fatalf("dead letters %+v, want the entry's body as it was", dls)
	}
}

// refusingRaw is a recorder that refuses, as permanent, a delivery with no
// key: an entry the consumer could not unpack, handed over raw.
func refusingRaw() *recorder {
	rec := newRecorder()
	rec.fail = func(batch []coord.Delivery) error {
		for i, d := range batch {
			if d.Key == "" {
				return &coord.ItemError{Index: i, Err: coord.Permanent(errors.New("not an object"))}
			}
		}
		return nil
	}
	return rec
}
