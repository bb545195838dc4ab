package postgres

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/mixer"
)

func TestPGTextPerKind(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   any
		kind columnKind
		want string
		null bool
		err  string
	}{
		{in: nil, kind: colInteger, null: true},
		{in: json.Number("1e+06"), kind: colInteger, want: "1000000"},
		{in: json.Number("9007199254740993"), kind: colInteger, want: "9007199254740993"},
		{in: json.Number("12.00"), kind: colInteger, want: "12"},
		{in: json.Number("12.5"), kind: colInteger, err: "without losing its fraction"},
		{in: json.Number("12.50"), kind: colNumeric, want: "12.50"},
		{in: "3.25", kind: colNumeric, want: "3.25"},
		{in: "NaN", kind: colNumeric, want: "NaN"},
		{in: "abc", kind: colInteger, err: "cannot write string"},
		{in: true, kind: colBool, want: "true"},
		{in: json.Number("1"), kind: colBool, want: "true"},
		{in: json.Number("1678833149"), kind: colTimestamptz, want: "2023-03-14T22:32:29Z"},
		{in: json.Number("1678833149"), kind: colTimestamp, want: "2023-03-14T22:32:29"},
		{in: "2024-01-02T03:04:05Z", kind: colTimestamptz, want: "2024-01-02T03:04:05Z"},
		{in: "a\x00b", kind: colText, err: "NUL byte"},
		{in: "Gold", kind: colJSON, want: `"Gold"`},
		{in: map[string]any{"id": json.Number("3")}, kind: colJSON, want: `{"id":3}`},
		{in: map[string]any{"id": 3}, kind: colInteger, err: "nested object"},
		{in: json.Number("7"), kind: colText, want: "7"},
		{in: "a<b>&c", kind: colJSON, want: `"a<b>&c"`},
		{in: mixer.JSONText(` {"a":1, "a":2, "b":"<"} `), kind: colJSON, want: ` {"a":1, "a":2, "b":"<"} `},
		{in: mixer.JSONText(`null`), kind: colJSON, want: `null`},
		{in: mixer.JSONText(`"Gold"`), kind: colText, want: `"Gold"`},
		{in: mixer.JSONText(`[1, 2]`), kind: colText, want: `[1, 2]`},
		{in: mixer.JSONText(`12.50`), kind: colNumeric, want: "12.50"},
		{in: mixer.JSONText(`1e3`), kind: colInteger, want: "1000"},
		{in: mixer.JSONText(`true`), kind: colBool, want: "true"},
		{in: mixer.JSONText(`null`), kind: colInteger, null: true},
		{in: mixer.JSONText(`{"a":1}`), kind: colInteger, err: "cannot write a JSON object to a integer column"},
		{in: map[string]any{"a": mixer.JSONText(`{"b" : [1]}`), "c": "<"}, kind: colJSON, want: `{"a":{"b":[1]},"c":"<"}`},
	}
	for _, c := range cases {
		got, null, err := pgText(c.in, c.kind)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("pgText(%#v, %s) = %q, %v; want error containing %q", c.in, c.kind, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || null != c.null {
			t.Errorf("pgText(%#v, %s) = %q, %v, %v; want %q, %v", c.in, c.kind, got, null, err, c.want, c.null)
		}
	}
}
