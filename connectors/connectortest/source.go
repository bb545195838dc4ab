package connectortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// SourceFeatures says which behaviours a source's harness can provoke.
type SourceFeatures struct {
	// LosePosition: the harness can make the position a source confirmed
	// gone (SourceLocation.LosePosition), as a dropped replication slot or
	// purged history would.
	LosePosition bool
	// Undecodable: the harness can make a change the source cannot deliver
	// whole (SourceLocation.Undecodable).
	Undecodable bool
}

// SourceLocation is a fresh location of a source system holding rows with
// an integer key id and a text name, and what the suite changes it and
// reads it with. The functions the declared features need must be set.
type SourceLocation struct {
	// Location is the location as the source's records name it.
	Location string
	// Insert, Update and Delete change the row id at the source. Changes
	// made before the first Open need not be delivered.
	Insert func(ctx context.Context, id int64, name string) error
	Update func(ctx context.Context, id int64, name string) error
	Delete func(ctx context.Context, id int64) error
	// Open builds a Source of the location's system with checkpoints cps
	// and opens it. Every call builds the same system, so a source opened
	// again with the same checkpoints carries on from what the last one
	// confirmed. Its records carry the row's fields id and name. The suite
	// closes what it opens.
	Open func(ctx context.Context, cps connectors.Checkpoints) (connectors.Source, error)
	// LosePosition makes the position the system's sources confirmed gone
	// (PostgreSQL: drops the slot). The suite calls it once every source
	// it opened is closed.
	LosePosition func(ctx context.Context) error
	// Undecodable makes a change of row id that the source cannot deliver
	// whole (bytes it cannot decode, a row that lacks a field it maps).
	Undecodable func(ctx context.Context, id int64) error
}

// SourceHarness makes locations for the source suite.
type SourceHarness struct {
	Features SourceFeatures
	// Create makes a fresh location of a fresh system.
	Create func(t *testing.T) SourceLocation
}

// waitFor bounds each wait of the suite for changes.
const waitFor = 60 * time.Second

// RunSource runs every behaviour the features select.
func RunSource(t *testing.T, h SourceHarness) {
	s := &sourceSuite{h: h}
	t.Run("ChangesOfOneKeyArriveInOrder", s.changesInOrder)
	t.Run("ResumesAfterTheConfirmedPosition", s.resumes)
	t.Run("NextRespectsItsContext", s.nextRespectsContext)
	if h.Features.LosePosition {
		t.Run("LostPositionIsReported", s.lostPosition)
	}
	if h.Features.Undecodable {
		t.Run("UndecodableChangeComesWithItsError", s.undecodable)
	}
}

type sourceSuite struct{ h SourceHarness }

type sourceEnv struct {
	ctx context.Context
	loc SourceLocation
}

func (s *sourceSuite) setup(t *testing.T) *sourceEnv {
	t.Helper()
	loc := s.h.Create(t)
	f := s.h.Features
	switch {
	case loc.Insert == nil || loc.Update == nil || loc.Delete == nil || loc.Open == nil:
		t.Fatal("connectortest: a SourceLocation needs Insert, Update, Delete and Open")
	case f.LosePosition && loc.LosePosition == nil:
		t.Fatal("connectortest: the LosePosition feature needs SourceLocation.LosePosition")
	case f.Undecodable && loc.Undecodable == nil:
		t.Fatal("connectortest: the Undecodable feature needs SourceLocation.Undecodable")
	}
	return &sourceEnv{ctx: t.Context(), loc: loc}
}

// opened is a source the suite opened, closed once.
type opened struct {
	connectors.Source
	once sync.Once
	err  error
}

func (o *opened) close(ctx context.Context) error {
	o.once.Do(func() { o.err = o.Source.Close(ctx) })
	return o.err
}

// open opens a source with cps; it is closed when the test ends if the
// test did not close it.
func (e *sourceEnv) open(t *testing.T, cps connectors.Checkpoints) *opened {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, waitFor)
	defer cancel()
	src, err := e.loc.Open(ctx, cps)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	o := &opened{Source: src}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 10*time.Second)
		defer cancel()
		if err := o.close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return o
}

func (e *sourceEnv) closeSource(t *testing.T, o *opened) {
	t.Helper()
	if err := o.close(e.ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// change runs changes at the source.
func (e *sourceEnv) change(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (e *sourceEnv) insert(t *testing.T, id int64, name string) {
	t.Helper()
	e.change(t, fmt.Sprintf("insert %d", id), e.loc.Insert(e.ctx, id, name))
}

func (e *sourceEnv) update(t *testing.T, id int64, name string) {
	t.Helper()
	e.change(t, fmt.Sprintf("update %d", id), e.loc.Update(e.ctx, id, name))
}

func (e *sourceEnv) delete(t *testing.T, id int64) {
	t.Helper()
	e.change(t, fmt.Sprintf("delete %d", id), e.loc.Delete(e.ctx, id))
}

// ev is what the suite looks at in a change: the row's id, and its name
// after an upsert or "deleted".
type ev struct{ id, state string }

func (v ev) String() string { return v.id + ":" + v.state }

func evOf(c connectors.Change) ev {
	v := ev{id: fmt.Sprint(c.Record.Fields["id"])}
	switch {
	case c.Err != nil:
		v.state = "error"
	case c.Record.Op == mixer.OpDelete:
		v.state = "deleted"
	default:
		v.state = fmt.Sprint(c.Record.Fields["name"])
	}
	return v
}

// read calls Next until done says the changes read so far are enough,
// confirming each batch's position when confirm is set. It fails the test
// when Next fails or nothing more comes within waitFor.
func (e *sourceEnv) read(t *testing.T, src connectors.Source, confirm bool, done func([]connectors.Change) bool) ([]connectors.Change, []connectors.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, waitFor)
	defer cancel()
	var changes []connectors.Change
	var batches []connectors.Batch
	for !done(changes) {
		b, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("next, after %d changes (%s): %v", len(changes), evs(changes), err)
		}
		changes = append(changes, b.Changes...)
		batches = append(batches, b)
		if confirm && b.Position != "" {
			if err := src.Confirm(ctx, b.Position); err != nil {
				t.Fatalf("confirm %s: %v", b.Position, err)
			}
		}
	}
	return changes, batches
}

func evs(changes []connectors.Change) string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = evOf(c).String()
	}
	return strings.Join(out, " ")
}

// checkChanges checks what every good change must be: of the location,
// keyed, without error.
func (e *sourceEnv) checkChanges(t *testing.T, changes []connectors.Change) {
	t.Helper()
	for i, c := range changes {
		switch {
		case c.Err != nil:
			t.Fatalf("change %d: %v", i, c.Err)
		case c.Record.Location != e.loc.Location:
			t.Fatalf("change %d is of location %q, want %q", i, c.Record.Location, e.loc.Location)
		case c.Key == "":
			t.Fatalf("change %d has no key: its partition would be arbitrary", i)
		}
	}
}

// changesInOrder: the changes of one row come in the order they were made,
// with one key per row.
func (s *sourceSuite) changesInOrder(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	src := e.open(t, &Checkpoints{})
	want := map[string][]string{}
	for r := 1; r <= 3; r++ {
		for id := int64(1); id <= 4; id++ {
			name := fmt.Sprintf("r%d", r)
			if r == 1 {
				e.insert(t, id, name)
			} else {
				e.update(t, id, name)
			}
			want[fmt.Sprint(id)] = append(want[fmt.Sprint(id)], name)
		}
	}
	e.delete(t, 2)
	e.delete(t, 4)
	e.insert(t, 2, "again")
	want["2"] = append(want["2"], "deleted", "again")
	want["4"] = append(want["4"], "deleted")
	total := 15
	changes, _ := e.read(t, src, true, func(c []connectors.Change) bool { return len(c) >= total })
	e.checkChanges(t, changes)
	if len(changes) != total {
		t.Fatalf("%d changes, want %d: %s", len(changes), total, evs(changes))
	}
	got := map[string][]string{}
	keys := map[string]string{} // row id -> key
	for _, c := range changes {
		v := evOf(c)
		got[v.id] = append(got[v.id], v.state)
		if k, ok := keys[v.id]; ok && k != c.Key {
			t.Fatalf("row %s has changes keyed %q and %q: one row must keep one key", v.id, k, c.Key)
		}
		keys[v.id] = c.Key
	}
	for id, w := range want {
		if !slices.Equal(got[id], w) {
			t.Fatalf("row %s: %v, want %v", id, got[id], w)
		}
	}
	byKey := map[string]string{}
	for id, k := range keys {
		if other, dup := byKey[k]; dup {
			t.Fatalf("rows %s and %s share the key %q", id, other, k)
		}
		byKey[k] = id
	}
}

// resumes: a source closed after confirming a position and opened again
// with the same checkpoints delivers every change after that position,
// repeats allowed, nothing missing, each row's newest change last.
func (s *sourceSuite) resumes(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	cps := &Checkpoints{}
	first := e.open(t, cps)
	for id := int64(1); id <= 3; id++ {
		e.insert(t, id, "a")
	}
	_, batches := e.read(t, first, false, func(c []connectors.Change) bool { return len(c) >= 3 })
	// Confirmed: up to the last position of what was read so far.
	at := len(batches) - 1
	for at >= 0 && batches[at].Position == "" {
		at--
	}
	if at < 0 {
		t.Fatal("no batch of three committed changes carried a position to confirm")
	}
	if err := first.Confirm(e.ctx, batches[at].Position); err != nil {
		t.Fatal(err)
	}
	var after []ev // read but not confirmed: must come again
	for _, b := range batches[at+1:] {
		for _, c := range b.Changes {
			after = append(after, evOf(c))
		}
	}
	// Read, never confirmed.
	for id := int64(4); id <= 6; id++ {
		e.insert(t, id, "a")
	}
	more, _ := e.read(t, first, false, func(c []connectors.Change) bool { return len(c) >= 3 })
	for _, c := range more {
		after = append(after, evOf(c))
	}
	e.closeSource(t, first)

	e.update(t, 1, "b")
	e.insert(t, 7, "a")
	e.delete(t, 3)
	newest := []ev{{"1", "b"}, {"7", "a"}, {"3", "deleted"}}
	want := append(after, newest...)
	second := e.open(t, cps)
	changes, _ := e.read(t, second, true, func(c []connectors.Change) bool {
		have := map[ev]bool{}
		for _, x := range c {
			have[evOf(x)] = true
		}
		for _, w := range want {
			if !have[w] {
				return false
			}
		}
		return true
	})
	e.checkChanges(t, changes)
	// A row's newest change comes after every older one of it.
	for _, nv := range newest {
		at := slices.IndexFunc(changes, func(c connectors.Change) bool { return evOf(c) == nv })
		for _, c := range changes[at+1:] {
			if v := evOf(c); v.id == nv.id && v != nv {
				t.Fatalf("row %s: %s came after its newer change %s: %s", nv.id, v, nv, evs(changes))
			}
		}
	}
}

// nextRespectsContext: Next returns when its context ends, with the
// context's error.
func (s *sourceSuite) nextRespectsContext(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	src := e.open(t, &Checkpoints{})
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	for {
		b, err := src.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("next past its deadline: %v, want context.DeadlineExceeded", err)
			}
			break
		}
		if len(b.Changes) > 0 {
			t.Fatalf("changes where none were made: %s", evs(b.Changes))
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("next kept returning after its context ended")
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("next returned %v after its context ended", took)
	}
	cancelled, cancel2 := context.WithCancel(e.ctx)
	cancel2()
	if _, err := src.Next(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("next with a cancelled context: %v, want context.Canceled", err)
	}
}

// lostPosition: once the position a source confirmed is gone, Open or Next
// fails with connectors.ErrPositionLost, before delivering anything.
func (s *sourceSuite) lostPosition(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	cps := &Checkpoints{}
	first := e.open(t, cps)
	e.insert(t, 1, "a")
	e.read(t, first, true, func(c []connectors.Change) bool { return len(c) >= 1 })
	e.closeSource(t, first)
	if err := e.loc.LosePosition(e.ctx); err != nil {
		t.Fatalf("losing the position: %v", err)
	}
	e.insert(t, 2, "after")
	ctx, cancel := context.WithTimeout(e.ctx, waitFor)
	defer cancel()
	src, err := e.loc.Open(ctx, cps)
	if err != nil {
		if !errors.Is(err, connectors.ErrPositionLost) {
			t.Fatalf("open after the position was lost: %v, want connectors.ErrPositionLost", err)
		}
		return
	}
	o := &opened{Source: src}
	defer func() {
		if err := o.close(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	for {
		b, err := src.Next(ctx)
		if err != nil {
			if !errors.Is(err, connectors.ErrPositionLost) {
				t.Fatalf("next after the position was lost: %v, want connectors.ErrPositionLost", err)
			}
			return
		}
		if len(b.Changes) > 0 {
			t.Fatalf("a source that lost its position delivered %s instead of failing", evs(b.Changes))
		}
	}
}

// undecodable: a change the source cannot deliver whole comes as a Change
// with Err set, of its location (the ingest finds the rules to dead-letter
// it by) and keyed; the source goes on.
func (s *sourceSuite) undecodable(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	src := e.open(t, &Checkpoints{})
	e.insert(t, 1, "a")
	e.insert(t, 2, "a")
	if err := e.loc.Undecodable(e.ctx, 1); err != nil {
		t.Fatalf("making an undecodable change: %v", err)
	}
	e.delete(t, 2)
	gone := ev{"2", "deleted"}
	changes, _ := e.read(t, src, true, func(c []connectors.Change) bool {
		return len(c) > 0 && c[len(c)-1].Err == nil && evOf(c[len(c)-1]) == gone
	})
	bad := -1
	for i, c := range changes {
		if c.Err != nil {
			bad = i
			if c.Record.Location != e.loc.Location || c.Key == "" {
				t.Fatalf("the undecodable change has location %q and key %q: the ingest dead-letters by the location's rules and parks by key", c.Record.Location, c.Key)
			}
			break
		}
	}
	if bad < 0 {
		t.Fatalf("no change came with an error: %s", evs(changes))
	}
	e.checkChanges(t, changes[:bad])
	if got := evs(changes[:bad]); got != "1:a 2:a" {
		t.Fatalf("before the undecodable change: %s, want 1:a 2:a", got)
	}
}
