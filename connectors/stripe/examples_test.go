package stripe_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestOneTableExampleBothWays runs the seed's one-table example both ways
// at once against the fake: a row inserted in PostgreSQL becomes a Stripe
// product carrying metadata[id]; its product.created webhook writes
// stripe_id into the row; a rename reaches Stripe once and does not come
// back; a price made in Stripe's dashboard writes price into the row.
func TestOneTableExampleBothWays(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "stripe_postgresql_one_table", fleetOptions{webhooks: true})
	f.app(`INSERT INTO products (product_name, price) VALUES ('Gold Plan', 1000)`)
	f.waitFor("stripe_id in the row", 30*time.Second, func() bool {
		return f.text(`SELECT stripe_id FROM products WHERE id = 1`) != ""
	})
	f.settle(time.Second)
	prod := f.text(`SELECT stripe_id FROM products WHERE id = 1`)
	w := f.writes()
	if c := w["POST /v1/products"]; len(c) != 1 || c[0].Encode() != "metadata%5Bid%5D=1&name=Gold+Plan" {
		t.Fatalf("creates in Stripe: %v", c)
	}
	echo := len(w["POST /v1/products/{id}"])
	if f.pgMarksOrigins() && echo != 0 {
		t.Fatalf("the row Remix wrote from Stripe came back to Stripe %d times", echo)
	}
	t.Logf("insert: 1 create, %d echo updates (PostgreSQL marks origins: %v), %d row writes", echo, f.pgMarksOrigins(), f.rowWrites("products"))
	if n := f.rowWrites("products"); n != 1 {
		t.Fatalf("%d row writes for the id coming back, want 1", n)
	}

	f.app(`UPDATE products SET product_name = 'Gold Plan II' WHERE id = 1`)
	f.waitFor("the rename in Stripe", 30*time.Second, func() bool { return len(f.writes()["POST /v1/products/{id}"]) > echo })
	f.settle(time.Second)
	if c := f.writes()["POST /v1/products/{id}"]; len(c) != echo+1 || c[echo].Encode() != "metadata%5Bid%5D=1&name=Gold+Plan+II" {
		t.Fatalf("updates in Stripe: %v", c)
	}
	if n := f.rowWrites("products"); n != 1 {
		t.Fatalf("the rename came back to PostgreSQL: %d row writes", n)
	}

	// A price made in Stripe's dashboard: the row's price. The object
	// that arrives carries stripe_id and price only, so the PostgreSQL
	// sink must update the row it finds by stripe_id.
	f.dashboard(http.MethodPost, "/v1/prices", url.Values{"product": {prod}, "unit_amount": {"1500"}, "currency": {"usd"}})
	deadline := time.Now().Add(30 * time.Second)
	for f.text(`SELECT price::text FROM products WHERE id = 1`) != "1500" {
		if st, err := f.cc.DeadLetterStats(f.ctx, "prod-db"); err == nil && st.Entries > 0 {
			t.Fatal("the price reached the PostgreSQL pusher, which set it aside")
		}
		if time.Now().After(deadline) {
			t.Fatal("the price did not reach the row within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.settle(time.Second)
	if n := f.rowWrites("products"); n != 2 {
		t.Fatalf("%d row writes after the price, want 2", n)
	}
	if got := f.text(`SELECT row(id, stripe_id, product_name, price)::text FROM products`); got != "(1,"+prod+",\"Gold Plan II\",1500)" {
		t.Fatalf("row %s", got)
	}
	t.Logf("Stripe calls: %d (writes %v)", len(f.fake.Calls()), len(f.writes()))
}

// TestTwoTablesExampleBothWays: products and prices in two tables. A new
// price row creates a Stripe price; its id comes back; a changed amount
// makes a new price (the old one archived) whose id replaces the row's.
func TestTwoTablesExampleBothWays(t *testing.T) {
	t.Parallel()
	f := newFleet(t, "stripe_postgresql_two_tables", fleetOptions{webhooks: true})
	f.app(`INSERT INTO products (product_name) VALUES ('Gold Plan')`)
	f.waitFor("the product's stripe_id", 30*time.Second, func() bool {
		return f.text(`SELECT stripe_id FROM products WHERE id = 1`) != ""
	})
	prod := f.text(`SELECT stripe_id FROM products WHERE id = 1`)
	f.app(`INSERT INTO prices (product_stripe_id, unit_amount, currency) VALUES ($1, 2000, 'usd')`, prod)
	f.waitFor("the price's stripe_id", 30*time.Second, func() bool {
		return f.text(`SELECT stripe_id FROM prices WHERE id = 1`) != ""
	})
	f.settle(time.Second)
	first := f.text(`SELECT stripe_id FROM prices WHERE id = 1`)
	w := f.writes()
	if c := w["POST /v1/prices"]; len(c) != 1 || c[0].Encode() != "currency=usd&metadata%5Bid%5D=1&product="+url.QueryEscape(prod)+"&unit_amount=2000" {
		t.Fatalf("price creates: %v", c)
	}
	base := f.rowWrites("prices")
	if base != 1 {
		t.Fatalf("%d writes of the price row, want 1 (its stripe_id)", base)
	}

	f.app(`UPDATE prices SET unit_amount = 2500 WHERE id = 1`)
	f.waitFor("the new price's id in the row", 30*time.Second, func() bool {
		return f.text(`SELECT stripe_id FROM prices WHERE id = 1`) != first
	})
	f.settle(time.Second)
	w = f.writes()
	if c := w["POST /v1/prices"]; len(c) != 2 || c[1].Get("unit_amount") != "2500" || c[1].Get("product") != prod {
		t.Fatalf("price creates after the change: %v", c)
	}
	archived := 0
	for _, c := range w["POST /v1/prices/{id}"] {
		if c.Get("active") == "false" {
			archived++
		}
	}
	if archived != 1 {
		t.Fatalf("%d archives of the old price, want 1: %v", archived, w["POST /v1/prices/{id}"])
	}
	if n := f.rowWrites("prices"); n != base+1 {
		t.Fatalf("%d writes of the price row after the change, want %d", n, base+1)
	}
	t.Logf("writes in Stripe: %v", w)
}
