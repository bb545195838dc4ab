package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// TestListKeysReadsEveryRowInPages: a source and a sink list every row of
// a table with the columns asked for, decoded, over several pages; the
// source names its identity columns and rebuilds its changes' keys.
func TestListKeysReadsEveryRowInPages(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	n := keysPage*2 + 17
	exec(t, conn, `CREATE TABLE regions (region text, n int, label text, PRIMARY KEY (region, n))`,
		`INSERT INTO regions SELECT CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g, 'label ' || g FROM generate_series(1, `+strconv.Itoa(n)+`) g`,
		`CREATE TABLE single (id bigint NOT NULL, code text NOT NULL)`,
		`CREATE UNIQUE INDEX single_code ON single (code)`,
		`ALTER TABLE single REPLICA IDENTITY USING INDEX single_code`,
		`INSERT INTO single VALUES (1, 'a"b')`)
	src, err := NewSource(testSystem(testenv.UniqueName("src"), url, mixer.NewReceiver(), nil, nil), connectors.SourceDeps{})
	if err != nil {
		t.Fatal(err)
	}
	sink, _ := NewSink(testSystem("target", url, nil, mixer.NewPushMixer(), nil), connectors.SinkDeps{})
	for _, lister := range []connectors.KeyLister{src.(connectors.KeyLister), sink.(connectors.KeyLister)} {
		var pages, rows int
		seen := map[string]bool{}
		err := lister.ListKeys(ctx, "public.regions", []string{"region", "n"}, func(page []map[string]any) error {
			pages++
			for _, r := range page {
				rows++
				if len(r) != 2 {
					t.Fatalf("row %v: want only the columns asked for", r)
				}
				num, ok := r["n"].(json.Number)
				if !ok {
					t.Fatalf("n is %T, want json.Number", r["n"])
				}
				seen[r["region"].(string)+"/"+string(num)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if rows != n || len(seen) != n || pages != 3 {
			t.Fatalf("%T: %d rows (%d distinct) in %d pages, want %d in 3", lister, rows, len(seen), pages, n)
		}
	}
	rk := src.(connectors.RowKeyer)
	cols, err := rk.IdentityFields(ctx, "public.regions")
	if err != nil || !slices.Equal(cols, []string{"region", "n"}) {
		t.Fatalf("identity of regions = %v, %v", cols, err)
	}
	if cols, err = rk.IdentityFields(ctx, "public.single"); err != nil || !slices.Equal(cols, []string{"code"}) {
		t.Fatalf("identity of single = %v, %v", cols, err)
	}
	name := src.(*Source).sys.Name
	key, err := rk.RowKey("public.regions", []any{"eu", json.Number("8")})
	if want := name + `/public.regions/["eu","8"]`; err != nil || key != want {
		t.Fatalf("RowKey = %q, %v; want %q", key, err, want)
	}
	key, err = rk.RowKey("public.single", []any{`a"b`})
	if want := name + `/public.single/a"b`; err != nil || key != want {
		t.Fatalf("RowKey = %q, %v; want %q", key, err, want)
	}
	if _, err := rk.RowKey("public.single", []any{nil}); err == nil {
		t.Fatal("a key from a null value")
	}
	if _, err := rk.IdentityFields(ctx, "public.missing"); err == nil {
		t.Fatal("identity of a missing table")
	}
	if err := src.(connectors.KeyLister).ListKeys(context.Background(), "public.missing", []string{"id"}, func([]map[string]any) error { return nil }); err == nil {
		t.Fatal("listed a missing table")
	}
}
