package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// JSON values travel as JSON, through the whole path a change takes: the
// source's text decoding, the receive mixer, the envelope, the push mixer
// and the sink. A jsonb object arrives an object; json text arrives byte
// for byte (duplicate keys, key order, whitespace, <); a JSON null stays
// JSON null and SQL NULL stays NULL; a path into a jsonb column reads a
// member.
func TestJSONTravelsAsJSON(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	ctx := context.Background()
	exec(t, conn,
		`CREATE TABLE src (id int PRIMARY KEY, j json, jb jsonb, jn jsonb)`,
		`INSERT INTO src VALUES
			(1, ' {"b": 1, "a": 2, "b": "<x> & y"} ', '{"a": 1, "nested": {"x": [1, 2.50]}}', 'null'),
			(2, NULL, NULL, NULL),
			(3, '"just a string"', '[1, "two", null]', '{"id": 42}'),
			(4, '{"n": 1E+2}', '"\u00e9<"', '7')`,
		`CREATE TABLE dst (id int PRIMARY KEY, j json, jb jsonb, jn jsonb, jid bigint, jtext text)`)
	model, err := mixer.CompileModel("mem:///doc.json", []byte(`{"title": "doc", "properties": {
		"id": {"type": "integer"}, "j": {}, "jb": {}, "jn": {}, "jid": {"type": ["integer", "null"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	var fields []mixer.ReceiveField
	for src, field := range map[string]string{"id": "id", "j": "j", "jb": "jb", "jn": "jn", "jn.id": "jid"} {
		fields = append(fields, mixer.ReceiveField{Source: mixer.MustPath(src), Field: field})
	}
	rule, err := mixer.NewReceiveRule(model, fields)
	if err != nil {
		t.Fatal(err)
	}
	recv.Add("public.src", rule)
	sink, push := openSink(t, url, model, "public.dst", []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
		{Field: "j", Target: mixer.MustPath("j")}, {Field: "jb", Target: mixer.MustPath("jb")},
		{Field: "jn", Target: mixer.MustPath("jn")}, {Field: "jid", Target: mixer.MustPath("jid")},
		{Field: "jb", Target: mixer.MustPath("jtext")},
	})

	// Read the rows as the source does: text, decoded by column type.
	rows, err := conn.Query(ctx, `SELECT id, j, jb, jn FROM src ORDER BY id`, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		t.Fatal(err)
	}
	var recs []mixer.TargetRecord
	for rows.Next() {
		rec := mixer.Record{Location: "public.src", Op: mixer.OpUpsert, Fields: map[string]any{}, Complete: true}
		for i, fd := range rows.FieldDescriptions() {
			raw := rows.RawValues()[i]
			if raw == nil {
				rec.Fields[fd.Name] = nil
				continue
			}
			if rec.Fields[fd.Name], err = decodeText(fd.DataTypeOID, raw); err != nil {
				t.Fatal(err)
			}
		}
		res := recv.Receive(&rec, nil)
		if len(res) != 1 || res[0].Err != nil {
			t.Fatalf("receive %v: %+v", rec.Fields, res)
		}
		enc, err := mixer.AppendEnvelope(nil, &mixer.Envelope{Object: res[0].Object, Source: "db", Location: rec.Location})
		if err != nil {
			t.Fatal(err)
		}
		env, err := mixer.DecodeEnvelope(enc)
		if err != nil {
			t.Fatal(err)
		}
		out, err := push.Apply(&env.Object)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, out)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}

	const compare = `SELECT s.id,
			d.j::text IS NOT DISTINCT FROM s.j::text AS json_bytes,
			d.jb IS NOT DISTINCT FROM s.jb AS jsonb_equal,
			jsonb_typeof(d.jb) IS NOT DISTINCT FROM jsonb_typeof(s.jb) AS jsonb_kind,
			d.jn IS NOT DISTINCT FROM s.jn AS null_kept,
			d.jid IS NOT DISTINCT FROM (s.jn->>'id')::bigint AS path,
			d.jtext IS NOT DISTINCT FROM s.jb::text AS as_text,
			concat_ws(' | ', d.j::text, d.jb::text, jsonb_typeof(d.jb), d.jn::text, d.jid, d.jtext) AS target
		FROM src s JOIN dst d USING (id) ORDER BY id`
	got, err := conn.Query(ctx, compare)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	n := 0
	for got.Next() {
		n++
		var id int
		var jsonBytes, jsonbEqual, jsonbKind, nullKept, path, asText bool
		var target string
		if err := got.Scan(&id, &jsonBytes, &jsonbEqual, &jsonbKind, &nullKept, &path, &asText, &target); err != nil {
			t.Fatal(err)
		}
		var wrong []string
		for name, ok := range map[string]bool{"json text byte for byte": jsonBytes, "jsonb value": jsonbEqual, "jsonb type": jsonbKind,
			"JSON null apart from SQL NULL": nullKept, "path into jsonb": path, "JSON text in a text column": asText} {
			if !ok {
				wrong = append(wrong, name)
			}
		}
		if len(wrong) > 0 {
			t.Errorf("row %d: wrong %s; target row: %s", id, strings.Join(wrong, ", "), target)
		}
	}
	if err := got.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("%d rows compared, want 4", n)
	}
	var kinds string
	if err := conn.QueryRow(ctx, `SELECT string_agg(coalesce(jsonb_typeof(jb), 'NULL') || '/' || coalesce(jsonb_typeof(jn), 'NULL'), ',' ORDER BY id) FROM dst`).Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	if want := "object/null,NULL/NULL,array/object,string/number"; kinds != want {
		t.Fatalf("jsonb types %s, want %s", kinds, want)
	}
}

// A model string written to a json column is a JSON string, < and all; a
// nested path writes into a jsonb object without touching its other keys.
func TestSinkJSONColumns(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE docs (id int PRIMARY KEY, j json, attrs jsonb DEFAULT '{"kept": true}')`, `INSERT INTO docs (id) VALUES (1)`)
	model, err := mixer.CompileModel("mem:///d.json", []byte(`{"title": "d", "properties": {"id": {"type": "integer"},
		"s": {"type": "string"}, "obj": {"type": ["object", "null"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	sink, rule := openSink(t, url, model, "public.docs", []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
		{Field: "s", Target: mixer.MustPath("j")}, {Field: "obj", Target: mixer.MustPath("attrs.obj")},
	})
	for i, obj := range []any{mixer.JSONText(`{"a": [1, {"b": "<"}]}`), mixer.JSONText(`null`), nil} {
		rec, err := rule.Apply(&mixer.Object{Model: "d", Op: mixer.OpUpsert, Fields: map[string]any{"id": json.Number("1"), "s": "<a & b>", "obj": obj}})
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Write(ctx, []mixer.TargetRecord{rec}, nil); err != nil {
			t.Fatal(err)
		}
		var j, attrs string
		if err := conn.QueryRow(ctx, `SELECT j::text, attrs::text FROM docs WHERE id = 1`).Scan(&j, &attrs); err != nil {
			t.Fatal(err)
		}
		want := []string{`{"obj": {"a": [1, {"b": "<"}]}, "kept": true}`, `{"obj": null, "kept": true}`, `{"obj": null, "kept": true}`}[i]
		if j != `"<a & b>"` || attrs != want {
			t.Fatalf("write %d: j = %s, attrs = %s; want %s", i, j, attrs, want)
		}
	}
}
