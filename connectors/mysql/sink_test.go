package mysql

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

func TestSinkConformance(t *testing.T) {
	t.Parallel()
	d := newTestDB(t)
	connectortest.RunSink(t, connectortest.SinkHarness{
		Features: connectortest.SinkFeatures{Keyed: true, InsertWithoutKey: true, Truncate: true, Fencing: true, ReleasesRecords: true},
		Refused:  map[string]any{"qty": json.Number("1.5")}, // a fraction for an integer column
		Create: func(t *testing.T, model *mixer.Model) (string, connectortest.Target) {
			table := testenv.UniqueName("items")
			d.exec(t, `CREATE TABLE `+table+` (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT, qty INT,
				price DECIMAL(65,30), note VARCHAR(100), untouched VARCHAR(10) DEFAULT 'keep')`)
			loc := d.name + "." + table
			push := mixer.NewPushMixer()
			rule, err := mixer.NewPushRule(model, loc, []mixer.PushField{
				{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
				{Field: "name", Target: mixer.MustPath("name")}, {Field: "qty", Target: mixer.MustPath("qty")},
				{Field: "price", Target: mixer.MustPath("price")}, {Field: "note", Target: mixer.MustPath("note")},
			})
			if err != nil {
				t.Fatal(err)
			}
			push.Add("item", rule)
			sink, err := NewSink(testSystem("target", d.url, nil, push, nil), connectors.SinkDeps{})
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Open(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := sink.Close(context.WithoutCancel(t.Context())); err != nil {
					t.Error(err)
				}
			})
			return loc, connectortest.Target{
				Sink: sink,
				Get: func(ctx context.Context, id int64) (map[string]any, bool, error) {
					return rowJSON(ctx, d.db, `SELECT id, name, qty, price, note FROM `+table+` WHERE id = ?`, id)
				},
				Count: func(ctx context.Context) (int, error) {
					var n int
					err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE untouched = 'keep'`).Scan(&n)
					return n, err
				},
			}
		},
	})
}

func TestSinkChecksTheTargetAtOpen(t *testing.T) {
	t.Parallel()
	d := newTestDB(t)
	d.exec(t, `CREATE TABLE products (id BIGINT PRIMARY KEY, stripe_id VARCHAR(40), product_name TEXT, meta JSON)`)
	model, err := mixer.CompileModel("mem:///p.json", []byte(`{"title": "product", "properties": {
		"id": {"type": "integer"}, "stripe_id": {"type": "string"}, "name": {"type": "string"}, "color": {"type": "string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	push := mixer.NewPushMixer()
	for loc, fields := range map[string][]mixer.PushField{
		d.name + ".products": {
			{Field: "id", Target: mixer.MustPath("id"), SearchKey: true},
			{Field: "stripe_id", Target: mixer.MustPath("stripe_id"), SearchKey: true},
			{Field: "name", Target: mixer.MustPath("prodname")},
			{Field: "color", Target: mixer.MustPath("meta.color")},
		},
		d.name + ".missing": {{Field: "id", Target: mixer.MustPath("id"), SearchKey: true}},
	} {
		rule, err := mixer.NewPushRule(model, loc, fields)
		if err != nil {
			t.Fatal(err)
		}
		push.Add("product", rule)
	}
	sink, _ := NewSink(testSystem("target", d.url, nil, push, nil), connectors.SinkDeps{})
	err = sink.Open(context.Background())
	if err == nil {
		t.Fatal("opened against a table that does not fit")
	}
	for _, want := range []string{
		"column stripe_id of " + d.name + ".products is a search key but neither its primary key nor a unique index of its own; add one: CREATE UNIQUE INDEX `remix_stripe_id`",
		`table ` + d.name + `.products has no column "prodname"`,
		`nested path meta.color: the mysql sink writes whole columns`,
		`table ` + d.name + `.missing does not exist`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
