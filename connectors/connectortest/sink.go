package connectortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// ItemSchema is the model every location of the suites holds.
const ItemSchema = `{"title": "item", "type": "object", "properties": {
	"id": {"type": "integer"},
	"name": {"type": ["string", "null"]},
	"qty": {"type": ["integer", "null"]},
	"price": {"type": ["number", "null"]},
	"note": {"type": ["string", "null"]}}}`

// itemModel is the model of the records the suite writes: what the
// pusher's Origin names.
const itemModel = "item"

// SinkFeatures says which behaviours a sink has, by the kind of system it
// writes to. Keyed and AppendOnly say how the suite reads a location back:
// a sink declares one of them.
type SinkFeatures struct {
	// Keyed: the system keeps one row or object per search key (a table,
	// an API's objects). Upserts merge field by field, deletes remove. The
	// target reads rows back with Target.Get and Target.Count.
	Keyed bool
	// AppendOnly: the system is a log (files, a broker topic) that keeps
	// every record with its Origin, in order per partition; a delete is a
	// record too. The target reads it back with Target.Read.
	AppendOnly bool
	// PerCall: each record is a call of its own to the system (an API).
	// The sink is a connectors.Coster whose WriteCost is the number of
	// calls; a record the system refuses comes back as a
	// *connectors.RecordError naming it, wrapping ErrPermanent; an outage is
	// ErrUnavailable. The target counts calls (Target.Calls) and takes the
	// system down (Target.SetDown).
	PerCall bool
	// Buffered: the sink is a connectors.Buffered that holds records until
	// Flush. The suite flushes after each of its writes, and checks that
	// nothing is visible before Flush, that Flush is per partition, that
	// Discard drops what is held, and that held records become due within
	// 10 seconds of a write (the harness sets a short age threshold).
	Buffered bool
	// InsertWithoutKey (keyed): an upsert whose search key has no value
	// creates a row, and the target assigns its key.
	InsertWithoutKey bool
	// Truncate (keyed): a truncate record empties the location.
	Truncate bool
	// Fencing: the sink keeps fences with the data and refuses a write
	// whose fence is older than one it has seen (connectors.ErrFenced).
	Fencing bool
	// ReleasesRecords (keyed, not Buffered): the sink is a
	// connectors.RecordReleaser. The suite overwrites and reuses the
	// records' maps after each write, as the pusher does, and checks that
	// what was written stays as written.
	ReleasesRecords bool
}

// Target is a fresh, empty location of the system and its sink, opened,
// with what the suite reads the location back with. The functions the
// declared features need must be set.
type Target struct {
	Sink connectors.Sink
	// Get reads a row by id (keyed): its fields as JSON values (numbers as
	// json.Number), and whether it exists.
	Get func(ctx context.Context, id int64) (map[string]any, bool, error)
	// Count returns the number of rows (keyed).
	Count func(ctx context.Context) (int, error)
	// Read returns every record the location holds (append-only):
	// Location, Op, Fields (numbers as json.Number) and Origin as the log
	// keeps them, the records of each partition in the order they were
	// written; partitions may interleave in any way.
	Read func(ctx context.Context) ([]mixer.TargetRecord, error)
	// Calls returns how many calls the system has received (per call).
	Calls func() int
	// SetDown makes the system unreachable (true) or serves again (false)
	// (per call).
	SetDown func(down bool)
}

// SinkHarness makes targets for the sink suite.
type SinkHarness struct {
	Features SinkFeatures
	// Refused are fields that make an item one the system refuses for good
	// (PostgreSQL: a fraction in the integer qty), merged into an item the
	// suite writes; nil when the system takes any value (a log of JSON).
	Refused map[string]any
	// Create makes an empty location whose fields are id (the search key,
	// assigned by the target when absent and the system can), name, qty,
	// price and note, with the model's fields mapped to the same names, and
	// returns it with its sink opened and closed when the test ends. The
	// push rule of the location is made by Create itself; the suite maps
	// its objects with an equal rule.
	Create func(t *testing.T, model *mixer.Model) (location string, target Target)
}

// RunSink runs every behaviour the features select.
func RunSink(t *testing.T, h SinkHarness) {
	f := h.Features
	if f.Keyed == f.AppendOnly {
		t.Fatal("connectortest: a sink is either Keyed or AppendOnly: the suite reads it back one way")
	}
	model, err := mixer.CompileModel("mem:///item.json", []byte(ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	s := &sinkSuite{h: h, model: model}
	t.Run("ConcurrentWritesOfDisjointPartitions", s.concurrentWrites)
	t.Run("CancelledWriteAppliesNothing", s.cancelledWrite)
	if f.Keyed {
		s.runKeyed(t)
	}
	if f.AppendOnly {
		s.runLog(t)
	}
	if f.PerCall {
		s.runPerCall(t)
	}
	if f.Buffered {
		s.runBuffered(t)
	}
	if f.ReleasesRecords {
		if !f.Keyed || f.Buffered {
			t.Fatal("connectortest: ReleasesRecords is checked on keyed sinks, and a Buffered sink keeps its records")
		}
		t.Run("RecordsAreLetGoAfterWrite", s.releasedRecords)
	}
}

type sinkSuite struct {
	h     SinkHarness
	model *mixer.Model
}

// sinkEnv is one test's target and what makes its records.
type sinkEnv struct {
	ctx  context.Context
	tgt  Target
	buf  connectors.Buffered // nil unless the sink is Buffered
	rule *mixer.PushRule
	f    SinkFeatures

	mu    sync.Mutex
	entry uint64 // the last stream entry number handed out
}

func (s *sinkSuite) setup(t *testing.T) *sinkEnv {
	t.Helper()
	loc, tgt := s.h.Create(t, s.model)
	if tgt.Sink == nil {
		t.Fatal("connectortest: Create returned no sink")
	}
	f := s.h.Features
	for _, need := range []struct {
		feature, fn string
		ok, set     bool
	}{
		{"Keyed", "Get", f.Keyed, tgt.Get != nil},
		{"Keyed", "Count", f.Keyed, tgt.Count != nil},
		{"AppendOnly", "Read", f.AppendOnly, tgt.Read != nil},
		{"PerCall", "Calls", f.PerCall, tgt.Calls != nil},
		{"PerCall", "SetDown", f.PerCall, tgt.SetDown != nil},
	} {
		if need.ok && !need.set {
			t.Fatalf("connectortest: a %s sink's Target needs %s", need.feature, need.fn)
		}
	}
	rule, err := mixer.NewPushRule(s.model, loc, []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
		{Field: "name", Target: mixer.MustPath("name")},
		{Field: "qty", Target: mixer.MustPath("qty")},
		{Field: "price", Target: mixer.MustPath("price")},
		{Field: "note", Target: mixer.MustPath("note")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := tgt.Sink.(connectors.RecordReleaser); (ok && r.ReleasesRecords()) != f.ReleasesRecords {
		t.Fatalf("connectortest: the sink (%T) claims connectors.RecordReleaser %v, the features say %v", tgt.Sink, ok && r.ReleasesRecords(), f.ReleasesRecords)
	}
	e := &sinkEnv{ctx: t.Context(), tgt: tgt, rule: rule, f: f}
	if f.Buffered {
		b, ok := tgt.Sink.(connectors.Buffered)
		if !ok {
			t.Fatalf("connectortest: the sink (%T) is declared Buffered but is no connectors.Buffered", tgt.Sink)
		}
		e.buf = b
	}
	return e
}

// recIn maps an object to a record of partition part, with the Origin a
// pusher would give it: a new stream entry of the partition, object 0.
func (e *sinkEnv) recIn(t *testing.T, part int, op mixer.Op, fields map[string]any) mixer.TargetRecord {
	t.Helper()
	r, err := e.rule.Apply(&mixer.Object{Model: itemModel, Op: op, Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.entry++
	n := e.entry
	e.mu.Unlock()
	r.Origin = mixer.Origin{
		Model: itemModel, Partition: part, Entry: entryID(n), Index: 0,
		Source: "suite", Position: fmt.Sprint(n), CommitTime: time.Unix(1_700_000_000, int64(n)*int64(time.Millisecond)).UTC(),
		System: "suite",
	}
	r.Created = op == mixer.OpUpsert && n%2 == 0 // either way, kept by a log
	return r
}

// rec is recIn of partition 0.
func (e *sinkEnv) rec(t *testing.T, op mixer.Op, fields map[string]any) mixer.TargetRecord {
	t.Helper()
	return e.recIn(t, 0, op, fields)
}

// entryID is a stream entry id of Redis's form, milliseconds-sequence,
// growing with n.
func entryID(n uint64) string { return fmt.Sprintf("%d-%d", 1_700_000_000_000+n/4, n%4) }

// partitionsOf lists the partitions of records, in order of appearance.
func partitionsOf(recs []mixer.TargetRecord) []connectors.Partition {
	var out []connectors.Partition
	for _, r := range recs {
		p := connectors.Partition{Model: r.Origin.Model, Index: r.Origin.Partition}
		if r.Origin.Model != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// put writes records and, for a Buffered sink, flushes their partitions:
// what the pusher does before it acknowledges them.
func (e *sinkEnv) put(ctx context.Context, recs []mixer.TargetRecord, fences []connectors.Fence) error {
	if err := e.tgt.Sink.Write(ctx, recs, fences); err != nil {
		return err
	}
	if e.buf != nil {
		if err := e.buf.Flush(ctx, partitionsOf(recs)); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	return nil
}

func (e *sinkEnv) write(t *testing.T, recs ...mixer.TargetRecord) {
	t.Helper()
	if err := e.put(e.ctx, recs, nil); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (e *sinkEnv) get(t *testing.T, id int64) map[string]any {
	t.Helper()
	row, ok, err := e.tgt.Get(e.ctx, id)
	if err != nil {
		t.Fatalf("get %d: %v", id, err)
	}
	if !ok {
		return nil
	}
	return row
}

func (e *sinkEnv) count(t *testing.T) int {
	t.Helper()
	n, err := e.tgt.Count(e.ctx)
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func (e *sinkEnv) read(t *testing.T) []mixer.TargetRecord {
	t.Helper()
	recs, err := e.tgt.Read(e.ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return recs
}

// visible is how much the location shows: rows of a keyed store, records
// of a log.
func (e *sinkEnv) visible(t *testing.T) int {
	t.Helper()
	if e.f.Keyed {
		return e.count(t)
	}
	return len(e.read(t))
}

func n(s string) json.Number { return json.Number(s) }

// item is a whole item.
func item(id int64, name string, qty string) map[string]any {
	return map[string]any{"id": n(fmt.Sprint(id)), "name": name, "qty": n(qty), "price": n("1.50"), "note": "x"}
}

// concurrentWrites: several goroutines write disjoint partitions at once,
// as the pusher's workers do; every record lands, each partition's in
// order.
func (s *sinkSuite) concurrentWrites(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	const parts, writes, perWrite = 4, 5, 10
	id := func(p, w, i int) int64 { return int64(p*1000 + w*perWrite + i + 1) }
	// Made here, in the test's goroutine; each partition's in stream order.
	batches := make([][][]mixer.TargetRecord, parts)
	written := make([][]mixer.TargetRecord, parts)
	for w := range writes {
		for p := range parts {
			var recs []mixer.TargetRecord
			for i := range perWrite {
				recs = append(recs, e.recIn(t, p, mixer.OpUpsert, item(id(p, w, i), "v1", "1")))
				if w > 0 { // the previous write's rows change again
					recs = append(recs, e.recIn(t, p, mixer.OpUpsert, map[string]any{"id": n(fmt.Sprint(id(p, w-1, i))), "name": "v2"}))
				}
			}
			batches[p] = append(batches[p], recs)
			written[p] = append(written[p], recs...)
		}
	}
	errs := make(chan error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w, recs := range batches[p] {
				if err := e.put(e.ctx, recs, nil); err != nil {
					errs <- fmt.Errorf("partition %d, write %d: %w", p, w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if e.f.Keyed {
		if c := e.count(t); c != parts*writes*perWrite {
			t.Fatalf("%d rows, want %d", c, parts*writes*perWrite)
		}
		for p := range parts {
			for w := range writes {
				for i := range perWrite {
					want := "v2"
					if w == writes-1 {
						want = "v1"
					}
					if row := e.get(t, id(p, w, i)); row["name"] != want || row["qty"] != n("1") {
						t.Fatalf("row %d = %v, want name %s", id(p, w, i), row, want)
					}
				}
			}
		}
		return
	}
	got := byPartition(e.read(t))
	for p := range parts {
		checkLogOrder(t, p, got[p], written[p])
	}
}

// cancelledWrite: a Write (and a Flush) whose context ended returns the
// context's error and applies nothing.
func (s *sinkSuite) cancelledWrite(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	recs := []mixer.TargetRecord{e.rec(t, mixer.OpUpsert, item(1, "a", "1")), e.rec(t, mixer.OpUpsert, item(2, "b", "1"))}
	if err := e.tgt.Sink.Write(ctx, recs, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("a write with a cancelled context: %v, want context.Canceled", err)
	}
	if e.buf != nil {
		if held, _ := e.buf.Pending(connectors.Partition{Model: itemModel, Index: 0}); held {
			t.Fatal("a write that failed left records held")
		}
		if err := e.buf.Flush(e.ctx, partitionsOf(recs)); err != nil {
			t.Fatal(err)
		}
	}
	if v := e.visible(t); v != 0 {
		t.Fatalf("a cancelled write applied %d records", v)
	}
	if e.buf != nil { // held, then a cancelled flush: still held, not visible
		if err := e.tgt.Sink.Write(e.ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.buf.Flush(ctx, partitionsOf(recs)); !errors.Is(err, context.Canceled) {
			t.Fatalf("a flush with a cancelled context: %v, want context.Canceled", err)
		}
		if held, _ := e.buf.Pending(connectors.Partition{Model: itemModel, Index: 0}); !held {
			t.Fatal("a flush that failed dropped what was held")
		}
		if v := e.visible(t); v != 0 {
			t.Fatalf("a cancelled flush made %d records visible", v)
		}
		if err := e.buf.Flush(e.ctx, partitionsOf(recs)); err != nil {
			t.Fatal(err)
		}
	} else {
		e.write(t, recs...)
	}
	if v := e.visible(t); v != 2 {
		t.Fatalf("%d records visible after the write went through, want 2", v)
	}
}
