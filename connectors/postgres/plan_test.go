package postgres

import (
	"encoding/json"
	"fmt"
	"runtime"
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

// TestPlanOfMixedTablesStaysSmall: a batch whose first row is of a wide
// table and whose other rows are of narrow ones, and one that interleaves
// many tables, allocate about what one table's batch does: the slabs and
// the maps are not sized for the whole batch at each table's width. (Not
// parallel: it reads the process's allocation counter, which parallel
// tests would move.)
func TestPlanOfMixedTablesStaysSmall(t *testing.T) {
	wide := &table{loc: "public.wide", quoted: `"public"."wide"`, cols: map[string]*column{}}
	for i := range 100 {
		c := &column{index: i, name: fmt.Sprintf("c%d", i), typ: "text", cast: "text", keyType: "text", kind: colText}
		wide.cols[c.name], wide.order = c, append(wide.order, c)
	}
	s := &Sink{tables: map[string]*table{"public.wide": wide}, sql: map[shape]string{}}
	for i := range 40 {
		nt := benchTable()
		nt.loc = fmt.Sprintf("public.t%d", i)
		nt.quoted = `"public"."` + nt.loc[len("public."):] + `"`
		s.tables[nt.loc] = nt
	}
	key := &mixer.SearchKey{Field: "id", Target: mixer.MustPath("id")}
	row := func(loc string, id int) mixer.TargetRecord {
		return mixer.TargetRecord{Location: loc, Op: mixer.OpUpsert, Key: key, Fields: map[string]any{
			"id": json.Number(fmt.Sprint(id)), "name": "item", "qty": json.Number("3")}}
	}
	one := make([]mixer.TargetRecord, 2000)
	wideFirst := make([]mixer.TargetRecord, 2000)
	interleaved := make([]mixer.TargetRecord, 2000)
	for i := range one {
		one[i] = row("public.t0", i)
		wideFirst[i] = row("public.t0", i)
		interleaved[i] = row(fmt.Sprintf("public.t%d", i%40), i)
	}
	wideFirst[0] = mixer.TargetRecord{Location: "public.wide", Op: mixer.OpUpsert, Fields: map[string]any{"c0": "x"}}
	allocated := func(recs []mixer.TargetRecord) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := s.plan(recs, &pgx.Batch{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	base := allocated(one)
	for name, recs := range map[string][]mixer.TargetRecord{"a wide table's row first": wideFirst, "40 tables interleaved": interleaved} {
		// The wide slab costs 100 columns × 512 rows × 16 B once (819 KB);
		// sized for the whole batch it was 3.2 MB, and 40 maps sized for
		// the whole batch 5 MB.
		if got := allocated(recs); got > 2*base+1<<20 {
			t.Errorf("%s: planning allocated %d bytes, one table's batch %d", name, got, base)
		}
	}
}
