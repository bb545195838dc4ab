package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// memCheckpoints keeps checkpoints in memory (the ingest keeps them in
// Redis, fenced by the reader lock).
type memCheckpoints struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *memCheckpoints) Load(_ context.Context, name string) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	return v, ok, nil
}

func (c *memCheckpoints) Save(_ context.Context, name, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	c.m[name] = value
	return nil
}

const itemModel = `{"title": "item", "type": "object", "properties": {
	"id": {"type": "integer"}, "name": {"type": ["string", "null"]}, "body": {"type": ["string", "null"]}, "qty": {"type": ["integer", "null"]}}}`

// newSrcEnv makes a database with table items and a system that maps it.
func newSrcEnv(t *testing.T) (string, *pgx.Conn, func(settings map[string]any) *Source, *memCheckpoints) {
	t.Helper()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, name text, body text, qty int, secret text)`)
	model, err := mixer.CompileModel("mem:///item.json", []byte(itemModel))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{
		{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("name"), Field: "name"},
		{Source: mixer.MustPath("body"), Field: "body"}, {Source: mixer.MustPath("qty"), Field: "qty"},
	})
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add("public.items", rule)
	cps := &memCheckpoints{}
	name := testenv.UniqueName("src")
	open := func(settings map[string]any) *Source {
		all := map[string]any{SettingStatusInterval: 100 * time.Millisecond}
		for k, v := range settings {
			all[k] = v
		}
		src, err := NewSource(testSystem(name, url, recv, nil, all), connectors.SourceDeps{Checkpoints: cps})
		if err != nil {
			t.Fatal(err)
		}
		return src.(*Source)
	}
	return url, conn, open, cps
}

func openSource(t *testing.T, s *Source) *Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// collect reads batches until want changes arrived, confirming each batch.
func collect(t *testing.T, s *Source, want int, confirm bool) []connectors.Change {
	t.Helper()
	return collectRecycling(t, s, want, confirm, false)
}

// collectRecycling is collect that, with recycle set, hands every batch
// back (Recycle) as the ingest does once it has mapped it, keeping copies
// of the changes' fields.
func collectRecycling(t *testing.T, s *Source, want int, confirm, recycle bool) []connectors.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []connectors.Change
	for len(out) < want {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("next after %d of %d changes: %v", len(out), want, err)
		}
		for _, c := range b.Changes {
			if recycle {
				c.Record.Fields = maps.Clone(c.Record.Fields)
			}
			out = append(out, c)
		}
		if recycle {
			s.Recycle(b.Changes)
		}
		// A snapshot chunk's objects carry a short label, not the resume
		// state; a stream batch's, its LSN.
		if snap := strings.HasPrefix(b.Position, snapshotPrefix); snap && len(b.Changes) > 0 && b.Label != snapshotLabel || !snap && b.Label != "" {
			t.Fatalf("batch at %s labelled %q", b.Position, b.Label)
		}
		if confirm && b.Position != "" {
			if err := s.Confirm(ctx, b.Position); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func confirmedLSN(t *testing.T, conn *pgx.Conn, slot string) pglogrepl.LSN {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, _ := pglogrepl.ParseLSN(s)
	return lsn
}

func currentLSN(t *testing.T, conn *pgx.Conn) pglogrepl.LSN {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, _ := pglogrepl.ParseLSN(s)
	return lsn
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSnapshotThenStreamWithoutGapOrDouble(t *testing.T) {
	t.Parallel()
	_, conn, open, cps := newSrcEnv(t)
	exec(t, conn, `INSERT INTO items SELECT g, 'before ' || g, NULL, g, 'not mapped' FROM generate_series(1, 2500) g`)
	src := openSource(t, open(map[string]any{SettingSnapshotChunk: int64(1000)}))
	// Written after the slot's consistent point, while the copy runs: they
	// must come through the stream only.
	exec(t, conn, `INSERT INTO items SELECT g, 'after ' || g, NULL, g, 'x' FROM generate_series(2501, 2600) g`,
		`UPDATE items SET name = 'updated' WHERE id = 5`)
	changes := collect(t, src, 2601, true)
	seen := map[string]int{}
	for _, c := range changes {
		if c.Err != nil {
			t.Fatalf("change error: %v", c.Err)
		}
		if _, leaked := c.Record.Fields["secret"]; leaked {
			t.Fatal("an unmapped column was read")
		}
		if c.Record.Op == mixer.OpUpsert && c.Record.Fields["name"] != "updated" {
			seen[c.Key]++
		}
	}
	for id := 1; id <= 2600; id++ {
		key := fmt.Sprintf("%s/public.items/%d", src.sys.Name, id)
		if seen[key] != 1 {
			t.Fatalf("row %d arrived %d times (want exactly once through snapshot or stream)", id, seen[key])
		}
	}
	last := changes[len(changes)-1]
	if last.Record.Fields["name"] != "updated" || last.Record.Fields["id"] != json.Number("5") {
		t.Fatalf("the update came last? %+v", last)
	}
	if st, _, _ := cps.Load(context.Background(), checkpointName); !strings.Contains(st, `"snapshot":"done"`) {
		t.Fatalf("checkpoint after the snapshot: %s", st)
	}
}

func TestConfirmOnlyWhatIsDurable(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	exec(t, conn, `INSERT INTO items (id, name) VALUES (1, 'a')`)
	ctx := context.Background()
	b, err := src.Next(ctx)
	if err != nil || len(b.Changes) != 1 || b.Position == "" {
		t.Fatalf("batch %+v, %v", b, err)
	}
	pos, _ := pglogrepl.ParseLSN(b.Position)
	time.Sleep(500 * time.Millisecond) // several status updates go out
	if got := confirmedLSN(t, conn, src.slot); got >= pos {
		t.Fatalf("slot confirmed %s before the ingest confirmed %s", got, pos)
	}
	if err := src.Confirm(ctx, b.Position); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slot to confirm the transaction", 5*time.Second, func() bool { return confirmedLSN(t, conn, src.slot) >= pos })

	// Writes the source does not publish still move the slot once nothing
	// is in flight, so WAL does not pile up behind an idle table.
	exec(t, conn, `CREATE TABLE other (id int)`, `INSERT INTO other SELECT generate_series(1, 1000)`)
	after := currentLSN(t, conn)
	waitUntil(t, "the slot to follow an idle table", 10*time.Second, func() bool { return confirmedLSN(t, conn, src.slot) >= after })
}

func TestUnchangedToastIsAbsentAndNullIsNull(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	exec(t, conn, `ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL`)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	big := strings.Repeat("toasted ", 2000)
	exec(t, conn, `INSERT INTO items (id, name, body, qty) VALUES (1, 'a', '`+big+`', 1)`,
		`UPDATE items SET qty = 2 WHERE id = 1`,
		`UPDATE items SET name = NULL WHERE id = 1`)
	changes := collect(t, src, 3, true)
	if changes[0].Record.Fields["body"] != big || !changes[0].Record.Complete {
		t.Fatal("the insert lacks the TOASTed body")
	}
	for _, c := range changes[1:] {
		if _, has := c.Record.Fields["body"]; has {
			t.Fatalf("unchanged TOASTed body arrived in %+v", c.Record.Fields)
		}
		if c.Record.Complete {
			t.Fatal("a change without its TOASTed column says it is complete")
		}
	}
	if v, has := changes[2].Record.Fields["name"]; !has || v != nil {
		t.Fatal("name set to NULL did not arrive as null")
	}
}

func TestKeyChangeAndDeleteAndTruncate(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	exec(t, conn, `INSERT INTO items (id, name) VALUES (1, 'a')`, `UPDATE items SET id = 2 WHERE id = 1`,
		`DELETE FROM items WHERE id = 2`, `TRUNCATE items`)
	changes := collect(t, src, 5, true)
	ops := []string{}
	for _, c := range changes {
		ops = append(ops, fmt.Sprintf("%s:%v", c.Record.Op, c.Record.Fields["id"]))
	}
	want := "upsert:1 delete:1 upsert:2 delete:2 op(3):<nil>"
	if strings.Join(ops, " ") != want {
		t.Fatalf("ops = %v, want %s", ops, want)
	}
	if del := changes[3].Record.Fields; len(del) != 1 {
		t.Fatalf("a delete should carry the key only: %v", del)
	}
}

func TestStreamedTransactionsAbortAndSpill(t *testing.T) {
	t.Parallel()
	url, conn, open, _ := newSrcEnv(t)
	// Make PostgreSQL stream transactions above 64 kB before they commit.
	dbname := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(dbname, '?'); i >= 0 {
		dbname = dbname[:i]
	}
	exec(t, conn, `ALTER DATABASE `+dbname+` SET logical_decoding_work_mem = '64kB'`)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false, SettingMaxTransactionMB: int64(1)}))
	pad := strings.Repeat("x", 500)
	ctx := context.Background()
	// Rolled back whole: nothing may come out.
	tx, _ := conn.Begin(ctx)
	tx.Exec(ctx, `INSERT INTO items (id, name) SELECT g, '`+pad+`' FROM generate_series(100000, 103000) g`)
	tx.Rollback(ctx)
	// Committed, with a subtransaction rolled back in the middle, and large
	// enough to spill past 1 MB.
	tx, _ = conn.Begin(ctx)
	tx.Exec(ctx, `INSERT INTO items (id, name) SELECT g, '`+pad+`' FROM generate_series(1, 3000) g`)
	tx.Exec(ctx, `SAVEPOINT s`)
	tx.Exec(ctx, `INSERT INTO items (id, name) SELECT g, 'aborted' FROM generate_series(5001, 6000) g`)
	tx.Exec(ctx, `ROLLBACK TO SAVEPOINT s`)
	tx.Exec(ctx, `INSERT INTO items (id, name) SELECT g, 'kept' FROM generate_series(7001, 7100) g`)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, `INSERT INTO items (id, name) VALUES (9999, 'last')`)
	changes := collect(t, src, 3101, true)
	if len(changes) != 3101 {
		t.Fatalf("%d changes, want 3101", len(changes))
	}
	for _, c := range changes {
		id, _ := c.Record.Fields["id"].(json.Number).Int64()
		if id >= 5001 && id <= 6000 || id >= 100000 {
			t.Fatalf("row %d of an aborted (sub)transaction arrived", id)
		}
	}
	if changes[3100].Record.Fields["name"] != "last" {
		t.Fatal("order lost")
	}
}

func TestRestartResumesFromTheSlot(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	first := open(map[string]any{SettingInitialSnapshot: false})
	openSource(t, first)
	exec(t, conn, `INSERT INTO items (id) VALUES (1)`)
	collect(t, first, 1, true)
	waitUntil(t, "confirmation", 5*time.Second, func() bool {
		return confirmedLSN(t, conn, first.slot) >= pglogrepl.LSN(first.durable.Load())
	})
	first.Close(context.Background())
	// Changed while no ingest ran.
	exec(t, conn, `INSERT INTO items (id) VALUES (2)`, `UPDATE items SET qty = 3 WHERE id = 1`)
	second := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	changes := collect(t, second, 2, true)
	if changes[0].Record.Fields["id"] != json.Number("2") || changes[1].Record.Fields["qty"] != json.Number("3") {
		t.Fatalf("after restart: %+v", changes)
	}
}

// TestCatchUpWaitsForFullerReads: thousands of transactions committed while
// no ingest ran are read with the socket's low-water mark set (the reader
// is behind the server's WAL), and every one arrives, in order.
func TestCatchUpWaitsForFullerReads(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	first := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	exec(t, conn, `INSERT INTO items (id) VALUES (0)`)
	collect(t, first, 1, true)
	waitUntil(t, "confirmation", 5*time.Second, func() bool {
		return confirmedLSN(t, conn, first.slot) >= pglogrepl.LSN(first.durable.Load())
	})
	first.Close(context.Background())
	const n = 4000
	exec(t, conn, fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP INSERT INTO items (id, name) VALUES (i, repeat('x', 100)); COMMIT; END LOOP; END $$`, n))
	second := open(map[string]any{SettingInitialSnapshot: false})
	second.walEnd.Store(uint64(currentLSN(t, conn))) // as watchWALEnd's first read would
	openSource(t, second)
	changes := collect(t, second, n, true)
	for i, c := range changes {
		if c.Record.Fields["id"] != json.Number(strconv.Itoa(i+1)) {
			t.Fatalf("change %d: id %v, want %d", i, c.Record.Fields["id"], i+1)
		}
	}
	if second.stats.CatchUps.Load() == 0 {
		t.Fatal("the reader never waited for fuller reads while catching up")
	}
}

func TestInterruptedSnapshotResumes(t *testing.T) {
	t.Parallel()
	_, conn, open, cps := newSrcEnv(t)
	exec(t, conn, `INSERT INTO items (id, name) SELECT g, 'v1' FROM generate_series(1, 3000) g`)
	first := openSource(t, open(map[string]any{SettingSnapshotChunk: int64(1000)}))
	ctx := context.Background()
	b, err := first.Next(ctx)
	if err != nil || len(b.Changes) != 1000 {
		t.Fatalf("first chunk: %d, %v", len(b.Changes), err)
	}
	if err := first.Confirm(ctx, b.Position); err != nil { // durable: progress saved
		t.Fatal(err)
	}
	first.Close(ctx) // the ingest dies before the rest
	exec(t, conn, `UPDATE items SET name = 'v2' WHERE id IN (10, 2000)`, `DELETE FROM items WHERE id = 2500`)
	second := openSource(t, open(nil))
	// The rest of the copy (rows 1001 to 3000 but the deleted 2500), then
	// the stream from the slot's position: two updates and a delete.
	changes := collect(t, second, 1999+3, true)
	final := map[string]any{}
	for _, c := range changes {
		id := c.Record.Fields["id"]
		if c.Record.Op == mixer.OpDelete {
			final[fmt.Sprint(id)] = "deleted"
		} else {
			final[fmt.Sprint(id)] = c.Record.Fields["name"]
		}
	}
	if v, ok := final["500"]; ok {
		t.Fatalf("row 500 was copied again (%v): resuming must start after the saved key", v)
	}
	if final["10"] != "v2" || final["2000"] != "v2" || final["2500"] != "deleted" || final["3000"] != "v1" {
		t.Fatalf("final state from the resumed copy and the stream: 10=%v 2000=%v 2500=%v 3000=%v", final["10"], final["2000"], final["2500"], final["3000"])
	}
	if st, _, _ := cps.Load(ctx, checkpointName); !strings.Contains(st, `"snapshot":"done"`) {
		t.Fatalf("checkpoint %s", st)
	}
}

func TestLostSlotIsALoudStop(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	first := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	first.Close(context.Background())
	testenv.WaitSlotReleased(t, conn, first.slot)
	exec(t, conn, `SELECT pg_drop_replication_slot('`+first.slot+`')`)
	err := open(map[string]any{SettingInitialSnapshot: false}).Open(context.Background())
	if !errors.Is(err, ErrSlotLost) || !strings.Contains(err.Error(), "will not create a new slot") {
		t.Fatalf("open after the slot was dropped: %v", err)
	}
	var n int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, first.slot).Scan(&n)
	if n != 0 {
		t.Fatal("a new slot was created silently")
	}
}

func TestStartupChecks(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	exec(t, conn, `ALTER TABLE items DROP COLUMN qty`, `ALTER TABLE items DROP CONSTRAINT items_pkey`)
	err := open(nil).Open(context.Background())
	for _, want := range []string{`table public.items has no column "qty"`, "table public.items has no primary key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("open: %v; want %q", err, want)
		}
	}
}

func TestKeyChangeKeepsUnchangedToast(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	exec(t, conn, `ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL`)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	big := strings.Repeat("kept ", 3000)
	exec(t, conn, `INSERT INTO items (id, name, body) VALUES (1, 'a', '`+big+`')`, `UPDATE items SET id = 2 WHERE id = 1`)
	changes := collect(t, src, 3, true)
	checkMoved(t, changes[2], "2", big)
}

// checkMoved checks the upsert of a row moved to key id: complete, with its
// unchanged TOASTed body read back.
func checkMoved(t *testing.T, moved connectors.Change, id, body string) {
	t.Helper()
	if moved.Record.Op != mixer.OpUpsert || moved.Record.Fields["id"] != json.Number(id) {
		t.Fatalf("the moved row: %+v", moved.Record)
	}
	if moved.Record.Fields["body"] != body || !moved.Record.Complete {
		t.Fatalf("the moved row lost its unchanged TOASTed body (%d bytes, complete %v)", len(fmt.Sprint(moved.Record.Fields["body"])), moved.Record.Complete)
	}
}

func TestNewlyMappedTableIsCopied(t *testing.T) {
	t.Parallel()
	url, conn, open, cps := newSrcEnv(t)
	exec(t, conn, `INSERT INTO items (id, name) VALUES (1, 'a')`,
		`CREATE TABLE extra (id bigint PRIMARY KEY, name text)`, `INSERT INTO extra VALUES (10, 'before it was mapped')`)
	first := openSource(t, open(nil))
	collect(t, first, 1, true)
	first.Close(context.Background())

	model, _ := mixer.CompileModel("mem:///item.json", []byte(itemModel))
	recv := mixer.NewReceiver()
	for _, loc := range []string{"public.items", "public.extra"} {
		rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("name"), Field: "name"}})
		if err != nil {
			t.Fatal(err)
		}
		recv.Add(loc, rule)
	}
	src, err := NewSource(testSystem(first.sys.Name, url, recv, nil, map[string]any{SettingStatusInterval: 100 * time.Millisecond}), connectors.SourceDeps{Checkpoints: cps})
	if err != nil {
		t.Fatal(err)
	}
	second := openSource(t, src.(*Source))
	changes := collect(t, second, 1, true)
	if changes[0].Record.Location != "public.extra" || changes[0].Record.Fields["name"] != "before it was mapped" {
		t.Fatalf("first change after mapping extra: %+v", changes[0].Record)
	}
	exec(t, conn, `INSERT INTO extra VALUES (11, 'after')`)
	if c := collect(t, second, 1, true); c[0].Record.Fields["id"] != json.Number("11") {
		t.Fatalf("stream after the copy: %+v", c[0].Record)
	}
}

// TestSlowIngestDoesNotTimeTheConnectionOut: with wal_sender_timeout at one
// second, a large transaction handed over to a slow ingest for several
// seconds keeps the connection alive: status updates go out meanwhile.
func TestSlowIngestDoesNotTimeTheConnectionOut(t *testing.T) {
	t.Parallel()
	url, conn, open, _ := newSrcEnv(t)
	dbname := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(dbname, '?'); i >= 0 {
		dbname = dbname[:i]
	}
	exec(t, conn, `ALTER DATABASE `+dbname+` SET wal_sender_timeout = '1s'`, `ALTER DATABASE `+dbname+` SET logical_decoding_work_mem = '64kB'`)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	exec(t, conn, `INSERT INTO items (id, name) SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`)
	ctx := context.Background()
	got := 0
	start := time.Now()
	for got < 20000 {
		b, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("after %d changes and %v: %v", got, time.Since(start), err)
		}
		got += len(b.Changes)
		if b.Position != "" {
			src.Confirm(ctx, b.Position)
		}
		time.Sleep(700 * time.Millisecond) // a slow ingest
	}
	if time.Since(start) < 2*time.Second {
		t.Fatalf("the hand-over took %v: too short to show anything", time.Since(start))
	}
}

// TestStreamedKeyChangeKeepsUnchangedToast: in a transaction PostgreSQL
// streams before it commits, a row moved to a new key keeps its unchanged
// TOASTed column, whether the change stays in memory or spills to disk.
func TestStreamedKeyChangeKeepsUnchangedToast(t *testing.T) {
	t.Parallel()
	for _, maxMB := range []int64{1, 64} {
		t.Run(fmt.Sprintf("max%dMB", maxMB), func(t *testing.T) {
			t.Parallel()
			url, conn, open, _ := newSrcEnv(t)
			dbname := url[strings.LastIndex(url, "/")+1:]
			if i := strings.IndexByte(dbname, '?'); i >= 0 {
				dbname = dbname[:i]
			}
			exec(t, conn, `ALTER DATABASE `+dbname+` SET logical_decoding_work_mem = '64kB'`,
				`ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL`)
			src := openSource(t, open(map[string]any{SettingInitialSnapshot: false, SettingMaxTransactionMB: maxMB}))
			big := strings.Repeat("kept ", 3000)
			pad := strings.Repeat("x", 500)
			exec(t, conn, `INSERT INTO items (id, name, body) VALUES (1, 'a', '`+big+`')`)
			ctx := context.Background()
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO items (id, name) SELECT g, '` + pad + `' FROM generate_series(10, 3009) g`,
				`UPDATE items SET id = 2 WHERE id = 1`,
				`INSERT INTO items (id, name) SELECT g, '` + pad + `' FROM generate_series(5000, 7999) g`,
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			changes := collect(t, src, 1+3000+2+3000, true)
			checkMoved(t, changes[1+3000+1], "2", big)
		})
	}
}

// TestDomainColumnsDecodeAsTheirBaseType: a column of a domain type (here
// over integer, and a domain over that domain) arrives as its base type,
// the same in the snapshot and in the stream.
func TestDomainColumnsDecodeAsTheirBaseType(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	exec(t, conn, `CREATE DOMAIN qty_t AS integer CHECK (VALUE >= 0)`, `CREATE DOMAIN small_qty_t AS qty_t CHECK (VALUE < 1000)`,
		`ALTER TABLE items ALTER COLUMN qty TYPE small_qty_t`, `INSERT INTO items (id, qty) VALUES (1, 7)`)
	src := openSource(t, open(nil))
	exec(t, conn, `INSERT INTO items (id, qty) VALUES (2, 8)`)
	changes := collect(t, src, 2, true)
	for i, want := range []json.Number{"7", "8"} {
		if got := changes[i].Record.Fields["qty"]; got != want {
			t.Fatalf("change %d: qty = %#v, want %#v", i, got, want)
		}
	}
}

// TestMovedRowCommittedBetweenReadAndVisibility: the transaction that moved
// a row commits after fillMoved's read missed the row and before it asks
// whether the transaction is visible. The row is read again then, not
// taken as gone: its unchanged TOASTed column is kept.
func TestMovedRowCommittedBetweenReadAndVisibility(t *testing.T) {
	t.Parallel()
	url, conn, open, _ := newSrcEnv(t)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	big := strings.Repeat("kept ", 3000)
	exec(t, conn, `INSERT INTO items (id, name, body) VALUES (1, 'a', '`+big+`')`)
	ctx := context.Background()
	mover := connect(t, url)
	tx, err := mover.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var xid uint32
	if err := tx.QueryRow(ctx, `UPDATE items SET id = 2 WHERE id = 1 RETURNING txid_current()::bigint::int8 % 4294967296`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	committed := false
	src.afterMovedRead = func() {
		if !committed {
			committed = true
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	c := connectors.Change{Record: mixer.Record{Location: "public.items", Op: mixer.OpUpsert, Fields: map[string]any{"id": json.Number("2")}}}
	m := &movedRow{Loc: "public.items", Cols: []string{"body"}, KeyCols: []string{"id"}, KeyOIDs: []uint32{20}, KeyText: [][]byte{[]byte("2")}}
	if err := src.fillMoved(ctx, m, xid, &c); err != nil {
		t.Fatal(err)
	}
	if !committed {
		t.Fatal("the read found the row before the commit")
	}
	checkMoved(t, c, "2", big)
}

// A reader that seems behind the server's WAL (other databases of the same
// server write a lot of it) gathers finished transactions; when the
// stream then goes quiet they are handed over at once, not at the next
// status update.
func TestQuietStreamHandsOverWhileBehind(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	src := open(map[string]any{SettingInitialSnapshot: false, SettingStatusInterval: 10 * time.Second})
	src.readWALEnd = func(ctx context.Context) (pglogrepl.LSN, error) {
		var end pglogrepl.LSN
		err := src.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()`).Scan(&end)
		return end + 16<<20, err // 16 MiB of other databases' WAL still to decode
	}
	openSource(t, src)
	// Each row waited for up to the status interval (5 s on average) when a
	// gathering reader did not shorten its read deadline; three rows in a
	// row under 2 s each would be luck one time in a hundred.
	for i := 1; i <= 3; i++ {
		began := time.Now()
		exec(t, conn, fmt.Sprintf(`INSERT INTO items (id) VALUES (%d)`, i))
		changes := collect(t, src, 1, true)
		if took := time.Since(began); took > 2*time.Second {
			t.Fatalf("row %d took %v to be handed over by a reader gathering in a quiet stream", i, took.Round(time.Millisecond))
		}
		if changes[0].Record.Fields["id"] != json.Number(strconv.Itoa(i)) {
			t.Fatalf("row %d: got %v", i, changes[0].Record.Fields["id"])
		}
	}
}

// With linger set, transactions of a quiet stream that follow each other
// within it are handed over as one batch, once the first has waited the
// linger; without it the first is handed over as it arrives.
func TestLingerGathersAQuietStream(t *testing.T) {
	t.Parallel()
	for _, linger := range []time.Duration{0, time.Second} {
		t.Run(linger.String(), func(t *testing.T) {
			t.Parallel()
			_, conn, open, _ := newSrcEnv(t)
			src := openSource(t, open(map[string]any{SettingInitialSnapshot: false, SettingStatusInterval: 10 * time.Second, SettingLinger: linger}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			began := time.Now()
			// Three transactions 100 ms apart, timed by the server.
			defer execMeanwhile(t, ctx, conn, `DO $$ BEGIN
				INSERT INTO items (id) VALUES (1); COMMIT; PERFORM pg_sleep(0.1);
				INSERT INTO items (id) VALUES (2); COMMIT; PERFORM pg_sleep(0.1);
				INSERT INTO items (id) VALUES (3); COMMIT; END $$`)()
			b, err := src.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			if linger == 0 {
				// The first transaction alone, long before the next.
				if len(b.Changes) != 1 || took > 5*time.Second {
					t.Fatalf("without linger: the first batch held %d changes after %v, want 1 at once", len(b.Changes), took)
				}
				collect(t, src, 2, true)
				return
			}
			// At most 5 s: the linger, not the status interval (10 s).
			connectortest.CheckLingered(t, b, 3, took, linger, 5*time.Second)
		})
	}
}

// Lingering never holds more than a batch's worth of changes: a large
// transaction goes on in batches of coalesceChanges while it is read.
func TestLingerStopsAtAFullBatch(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false, SettingStatusInterval: 10 * time.Second, SettingLinger: time.Second}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer execMeanwhile(t, ctx, conn, `INSERT INTO items (id) SELECT g FROM generate_series(1, 6000) g`)()
	b, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Changes) != coalesceChanges {
		t.Fatalf("the first batch of a 6 000-row transaction held %d changes, want %d", len(b.Changes), coalesceChanges)
	}
	collect(t, src, 6000-coalesceChanges, true)
}

// The linger key is in the spec, with its warnings (connectors.LingerWarnings).
func TestLingerSetting(t *testing.T) {
	t.Parallel()
	sys := testSystem("shop", "postgres://x", mixer.NewReceiver(), nil, map[string]any{SettingLinger: 5 * time.Second})
	if got := strings.Join(warn(sys), "\n"); !strings.Contains(got, "linger 5s is more than 1s") {
		t.Fatalf("warnings %q, want the linger's", got)
	}
	if got := testSystem("shop", "postgres://x", nil, nil, nil).Settings.Duration(SettingLinger); got != 0 {
		t.Fatalf("linger unset: %v, want 0", got)
	}
}

// execMeanwhile runs sql on conn while the test reads the source, and
// returns a wait for it to finish (the connection is not the test's until
// then).
func execMeanwhile(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) (wait func()) {
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, sql)
		done <- err
	}()
	return func() {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
