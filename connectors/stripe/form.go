package stripe

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/sqlpipe/remix/mixer"
)

// FormValues flattens a nested target record into form parameters the way
// Stripe reads them: metadata[id]=3, items[0][price]=p. Numbers are written
// in plain decimal (never 1e+06), booleans as true/false, and null as an
// empty string, which Stripe reads as "unset". A JSON value held by a model
// field (mixer.JSONText) is flattened like the object or array it holds.
func FormValues(fields map[string]any) (url.Values, error) {
	out := url.Values{}
	if err := addForm(out, "", fields); err != nil {
		return nil, err
	}
	return out, nil
}

func addForm(out url.Values, prefix string, v any) error {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "[" + k + "]"
	}
	switch x := v.(type) {
	case mixer.JSONText:
		d, err := x.Decode()
		if err != nil {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		return addForm(out, prefix, d)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := addForm(out, key(k), x[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		for i, e := range x {
			if err := addForm(out, key(strconv.Itoa(i)), e); err != nil {
				return err
			}
		}
		return nil
	}
	if prefix == "" {
		return fmt.Errorf("form values need a field name")
	}
	s, err := FormText(v)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	out.Add(prefix, s)
	return nil
}

// FormText renders one scalar as a form value.
func FormText(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		n, err := mixer.NormalizeNumber(string(x))
		return string(n), err
	case string:
		return x, nil
	case mixer.JSONText:
		d, err := x.Decode()
		if err != nil {
			return "", err
		}
		v = d
	}
	g, err := mixer.FromGo(v)
	if err != nil {
		return "", err
	}
	switch g.(type) {
	case map[string]any, []any:
		return "", fmt.Errorf("a nested %s is not a form value", mixer.KindOf(g))
	}
	return FormText(g)
}
