package blob

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sqlpipe/remix/mixer"
)

// kind is how a data column is typed in a file.
type kind uint8

const (
	kindString    kind = iota // text as it is
	kindText                  // any scalar as its text: exact numbers, unions of types
	kindInt64                 // INT64
	kindDecimal               // DECIMAL(precision, scale)
	kindDouble                // DOUBLE
	kindBool                  // BOOLEAN
	kindTimestamp             // TIMESTAMP(MICROS, UTC)
	kindDate                  // DATE
	kindJSON                  // JSON text
)

// column is one data column of a dataset: a target field of the push
// rule and the type the model gives it.
type column struct {
	name      string // the target field: the column's name
	field     string // the model field
	kind      kind
	precision int // kindDecimal
	scale     int // kindDecimal
	key       bool
}

// MetaPrefix starts every metadata column's name; no data column may.
const MetaPrefix = "_remix_"

// The metadata columns every row carries, after the data columns.
const (
	ColOp        = "_remix_op"           // upsert, delete, truncate
	ColKey       = "_remix_key"          // the search key as text
	ColVersion   = "_remix_version"      // orders a key's changes; see version.go
	ColCommitted = "_remix_committed_at" // source commit time, UTC
	ColCreated   = "_remix_created"      // the change created the row (insert, snapshot)
	ColAbsent    = "_remix_absent"       // data columns the change did not carry
	ColSource    = "_remix_source"       // the system the change was read from
	ColPosition  = "_remix_position"     // its position there
	ColSystem    = "_remix_system"       // where the change was first made, when not the source
)

var decimalFormat = regexp.MustCompile(`^decimal\((\d+),\s*(\d+)\)$`)

// errNeedsModel is the error of a column whose model is unknown.
var errNeedsModel = errors.New("no model")

// columnOf types a push field from its model property (nil for a
// hardcoded field) or its constant.
func columnOf(f mixer.PushField, p *mixer.Property) (column, error) {
	c := column{name: f.Target.String(), field: f.Field, key: f.SearchKey}
	if f.HasHardcode {
		switch v := f.Hardcode.(type) {
		case bool:
			c.kind = kindBool
		case json.Number:
			if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				c.kind = kindInt64
			} else {
				c.kind = kindText
			}
		case mixer.JSONText:
			c.kind = kindJSON
		default:
			c.kind = kindString
		}
		return c, nil
	}
	if p == nil {
		return c, errNeedsModel
	}
	types := p.Types &^ mixer.TypeNull
	switch {
	case types == 0 || types&(mixer.TypeObject|mixer.TypeArray) != 0:
		c.kind = kindJSON
	case types == mixer.TypeBoolean:
		c.kind = kindBool
	case types == mixer.TypeInteger || types == mixer.TypeNumber || types == mixer.TypeInteger|mixer.TypeNumber:
		switch m := decimalFormat.FindStringSubmatch(p.Format); {
		case m != nil:
			c.kind = kindDecimal
			c.precision, _ = strconv.Atoi(m[1])
			c.scale, _ = strconv.Atoi(m[2])
			if c.precision < 1 || c.precision > 38 || c.scale > c.precision {
				return c, fmt.Errorf("model field %s: format %q: a decimal has a precision from 1 to 38 and a scale no larger", f.Field, p.Format)
			}
		case p.Format == "uint64":
			c.kind, c.precision = kindDecimal, 20
		case p.Format == "double" || p.Format == "float":
			c.kind = kindDouble
		case types == mixer.TypeInteger:
			c.kind = kindInt64
		default:
			c.kind = kindText // exact: the number as written
		}
	case types == mixer.TypeString:
		switch p.Format {
		case "date-time":
			c.kind = kindTimestamp
		case "date":
			c.kind = kindDate
		default:
			c.kind = kindString
		}
	default:
		c.kind = kindText
	}
	return c, nil
}

// typeName is the column's type as DuckDB spells it, for messages and
// the queries `remix datasets` prints.
func (c column) typeName() string {
	switch c.kind {
	case kindInt64:
		return "BIGINT"
	case kindDecimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", c.precision, c.scale)
	case kindDouble:
		return "DOUBLE"
	case kindBool:
		return "BOOLEAN"
	case kindTimestamp:
		return "TIMESTAMP WITH TIME ZONE"
	case kindDate:
		return "DATE"
	case kindJSON:
		return "JSON"
	}
	return "VARCHAR"
}

// cell is a converted value: what one column of one row holds.
type cell struct {
	null bool
	i    int64    // int64, date (days), timestamp (µs), bool (0/1)
	f    float64  // double
	s    string   // string, text, JSON, decimal (its exact text, scale applied)
	d    *big.Int // decimal: the unscaled value
}

// convert turns a model value into the column's cell. An error is the
// record's fault (a value the column cannot hold), never altered to fit.
func (c *column) convert(v any) (cell, error) {
	if v == nil {
		return cell{null: true}, nil
	}
	switch c.kind {
	case kindString:
		if s, ok := v.(string); ok {
			return cell{s: s}, nil
		}
		return cell{s: textOf(v)}, nil
	case kindText:
		return cell{s: textOf(v)}, nil
	case kindJSON:
		if j, ok := v.(mixer.JSONText); ok {
			return cell{s: string(j)}, nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return cell{}, err
		}
		return cell{s: string(b)}, nil
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return cell{}, fmt.Errorf("expected a boolean, found %s", mixer.KindOf(v))
		}
		if b {
			return cell{i: 1}, nil
		}
		return cell{}, nil
	case kindInt64:
		n, ok := v.(json.Number)
		if !ok {
			return cell{}, fmt.Errorf("expected an integer, found %s", mixer.KindOf(v))
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return cell{}, fmt.Errorf("%s does not fit a 64-bit integer column (declare the model field with \"format\": \"uint64\" or \"decimal(P,0)\")", n)
		}
		return cell{i: i}, nil
	case kindDouble:
		n, ok := v.(json.Number)
		if !ok {
			return cell{}, fmt.Errorf("expected a number, found %s", mixer.KindOf(v))
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) {
			return cell{}, fmt.Errorf("%s does not fit a double", n)
		}
		return cell{f: f}, nil
	case kindDecimal:
		n, ok := v.(json.Number)
		if !ok {
			return cell{}, fmt.Errorf("expected a number, found %s", mixer.KindOf(v))
		}
		return decimalCell(string(n), c.precision, c.scale)
	case kindTimestamp:
		s, ok := v.(string)
		if !ok {
			return cell{}, fmt.Errorf("expected a date-time string, found %s", mixer.KindOf(v))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return cell{}, fmt.Errorf("%q is not an RFC 3339 date-time", s)
		}
		if t.Nanosecond()%1000 != 0 {
			return cell{}, fmt.Errorf("%q is more precise than the microseconds a timestamp column holds", s)
		}
		return cell{i: t.UnixMicro()}, nil
	case kindDate:
		s, ok := v.(string)
		if !ok {
			return cell{}, fmt.Errorf("expected a date string, found %s", mixer.KindOf(v))
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return cell{}, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
		}
		return cell{i: t.Unix() / 86400}, nil
	}
	return cell{}, fmt.Errorf("column kind %d", c.kind)
}

// textOf is a scalar's text: a number as written, a boolean as true or
// false, JSON as its text.
func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case mixer.JSONText:
		return string(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// decimalCell reads an exact decimal into a DECIMAL(precision, scale):
// digits past the scale must be zeros (a value is never rounded), and the
// digits must fit the precision.
func decimalCell(s string, precision, scale int) (cell, error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(body, ".")
	if intPart == "" || strings.ContainsAny(intPart+frac, "eE+-") {
		return cell{}, fmt.Errorf("%s is not a plain decimal", s)
	}
	if len(frac) > scale {
		if strings.Trim(frac[scale:], "0") != "" {
			return cell{}, fmt.Errorf("%s has more than the %d decimal places of its DECIMAL(%d,%d) column", s, scale, precision, scale)
		}
		frac = frac[:scale]
	}
	frac += strings.Repeat("0", scale-len(frac))
	digits := strings.TrimLeft(intPart+frac, "0")
	if len(digits) > precision {
		return cell{}, fmt.Errorf("%s does not fit its DECIMAL(%d,%d) column", s, precision, scale)
	}
	d, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return cell{}, fmt.Errorf("%s is not a plain decimal", s)
	}
	if neg {
		d.Neg(d)
	}
	return cell{d: d, s: formatDecimal(d, scale)}, nil
}

// formatDecimal writes an unscaled value with its scale: 12345, 2 is
// 123.45.
func formatDecimal(d *big.Int, scale int) string {
	s := new(big.Int).Abs(d).String()
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if d.Sign() < 0 {
		s = "-" + s
	}
	return s
}
