package mysql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/mixer"
)

// TestSnapshotUnderLoad copies a table while writes go on in it, and
// stops the source twice in the middle of the copy (it resumes from what
// it confirmed, as after kill -9 of the ingest): the changes applied in
// order give the table exactly as it is when the writes stop. No write
// waits on the snapshot (no lock is taken); the longest wait is reported.
// REMIX_TEST_SNAPSHOT_ROWS sets the table's size (default 3 000).
func TestSnapshotUnderLoad(t *testing.T) {
	t.Parallel()
	rows := 3000
	if n, err := strconv.Atoi(os.Getenv("REMIX_TEST_SNAPSHOT_ROWS")); err == nil && n > 0 {
		rows = n
	}
	d, open := itemsSource(t, "", map[string]any{SettingInitialSnap: true, SettingSnapshotChunk: int64(250)})
	for start := 1; start <= rows; start += 1000 {
		q := "INSERT INTO items (id, name, spare) VALUES "
		for i := start; i < start+1000 && i <= rows; i++ {
			if i > start {
				q += ","
			}
			q += fmt.Sprintf("(%d, 'v0-%d', %d)", i, i, i)
		}
		d.exec(t, q)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	// The load: updates, inserts and deletes, one per statement, measured.
	var writes atomic.Int64
	var longest atomic.Int64
	stop := make(chan struct{})
	loadDone := make(chan error, 1)
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		next := int64(rows + 1)
		for {
			select {
			case <-stop:
				loadDone <- nil
				return
			default:
			}
			var q string
			switch k := r.IntN(10); {
			case k < 6:
				q = fmt.Sprintf("UPDATE items SET name = 'u%d' WHERE id = %d", writes.Load(), 1+r.Int64N(next))
			case k < 8:
				q = fmt.Sprintf("INSERT INTO items (id, name) VALUES (%d, 'new')", next)
				next++
			default:
				q = fmt.Sprintf("DELETE FROM items WHERE id = %d", 1+r.Int64N(next))
			}
			began := time.Now()
			if _, err := d.db.ExecContext(ctx, q); err != nil {
				loadDone <- err
				return
			}
			if w := int64(time.Since(began)); w > longest.Load() {
				longest.Store(w)
			}
			writes.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	cps := &connectortest.Checkpoints{}
	target := map[string]map[string]any{}
	var mu sync.Mutex
	apply := func(b connectors.Batch) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range b.Changes {
			if c.Err != nil {
				t.Fatalf("change %s: %v", c.Key, c.Err)
			}
			id := fmt.Sprint(c.Record.Fields["id"])
			if c.Record.Op == mixer.OpDelete {
				delete(target, id)
				continue
			}
			row := target[id]
			if row == nil || c.Record.Complete {
				row = map[string]any{}
				target[id] = row
			}
			for k, v := range c.Record.Fields {
				row[k] = v
			}
		}
	}
	// Read until roughly a third of the copy is in (then stop the source
	// without confirming its last batch), twice; then to the end.
	snapshotted := func(src connectors.Source) bool {
		return !src.(*Source).Progress().Snapshotting
	}
	var src connectors.Source
	for round := 0; ; round++ {
		var err error
		if src, err = open(ctx, cps); err != nil {
			t.Fatal(err)
		}
		goal := int64(rows / 3 * (round + 1))
		for {
			b, err := src.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			apply(b)
			if round < 2 && src.(*Source).stats.SnapshotRows.Load() >= goal {
				break // the last batch is left unconfirmed: read again after the restart
			}
			if b.Position != "" {
				if err := src.Confirm(ctx, b.Position); err != nil {
					t.Fatal(err)
				}
			}
			if round >= 2 && snapshotted(src) {
				break
			}
		}
		if round >= 2 {
			break
		}
		if err := src.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	defer src.Close(context.Background())
	time.Sleep(200 * time.Millisecond) // a few more writes after the copy
	close(stop)
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	d.exec(t, "INSERT INTO items (id, name) VALUES (0, 'end')")
	for {
		mu.Lock()
		_, done := target["0"]
		mu.Unlock()
		if done {
			break
		}
		b, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		apply(b)
	}
	source := map[string]string{}
	rs, err := d.db.QueryContext(ctx, "SELECT id, name FROM items")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var id, name string
		if err := rs.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		source[id] = name
	}
	rs.Close()
	if len(source) != len(target) {
		t.Errorf("%d source rows, %d delivered", len(source), len(target))
	}
	for id, name := range source {
		if got := target[id]; got == nil || got["name"] != name {
			t.Fatalf("row %s: source %q, delivered %v", id, name, got)
		}
	}
	t.Logf("copied %d rows (chunks of 250, stopped twice) while %d writes went on; the longest write took %v",
		rows, writes.Load(), time.Duration(longest.Load()).Round(time.Microsecond))
}
