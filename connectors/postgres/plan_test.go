package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/mixer"
)

// TestPlanGroupsRowsByLocationAndKey plans a batch that interleaves two
// tables, two key columns of one table, repeated keys, a delete, a row
// without a key and a truncate, without a server: each row is found by its
// own table, key column and key (the same key text in another table, or
// under another key column, is another row), and the statements come out
// in the order the sink promises.
func TestPlanGroupsRowsByLocationAndKey(t *testing.T) {
	t.Parallel()
	items, others := benchTable(), benchTable()
	others.loc, others.quoted = "public.others", `"public"."others"`
	s := &Sink{tables: map[string]*table{"public.items": items, "public.others": others}, sql: map[shape]string{}}
	byID := &mixer.SearchKey{Field: "id", Target: mixer.MustPath("id")}
	byName := &mixer.SearchKey{Field: "name", Target: mixer.MustPath("name")}
	rec := func(loc string, op mixer.Op, key *mixer.SearchKey, kv ...any) mixer.TargetRecord {
		f := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			f[kv[i].(string)] = kv[i+1]
		}
		return mixer.TargetRecord{Location: loc, Op: op, Key: key, Fields: f}
	}
	n := func(s string) json.Number { return json.Number(s) }
	recs := []mixer.TargetRecord{
		rec("public.items", mixer.OpUpsert, byID, "id", n("1"), "name", "a"),
		rec("public.others", mixer.OpUpsert, byID, "id", n("1"), "name", "x"),
		rec("public.items", mixer.OpUpsert, byID, "id", n("1"), "qty", n("3")),
		rec("public.items", mixer.OpUpsert, byName, "name", "1", "qty", n("9")),
		rec("public.others", mixer.OpDelete, byID, "id", n("1")),
		rec("public.items", mixer.OpUpsert, nil, "name", "n"),
		rec("public.items", mixer.OpUpsert, byID, "id", n("2"), "name", "b"),
		rec("public.items", mixer.OpUpsert, byID, "id", n("1"), "name", nil),
		{Location: "public.others", Op: mixer.OpTruncate},
		rec("public.others", mixer.OpUpsert, byID, "id", n("1"), "name", "y"),
	}
	b := &pgx.Batch{}
	if err := s.plan(recs, b, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range b.QueuedQueries {
		line := q.SQL
		if i := strings.Index(line, " SELECT"); i > 0 {
			line = line[:i]
		}
		if i := strings.Index(line, " WHERE"); i > 0 {
			line = line[:i]
		}
		for _, a := range q.Arguments {
			var vals []string
			for _, v := range a.(textArray) {
				if v == nil {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, *v)
				}
			}
			line += fmt.Sprintf(" %v", vals)
		}
		got = append(got, line)
	}
	want := []string{
		`DELETE FROM "public"."others" [1]`,
		`INSERT INTO "public"."items" AS t ("id", "name", "qty") [1] [NULL] [3]`,
		`INSERT INTO "public"."items" AS t ("name", "qty") [1] [9]`,
		`INSERT INTO "public"."items" AS t ("id", "name") [2] [b]`,
		`INSERT INTO "public"."items" AS t ("name") [n]`,
		`DELETE FROM "public"."others"`,
		`INSERT INTO "public"."others" AS t ("id", "name") [1] [y]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
