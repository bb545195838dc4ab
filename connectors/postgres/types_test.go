package postgres

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodeText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		oid  uint32
		in   string
		want any
	}{
		{oidInt8, "9007199254740993", json.Number("9007199254740993")},
		{oidNumeric, "12.50", json.Number("12.50")},
		{oidNumeric, "NaN", "NaN"},
		{oidFloat8, "1e+06", json.Number("1000000")},
		{oidFloat8, "-Infinity", "-Infinity"},
		{oidBool, "t", true},
		{oidTimestamptz, "2024-01-02 03:04:05.123456+00", "2024-01-02T03:04:05.123456Z"},
		{oidTimestamptz, "2024-01-02 03:04:05+05:30", "2024-01-02T03:04:05+05:30"},
		{oidTimestamptz, "2024-01-02 03:04:05-08", "2024-01-02T03:04:05-08:00"},
		{oidTimestamptz, "infinity", "infinity"},
		{oidTimestamptz, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"},
		{oidTimestamp, "2024-01-02 03:04:05", "2024-01-02T03:04:05Z"},
		{oidJSONB, `{"id": 1e3, "tags": ["a", 2.50]}`, map[string]any{"id": json.Number("1000"), "tags": []any{"a", json.Number("2.50")}}},
		{25, "plain text", "plain text"},
		{2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
	}
	for _, c := range cases {
		got, err := decodeText(c.oid, []byte(c.in))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("decodeText(%d, %q) = %#v, %v; want %#v", c.oid, c.in, got, err, c.want)
		}
	}
}

func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"1", "1e+06", "2024-01-02 03:04:05+00", `{"a":1}`, "t", "NaN"} {
		f.Add(uint32(oidTimestamptz), s)
		f.Add(uint32(oidJSONB), s)
		f.Add(uint32(oidFloat8), s)
	}
	f.Fuzz(func(t *testing.T, oid uint32, s string) {
		_, _ = decodeText(oid, []byte(s)) // must not panic
		_ = isoTimestamp(s, true)
		_ = isoTimestamp(s, false)
	})
}
