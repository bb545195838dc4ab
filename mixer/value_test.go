package mixer

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNormalizeNumber(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want, err string }{
		{in: "0", want: "0"},
		{in: "42", want: "42"},
		{in: "-7", want: "-7"},
		{in: "12.50", want: "12.50"},
		{in: "9007199254740993", want: "9007199254740993"}, // 2^53+1 survives
		{in: "18446744073709551617", want: "18446744073709551617"},
		{in: "1e+06", want: "1000000"}, // PostgreSQL float8 output for a million
		{in: "1e6", want: "1000000"},
		{in: "1E6", want: "1000000"},
		{in: "-2.5e3", want: "-2500"},
		{in: "1.5e-3", want: "0.0015"},
		{in: "12e-1", want: "1.2"},
		{in: "0.05e1", want: "0.5"},
		{in: "0e10", want: "0"},
		{in: "1.50e1", want: "15.0"},
		{in: "+5", want: "5"},
		{in: "+1e2", want: "100"},
		{in: "", err: "not a number"},
		{in: "abc", err: "not a number"},
		{in: "01", err: "not a number"},
		{in: "1.", err: "not a number"},
		{in: ".5", err: "not a number"},
		{in: "1e", err: "not a number"},
		{in: "--1", err: "not a number"},
		{in: "NaN", err: "not a number"},
		{in: "1e999999999", err: "out of range"},
		{in: "1e-999999999", err: "out of range"},
	}
	for _, c := range cases {
		got, err := NormalizeNumber(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("NormalizeNumber(%q) = %q, %v; want error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("NormalizeNumber(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestFromGo(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 3, 1, 12, 30, 0, 123000000, time.FixedZone("x", 3600))
	cases := []struct {
		in   any
		want any
	}{
		{int64(math.MaxInt64), json.Number("9223372036854775807")},
		{uint64(math.MaxUint64), json.Number("18446744073709551615")},
		{int32(-5), json.Number("-5")},
		{float64(1e6), json.Number("1000000")},
		{float64(0.1), json.Number("0.1")},
		{ts, "2024-03-01T11:30:00.123Z"},
		{[]byte("raw"), "raw"},
		{map[string]any{"n": 1}, map[string]any{"n": json.Number("1")}},
	}
	for _, c := range cases {
		got, err := FromGo(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("FromGo(%#v) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	if _, err := FromGo(math.NaN()); err == nil {
		t.Error("FromGo(NaN) succeeded")
	}
	if _, err := FromGo(struct{}{}); err == nil {
		t.Error("FromGo(struct) succeeded")
	}
}

func TestToModel(t *testing.T) {
	t.Parallel()
	prop := func(types TypeSet, format string) *Property {
		return &Property{Name: "f", Types: types, Format: format}
	}
	cases := []struct {
		name string
		in   any
		p    *Property
		want any
		err  string
	}{
		{name: "null stays null", in: nil, p: prop(TypeString, ""), want: nil},
		{name: "int to integer", in: json.Number("42"), p: prop(TypeInteger, ""), want: json.Number("42")},
		{name: "2^53+1 to integer", in: json.Number("9007199254740993"), p: prop(TypeInteger, ""), want: json.Number("9007199254740993")},
		{name: "exponent to integer", in: json.Number("1e+06"), p: prop(TypeInteger, ""), want: json.Number("1000000")},
		{name: "whole decimal to integer", in: json.Number("12.000"), p: prop(TypeInteger, ""), want: json.Number("12")},
		{name: "fraction to integer", in: json.Number("12.5"), p: prop(TypeInteger, ""), err: "without losing its fraction"},
		{name: "decimal stays exact", in: json.Number("12345678901234567890.123456789"), p: prop(TypeNumber, ""), want: json.Number("12345678901234567890.123456789")},
		{name: "number to string", in: json.Number("3"), p: prop(TypeString|TypeNull, ""), want: "3"},
		{name: "number to number|null|string keeps number", in: json.Number("3"), p: prop(TypeNumber|TypeNull|TypeString, ""), want: json.Number("3")},
		{name: "unix seconds to date-time", in: json.Number("1678833149"), p: prop(TypeString, "date-time"), want: "2023-03-14T22:32:29Z"},
		{name: "numeric string to number", in: "1234.5", p: prop(TypeNumber|TypeNull, ""), want: json.Number("1234.5")},
		{name: "numeric string to integer", in: "77", p: prop(TypeInteger, ""), want: json.Number("77")},
		{name: "text to integer", in: "seven", p: prop(TypeInteger, ""), err: `cannot convert string "seven" to integer`},
		{name: "string to boolean", in: "true", p: prop(TypeBoolean, ""), want: true},
		{name: "string kept", in: "Gold Plan", p: prop(TypeString, ""), want: "Gold Plan"},
		{name: "invalid UTF-8", in: "Gold\xffPlan", p: prop(TypeString, ""), err: "not valid UTF-8"},
		{name: "bool to string", in: false, p: prop(TypeString, ""), want: "false"},
		{name: "bool to number", in: true, p: prop(TypeNumber, ""), err: "cannot convert boolean true to number"},
		{name: "object to string as JSON", in: map[string]any{"a": json.Number("1")}, p: prop(TypeString, ""), want: `{"a":1}`},
		{name: "object to number", in: map[string]any{"a": 1}, p: prop(TypeNumber, ""), err: "make the field an object"},
		{name: "untyped keeps value", in: json.Number("5"), p: prop(0, ""), want: json.Number("5")},
		{name: "go int64", in: int64(9007199254740993), p: prop(TypeInteger, ""), want: json.Number("9007199254740993")},
		{name: "go time", in: time.Unix(0, 0), p: prop(TypeString, "date-time"), want: "1970-01-01T00:00:00Z"},
	}
	for _, c := range cases {
		got, err := ToModel(c.in, c.p)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: ToModel = %#v, %v; want error containing %q", c.name, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: ToModel = %#v, %v; want %#v", c.name, got, err, c.want)
		}
	}
}
