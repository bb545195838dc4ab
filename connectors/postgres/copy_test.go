package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// copyModel is an item with fields of many kinds, for the COPY tests.
func copyModel(t testing.TB) *mixer.Model {
	t.Helper()
	model, err := mixer.CompileModel("mem:///copyitem.json", []byte(`{"title": "copyitem", "properties": {
		"id": {"type": "integer"}, "name": {"type": ["string", "null"]}, "code": {"type": "string"},
		"price": {"type": "number"}, "at": {"type": "string"}, "local": {"type": "string"},
		"doc": {"type": "object"}, "raw": {"type": "string"}, "flag": {"type": "boolean"},
		"ratio": {"type": "number"}, "color": {"type": "string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return model
}

const copyTable = `(id bigint PRIMARY KEY, name text, code varchar(12), price numeric(12,2),
	at timestamptz, local timestamp(3), doc jsonb, raw bytea, flag boolean, ratio float8,
	note text DEFAULT 'kept', attrs jsonb DEFAULT '{"kept": true}')`

func copyFields() []mixer.PushField {
	f := []mixer.PushField{{Field: "id", Target: mixer.MustPath("id"), SearchKey: true}}
	for _, n := range []string{"name", "code", "price", "at", "local", "doc", "raw", "flag", "ratio"} {
		f = append(f, mixer.PushField{Field: n, Target: mixer.MustPath(n)})
	}
	return append(f, mixer.PushField{Field: "color", Target: mixer.MustPath("attrs[color]")})
}

// copyRecords makes n records from id first: names with every character
// COPY's text format treats specially, some fields null or absent.
func copyRecords(t testing.TB, rule *mixer.PushRule, first, n int) []mixer.TargetRecord {
	t.Helper()
	names := []any{"tab\there", "line\nbreak", "cr\rhere", `back\slash`, `\N`, `\.`, "", nil,
		"ünïcødé ✓", `"quoted", 'single'`, "ends with a backslash\\", "\\\t\n\r\\", `\x41`, "plain"}
	recs := make([]mixer.TargetRecord, 0, n)
	for i := first; i < first+n; i++ {
		f := map[string]any{
			"id": json.Number(strconv.Itoa(i)), "name": names[i%len(names)],
			"price": json.Number(fmt.Sprintf("%d.%03d", i, i%1000)), // rounded to the column's scale
			"at":    "2026-12-07T03:04:05.123456+01:00", "local": "2026-12-07 03:04:05.123456",
			"doc": map[string]any{"k": names[(i+1)%len(names)], "n": json.Number("12345678901234567890.5")},
			"raw": `\x00ff5c`, "flag": i%2 == 0, "ratio": json.Number("0.1"), "color": "red\tblue",
		}
		if i%3 == 0 {
			f["code"] = "c" + strconv.Itoa(i)
		}
		if i%5 == 0 {
			delete(f, "doc") // another shape: a group of its own
		}
		rec, err := rule.Apply(&mixer.Object{Model: "copyitem", Op: mixer.OpUpsert, Fields: f})
		if err != nil {
			t.Fatal(err)
		}
		rec.Created = true // an insert at the source
		recs = append(recs, rec)
	}
	return recs
}

// copySink makes a database with the table copied, runs ddl after it, and
// opens a sink that tries COPY for every group of new rows.
func copySink(t *testing.T, ddl ...string) (url string, conn *pgx.Conn, sink *Sink, rule *mixer.PushRule) {
	t.Helper()
	url = testenv.NewDatabase(t)
	conn = connect(t, url)
	exec(t, conn, append([]string{`CREATE TABLE copied ` + copyTable}, ddl...)...)
	sink, rule = openSinkWith(t, url, copyModel(t), "public.copied", copyFields(), map[string]any{SettingCopyMinRows: int64(1)})
	return url, conn, sink, rule
}

// wantCopies fails the test unless the sink has copied rows and had
// refused copies as many as given; when says at which point.
func wantCopies(t *testing.T, sink *Sink, rows, refused int64, when string) {
	t.Helper()
	if r, f := sink.BulkWrites(); r != rows || f != refused {
		t.Fatalf("%s: %d rows copied, %d copies refused; want %d and %d", when, r, f, rows, refused)
	}
}

// newRows makes n records of model, new at the source, with ids 1 to n and
// field set to "5".
func newRows(t *testing.T, rule *mixer.PushRule, model, field string, n int) []mixer.TargetRecord {
	t.Helper()
	recs := make([]mixer.TargetRecord, 0, n)
	for i := 1; i <= n; i++ {
		rec, err := rule.Apply(&mixer.Object{Model: model, Op: mixer.OpUpsert, Fields: map[string]any{"id": json.Number(strconv.Itoa(i)), field: "5"}})
		if err != nil {
			t.Fatal(err)
		}
		rec.Created = true
		recs = append(recs, rec)
	}
	return recs
}

// tableRows returns every row of a table as JSON text, by id.
func tableRows(t testing.TB, url, loc string) []string {
	t.Helper()
	conn := connect(t, url)
	rows, err := conn.Query(context.Background(), `SELECT to_jsonb(t)::text FROM `+loc+` t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A COPY writes exactly what the upserts write: the same records go to two
// tables, one through COPY and one through upserts, and read back the same,
// escapes, nulls, absent columns, rounding and nested paths included.
func TestCopyWritesWhatUpsertsWrite(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE copied `+copyTable, `CREATE TABLE upserted `+copyTable)
	model := copyModel(t)
	bycopy, rule := openSinkWith(t, url, model, "public.copied", copyFields(), map[string]any{SettingCopyMinRows: int64(1)})
	byupsert, rule2 := openSinkWith(t, url, model, "public.upserted", copyFields(), map[string]any{SettingCopyMinRows: int64(0)})
	ctx := context.Background()
	for _, batch := range [][2]int{{1, 140}, {141, 3}} {
		if err := bycopy.Write(ctx, copyRecords(t, rule, batch[0], batch[1]), nil); err != nil {
			t.Fatal(err)
		}
		if err := byupsert.Write(ctx, copyRecords(t, rule2, batch[0], batch[1]), nil); err != nil {
			t.Fatal(err)
		}
	}
	wantCopies(t, bycopy, 143, 0, "copy_min_rows 1")
	wantCopies(t, byupsert, 0, 0, "copy_min_rows 0")
	got, want := tableRows(t, url, "copied"), tableRows(t, url, "upserted")
	if len(got) != 143 || !slices.Equal(got, want) {
		t.Fatalf("COPY and upserts disagree (%d and %d rows):\n%v\n%v", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}
}

// A COPY that meets a row already there is undone and the batch written as
// upserts; the table then skips COPY for two batches, and copies again.
func TestCopyFallsBackWhenARowExists(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE copied `+copyTable, `CREATE TABLE upserted `+copyTable,
		`INSERT INTO copied (id, name, note) VALUES (7, 'old', 'mine'), (90, 'old', 'mine')`,
		`INSERT INTO upserted (id, name, note) VALUES (7, 'old', 'mine'), (90, 'old', 'mine')`)
	model := copyModel(t)
	sink, rule := openSinkWith(t, url, model, "public.copied", copyFields(), map[string]any{SettingCopyMinRows: int64(10)})
	ref, rule2 := openSinkWith(t, url, model, "public.upserted", copyFields(), map[string]any{SettingCopyMinRows: int64(0)})
	ctx := context.Background()
	write := func(first, n int) {
		t.Helper()
		if err := sink.Write(ctx, copyRecords(t, rule, first, n), nil); err != nil {
			t.Fatal(err)
		}
		if err := ref.Write(ctx, copyRecords(t, rule2, first, n), nil); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 100) // rows 7 and 90 exist: the COPY fails, the upserts write
	wantCopies(t, sink, 0, 1, "after a batch over existing rows")
	write(101, 100) // skipped: written as upserts
	write(201, 100)
	wantCopies(t, sink, 0, 1, "while the table skips COPY")
	write(301, 100) // copies again
	// Groups of at least 10 rows are copied: 53 rows without code, 27
	// with, 14 without code or doc; the 6 with code and without doc are not.
	var _ connectors.BulkReporter = sink
	wantCopies(t, sink, 94, 1, "after the skips")
	got, want := tableRows(t, url, "copied"), tableRows(t, url, "upserted")
	if len(got) != 400 || !slices.Equal(got, want) {
		t.Fatalf("after the fallback the tables disagree (%d and %d rows)", len(got), len(want))
	}
	var note string
	if err := conn.QueryRow(ctx, `SELECT note FROM copied WHERE id = 7`).Scan(&note); err != nil || note != "mine" {
		t.Fatalf("an unmapped column of an existing row: %q, %v; want it kept", note, err)
	}
}

// A COPY runs after the write's fences: a write of an older tenure is
// refused whole, its COPY included.
func TestCopyIsFenced(t *testing.T) {
	t.Parallel()
	_, conn, sink, rule := copySink(t)
	ctx := context.Background()
	fence := func(token uint64) []connectors.Fence {
		return []connectors.Fence{{Key: "target/copyitem/3", Token: token}, {Key: "target/copyitem/1", Token: token}}
	}
	if err := sink.Write(ctx, copyRecords(t, rule, 1, 50), fence(5)); err != nil {
		t.Fatal(err)
	}
	err := sink.Write(ctx, copyRecords(t, rule, 51, 50), fence(4))
	if !errors.Is(err, connectors.ErrFenced) {
		t.Fatalf("a write of an older tenure: %v; want ErrFenced", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM copied`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("%d rows after a fenced write (%v); want the first write's 50", n, err)
	}
	wantCopies(t, sink, 50, 0, "the first write's rows, and a fenced write refused without a fallback")
}

// The copies come after everything else of the batch: a truncate before
// them, and deletes of their segment.
func TestCopyComesAfterTruncateAndDeletes(t *testing.T) {
	t.Parallel()
	_, conn, sink, rule := copySink(t, `INSERT INTO copied (id, name) VALUES (999, 'before')`)
	recs := copyRecords(t, rule, 1, 100)
	recs = append(recs, mixer.TargetRecord{Op: mixer.OpTruncate, Location: "public.copied"})
	recs = append(recs, copyRecords(t, rule, 101, 100)...)
	del := recs[len(recs)-1] // row 200
	del.Op = mixer.OpDelete
	again := copyRecords(t, rule, 150, 1)[0]
	delete(again.Fields, "doc")
	again.Fields["name"] = "again"
	recs = append(recs, del, delete150(recs), again)
	if err := sink.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	var n, sum int
	var name string
	if err := conn.QueryRow(context.Background(), `SELECT count(*), sum(id), max(name) FILTER (WHERE id = 150) FROM copied`).Scan(&n, &sum, &name); err != nil {
		t.Fatal(err)
	}
	// Rows 101..199 (200 deleted), 150 deleted and written again.
	if n != 99 || sum != (101+199)*99/2 || name != "again" {
		t.Fatalf("%d rows, ids summing to %d, row 150 named %q; want 99, %d, again", n, sum, name, (101+199)*99/2)
	}
	if sink.copied.Load() == 0 {
		t.Fatal("nothing was copied")
	}
}

// delete150 is the delete of row 150 among recs.
func delete150(recs []mixer.TargetRecord) mixer.TargetRecord {
	for _, r := range recs {
		if r.Op == mixer.OpUpsert && r.Fields["id"] == json.Number("150") {
			r.Op = mixer.OpDelete
			return r
		}
	}
	panic("no row 150")
}

func TestAppendCopyText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain": "plain", "": "", "a\tb": `a\tb`, "a\nb\r": `a\nb\r`, `\N`: `\\N`, `\`: `\\`, "ünï\\": `ünï\\`,
	} {
		var b bytes.Buffer
		appendCopyText(&b, in)
		if b.String() != want {
			t.Errorf("%q: %q, want %q", in, b.String(), want)
		}
	}
}

// Rows that changed at the source, rather than being created there, are
// written as upserts without trying a COPY.
func TestCopyIsNotTriedForChangedRows(t *testing.T) {
	t.Parallel()
	url, _, sink, rule := copySink(t)
	recs := copyRecords(t, rule, 1, 100)
	for i := range recs {
		recs[i].Created = i == 0 // one new row: a group of its own
	}
	if err := sink.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	wantCopies(t, sink, 1, 0, "one new row among changed ones")
	if n := len(tableRows(t, url, "copied")); n != 100 {
		t.Fatalf("%d rows written; want 100", n)
	}
}

// Copies are one transaction with the rest of their batch: when the last
// of them is refused, the ones before leave nothing behind either.
func TestCopyOfARefusedBatchLeavesNothing(t *testing.T) {
	t.Parallel()
	url, _, sink, rule := copySink(t, `ALTER TABLE copied ADD CHECK (ratio < 1)`)
	recs := copyRecords(t, rule, 1, 100)
	recs[99].Fields["ratio"] = "5" // row 100: no doc, no code, the batch's third group
	err := sink.Write(context.Background(), recs, nil)
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a batch with a refused row: %v; want a permanent error", err)
	}
	if n := len(tableRows(t, url, "copied")); n != 0 {
		t.Fatalf("%d rows left by a refused batch; want none", n)
	}
	wantCopies(t, sink, 0, 1, "a refused batch")
}

// Where a COPY could store or refuse what the upsert would not, new rows
// are upserted: a type whose input reads the text under the column's
// modifier differently from the upsert's cast, a domain column left out,
// rules, a statement trigger on UPDATE, a user who may insert but not
// update, an identity column GENERATED ALWAYS (an INSERT refuses its
// value; COPY would take it). Each table gets rows that only COPY could
// write as given.
func TestCopyLeavesToTheUpsertWhatItWouldNotMatch(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	role := testenv.UniqueName("remix_inserter")
	exec(t, conn, `CREATE ROLE `+role+` NOLOGIN`)
	t.Cleanup(func() {
		c := connect(t, url)
		exec(t, c, `DROP OWNED BY `+role, `DROP ROLE `+role)
	})
	model, err := mixer.CompileModel("mem:///odd.json", []byte(`{"title": "odd", "properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ddl string
		settings  map[string]any
		wantErr   bool // the upsert refuses these rows
	}{
		{name: "interval_day", ddl: `CREATE TABLE interval_day (id bigint PRIMARY KEY, v interval day)`},
		{name: "identity_always", ddl: `CREATE TABLE identity_always (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)`, wantErr: true},
		{name: "domain_left_out", ddl: `CREATE DOMAIN nn AS text NOT NULL;
			CREATE TABLE domain_left_out (id bigint PRIMARY KEY, v text, w nn)`, wantErr: true},
		{name: "with_rule", ddl: `CREATE TABLE with_rule (id bigint PRIMARY KEY, v text);
			CREATE RULE noted AS ON INSERT TO with_rule DO ALSO NOTIFY with_rule`, wantErr: true},
		{name: "update_statement_trigger", ddl: `CREATE TABLE update_statement_trigger (id bigint PRIMARY KEY, v text);
			CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
			CREATE TRIGGER noted AFTER UPDATE ON update_statement_trigger FOR EACH STATEMENT EXECUTE FUNCTION noop()`},
		{name: "insert_only", ddl: `CREATE TABLE insert_only (id bigint PRIMARY KEY, v text);
			GRANT USAGE ON SCHEMA public TO ` + role + `; GRANT SELECT, INSERT ON insert_only TO ` + role,
			settings: map[string]any{SettingFenceTable: ""}, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			exec(t, conn, c.ddl)
			dsn := url
			if c.name == "insert_only" {
				dsn += "&options=-crole%3D" + role // the session's user is the role
			}
			settings := map[string]any{SettingCopyMinRows: int64(1)}
			for k, v := range c.settings {
				settings[k] = v
			}
			sink, rule := openSinkWith(t, dsn, model, "public."+c.name, []mixer.PushField{
				{Field: "id", Target: mixer.MustPath("id"), SearchKey: true}, {Field: "v", Target: mixer.MustPath("v")},
			}, settings)
			err := sink.Write(context.Background(), newRows(t, rule, "odd", "v", 5), nil)
			if c.wantErr != (err != nil) {
				t.Fatalf("write: %v; want an error: %v", err, c.wantErr)
			}
			wantCopies(t, sink, 0, 0, "COPY not tried")
			if n := len(tableRows(t, url, "public."+c.name)); c.wantErr && n != 0 {
				t.Fatalf("%d rows written where the upsert refuses them; want none", n)
			}
		})
	}
}

// A write cancelled in the middle of its COPY leaves nothing, returns the
// context's error, and leaves the sink's connections fit for the next.
func TestCopyCancelledMidwayLeavesNothing(t *testing.T) {
	t.Parallel()
	url, conn, sink, rule := copySink(t,
		`CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END'`,
		`CREATE TRIGGER slow BEFORE INSERT ON copied FOR EACH ROW EXECUTE FUNCTION slow()`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Write(ctx, copyRecords(t, rule, 1, 200), nil) }() // 4 s of triggers
	deadline := time.Now().Add(10 * time.Second)
	for { // until the COPY runs on the server
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%COPY %' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the COPY never showed in pg_stat_activity")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a write cancelled mid-COPY: %v; want context.Canceled", err)
	}
	if n := len(tableRows(t, url, "copied")); n != 0 {
		t.Fatalf("%d rows left by a cancelled write; want none", n)
	}
	wantCopies(t, sink, 0, 0, "a cancelled write (not a refused COPY)")
	exec(t, conn, `DROP TRIGGER slow ON copied`)
	if err := sink.Write(context.Background(), copyRecords(t, rule, 1, 200), nil); err != nil {
		t.Fatalf("the write after a cancelled one: %v", err)
	}
	wantCopies(t, sink, 200, 0, "the write after a cancelled one")
	if n := len(tableRows(t, url, "copied")); n != 200 {
		t.Fatalf("%d rows after the second write; want 200", n)
	}
}
