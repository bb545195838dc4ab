package stripe

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/mixer"
)

func TestFormValues(t *testing.T) {
	t.Parallel()
	got, err := FormValues(map[string]any{
		"name":        "Gold Plan",
		"unit_amount": json.Number("1e+06"),
		"big":         json.Number("9007199254740993"),
		"active":      false,
		"description": nil,
		"metadata":    map[string]any{"id": json.Number("3"), "deep": map[string]any{"x": "y"}},
		"items":       []any{map[string]any{"price": "p_1"}},
		"shipping":    mixer.JSONText(`{"city": "Oslo", "lines": ["a", 2.50]}`),
		"tax":         mixer.JSONText(`null`),
		"count":       mixer.JSONText(` 1e3 `),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"name":               {"Gold Plan"},
		"unit_amount":        {"1000000"},
		"big":                {"9007199254740993"},
		"active":             {"false"},
		"description":        {""},
		"metadata[id]":       {"3"},
		"metadata[deep][x]":  {"y"},
		"items[0][price]":    {"p_1"},
		"shipping[city]":     {"Oslo"},
		"shipping[lines][0]": {"a"},
		"shipping[lines][1]": {"2.50"},
		"tax":                {""},
		"count":              {"1000"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FormValues = %v\nwant %v", got, want)
	}
	if strings.Contains(got.Encode(), "e%2B") || strings.Contains(got.Encode(), "e+") {
		t.Fatalf("exponent notation in %s", got.Encode())
	}
}

func TestFormTextRefusesNestedValues(t *testing.T) {
	t.Parallel()
	for _, v := range []any{map[string]any{"a": "b"}, mixer.JSONText(`[1]`), mixer.JSONText(`{"a": 1}`)} {
		if got, err := FormText(v); err == nil {
			t.Errorf("FormText(%#v) = %q, want an error", v, got)
		}
	}
	if _, err := FormValues(map[string]any{"": mixer.JSONText(`1`)}); err == nil {
		t.Error("a form value without a name was accepted")
	}
}
