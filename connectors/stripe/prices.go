package stripe

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// mutablePrice are the price parameters Stripe lets an update change;
// every other one (unit_amount, currency, product, recurring, ...) is fixed
// when the price is created.
var mutablePrice = map[string]bool{"active": true, "metadata": true, "nickname": true, "lookup_key": true,
	"transfer_lookup_key": true, "tax_behavior": true, "currency_options": true}

// paramName is the top-level name of a form parameter: metadata for
// metadata[id].
func paramName(k string) string {
	if i := strings.IndexByte(k, '['); i >= 0 {
		return k[:i]
	}
	return k
}

func hasImmutable(params url.Values) bool {
	for k := range params {
		if !mutablePrice[paramName(k)] {
			return true
		}
	}
	return false
}

// hasDefaultPrice reports whether a product record carries an amount for
// its default price (default_price_data[unit_amount] or
// [unit_amount_decimal]); a default_price_data without one is no price.
func hasDefaultPrice(params url.Values) bool {
	return params.Get("default_price_data[unit_amount]") != "" || params.Get("default_price_data[unit_amount_decimal]") != ""
}

func dropDefaultPriceData(params url.Values) {
	for k := range params {
		if strings.HasPrefix(k, "default_price_data[") {
			delete(params, k)
		}
	}
}

// flatten renders an object read from the API as form parameters, so that
// it compares with what a record would send.
func flatten(obj map[string]any) url.Values {
	v, err := FormValues(obj)
	if err != nil {
		return url.Values{}
	}
	return v
}

// updatePrice writes a price record that carries fields Stripe never
// changes on a price. The price is read (with its product); when those
// fields equal the price's, only the changeable ones are updated. When
// they differ, the price is replaced:
//
//  1. a new price is created with the record's fields, the rest (currency,
//     product, recurrence, tax behaviour, nickname, metadata, lookup key,
//     moved over with transfer_lookup_key) taken from the old one;
//  2. if the old price was its product's default_price, the product's
//     default_price becomes the new one (Stripe refuses to archive a
//     default price);
//  3. the old price is archived (active=false), not deleted: invoices and
//     subscriptions that use it keep it.
//
// The new price's id reaches the price's row through its price.created
// event.
func (s *Sink) updatePrice(ctx context.Context, rec *mixer.TargetRecord, id string, params url.Values) error {
	cur, err := s.get(ctx, objectPath("prices", id), url.Values{"expand[0]": {"product"}})
	if err != nil {
		return err
	}
	old := flatten(cur.Object)
	product, _ := cur.Object["product"].(map[string]any)
	productID := objectID(product)
	if productID == "" {
		productID, _ = cur.Object["product"].(string)
	}
	old.Set("product", productID)
	changed := false
	mutable := url.Values{}
	for k, v := range params {
		if mutablePrice[paramName(k)] {
			mutable[k] = v
			continue
		}
		if old.Get(k) != v[0] {
			changed = true
		}
	}
	if !changed {
		if len(mutable) == 0 {
			return nil
		}
		_, err := s.post(ctx, rec, "update", objectPath("prices", id), mutable)
		return err
	}
	if old.Get("billing_scheme") == "tiered" {
		return fmt.Errorf("%w: price %s is tiered; Remix replaces only per-unit prices when their amount changes", connectors.ErrPermanent, id)
	}
	next := url.Values{}
	for k, v := range params {
		next[k] = v
	}
	carry := []string{"currency", "product", "recurring[interval]", "recurring[interval_count]", "recurring[usage_type]",
		"recurring[aggregate_usage]", "nickname", "lookup_key"}
	if t := old.Get("tax_behavior"); t != "" && t != "unspecified" {
		carry = append(carry, "tax_behavior")
	}
	for _, k := range carry {
		if next.Get(k) == "" && old.Get(k) != "" {
			next.Set(k, old.Get(k))
		}
	}
	if next.Get("unit_amount") == "" && next.Get("unit_amount_decimal") == "" {
		if a := old.Get("unit_amount"); a != "" {
			next.Set("unit_amount", a)
		} else if a := old.Get("unit_amount_decimal"); a != "" {
			next.Set("unit_amount_decimal", a)
		}
	}
	for k, v := range old {
		if strings.HasPrefix(k, "metadata[") && next.Get(k) == "" {
			next[k] = v
		}
	}
	if next.Get("lookup_key") != "" {
		next.Set("transfer_lookup_key", "true")
	}
	for k, v := range next {
		if len(v) == 1 && v[0] == "" {
			delete(next, k)
		}
	}
	created, err := s.post(ctx, rec, "replace:create", "/v1/prices", next)
	if err != nil {
		return err
	}
	newID := objectID(created.Object)
	if def, _ := product["default_price"].(string); def == id && next.Get("product") == productID && productID != "" {
		if _, err := s.post(ctx, rec, "replace:default", objectPath("products", productID), url.Values{"default_price": {newID}}); err != nil {
			return err
		}
	}
	_, err = s.post(ctx, rec, "replace:archive", objectPath("prices", id), url.Values{"active": {"false"}})
	return ignoreMissing(err)
}

// updateProductPrice writes a product record that carries an amount for
// its default price (default_price_data, which Stripe takes only when a
// product is created). The product is read with its default price; when
// the amount and currency are the same, the rest of the record is an
// ordinary update. When they differ (or the product has no default price):
//
//  1. a price of the product is created with the record's amount and
//     currency (the old default price's currency when the record has
//     none) and recurrence;
//  2. the product is updated with the rest of the record and
//     default_price set to the new price;
//  3. the old default price is archived (active=false).
func (s *Sink) updateProductPrice(ctx context.Context, rec *mixer.TargetRecord, id string, params url.Values) error {
	cur, err := s.get(ctx, objectPath("products", id), url.Values{"expand[0]": {"default_price"}})
	if err != nil {
		return err
	}
	dp, _ := cur.Object["default_price"].(map[string]any)
	old := flatten(dp)
	want := url.Values{}
	for k, v := range params {
		if name, ok := strings.CutPrefix(k, "default_price_data["); ok {
			want[strings.Replace(name, "]", "", 1)] = v
		}
	}
	if want.Get("currency") == "" {
		want.Set("currency", old.Get("currency"))
	}
	if want.Get("currency") == "" {
		return fmt.Errorf("%w: product %s: default_price_data has an amount but no currency, and the product has no default price to take one from", connectors.ErrPermanent, id)
	}
	same := dp != nil && old.Get("currency") == want.Get("currency") &&
		(want.Get("unit_amount") == "" || old.Get("unit_amount") == want.Get("unit_amount")) &&
		(want.Get("unit_amount_decimal") == "" || old.Get("unit_amount_decimal") == want.Get("unit_amount_decimal"))
	for k, v := range want {
		if strings.HasPrefix(k, "recurring[") && old.Get(k) != v[0] {
			same = false
		}
	}
	rest := url.Values{}
	for k, v := range params {
		if !strings.HasPrefix(k, "default_price_data[") {
			rest[k] = v
		}
	}
	if same {
		if len(rest) == 0 {
			return nil
		}
		_, err := s.post(ctx, rec, "update", objectPath("products", id), rest)
		return err
	}
	price := url.Values{"product": {id}}
	for k, v := range want {
		if v[0] != "" {
			price[k] = v
		}
	}
	created, err := s.post(ctx, rec, "price:create", "/v1/prices", price)
	if err != nil {
		return err
	}
	rest.Set("default_price", objectID(created.Object))
	if _, err := s.post(ctx, rec, "update", objectPath("products", id), rest); err != nil {
		return err
	}
	if oldID := objectID(dp); oldID != "" {
		_, err = s.post(ctx, rec, "price:archive", objectPath("prices", oldID), url.Values{"active": {"false"}})
		return ignoreMissing(err)
	}
	return nil
}
