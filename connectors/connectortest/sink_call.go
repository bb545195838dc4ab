package connectortest

import (
	"errors"
	"maps"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// runPerCall runs the behaviours of a system that takes a call per record
// (an API behind a shared rate limit).
func (s *sinkSuite) runPerCall(t *testing.T) {
	t.Run("WriteCostIsTheCallsMade", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		c, ok := e.tgt.Sink.(connectors.Coster)
		if !ok {
			t.Fatalf("a per-call sink (%T) is no connectors.Coster: the rate limit would charge one call per write", e.tgt.Sink)
		}
		for _, recs := range [][]mixer.TargetRecord{
			{e.rec(t, mixer.OpUpsert, item(1, "a", "1"))},
			{
				e.rec(t, mixer.OpUpsert, item(2, "b", "1")), e.rec(t, mixer.OpUpsert, item(3, "c", "1")),
				e.rec(t, mixer.OpUpsert, map[string]any{"id": n("1"), "name": "a2"}), e.rec(t, mixer.OpDelete, map[string]any{"id": n("2")}),
			},
		} {
			cost := c.WriteCost(recs)
			before := e.tgt.Calls()
			e.write(t, recs...)
			if calls := e.tgt.Calls() - before; calls != cost {
				t.Fatalf("a write of %d records made %d calls; WriteCost said %d", len(recs), calls, cost)
			}
		}
	})
	if s.h.Refused != nil {
		t.Run("RefusedRecordIsNamed", func(t *testing.T) {
			t.Parallel()
			e := s.setup(t)
			bad := map[string]any{"id": n("2")}
			maps.Copy(bad, s.h.Refused)
			err := e.put(e.ctx, []mixer.TargetRecord{
				e.rec(t, mixer.OpUpsert, item(1, "good", "1")),
				e.rec(t, mixer.OpUpsert, bad),
				e.rec(t, mixer.OpUpsert, item(3, "good", "1")),
			}, nil)
			var re *connectors.RecordError
			if !errors.As(err, &re) || !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("a record the system refuses: %v, want a *connectors.RecordError wrapping ErrPermanent", err)
			}
			if re.Index != 1 {
				t.Fatalf("the record error names record %d, want 1", re.Index)
			}
		})
	}
	t.Run("OutageIsUnavailable", func(t *testing.T) {
		t.Parallel()
		e := s.setup(t)
		e.tgt.SetDown(true)
		r := e.rec(t, mixer.OpUpsert, item(1, "a", "1"))
		parts := partitionsOf([]mixer.TargetRecord{r})
		err := e.tgt.Sink.Write(e.ctx, []mixer.TargetRecord{r}, nil)
		written := err == nil
		if written && e.buf != nil { // held: the call happens at Flush
			err = e.buf.Flush(e.ctx, parts)
		}
		if !errors.Is(err, connectors.ErrUnavailable) || errors.Is(err, connectors.ErrPermanent) {
			t.Fatalf("writing while the system is down: %v, want ErrUnavailable (and not permanent: nothing may be dead-lettered)", err)
		}
		e.tgt.SetDown(false)
		if written && e.buf != nil { // the pusher flushes again
			if err := e.buf.Flush(e.ctx, parts); err != nil {
				t.Fatalf("flushing after the system came back: %v", err)
			}
		} else { // the pusher writes again
			e.write(t, r)
		}
		if v := e.visible(t); v != 1 {
			t.Fatalf("%d records visible after the system came back, want 1", v)
		}
	})
}
