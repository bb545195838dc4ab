package coord_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlpipe/remix/coord"
)

// roundTrips counts commands and pipelines sent to Redis: each is one
// round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

func benchSetup(b *testing.B) (*bundle, *roundTrips) {
	bb := setupB(b)
	rt := &roundTrips{}
	bb.rdb.AddHook(rt)
	return bb, rt
}

func payload(i int) []byte {
	p := make([]byte, 256)
	copy(p, fmt.Sprintf(`{"model":"product","op":"upsert","fields":{"id":%d,"name":"Gold Plan"}}`, i))
	return p
}

// BenchmarkPublish measures an ingest's publish: batches of 500 objects of
// 256 bytes over 1 000 keys, fenced, through one script call per batch.
func BenchmarkPublish(b *testing.B) {
	bb, rt := benchSetup(b)
	l, err := bb.c.AcquireReader(bb.ctx, "src")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Release(context.Background())
	const batch = 500
	items := make([]coord.Item, batch)
	for i := range items {
		items[i] = coord.Item{Model: "product", Key: fmt.Sprintf("src/public.products/%d", i%1000), Payload: payload(i)}
	}
	rt.n.Store(0)
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		if _, err := bb.c.Publish(bb.ctx, "src", l, items[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/entry")
}

// BenchmarkConsume measures a pusher's side: entries read through a
// consumer group, handed to a handler that does nothing, and acknowledged.
func BenchmarkConsume(b *testing.B) {
	bb, rt := benchSetup(b)
	l, err := bb.c.AcquireReader(bb.ctx, "src")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Release(context.Background())
	if err := bb.c.EnsureGroups(bb.ctx, "product", []string{"tgt"}); err != nil {
		b.Fatal(err)
	}
	items := make([]coord.Item, 0, 1000)
	for done := 0; done < b.N; done += len(items) {
		items = items[:0]
		for i := done; i < min(done+1000, b.N); i++ {
			items = append(items, coord.Item{Model: "product", Key: fmt.Sprintf("k%d", i%1000), Payload: payload(i)})
		}
		if _, err := bb.c.Publish(bb.ctx, "src", l, items); err != nil {
			b.Fatal(err)
		}
	}
	var seen atomic.Int64
	finished := make(chan struct{})
	ctx, cancel := context.WithCancel(bb.ctx)
	defer cancel()
	cs := bb.c.NewConsumer("tgt", []string{"product"})
	rt.n.Store(0)
	b.ResetTimer()
	start := time.Now()
	go cs.Run(ctx, coord.HandlerFunc(func(_ context.Context, batch []coord.Delivery) error {
		if seen.Add(int64(len(batch))) >= int64(b.N) {
			select {
			case <-finished:
			default:
				close(finished)
			}
		}
		return nil
	}))
	<-finished
	for {
		acked, _, _, _ := cs.Stats()
		if acked >= int64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/entry")
}
