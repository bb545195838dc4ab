package mysql

import (
	"context"
	"encoding/binary"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"

	"github.com/sqlpipe/remix/config"
)

// mysqlGTIDEvent is a GTID_LOG_EVENT body as MySQL 8 writes it: commit
// flag, server uuid, transaction number, logical timestamps, then the
// original and immediate commit times (microseconds).
func mysqlGTIDEvent(t *testing.T, sid uuid.UUID, gno int64, commitMicros uint64) *replication.GTIDEvent {
	t.Helper()
	b := []byte{1}
	b = append(b, sid[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(gno))
	b = append(b, 2) // logical timestamps follow
	b = binary.LittleEndian.AppendUint64(b, 7)
	b = binary.LittleEndian.AppendUint64(b, 8)
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, commitMicros)
	b = append(b, ts[:7]...) // original commit timestamp, 7 bytes, no immediate one
	e := &replication.GTIDEvent{}
	if err := e.Decode(b); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestMySQLGTIDPositions feeds the reader MySQL's own events (a GTID
// event, a transaction compressed in a TRANSACTION_PAYLOAD event, a DDL
// without BEGIN): each commit's position is the executed set with it, in
// MySQL's server_uuid:interval form, and carries the original commit
// time.
func TestMySQLGTIDPositions(t *testing.T) {
	t.Parallel()
	sid := uuid.MustParse("3e11fa47-71ca-11e1-9e33-c80aa9429562")
	sys := &config.System{Name: "shop", Settings: config.Settings{}}
	s := &Source{sys: sys, log: slog.Default(), flavor: flavorMySQL, out: make(chan item, 10)}
	g, err := newTracker(flavorMySQL, sid.String()+":1-5")
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{s: s, rels: map[uint64]*relation{}, gtid: g, st: state{Flavor: flavorMySQL, Snapshot: "skipped"}}
	ctx := context.Background()
	ev := func(e replication.Event) *replication.BinlogEvent {
		return &replication.BinlogEvent{Header: &replication.EventHeader{Timestamp: 1700000000}, Event: e}
	}
	steps := []struct {
		events []*replication.BinlogEvent
		want   string
	}{
		{[]*replication.BinlogEvent{ev(mysqlGTIDEvent(t, sid, 6, 1700000000123456)), ev(&replication.QueryEvent{Query: []byte("BEGIN")}), ev(&replication.XIDEvent{XID: 1})}, ":1-6"},
		{[]*replication.BinlogEvent{ev(&replication.TransactionPayloadEvent{Events: []*replication.BinlogEvent{
			ev(mysqlGTIDEvent(t, sid, 7, 1700000001000000)), ev(&replication.QueryEvent{Query: []byte("BEGIN")}), ev(&replication.XIDEvent{XID: 2}),
		}})}, ":1-7"},
		{[]*replication.BinlogEvent{ev(mysqlGTIDEvent(t, sid, 9, 1700000002000000)), ev(&replication.QueryEvent{Query: []byte("ALTER TABLE t ADD c INT")})}, ":1-7:9"},
	}
	for i, st := range steps {
		for _, e := range st.events {
			if err := r.handle(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		want := sid.String() + st.want
		if r.st.GTID != want {
			t.Fatalf("step %d: position %s, want %s", i, r.st.GTID, want)
		}
		p, err := parsePosition(r.pending.pos)
		if err != nil || p.GTID != want || p.Flavor != flavorMySQL {
			t.Fatalf("step %d: pending position %s (%v)", i, r.pending.pos, err)
		}
	}
	if got := r.curTime.UnixMicro(); got != 1700000002000000 {
		t.Fatalf("commit time %d µs, want the event's original commit time", got)
	}
}

// TestLostPositions: which saved positions the server can no longer serve.
func TestLostPositions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ saved, oldest, lost string }{
		{"0-1-100", "", ""},
		{"0-1-100", "0-1-100", ""},
		{"0-1-100", "0-1-101", "0-1-101"},
		{"0-2-100,1-1-5", "0-1-90,1-1-5", ""}, // another server of domain 0 wrote before the failover
		{"0-1-100", "0-1-100,2-3-1", "2-3-1"}, // domain 2 began after the source did
	} {
		lost, err := lostMariaDB(c.saved, c.oldest)
		if err != nil || strings.Join(lost, ",") != c.lost {
			t.Errorf("MariaDB saved %s, oldest log starts at %s: lost %v (%v), want %q", c.saved, c.oldest, lost, err, c.lost)
		}
	}
	a, b := "3e11fa47-71ca-11e1-9e33-c80aa9429562", "ad9c8ed1-0c6f-11ef-8b3c-0242ac110002"
	for _, c := range []struct{ saved, purged, lost string }{
		{a + ":1-100", "", ""},
		{a + ":1-100", a + ":1-50", ""},
		{a + ":1-100", a + ":1-150", a + ":1-150"},
		{a + ":1-100," + b + ":1-3", a + ":1-100," + b + ":1-2", ""},
		{a + ":1-100", a + ":1-100," + b + ":1-2", b + ":1-2"},
	} {
		lost, err := lostMySQL(c.saved, c.purged)
		if err != nil || lost != c.lost {
			t.Errorf("MySQL saved %s, purged %s: lost %q (%v), want %q", c.saved, c.purged, lost, err, c.lost)
		}
	}
}
