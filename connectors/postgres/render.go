package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/sqlpipe/remix/mixer"
)

// columnKind is the family of a column type, which decides how a model
// value is written into it.
type columnKind uint8

// Column kinds; kindOf maps type OIDs to them.
const (
	colText        columnKind = iota // text, varchar, char, uuid, enums and anything else read from text
	colInteger                       // smallint, integer, bigint
	colNumeric                       // numeric
	colFloat                         // real, double precision
	colBool                          // boolean
	colTimestamptz                   // timestamp with time zone
	colTimestamp                     // timestamp without time zone
	colDate                          // date
	colJSON                          // json, jsonb
)

func (k columnKind) String() string {
	return [...]string{"text", "integer", "numeric", "float", "boolean", "timestamptz", "timestamp", "date", "json"}[k]
}

// pgText renders a value as the text PostgreSQL's input function of a
// column of kind k accepts. null is true for SQL NULL. Numbers are written
// without exponent; a number with a fraction is refused by an integer
// column rather than rounded; a number written to a timestamp column is
// read as Unix seconds. A JSON value (mixer.JSONText) goes to a json, jsonb
// or text column as its text, byte for byte, its JSON null included (the
// text null, not SQL NULL); to another column a JSON scalar goes as that
// scalar.
func pgText(v any, k columnKind) (text string, null bool, err error) {
	switch x := v.(type) {
	case nil:
		return "", true, nil
	case mixer.JSONText:
		if k == colJSON || k == colText {
			return string(x), false, nil
		}
		d, err := x.Decode()
		if err != nil {
			return "", false, err
		}
		switch d.(type) {
		case map[string]any, []any:
			return "", false, fmt.Errorf("cannot write a JSON %s to a %s column", x.Kind(), k)
		}
		return pgText(d, k) // JSON null becomes NULL: the column has no other null
	case map[string]any, []any:
		if k != colJSON && k != colText {
			return "", false, fmt.Errorf("cannot write a nested %s to a %s column", mixer.KindOf(v), k)
		}
		return jsonText(x)
	}
	if k == colJSON {
		return jsonText(v)
	}
	switch x := v.(type) {
	case bool:
		switch k {
		case colBool, colText:
			return strconv.FormatBool(x), false, nil
		case colInteger, colNumeric, colFloat:
			if x {
				return "1", false, nil
			}
			return "0", false, nil
		}
		return "", false, fmt.Errorf("cannot write boolean to a %s column", k)
	case json.Number:
		return numberText(x, k)
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return "", false, fmt.Errorf("string holds a NUL byte, which PostgreSQL text cannot store")
		}
		switch k {
		case colInteger, colNumeric, colFloat:
			if n, err := mixer.NormalizeNumber(x); err == nil {
				return numberText(n, k)
			}
			switch x {
			case "NaN", "Infinity", "-Infinity":
				if k != colInteger {
					return x, false, nil
				}
			}
			return "", false, fmt.Errorf("cannot write string %s to a %s column", quoteShort(x), k)
		}
		return x, false, nil
	}
	g, err := mixer.FromGo(v)
	if err != nil {
		return "", false, err
	}
	return pgText(g, k)
}

func numberText(n json.Number, k columnKind) (string, bool, error) {
	n, err := mixer.NormalizeNumber(string(n))
	if err != nil {
		return "", false, err
	}
	switch k {
	case colInteger:
		i, ok := mixer.IntegralText(n)
		if !ok {
			return "", false, fmt.Errorf("cannot write %s to an integer column without losing its fraction", n)
		}
		return i, false, nil
	case colTimestamptz, colTimestamp:
		s, err := mixer.UnixToRFC3339(n)
		if err != nil {
			return "", false, err
		}
		if k == colTimestamp {
			s = strings.TrimSuffix(s, "Z")
		}
		return s, false, nil
	case colDate:
		return "", false, fmt.Errorf("cannot write number %s to a date column", n)
	case colBool:
		switch n {
		case "0":
			return "false", false, nil
		case "1":
			return "true", false, nil
		}
		return "", false, fmt.Errorf("cannot write number %s to a boolean column", n)
	}
	return string(n), false, nil
}

// jsonText writes v as JSON for a json or jsonb column: compact, numbers
// as held, and without escaping <, > and & (a json column keeps what it is
// given).
func jsonText(v any) (string, bool, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false, err
	}
	return strings.TrimSuffix(b.String(), "\n"), false, nil
}

// quoteShort quotes a string for an error message, shortened so a large
// value does not flood a log line.
func quoteShort(s string) string {
	if len(s) > 48 {
		s = strings.ToValidUTF8(s[:45], "") + "..."
	}
	return strconv.Quote(s)
}
