package stripefake

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// parseForm reads the form parameters of a request: the query of a GET, the
// body of the rest.
func parseForm(r *http.Request, body []byte) map[string][]string {
	out := map[string][]string{}
	for k, v := range r.URL.Query() {
		out[k] = v
	}
	if r.Method != http.MethodGet {
		if q, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range q {
				out[k] = v
			}
		}
	}
	return out
}

// allowed checks that every parameter's top-level name is known, as
// Stripe's "Received unknown parameter" does.
func allowed(params map[string][]string, names ...string) *apiErr {
	ok := map[string]bool{"expand": true}
	for _, n := range names {
		ok[n] = true
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if i := strings.IndexByte(k, '['); i >= 0 {
			name = k[:i]
		}
		if !ok[name] {
			return badRequest("Received unknown parameter: " + k)
		}
	}
	return nil
}

// sub returns the parameters under prefix[...], keyed by the rest.
func sub(params map[string][]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range params {
		if rest, ok := strings.CutPrefix(k, prefix+"["); ok && len(v) > 0 {
			out[strings.Replace(rest, "]", "", 1)] = v[0]
		}
	}
	return out
}

func has(params map[string][]string, k string) bool { _, ok := params[k]; return ok }

func expands(params map[string][]string, field string) bool {
	for k, v := range params {
		if (k == "expand[]" || strings.HasPrefix(k, "expand[")) && len(v) > 0 && v[0] == field {
			return true
		}
	}
	return false
}

// applyMetadata sets metadata[k]=v on obj; an empty value removes k.
func applyMetadata(obj map[string]any, params map[string][]string, changed map[string]any) {
	md := obj["metadata"].(map[string]any)
	before := clone(md)
	for k, v := range sub(params, "metadata") {
		if v == "" {
			delete(md, k)
		} else {
			md[k] = v
		}
	}
	if len(before) != len(md) {
		changed["metadata"] = before
		return
	}
	for k, v := range md {
		if before[k] != v {
			changed["metadata"] = before
			return
		}
	}
}

// setText sets a nullable text field from a parameter ("" is null).
func setText(obj map[string]any, params map[string][]string, name string, changed map[string]any) {
	if !has(params, name) {
		return
	}
	var v any
	if s := first(params, name); s != "" {
		v = s
	}
	if obj[name] != v {
		changed[name] = obj[name]
		obj[name] = v
	}
}

func setBool(obj map[string]any, params map[string][]string, name string, changed map[string]any) *apiErr {
	if !has(params, name) {
		return nil
	}
	b, err := strconv.ParseBool(first(params, name))
	if err != nil {
		return badRequest("Invalid boolean: " + first(params, name))
	}
	if obj[name] != b {
		changed[name] = obj[name]
		obj[name] = b
	}
	return nil
}

var productParams = []string{"name", "active", "description", "metadata", "images", "statement_descriptor", "unit_label", "url", "tax_code", "shippable"}

func (f *Fake) createProduct(q req) (any, *apiErr) {
	if err := allowed(q.params, append(productParams, "id", "default_price_data")...); err != nil {
		return nil, err
	}
	if first(q.params, "name") == "" {
		return nil, badRequest("Missing required param: name.")
	}
	id := first(q.params, "id")
	if id == "" {
		id = f.nextID("prod")
	} else if _, dup := f.products[id]; dup {
		return nil, &apiErr{status: http.StatusBadRequest, typ: "invalid_request_error", code: "resource_already_exists", msg: "Product already exists."}
	}
	now := f.now().Unix()
	p := map[string]any{"id": id, "object": "product", "active": true, "created": now, "updated": now, "default_price": nil,
		"description": nil, "images": []any{}, "livemode": false, "marketing_features": []any{}, "metadata": map[string]any{},
		"name": "", "package_dimensions": nil, "shippable": nil, "statement_descriptor": nil, "tax_code": nil, "unit_label": nil,
		"url": nil, "_seq": f.seq}
	ignored := map[string]any{}
	setText(p, q.params, "name", ignored)
	setText(p, q.params, "description", ignored)
	setText(p, q.params, "statement_descriptor", ignored)
	setText(p, q.params, "unit_label", ignored)
	setText(p, q.params, "url", ignored)
	if err := setBool(p, q.params, "active", ignored); err != nil {
		return nil, err
	}
	applyMetadata(p, q.params, ignored)
	var price map[string]any
	if dp := sub(q.params, "default_price_data"); len(dp) > 0 {
		params := map[string][]string{"product": {id}}
		for k, v := range dp {
			params[k] = []string{v}
		}
		var err *apiErr
		if price, err = f.newPrice(params, true); err != nil {
			return nil, err
		}
		p["default_price"] = price["id"]
	}
	f.products[id] = p
	f.record("product.created", p, nil, q)
	if price != nil {
		f.prices[price["id"].(string)] = price
		f.record("price.created", price, nil, q)
	}
	return clone(p), nil
}

func (f *Fake) getProduct(q req, id string) (any, *apiErr) {
	p, ok := f.products[id]
	if !ok {
		return nil, missing("product", id)
	}
	out := clone(p)
	if expands(q.params, "default_price") {
		if dp, ok := p["default_price"].(string); ok {
			out["default_price"] = clone(f.prices[dp])
		}
	}
	return out, nil
}

func (f *Fake) updateProduct(q req, id string) (any, *apiErr) {
	p, ok := f.products[id]
	if !ok {
		return nil, missing("product", id)
	}
	if err := allowed(q.params, append(productParams, "default_price")...); err != nil {
		return nil, err
	}
	if has(q.params, "name") && first(q.params, "name") == "" {
		return nil, badRequest("You passed an empty string for 'name'. We assume empty values are an attempt to unset a parameter; however 'name' cannot be unset.")
	}
	changed := map[string]any{}
	if has(q.params, "default_price") {
		dp := first(q.params, "default_price")
		if pr, ok := f.prices[dp]; !ok || pr["product"] != id {
			return nil, badRequest("The price '" + dp + "' is not a price of product '" + id + "'.")
		}
	}
	for _, n := range []string{"name", "description", "statement_descriptor", "unit_label", "url", "default_price"} {
		setText(p, q.params, n, changed)
	}
	if err := setBool(p, q.params, "active", changed); err != nil {
		return nil, err
	}
	applyMetadata(p, q.params, changed)
	if len(changed) > 0 {
		p["updated"] = f.now().Unix()
		f.record("product.updated", p, changed, q)
	}
	return clone(p), nil
}

func (f *Fake) deleteProduct(q req, id string) (any, *apiErr) {
	p, ok := f.products[id]
	if !ok {
		return nil, missing("product", id)
	}
	for _, pr := range f.prices {
		if pr["product"] == id {
			return nil, badRequest("This product cannot be deleted because it has one or more user-created prices.")
		}
	}
	delete(f.products, id)
	f.record("product.deleted", p, nil, q)
	return map[string]any{"id": id, "object": "product", "deleted": true}, nil
}

var priceParams = []string{"active", "metadata", "nickname", "lookup_key", "transfer_lookup_key", "tax_behavior"}

func (f *Fake) createPrice(q req) (any, *apiErr) {
	if err := allowed(q.params, append(priceParams, "currency", "product", "unit_amount", "unit_amount_decimal", "recurring")...); err != nil {
		return nil, err
	}
	pid := first(q.params, "product")
	if pid == "" {
		return nil, badRequest("Missing required param: product.")
	}
	if _, ok := f.products[pid]; !ok {
		return nil, missing("product", pid)
	}
	p, err := f.newPrice(q.params, false)
	if err != nil {
		return nil, err
	}
	if lk, _ := p["lookup_key"].(string); lk != "" {
		for _, other := range f.prices {
			if other["lookup_key"] == lk {
				if first(q.params, "transfer_lookup_key") != "true" {
					return nil, badRequest("A price with lookup key '" + lk + "' already exists.")
				}
				other["lookup_key"] = nil
			}
		}
	}
	f.prices[p["id"].(string)] = p
	f.record("price.created", p, nil, q)
	return clone(p), nil
}

// newPrice makes a price object from create parameters.
func (f *Fake) newPrice(params map[string][]string, withProduct bool) (map[string]any, *apiErr) {
	cur := strings.ToLower(first(params, "currency"))
	if cur == "" {
		return nil, badRequest("Missing required param: currency.")
	}
	p := map[string]any{"id": f.nextID("price"), "object": "price", "active": true, "billing_scheme": "per_unit",
		"created": f.now().Unix(), "currency": cur, "custom_unit_amount": nil, "livemode": false, "lookup_key": nil,
		"metadata": map[string]any{}, "nickname": nil, "product": first(params, "product"), "recurring": nil,
		"tax_behavior": "unspecified", "tiers_mode": nil, "transform_quantity": nil, "type": "one_time",
		"unit_amount": nil, "unit_amount_decimal": nil, "_seq": f.seq}
	switch {
	case first(params, "unit_amount") != "":
		n, err := strconv.ParseInt(first(params, "unit_amount"), 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("Invalid integer: " + first(params, "unit_amount"))
		}
		p["unit_amount"], p["unit_amount_decimal"] = n, strconv.FormatInt(n, 10)
	case first(params, "unit_amount_decimal") != "":
		p["unit_amount_decimal"] = first(params, "unit_amount_decimal")
	default:
		return nil, badRequest("Missing required param: unit_amount.")
	}
	if r := sub(params, "recurring"); len(r) > 0 {
		count := int64(1)
		if c := r["interval_count"]; c != "" {
			count, _ = strconv.ParseInt(c, 10, 64)
		}
		p["recurring"] = map[string]any{"interval": r["interval"], "interval_count": count, "usage_type": "licensed", "aggregate_usage": nil, "meter": nil, "trial_period_days": nil}
		p["type"] = "recurring"
	}
	ignored := map[string]any{}
	setText(p, params, "nickname", ignored)
	setText(p, params, "lookup_key", ignored)
	if t := first(params, "tax_behavior"); t != "" {
		p["tax_behavior"] = t
	}
	if err := setBool(p, params, "active", ignored); err != nil {
		return nil, err
	}
	applyMetadata(p, params, ignored)
	return p, nil
}

func (f *Fake) getPrice(q req, id string) (any, *apiErr) {
	p, ok := f.prices[id]
	if !ok {
		return nil, missing("price", id)
	}
	out := clone(p)
	if expands(q.params, "product") {
		if pr, ok := f.products[p["product"].(string)]; ok {
			out["product"] = clone(pr)
		}
	}
	return out, nil
}

func (f *Fake) updatePrice(q req, id string) (any, *apiErr) {
	p, ok := f.prices[id]
	if !ok {
		return nil, missing("price", id)
	}
	if err := allowed(q.params, priceParams...); err != nil {
		return nil, err
	}
	if first(q.params, "active") == "false" {
		if pr, ok := f.products[p["product"].(string)]; ok && pr["default_price"] == id {
			return nil, badRequest("This price cannot be archived because it is the default price of its product.")
		}
	}
	changed := map[string]any{}
	setText(p, q.params, "nickname", changed)
	setText(p, q.params, "lookup_key", changed)
	if err := setBool(p, q.params, "active", changed); err != nil {
		return nil, err
	}
	applyMetadata(p, q.params, changed)
	if len(changed) > 0 {
		f.record("price.updated", p, changed, q)
	}
	return clone(p), nil
}
