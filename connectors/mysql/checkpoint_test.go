package mysql

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
)

// countingCheckpoints counts saves.
type countingCheckpoints struct {
	connectortest.Checkpoints
	saves atomic.Int64
}

func (c *countingCheckpoints) Save(ctx context.Context, name, value string) error {
	c.saves.Add(1)
	return c.Checkpoints.Save(ctx, name, value)
}

// savedGTID is the GTID set of the saved checkpoint.
func savedGTID(t *testing.T, cps *countingCheckpoints) string {
	t.Helper()
	v, _, err := cps.Load(context.Background(), checkpointName)
	if err != nil {
		t.Fatal(err)
	}
	st, err := parsePosition(positionPrefix + v)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", v, err)
	}
	return st.GTID
}

// A trickle of single-row transactions, each confirmed on its own, is
// saved at most every checkpointEvery; the last confirmed position is
// saved soon after (other databases of the server may keep the log
// busy), and Close saves it too.
func TestConfirmedPositionsAreSavedInStrides(t *testing.T) {
	t.Parallel()
	d, open := itemsSource(t, "", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cps := &countingCheckpoints{}
	src, err := open(ctx, cps)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	began, before := time.Now(), cps.saves.Load()
	const n = 100
	wait := execMeanwhile(t, d, 2*time.Millisecond, func() []string {
		var stmts []string
		for i := 1; i <= n; i++ {
			stmts = append(stmts, "INSERT INTO items (id) VALUES ("+strconv.Itoa(i)+")")
		}
		return stmts
	}()...)
	got, batches, last := 0, 0, ""
	for got < n {
		b, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got += len(b.Changes)
		if b.Position != "" {
			batches++
			if err := src.Confirm(ctx, b.Position); err != nil {
				t.Fatal(err)
			}
			st, _ := parsePosition(b.Position)
			last = st.GTID
		}
	}
	wait()
	saves := cps.saves.Load() - before
	if most := int64(time.Since(began)/checkpointEvery) + 2; saves > most {
		t.Fatalf("%d batches confirmed in %v, %d saves: want at most %d", batches, time.Since(began), saves, most)
	}
	deadline := time.Now().Add(5 * time.Second)
	for savedGTID(t, cps) != last {
		if time.Now().After(deadline) {
			t.Fatalf("5s after the last confirmation: saved %s, confirmed %s", savedGTID(t, cps), last)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A position confirmed just before Close is saved by Close.
	if _, err := d.db.ExecContext(ctx, "INSERT INTO items (id) VALUES (1000)"); err != nil {
		t.Fatal(err)
	}
	b, err := nextChanges(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Confirm(ctx, b.Position); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := parsePosition(b.Position)
	if got := savedGTID(t, cps); got != st.GTID {
		t.Fatalf("after Close: saved %s, confirmed %s", got, st.GTID)
	}
}

// A thousand positions confirmed in a burst are saved once or twice, the
// last of them within checkpointEvery by the save loop.
func TestConfirmBurstSavesTheLastPosition(t *testing.T) {
	t.Parallel()
	cps := &countingCheckpoints{}
	s := &Source{deps: connectors.SourceDeps{Checkpoints: cps}, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.saveLoop(ctx)
	began := time.Now()
	var last string
	for i := 1; i <= 1000; i++ {
		st := &state{Flavor: flavorMariaDB, GTID: "0-1-" + strconv.Itoa(i), Snapshot: "skipped", Seq: uint64(i)}
		if err := s.Confirm(ctx, st.position()); err != nil {
			t.Fatal(err)
		}
		last = st.GTID
	}
	if most := int64(time.Since(began)/checkpointEvery) + 2; cps.saves.Load() > most {
		t.Fatalf("1 000 confirmations in %v: %d saves, want at most %d", time.Since(began), cps.saves.Load(), most)
	}
	deadline := time.Now().Add(5 * time.Second)
	for savedGTID(t, cps) != last {
		if time.Now().After(deadline) {
			t.Fatalf("saved %s, confirmed %s", savedGTID(t, cps), last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
