package postgres

import (
	"strings"
	"testing"
)

// TestOriginMarksRemixWrites: a transaction written under a replication
// origin named for a system (as the sink writes changes made elsewhere)
// comes out with that system as its changes' Origin; other transactions,
// and those under another tool's origin, have none. Inserts are Created,
// updates are not. Both for a plain and for a streamed (spilled)
// transaction.
func TestOriginMarksRemixWrites(t *testing.T) {
	t.Parallel()
	url, conn, open, _ := newSrcEnv(t)
	dbname := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(dbname, '?'); i >= 0 {
		dbname = dbname[:i]
	}
	exec(t, conn, `ALTER DATABASE `+dbname+` SET logical_decoding_work_mem = '64kB'`)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false, SettingMaxTransactionMB: int64(1)}))
	origin := func(name string, sql ...string) {
		t.Helper()
		w := connect(t, url)
		exec(t, w, `SELECT pg_replication_origin_create('`+name+`') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = '`+name+`')`,
			`SELECT pg_replication_origin_session_setup('`+name+`')`)
		exec(t, w, sql...)
		exec(t, w, `SELECT pg_replication_origin_session_reset()`)
	}
	exec(t, conn, `INSERT INTO items (id, name) VALUES (1, 'here')`)
	origin(originName("stripe-live"), `INSERT INTO items (id, name) VALUES (2, 'from stripe')`)
	origin("some_other_tool", `INSERT INTO items (id, name) VALUES (3, 'other tool')`)
	exec(t, conn, `UPDATE items SET name = 'changed here' WHERE id = 2`)
	pad := strings.Repeat("x", 500)
	origin(originName("crm"), `INSERT INTO items (id, name) SELECT g, '`+pad+`' FROM generate_series(100, 2099) g`)
	changes := collect(t, src, 4+2000, true)
	want := []struct {
		origin  string
		created bool
	}{{"", true}, {"stripe-live", true}, {"", true}, {"", false}}
	for i, w := range want {
		if c := changes[i]; c.Origin != w.origin || c.Record.Created != w.created {
			t.Fatalf("change %d (%v): origin %q created %v, want %q %v", i, c.Record.Fields["name"], c.Origin, c.Record.Created, w.origin, w.created)
		}
	}
	for _, c := range changes[4:] {
		if c.Origin != "crm" || !c.Record.Created {
			t.Fatalf("streamed change %v: origin %q created %v", c.Record.Fields["id"], c.Origin, c.Record.Created)
		}
	}
}
