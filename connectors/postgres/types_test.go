package postgres

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/mixer"
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
		{oidJSONB, `{"id": 1e3, "tags": ["a", 2.50]}`, mixer.JSONText(`{"id": 1e3, "tags": ["a", 2.50]}`)},
		{oidJSON, ` {"b":1, "a":2, "b":"<"} `, mixer.JSONText(` {"b":1, "a":2, "b":"<"} `)},
		{oidJSONB, `null`, mixer.JSONText(`null`)},
		{oidJSONB, `"text"`, mixer.JSONText(`"text"`)},
		{25, "plain text", "plain text"},
		{2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
	}
	for _, c := range cases {
		got, err := decodeText(c.oid, []byte(c.in))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("decodeText(%d, %q) = %#v, %v; want %#v", c.oid, c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"{\"a\": \"\xff\"}", `{"a": }`, ``} {
		if got, err := decodeText(oidJSON, []byte(bad)); err == nil {
			t.Errorf("decodeText(json, %q) = %#v, want an error", bad, got)
		}
	}
}

func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"1", "1e+06", "2024-01-02 03:04:05+00", `{"a":1}`, "t", "NaN", "2024-01-02 03:04:05.123456-08", "2024-01-02 03:04:05+05:30", "2024-01-02 03:04:05+05:30:15", "2024-01-02 03:04:05", "0044-03-15 12:00:00+00 BC", "infinity"} {
		f.Add(uint32(oidTimestamptz), s)
		f.Add(uint32(oidJSONB), s)
		f.Add(uint32(oidFloat8), s)
	}
	f.Fuzz(func(t *testing.T, oid uint32, s string) {
		_, _ = decodeText(oid, []byte(s)) // must not panic
		for _, zone := range []bool{true, false} {
			if got, want := isoTimestamp([]byte(s), zone), isoTimestampRef(s, zone); got != want {
				t.Fatalf("isoTimestamp(%q, %v) = %q, want %q", s, zone, got, want)
			}
		}
	})
}

// isoTimestampRef is the plain-string statement of isoTimestamp, which
// rewrites in place to save allocations.
func isoTimestampRef(s string, withZone bool) string {
	if len(s) < 19 || s[10] != ' ' || strings.HasSuffix(s, " BC") {
		return s
	}
	t := s[:10] + "T" + s[11:]
	if !withZone {
		return t + "Z"
	}
	// The zone is +HH, +HH:MM or +HH:MM:SS after the time.
	i := strings.LastIndexAny(t, "+-")
	if i < 19 {
		return s
	}
	zone := t[i:]
	switch {
	case zone == "+00" || zone == "-00":
		return t[:i] + "Z"
	case len(zone) == 3:
		return t + ":00"
	case len(zone) == 9: // seconds in an offset: RFC 3339 has none
		return s
	}
	return t
}

// BenchmarkDecodeText is the source's cost per value of a row with a
// varchar, a bigint, a timestamp and a small jsonb document.
func BenchmarkDecodeText(b *testing.B) {
	vals := []struct {
		oid uint32
		in  []byte
	}{
		{1043, []byte("prod_NWjs8kKbJWmuuc")},
		{oidInt8, []byte("9007199254740993")},
		{oidTimestamptz, []byte("2024-01-02 03:04:05.123456+00")},
		{oidJSONB, []byte(`{"id": 42, "tags": ["a", "b"], "price": {"amount": 1250, "currency": "usd"}, "note": "<b>gold</b>"}`)},
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range vals {
			if _, err := decodeText(v.oid, v.in); err != nil {
				b.Fatal(err)
			}
		}
	}
}
