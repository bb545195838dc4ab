package mysql

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/mixer"
)

// nextChanges returns the next batch that holds changes: batches of a
// position alone (transactions of other databases on the shared server)
// are skipped.
func nextChanges(ctx context.Context, src connectors.Source) (connectors.Batch, error) {
	for {
		b, err := src.Next(ctx)
		if err != nil || len(b.Changes) > 0 {
			return b, err
		}
	}
}

// openLingering opens a source of a fresh items table with the linger
// given, closed when the test ends.
func openLingering(t *testing.T, linger time.Duration) (*testDB, connectors.Source) {
	t.Helper()
	d, open := itemsSource(t, "", map[string]any{SettingLinger: linger})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	src, err := open(ctx, &connectortest.Checkpoints{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return d, src
}

// execMeanwhile runs statements one after the other, pause apart, while
// the test reads the source, and returns a wait for them to finish.
func execMeanwhile(t *testing.T, d *testDB, pause time.Duration, stmts ...string) (wait func()) {
	done := make(chan error, 1)
	go func() {
		for i, q := range stmts {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := d.db.ExecContext(context.Background(), q); err != nil {
				done <- fmt.Errorf("statement %d: %w", i+1, err)
				return
			}
		}
		done <- nil
	}()
	return func() {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// With a linger, transactions of a quiet log 100 ms apart (timed by the
// server) come as one batch after the linger. Without, a transaction is
// handed over before the next one is even made (no timing asserted: a
// loaded machine may deliver late, never held back).
func TestLingerGathersAQuietBinlog(t *testing.T) {
	t.Parallel()
	t.Run("0s", func(t *testing.T) {
		t.Parallel()
		d, src := openLingering(t, 0)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for id := 1; id <= 3; id++ {
			d.exec(t, "INSERT INTO items (id) VALUES ("+strconv.Itoa(id)+")")
			b, err := nextChanges(ctx, src)
			if err != nil {
				t.Fatalf("waiting for transaction %d: %v", id, err)
			}
			if len(b.Changes) != 1 || b.Changes[0].Record.Fields["id"] != json.Number(strconv.Itoa(id)) {
				t.Fatalf("transaction %d came as a batch of %d changes", id, len(b.Changes))
			}
		}
	})
	t.Run("1s", func(t *testing.T) {
		t.Parallel()
		const linger = time.Second
		d, src := openLingering(t, linger)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		began := time.Now()
		// MariaDB's compound statement: each INSERT commits on its own.
		defer execMeanwhile(t, d, 0, `BEGIN NOT ATOMIC
			INSERT INTO items (id) VALUES (1); DO SLEEP(0.1);
			INSERT INTO items (id) VALUES (2); DO SLEEP(0.1);
			INSERT INTO items (id) VALUES (3); END`)()
		b, err := nextChanges(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		connectortest.CheckLingered(t, b, 3, time.Since(began), linger, 10*time.Second)
	})
}

// Lingering holds no more than a batch: a 6 000-row transaction goes on
// in a first batch of at least coalesceChanges, before its end (without a
// linger its chunks go on as Next takes them); every row arrives.
func TestLingerStopsAtAFullBatch(t *testing.T) {
	t.Parallel()
	var q strings.Builder
	q.WriteString(`INSERT INTO items (id) VALUES `)
	for i := 1; i <= 6000; i++ {
		if i > 1 {
			q.WriteByte(',')
		}
		q.WriteString("(" + strconv.Itoa(i) + ")")
	}
	for _, linger := range []time.Duration{0, time.Second} {
		t.Run(linger.String(), func(t *testing.T) {
			t.Parallel()
			d, src := openLingering(t, linger)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			defer execMeanwhile(t, d, 0, q.String())()
			b, err := nextChanges(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			n := len(b.Changes)
			if linger > 0 && (n < coalesceChanges || n >= 6000) {
				t.Fatalf("with linger %v: the first batch of a 6 000-row transaction held %d changes, want a full batch (%d) before its end", linger, n, coalesceChanges)
			}
			for n < 6000 {
				b, err := src.Next(ctx)
				if err != nil {
					t.Fatalf("after %d changes: %v", n, err)
				}
				n += len(b.Changes)
			}
			if n != 6000 {
				t.Fatalf("%d changes, want 6000", n)
			}
		})
	}
}

// A lingering reader sleeps only while the log is quiet: with events
// queued it is catching up and reads on; inside a transaction it reads
// its rest.
func TestLingerSleepsOnlyWhenQuiet(t *testing.T) {
	t.Parallel()
	r := &reader{linger: time.Second, events: make(chan *replication.BinlogEvent, queueEvents),
		pending: &item{changes: make([]connectors.Change, 1)}, pendingAt: time.Now()}
	if !r.lingering() {
		t.Fatal("a quiet log with a finished transaction pending: the reader does not linger")
	}
	for range quietEvents {
		r.events <- &replication.BinlogEvent{}
	}
	if r.lingering() {
		t.Fatalf("with %d events queued the reader lingers", quietEvents)
	}
	for range r.events {
		if len(r.events) == 0 {
			break
		}
	}
	r.open = true
	if r.lingering() {
		t.Fatal("inside a transaction the reader lingers")
	}
	r.open, r.pendingAt = false, time.Now().Add(-2*time.Second)
	if r.lingering() || r.gathering(1) {
		t.Fatal("past its linger the pending batch still waits")
	}
	r.draining = true
	if !r.gathering(1) {
		t.Fatal("what came while the reader lingered does not join its batch")
	}
	r.draining = false
	r.pendingAt = time.Now()
	if r.gathering(coalesceChanges) {
		t.Fatal("a full batch waits for its linger")
	}
}

// The linger key is in the spec, with its warnings (connectors.LingerWarnings).
func TestLingerSetting(t *testing.T) {
	t.Parallel()
	sys := testSystem("shop", "u:p@tcp(localhost:3306)/shop", mixer.NewReceiver(), nil, map[string]any{SettingLinger: 5 * time.Second})
	if got := strings.Join(Spec().Warn(sys), "\n"); !strings.Contains(got, "linger 5s is more than 1s") {
		t.Fatalf("warnings %q, want the linger's", got)
	}
	if got := testSystem("shop", "u:p@tcp(localhost:3306)/shop", nil, nil, nil).Settings.Duration(SettingLinger); got != 0 {
		t.Fatalf("linger unset: %v, want 0", got)
	}
}
