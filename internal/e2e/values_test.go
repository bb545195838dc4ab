package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// valuesSystems maps public.docs of the shop to public.docs_copy of the
// warehouse, whose key and nick are varchar(5).
const valuesSystems = `
shop:
  type: postgresql
  dsn: ${SHOP_DSN}
  slot_name: ${SHOP_SLOT}
  receive_mixer:
    public.docs:
      doc:
        k: {field: k}
        nick: {field: nick}
        j: {field: j}
        jb: {field: jb}
        jb.id: {field: jb_id}
warehouse:
  type: postgresql
  dsn: ${WAREHOUSE_DSN}
  push_mixer:
    doc:
      public.docs_copy:
        k: {field: k, search_key: true}
        nick: {field: nick}
        j: {field: j}
        jb: {field: jb}
        jb_id: {field: jb_id}
`

// The model leaves j and jb untyped: each holds a JSON value whole.
const valuesModel = `{"title": "doc", "type": "object", "required": ["k"], "properties": {
	"k": {"type": "string"}, "nick": {"type": ["string", "null"]}, "j": {}, "jb": {},
	"jb_id": {"type": ["integer", "null"]}}}`

// TestValuesArriveUnaltered: json, jsonb and varchar(n) columns through the
// real binaries, by the snapshot and by the stream. JSON arrives as JSON
// (json byte for byte with duplicate keys and <, a jsonb object an object,
// JSON null apart from SQL NULL); a value too long for its varchar(5)
// column is dead-lettered with PostgreSQL's reason, never cut: two keys
// that share their first five characters do not become one row, and the
// delete of one does not delete the row of another.
func TestValuesArriveUnaltered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, text := range map[string]string{"systems/db.yaml": valuesSystems, "models/doc.json": valuesModel} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFleet(t, fleetOptions{models: filepath.Join(dir, "models"), env: []string{"SYSTEMS_DIR=" + filepath.Join(dir, "systems")}})
	f.exec(f.src, `CREATE TABLE docs (k text PRIMARY KEY, nick text, j json, jb jsonb)`)
	f.exec(f.dst, `CREATE TABLE docs_copy (k varchar(5) PRIMARY KEY, nick varchar(5), j json, jb jsonb, jb_id bigint)`)
	// Copied by the snapshot.
	f.exec(f.src, `INSERT INTO docs VALUES
		('snap', 'Ann', ' {"b": 1, "a": "<x> & y", "b": 2} ', '{"id": 7, "tags": ["a", {"deep": null}]}'),
		('nulls', NULL, 'null', 'null'),
		('sql', NULL, NULL, NULL)`)
	f.ingest("ingest").WaitStderr("streaming changes", 60*time.Second)
	f.pusher("pusher")
	// Streamed.
	f.exec(f.src, `INSERT INTO docs VALUES
		('abcde', 'Eve', '{"z": 0, "a": [1, 2.50, 1E+2]}', '"a string"'),
		('abcde-1', 'one', '{}', '{}'),
		('abcde-2', 'two', '{}', '{}'),
		('long', 'toolongnick', '[]', '[]'),
		('arr', 'Bo', '[1, "\u00e9", null]', '[1, {"id": 3}]')`)
	f.exec(f.src, `UPDATE docs SET jb = '{"id": 8, "n": 1.50}', j = '{"x":  1,"x":2}' WHERE k = 'snap'`)
	f.exec(f.src, `DELETE FROM docs WHERE k = 'abcde-2'`)

	const src = `SELECT k, nick, j::text, jb::text, jsonb_typeof(jb), jb IS NULL, (jb->>'id')::bigint FROM docs
		WHERE length(k) <= 5 AND coalesce(length(nick), 0) <= 5 ORDER BY k`
	const dst = `SELECT k, nick, j::text, jb::text, jsonb_typeof(jb), jb IS NULL, jb_id FROM docs_copy ORDER BY k`
	compare := func() string {
		a, err1 := rows(f.ctx, f.src, src)
		b, err2 := rows(f.ctx, f.dst, dst)
		if err1 != nil || err2 != nil {
			return "query: " + strings.TrimSpace(strings.Join([]string{errString(err1), errString(err2)}, " "))
		}
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			return "source:\n  " + strings.Join(a, "\n  ") + "\ntarget:\n  " + strings.Join(b, "\n  ")
		}
		return ""
	}
	deadline := time.Now().Add(60 * time.Second)
	for last := compare(); last != ""; last = compare() {
		if time.Now().After(deadline) {
			t.Fatalf("the target did not come to hold the rows that fit:\n%s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitFor(t, "the values that do not fit in the dead-letter queue", 60*time.Second, func() bool {
		out, _ := f.remix("dlq", "list", "--system", "warehouse")
		return strings.Contains(out, "shop/public.docs/abcde-1") && strings.Contains(out, "shop/public.docs/abcde-2") &&
			strings.Contains(out, "shop/public.docs/long") && strings.Contains(out, "value too long for type character varying(5)")
	})
	var kinds string
	f.dst.QueryRow(f.ctx, `SELECT string_agg(k || ':' || coalesce(jsonb_typeof(jb), 'SQL NULL'), ' ' ORDER BY k) FROM docs_copy`).Scan(&kinds)
	if want := "abcde:string arr:array nulls:null snap:object sql:SQL NULL"; kinds != want {
		t.Fatalf("jsonb types in the target: %s, want %s", kinds, want)
	}
	if out, _ := f.remix("dlq", "list", "--system", "shop"); f.deadLetterRows(out) > 0 {
		t.Fatalf("the source dead-lettered changes:\n%s", out)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
