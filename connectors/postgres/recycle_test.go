package postgres

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestRecycledFieldMapsHoldOnlyTheirRow: with every batch handed back
// (Recycle, as the ingest does once it has mapped it), each record still
// holds exactly its own row's fields: a delete its key only, an update
// without its unchanged TOASTed column no body, a null a null. The fuller
// rows before them (the snapshot's, the inserts') fill the maps they reuse.
func TestRecycledFieldMapsHoldOnlyTheirRow(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	exec(t, conn, `ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL`,
		`INSERT INTO items (id, name, body, qty) SELECT g, 'snap '||g, 'body '||g, g FROM generate_series(1, 50) g`)
	src := openSource(t, open(map[string]any{SettingSnapshotChunk: int64(10)}))
	big := strings.Repeat("toasted ", 2000)
	var stmts []string
	for i := 101; i <= 110; i++ {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO items (id, name, body, qty) VALUES (%d, 'n%d', '%s', %d)`, i, i, big, i))
	}
	stmts = append(stmts,
		`UPDATE items SET qty = 0 WHERE id BETWEEN 101 AND 105`,  // body unchanged: absent
		`DELETE FROM items WHERE id BETWEEN 106 AND 108`,         // key only
		`UPDATE items SET id = 1000 + id WHERE id IN (109, 110)`, // a delete of the old key and an upsert
		`UPDATE items SET name = NULL WHERE id = 1`)
	exec(t, conn, stmts...)
	const want = 50 + 10 + 5 + 3 + 4 + 1
	got := collectRecycling(t, src, want, true, true)
	if len(got) != want {
		t.Fatalf("%d changes, want %d", len(got), want)
	}
	fields := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	num := func(n int) any { return json.Number(strconv.Itoa(n)) }
	var wantFields []map[string]any
	for i := 1; i <= 50; i++ {
		wantFields = append(wantFields, fields("id", num(i), "name", fmt.Sprintf("snap %d", i), "body", fmt.Sprintf("body %d", i), "qty", num(i)))
	}
	for i := 101; i <= 110; i++ {
		wantFields = append(wantFields, fields("id", num(i), "name", fmt.Sprintf("n%d", i), "body", big, "qty", num(i)))
	}
	for i := 101; i <= 105; i++ {
		wantFields = append(wantFields, fields("id", num(i), "name", fmt.Sprintf("n%d", i), "qty", num(0)))
	}
	for i := 106; i <= 108; i++ {
		wantFields = append(wantFields, fields("id", num(i)))
	}
	for _, i := range []int{109, 110} {
		// The new row's body is unchanged and TOASTed: the source reads
		// it back for the row under its new key.
		wantFields = append(wantFields, fields("id", num(i)), fields("id", num(1000+i), "name", fmt.Sprintf("n%d", i), "body", big, "qty", num(i)))
	}
	wantFields = append(wantFields, fields("id", num(1), "name", nil, "body", "body 1", "qty", num(1)))
	for i, c := range got {
		if !reflect.DeepEqual(c.Record.Fields, wantFields[i]) {
			t.Errorf("change %d (%s): fields %s, want %s", i, c.Record.Op, short(c.Record.Fields), short(wantFields[i]))
		}
	}
}

// short prints fields with long texts cut.
func short(m map[string]any) string {
	c := maps.Clone(m)
	for k, v := range c {
		if s, ok := v.(string); ok && len(s) > 20 {
			c[k] = s[:20] + "…"
		}
	}
	return fmt.Sprint(c)
}
