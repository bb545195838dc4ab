package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// twoWaySink opens a sink of a system that also reads public.items: the
// table is two-way.
func twoWaySink(t *testing.T) (*Sink, *pgx.Conn, func(op mixer.Op, id int64, name string, system string, at time.Time) mixer.TargetRecord) {
	t.Helper()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, name text)`)
	model, err := mixer.CompileModel("mem:///item.json", []byte(`{"title": "item", "type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	recvRule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("name"), Field: "name"}})
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add("public.items", recvRule)
	rule, err := mixer.NewPushRule(model, "public.items", []mixer.PushField{{Field: "id", Target: mixer.MustPath("id"), SearchKey: true}, {Field: "name", Target: mixer.MustPath("name")}})
	if err != nil {
		t.Fatal(err)
	}
	push := mixer.NewPushMixer()
	push.Add("item", rule)
	snk, _ := NewSink(testSystem(testenv.UniqueName("b"), url, recv, push, nil), connectors.SinkDeps{})
	if err := snk.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snk.Close(context.Background()) })
	rec := func(op mixer.Op, id int64, name string, system string, at time.Time) mixer.TargetRecord {
		fields := map[string]any{"id": json.Number(jsonInt(id))}
		if op == mixer.OpUpsert {
			fields["name"] = name
		}
		r, err := rule.Apply(&mixer.Object{Model: "item", Op: op, Fields: fields})
		if err != nil {
			t.Fatal(err)
		}
		r.Origin = mixer.Origin{System: system, CommitTime: at}
		return r
	}
	return snk.(*Sink), conn, rec
}

func jsonInt(n int64) string { return strconv.FormatInt(n, 10) }

// TestTwoWayLastWriterWins: in a table its system also reads, a change is
// applied only when it is at least as new (source commit time) as the row;
// a deleted row is not brought back by a change older than the deletion,
// local deletions included; a delete older than the row leaves it; each
// write runs under the replication origin of the system it was made in,
// with that change's commit time as the row's.
func TestTwoWayLastWriterWins(t *testing.T) {
	t.Parallel()
	snk, conn, rec := twoWaySink(t)
	ctx := context.Background()
	write := func(recs ...mixer.TargetRecord) {
		t.Helper()
		if err := snk.Write(ctx, recs, nil); err != nil {
			t.Fatal(err)
		}
	}
	name := func(id int64) (string, bool) {
		var n string
		err := conn.QueryRow(ctx, `SELECT name FROM items WHERE id = $1`, id).Scan(&n)
		if err == pgx.ErrNoRows {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		return n, true
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	write(rec(mixer.OpUpsert, 1, "from a", "a", t0))
	var ts time.Time
	if err := conn.QueryRow(ctx, `SELECT pg_xact_commit_timestamp(xmin) FROM items WHERE id = 1`).Scan(&ts); err != nil || !ts.Equal(t0) {
		t.Fatalf("row commit time %v (%v), want the change's %v", ts, err, t0)
	}
	// A local edit (now) is newer than a late change from a.
	exec(t, conn, `UPDATE items SET name = 'local' WHERE id = 1`)
	write(rec(mixer.OpUpsert, 1, "late from a", "a", t0.Add(time.Minute)))
	if n, _ := name(1); n != "local" {
		t.Fatalf("an older change overwrote a newer row: %q", n)
	}
	if c := snk.Conflicts(); c != 1 {
		t.Fatalf("%d conflicts counted, want the late change", c)
	}
	// A newer one wins.
	write(rec(mixer.OpUpsert, 1, "newer from a", "a", time.Now().Add(time.Hour)))
	if n, _ := name(1); n != "newer from a" {
		t.Fatalf("a newer change was not applied: %q", n)
	}
	// A local delete leaves a tombstone: an older change does not bring the
	// row back; a newer one does.
	write(rec(mixer.OpUpsert, 2, "two", "a", t0))
	exec(t, conn, `DELETE FROM items WHERE id = 2`)
	write(rec(mixer.OpUpsert, 2, "stale update", "a", t0.Add(time.Minute)))
	if _, ok := name(2); ok {
		t.Fatal("a change older than the deletion brought the row back")
	}
	if c := snk.Conflicts(); c != 2 {
		t.Fatalf("%d conflicts counted, want the late change and the stale update", c)
	}
	write(rec(mixer.OpUpsert, 2, "recreated", "a", time.Now().Add(time.Hour)))
	if n, ok := name(2); !ok || n != "recreated" {
		t.Fatalf("a change newer than the deletion did not bring the row back: %q %v", n, ok)
	}
	// A delete older than the row leaves it; a newer one removes it.
	write(rec(mixer.OpDelete, 2, "", "a", t0))
	if _, ok := name(2); !ok {
		t.Fatal("an older delete removed a newer row")
	}
	write(rec(mixer.OpDelete, 2, "", "a", time.Now().Add(2*time.Hour)))
	if _, ok := name(2); ok {
		t.Fatal("a newer delete left the row")
	}
	// Runs of several systems and commit times in one write, in order.
	write(rec(mixer.OpUpsert, 3, "c1", "c", t0.Add(time.Second)), rec(mixer.OpUpsert, 3, "a2", "a", t0.Add(2*time.Second)),
		rec(mixer.OpUpsert, 4, "c3", "c", t0.Add(3*time.Second)))
	if n, _ := name(3); n != "a2" {
		t.Fatalf("runs applied out of order: %q", n)
	}
	var origins int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_origin WHERE roname IN ('remix:a', 'remix:c')`).Scan(&origins); err != nil || origins != 2 {
		t.Fatalf("%d replication origins (%v), want remix:a and remix:c", origins, err)
	}
}
