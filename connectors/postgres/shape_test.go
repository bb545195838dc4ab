package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// goneOf returns a change's MissingFieldsError, or nil.
func goneOf(c connectors.Change) *connectors.MissingFieldsError {
	var gone *connectors.MissingFieldsError
	if errors.As(c.Err, &gone) {
		return gone
	}
	return nil
}

// TestRenamedColumnDeadLettersUntilItIsBack: a mapped column renamed while
// the source streams. Inserts and updates of the table come out as errors
// that carry the whole row (under the new name) and the row's key, never as
// changes without the field; deletes go on; Problem says what is wrong.
// Renaming the column back makes changes flow again.
func TestRenamedColumnDeadLettersUntilItIsBack(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	exec(t, conn, `INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2)`)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	exec(t, conn, `UPDATE items SET qty = 10 WHERE id = 1`)
	if c := collect(t, src, 1, true); c[0].Err != nil || c[0].Record.Fields["name"] != "a" {
		t.Fatalf("before the rename: %+v", c[0])
	}
	if err := src.Problem(); err != nil {
		t.Fatalf("problem before the rename: %v", err)
	}

	exec(t, conn, `ALTER TABLE items RENAME name TO nick_name`,
		`UPDATE items SET nick_name = 'a2', qty = 11 WHERE id = 1`,
		`INSERT INTO items (id, nick_name, qty) VALUES (3, 'c', 3)`,
		`DELETE FROM items WHERE id = 2`)
	changes := collect(t, src, 3, true)
	for i, want := range []struct {
		key, nick string
	}{{"1", "a2"}, {"3", "c"}} {
		c := changes[i]
		gone := goneOf(c)
		if gone == nil || !slices.Equal(gone.Missing, []string{"name"}) || !slices.Contains(gone.Have, "nick_name") {
			t.Fatalf("change %d after the rename: err %v, record %+v", i, c.Err, c.Record)
		}
		if c.Key != src.sys.Name+"/public.items/"+want.key || c.Record.Op != mixer.OpUpsert || c.Record.Fields["nick_name"] != want.nick {
			t.Fatalf("change %d does not keep its row whole: key %s, %+v", i, c.Key, c.Record)
		}
		if !strings.Contains(c.Err.Error(), "public.items has no field name that the receive mixer reads") {
			t.Fatalf("reason: %v", c.Err)
		}
	}
	if del := changes[2]; del.Err != nil || del.Record.Op != mixer.OpDelete || del.Record.Fields["id"] != json.Number("2") {
		t.Fatalf("the delete: %+v", del)
	}
	if err := src.Problem(); err == nil || !strings.Contains(err.Error(), "public.items has no field name") {
		t.Fatalf("problem after the rename: %v", err)
	}

	exec(t, conn, `ALTER TABLE items RENAME nick_name TO name`, `UPDATE items SET name = 'a3' WHERE id = 1`)
	c := collect(t, src, 1, true)[0]
	if c.Err != nil || c.Record.Fields["name"] != "a3" {
		t.Fatalf("after renaming back: %+v", c)
	}
	if _, leaked := c.Record.Fields["secret"]; leaked {
		t.Fatal("an unmapped column is read again after the column came back")
	}
	if err := src.Problem(); err != nil {
		t.Fatalf("problem after renaming back: %v", err)
	}
}

// TestDroppedColumnInASpilledTransaction: a mapped column dropped, then a
// transaction large enough for PostgreSQL to stream it and for Remix to
// spill it to disk: every upsert keeps its reason, typed, through the file.
func TestDroppedColumnInASpilledTransaction(t *testing.T) {
	t.Parallel()
	url, conn, open, _ := newSrcEnv(t)
	dbname := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(dbname, '?'); i >= 0 {
		dbname = dbname[:i]
	}
	exec(t, conn, `ALTER DATABASE `+dbname+` SET logical_decoding_work_mem = '64kB'`)
	src := openSource(t, open(map[string]any{SettingInitialSnapshot: false, SettingMaxTransactionMB: int64(1)}))
	exec(t, conn, `ALTER TABLE items DROP COLUMN qty`,
		`INSERT INTO items (id, name) SELECT g, repeat('x', 500) FROM generate_series(1, 3000) g`)
	changes := collect(t, src, 3000, true)
	for i, c := range changes {
		gone := goneOf(c)
		if gone == nil || !slices.Equal(gone.Missing, []string{"qty"}) || c.Key != fmt.Sprintf("%s/public.items/%d", src.sys.Name, i+1) {
			t.Fatalf("change %d: err %v (%T), key %s", i, c.Err, c.Err, c.Key)
		}
	}
	if err := src.Problem(); err == nil || !strings.Contains(err.Error(), "no field qty") {
		t.Fatalf("problem: %v", err)
	}
}
