package coord_test

import (
	"reflect"
	"testing"

	"github.com/sqlpipe/remix/coord"
)

// TestDeliveriesAreDeduplicatedAndOrderedPerObject: deliveries pushed to
// Remix (webhooks) publish without a lock; a repeated delivery publishes
// nothing; an older version of an object than one published is skipped,
// whatever order the deliveries come in.
func TestDeliveriesAreDeduplicatedAndOrderedPerObject(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *coord.Config) { c.Partitions = 1 })
	versioned := func(key, payload, version string) coord.Item {
		it := obj("product", key, payload)
		it.Version = version
		return it
	}
	publish := func(id string, items ...coord.Item) coord.PublishResult {
		t.Helper()
		res, err := b.c.PublishDelivery(b.ctx, "stripe", id, items)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := publish("evt_2", versioned("prod_1", "v2", "0002")); res.Published != 1 {
		t.Fatalf("first delivery: %+v", res)
	}
	if res := publish("evt_2", versioned("prod_1", "v2", "0002")); !res.Repeat || res.Published != 0 {
		t.Fatalf("repeated delivery: %+v", res)
	}
	if res := publish("evt_1", versioned("prod_1", "v1", "0001")); res.Stale != 1 || res.Published != 0 {
		t.Fatalf("older delivery after a newer one: %+v", res)
	}
	if res := publish("evt_2b", versioned("prod_1", "v2 again", "0002")); res.Tied != 1 || res.Published != 0 {
		t.Fatalf("a tie: %+v", res)
	}
	// One delivery with two versions of one object and another object.
	res := publish("evt_3", versioned("prod_1", "v3", "0003"), versioned("prod_2", "w1", "0001"), versioned("prod_1", "v2.5", "00025"))
	if res.Published != 2 || res.Stale != 1 {
		t.Fatalf("mixed delivery: %+v", res)
	}
	var got []string
	for _, o := range streamObjects(t, b, b.c.StreamKey("product", 0)) {
		got = append(got, o.Key+"="+string(o.Payload))
	}
	if want := []string{"prod_1=v2", "prod_1=v3", "prod_2=w1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	// The source's own catch-up, under its lock, agrees on the order.
	l := b.lock(t, "stripe")
	r2, err := b.c.Publish(b.ctx, "stripe", l, []coord.Item{versioned("prod_2", "w0", "0000"), versioned("prod_2", "w2", "0002")})
	if err != nil || r2.Published != 1 || r2.Stale != 1 {
		t.Fatalf("catch-up: %+v, %v", r2, err)
	}
}
