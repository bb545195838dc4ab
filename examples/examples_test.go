package examples_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/connectors/stripe"
	"github.com/sqlpipe/remix/mixer"
)

var env = map[string]string{
	"PROD_DB_DSN":      "postgres://remix:pw@localhost:5432/app",
	"PROD_DB_REPL_DSN": "postgres://remix:pw@localhost:5432/app?replication=database",
	"STRIPE_API_KEY":   "sk_test_123",
}

func loadExample(t *testing.T, name string) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.Options{
		SystemsDir: filepath.Join(name, "systems"),
		ModelsDir:  filepath.Join(name, "models"),
		Specs:      builtin.Connectors().Specs(),
		Getenv:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatalf("load %s:\n%v", name, err)
	}
	for _, w := range cfg.Warnings {
		// The seed's Stripe examples forward webhooks with the Stripe CLI;
		// where it is not installed they run on the Events API, and say so.
		if !strings.Contains(w.Error(), "the Stripe CLI") {
			t.Fatalf("warning in %s: %v", name, w)
		}
	}
	return cfg
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The seed's Stripe product object, and a price of it.
const seedProduct = `{"id": "prod_NWjs8kKbJWmuuc", "object": "product", "active": true, "created": 1678833149,
  "default_price": "price_1MoBy5LkdIwHu7ixZhnattbh", "description": null, "images": [], "marketing_features": [],
  "livemode": false, "metadata": {"id": 3}, "name": "Gold Plan", "package_dimensions": null, "shippable": null,
  "statement_descriptor": null, "tax_code": null, "unit_label": null, "updated": 1678833149, "url": null}`

const seedPrice = `{"id": "price_1MoBy5LkdIwHu7ixZhnattbh", "object": "price", "active": true, "currency": "usd",
  "product": "prod_NWjs8kKbJWmuuc", "unit_amount": 2000, "unit_amount_decimal": "2000", "metadata": {"id": 7}}`

// flow maps one record received by from through every target's push mixer.
func flow(t *testing.T, cfg *config.Config, from string, rec mixer.Record) map[string][]mixer.TargetRecord {
	t.Helper()
	src := cfg.System(from)
	res := src.Receive.Receive(&rec, nil)
	if len(res) == 0 {
		t.Fatalf("%s %s: no objects", from, rec.Location)
	}
	out := map[string][]mixer.TargetRecord{}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s %s: %v", from, rec.Location, r.Err)
		}
		for _, tgt := range cfg.TargetsOf(r.Model) {
			for _, p := range tgt.Push.Push(&r.Object, nil) {
				if p.Err != nil {
					t.Fatalf("push to %s: %v", tgt.Name, p.Err)
				}
				out[tgt.Name] = append(out[tgt.Name], p.Record)
			}
		}
	}
	return out
}

func TestOneTableExample(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t, "stripe_postgresql_one_table")
	db, gw := cfg.System("prod-db"), cfg.System("payment-gateway")
	if db.Type != "postgresql" || gw.Type != "stripe" || !gw.Settings.Bool("use_cli_listener") {
		t.Fatalf("systems: %+v %+v", db, gw)
	}
	if db.RateLimit != 10 || db.RateBucketSize != 100 || db.Settings.Int("max_open_connections") != 10 {
		t.Fatalf("prod-db settings: %v %v %v", db.RateLimit, db.RateBucketSize, db.Settings)
	}
	if got := gw.Settings.Secret("api_key").String(); got != "[redacted]" {
		t.Fatalf("api key prints as %q", got)
	}

	// A Stripe product webhook becomes a product: stripe_id=id, name=name,
	// id=metadata.id; in PostgreSQL it upserts by id into product_name.
	out := flow(t, cfg, "payment-gateway", mixer.Record{Location: "product", Op: mixer.OpUpsert, Fields: decode(t, seedProduct), Complete: true})
	row := out["prod-db"][0]
	if row.Location != "public.products" || row.Key.Field != "id" || row.Key.Value != json.Number("3") {
		t.Fatalf("row key: %+v", row)
	}
	if want := map[string]any{"id": json.Number("3"), "stripe_id": "prod_NWjs8kKbJWmuuc", "product_name": "Gold Plan"}; !reflect.DeepEqual(row.Fields, want) {
		t.Fatalf("row = %#v", row.Fields)
	}
	// It also goes back to Stripe by its own id, unchanged.
	back := out["payment-gateway"][0]
	form, _ := stripe.FormValues(back.Fields)
	if back.Key.Value != "prod_NWjs8kKbJWmuuc" || form.Encode() != "id=prod_NWjs8kKbJWmuuc&metadata%5Bid%5D=3&name=Gold+Plan" {
		t.Fatalf("back to stripe: %+v %s", back.Key, form.Encode())
	}

	// A price webhook becomes a product with stripe_id=product and
	// price=unit_amount; the row is found by stripe_id, its name untouched.
	out = flow(t, cfg, "payment-gateway", mixer.Record{Location: "price", Op: mixer.OpUpsert, Fields: decode(t, seedPrice), Complete: true})
	row = out["prod-db"][0]
	if row.Key.Field != "stripe_id" || !reflect.DeepEqual(row.Fields, map[string]any{"stripe_id": "prod_NWjs8kKbJWmuuc", "price": json.Number("2000")}) {
		t.Fatalf("price row: %+v", row)
	}

	// A new PostgreSQL row (no stripe_id yet) creates a Stripe product that
	// carries the database id in metadata[id].
	out = flow(t, cfg, "prod-db", mixer.Record{Location: "public.products", Op: mixer.OpUpsert, Complete: true, Fields: map[string]any{
		"id": json.Number("4"), "stripe_id": nil, "product_name": "Silver Plan", "price": json.Number("1000"), "internal_notes": "secret plans",
	}})
	create := out["payment-gateway"][0]
	form, _ = stripe.FormValues(create.Fields)
	if create.Key != nil || form.Encode() != "metadata%5Bid%5D=4&name=Silver+Plan" {
		t.Fatalf("create in stripe: key %+v, form %s", create.Key, form.Encode())
	}
}

func TestTwoTablesExample(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t, "stripe_postgresql_two_tables")
	out := flow(t, cfg, "payment-gateway", mixer.Record{Location: "price", Op: mixer.OpUpsert, Fields: decode(t, seedPrice), Complete: true})
	row := out["prod-db"][0]
	want := map[string]any{"id": json.Number("7"), "stripe_id": "price_1MoBy5LkdIwHu7ixZhnattbh", "product_stripe_id": "prod_NWjs8kKbJWmuuc", "unit_amount": json.Number("2000"), "currency": "usd"}
	if row.Location != "public.prices" || row.Key.Field != "id" || !reflect.DeepEqual(row.Fields, want) {
		t.Fatalf("price row: %+v", row)
	}
	out = flow(t, cfg, "payment-gateway", mixer.Record{Location: "product", Op: mixer.OpUpsert, Fields: decode(t, seedProduct), Complete: true})
	if row := out["prod-db"][0]; row.Location != "public.products" || row.Fields["product_name"] != "Gold Plan" {
		t.Fatalf("product row: %+v", row)
	}
	// A price row from PostgreSQL goes to Stripe's prices with its product.
	out = flow(t, cfg, "prod-db", mixer.Record{Location: "public.prices", Op: mixer.OpUpsert, Complete: true, Fields: map[string]any{
		"id": json.Number("8"), "stripe_id": nil, "product_stripe_id": "prod_NWjs8kKbJWmuuc", "unit_amount": json.Number("1e+06"), "currency": "eur",
	}})
	form, _ := stripe.FormValues(out["payment-gateway"][0].Fields)
	if form.Encode() != "currency=eur&metadata%5Bid%5D=8&product=prod_NWjs8kKbJWmuuc&unit_amount=1000000" {
		t.Fatalf("price to stripe: %s", form.Encode())
	}
	// Deleting a price row deletes by id in PostgreSQL targets; Stripe needs
	// stripe_id, which a default-identity delete does not carry: a bad record.
	src := cfg.System("prod-db")
	res := src.Receive.Receive(&mixer.Record{Location: "public.prices", Op: mixer.OpDelete, Fields: map[string]any{"id": json.Number("8")}}, nil)
	pushed := cfg.System("payment-gateway").Push.Push(&res[0].Object, nil)
	if pushed[0].Err == nil {
		t.Fatal("delete without stripe_id mapped for stripe")
	}
}
