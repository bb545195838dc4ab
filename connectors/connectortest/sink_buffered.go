package connectortest

import (
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// dueWithin is how soon after a write a Buffered sink of the suite must
// report its records due: the harness sets a short age threshold.
const dueWithin = 10 * time.Second

// runBuffered runs the behaviours of a sink that holds records until
// Flush.
func (s *sinkSuite) runBuffered(t *testing.T) {
	p0 := connectors.Partition{Model: itemModel, Index: 0}
	p1 := connectors.Partition{Model: itemModel, Index: 1}
	pending := func(t *testing.T, e *sinkEnv, p connectors.Partition, want bool) {
		t.Helper()
		if held, _ := e.buf.Pending(p); held != want {
			t.Fatalf("partition %d: Pending says held %v, want %v", p.Index, held, want)
		}
	}
	t.Run("NothingVisibleBeforeFlush", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		pending(t, e, p0, false)
		recs := []mixer.TargetRecord{e.rec(t, mixer.OpUpsert, item(1, "a", "1")), e.rec(t, mixer.OpUpsert, item(2, "b", "1"))}
		if err := e.tgt.Sink.Write(e.ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
		pending(t, e, p0, true)
		pending(t, e, p1, false)
		if v := e.visible(t); v != 0 {
			t.Fatalf("%d records visible before Flush", v)
		}
		if err := e.buf.Flush(e.ctx, []connectors.Partition{p0}); err != nil {
			t.Fatal(err)
		}
		pending(t, e, p0, false)
		if v := e.visible(t); v != 2 {
			t.Fatalf("%d records visible after Flush, want 2", v)
		}
		if err := e.buf.Flush(e.ctx, []connectors.Partition{p0, p1}); err != nil {
			t.Fatalf("a flush with nothing held: %v", err)
		}
	})
	t.Run("FlushIsPerPartition", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		recs := []mixer.TargetRecord{e.recIn(t, 0, mixer.OpUpsert, item(1, "a", "1")), e.recIn(t, 1, mixer.OpUpsert, item(2, "b", "1"))}
		if err := e.tgt.Sink.Write(e.ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.buf.Flush(e.ctx, []connectors.Partition{p1}); err != nil {
			t.Fatal(err)
		}
		pending(t, e, p0, true)
		pending(t, e, p1, false)
		if v := e.visible(t); v != 1 {
			t.Fatalf("%d records visible after flushing one of two partitions, want 1", v)
		}
		if err := e.buf.Flush(e.ctx, []connectors.Partition{p0}); err != nil {
			t.Fatal(err)
		}
		if v := e.visible(t); v != 2 {
			t.Fatalf("%d records visible after flushing both, want 2", v)
		}
	})
	t.Run("DiscardDropsWhatIsHeld", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		recs := []mixer.TargetRecord{e.recIn(t, 0, mixer.OpUpsert, item(1, "a", "1")), e.recIn(t, 1, mixer.OpUpsert, item(2, "b", "1"))}
		if err := e.tgt.Sink.Write(e.ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
		e.buf.Discard([]connectors.Partition{p0})
		pending(t, e, p0, false)
		pending(t, e, p1, true)
		if err := e.buf.Flush(e.ctx, []connectors.Partition{p0, p1}); err != nil {
			t.Fatal(err)
		}
		if v := e.visible(t); v != 1 {
			t.Fatalf("%d records visible, want 1: the discarded partition's record must be gone", v)
		}
		// The new owner of the partition writes it again.
		e.write(t, recs[0])
		if v := e.visible(t); v != 2 {
			t.Fatalf("%d records visible after the partition was written again, want 2", v)
		}
	})
	t.Run("HeldRecordsBecomeDue", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		if err := e.tgt.Sink.Write(e.ctx, []mixer.TargetRecord{e.rec(t, mixer.OpUpsert, item(1, "a", "1"))}, nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(dueWithin)
		for {
			held, due := e.buf.Pending(p0)
			if !held {
				t.Fatal("the record is not held any more, unflushed")
			}
			if due {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a held record is not due %v after it was written", dueWithin)
			}
			select {
			case <-e.ctx.Done():
				t.Fatal(e.ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := e.buf.Flush(e.ctx, []connectors.Partition{p0}); err != nil {
			t.Fatal(err)
		}
		if held, due := e.buf.Pending(p0); held || due {
			t.Fatalf("after Flush: held %v, due %v", held, due)
		}
	})
}
