package mysql

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// typeColumns are a column of each type and the value a row holds, as SQL
// and as the source must deliver it.
var typeColumns = []struct {
	name, typ, sql string
	want           any
}{
	{"u8", "TINYINT UNSIGNED", "255", json.Number("255")},
	{"u24", "MEDIUMINT UNSIGNED", "16777215", json.Number("16777215")},
	{"u64", "BIGINT UNSIGNED", "18446744073709551615", json.Number("18446744073709551615")},
	{"i64", "BIGINT", "-9223372036854775808", json.Number("-9223372036854775808")},
	{"dc", "DECIMAL(65,30)", "12345678901234567890123456789012345.123456789012345678901234567890", json.Number("12345678901234567890123456789012345.123456789012345678901234567890")},
	{"dbl", "DOUBLE", "0.1", json.Number("0.1")},
	{"flt", "FLOAT", "1.5", json.Number("1.5")},
	{"dt", "DATETIME(6)", "'2024-02-29 23:59:59.123456'", "2024-02-29T23:59:59.123456Z"},
	{"ts", "TIMESTAMP(6) NULL", "'2024-01-02 03:04:05.5'", "2024-01-02T03:04:05.500000Z"},
	{"d", "DATE", "'1999-12-31'", "1999-12-31"},
	{"zdt", "DATETIME", "'0000-00-00 00:00:00'", nil},
	{"zd", "DATE", "'0000-00-00'", nil},
	{"tm", "TIME(1)", "'-838:59:59.0'", "-838:59:59.0"},
	{"yr", "YEAR", "2155", json.Number("2155")},
	{"js", "JSON", `'{"a": [1, 2.50, "x"], "b": null}'`, "json"},
	{"en", "ENUM('small','large')", "'large'", "large"},
	{"st", "SET('x','y','z')", "'x,z'", "x,z"},
	{"b1", "BIT(1)", "b'1'", true},
	{"b12", "BIT(12)", "b'100000000001'", json.Number("2049")},
	{"bin", "BINARY(4)", "X'0102'", "AQIAAA=="},
	{"vbin", "VARBINARY(8)", "X'00FF00'", "AP8A"},
	{"blb", "BLOB", "X'DEADBEEF'", "3q2+7w=="},
	{"emoji", "TEXT CHARACTER SET utf8mb4", "'naïve 😀 ok'", "naïve 😀 ok"},
	{"lat", "VARCHAR(20) CHARACTER SET latin1", "'Grüße €'", "Grüße €"},
	{"cyr", "VARCHAR(20) CHARACTER SET cp1251", "'Привет'", "Привет"},
	{"nul", "VARCHAR(5)", "NULL", nil},
}

// TestTypesExact reads one row of every type through the snapshot and an
// identical one through the binary log: both arrive exactly as the table
// says.
func TestTypesExact(t *testing.T) {
	t.Parallel()
	d := newTestDB(t)
	var cols, props, vals []string
	var fields []mixer.ReceiveField
	for _, c := range typeColumns {
		cols = append(cols, c.name+" "+c.typ)
		props = append(props, fmt.Sprintf("%q: {}", c.name))
		vals = append(vals, c.sql)
		fields = append(fields, mixer.ReceiveField{Source: mixer.MustPath(c.name), Field: c.name})
	}
	d.exec(t, `CREATE TABLE types (id INT PRIMARY KEY, `+strings.Join(cols, ", ")+`)`)
	insert := func(id int) {
		// Zero dates need a lenient session; Remix's own are strict.
		d.exec(t, `SET SESSION sql_mode = ''; INSERT INTO types VALUES (`+fmt.Sprint(id)+`, `+strings.Join(vals, ", ")+`); SET SESSION sql_mode = DEFAULT`)
	}
	insert(1)
	model, err := mixer.CompileModel("mem:///types.json", []byte(`{"title": "types", "properties": {"id": {}, `+strings.Join(props, ", ")+`}}`))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewReceiveRule(model, append(fields, mixer.ReceiveField{Source: mixer.MustPath("id"), Field: "id"}))
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add(d.name+".types", rule)
	sys := testSystem(testenv.UniqueName("types"), d.url, recv, nil, map[string]any{SettingHeartbeat: defaultTestHeartbeat})
	src, err := NewSource(sys, connectors.SourceDeps{Checkpoints: &connectortest.Checkpoints{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	got := map[string]map[string]any{}
	inserted := false
	for len(got) < 2 {
		b, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b.Changes {
			if c.Err != nil {
				t.Fatalf("change of %s: %v", c.Key, c.Err)
			}
			got[fmt.Sprint(c.Record.Fields["id"])] = c.Record.Fields
		}
		if len(got) == 1 && !inserted {
			inserted = true
			insert(2) // after the snapshot row: read from the log
		}
	}
	for _, id := range []string{"1", "2"} {
		row := got[id]
		for _, c := range typeColumns {
			v := row[c.name]
			if c.want == "json" {
				j, ok := v.(mixer.JSONText)
				var dec any
				if ok {
					dec, _ = j.Decode()
				}
				want := map[string]any{"a": []any{json.Number("1"), json.Number("2.50"), "x"}, "b": nil}
				if !ok || !reflect.DeepEqual(dec, want) && !reflect.DeepEqual(dec, map[string]any{"a": []any{json.Number("1"), json.Number("2.5"), "x"}, "b": nil}) {
					t.Errorf("row %s column %s = %#v, want the JSON value whole", id, c.name, v)
				}
				continue
			}
			if !reflect.DeepEqual(v, c.want) {
				t.Errorf("row %s (%s) column %s %s = %#v, want %#v", id, map[string]string{"1": "snapshot", "2": "binary log"}[id], c.name, c.typ, v, c.want)
			}
		}
	}
}
