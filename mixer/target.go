package mixer

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ColumnKind is the family of a PostgreSQL column type, which decides how a
// model value is written into it.
type ColumnKind uint8

// Column kinds. The PostgreSQL connector maps type OIDs to these.
const (
	ColText        ColumnKind = iota // text, varchar, char, uuid, enums and anything else read from text
	ColInteger                       // smallint, integer, bigint
	ColNumeric                       // numeric
	ColFloat                         // real, double precision
	ColBool                          // boolean
	ColTimestamptz                   // timestamp with time zone
	ColTimestamp                     // timestamp without time zone
	ColDate                          // date
	ColJSON                          // json, jsonb
)

func (k ColumnKind) String() string {
	return [...]string{"text", "integer", "numeric", "float", "boolean", "timestamptz", "timestamp", "date", "json"}[k]
}

// PGText renders a value as the text PostgreSQL's input function of a column
// of kind k accepts. null is true for SQL NULL. Numbers are written without
// exponent; a number with a fraction is refused by an integer column rather
// than rounded; a number written to a timestamp column is read as Unix
// seconds.
func PGText(v any, k ColumnKind) (text string, null bool, err error) {
	switch x := v.(type) {
	case nil:
		return "", true, nil
	case map[string]any, []any:
		if k != ColJSON && k != ColText {
			return "", false, fmt.Errorf("cannot write a nested %s to a %s column", KindOf(v), k)
		}
		b, err := json.Marshal(x)
		if err != nil {
			return "", false, err
		}
		return string(b), false, nil
	}
	if k == ColJSON {
		b, err := json.Marshal(v)
		if err != nil {
			return "", false, err
		}
		return string(b), false, nil
	}
	switch x := v.(type) {
	case bool:
		switch k {
		case ColBool, ColText:
			return strconv.FormatBool(x), false, nil
		case ColInteger, ColNumeric, ColFloat:
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
		case ColInteger, ColNumeric, ColFloat:
			if n, err := NormalizeNumber(x); err == nil {
				return numberText(n, k)
			}
			switch x {
			case "NaN", "Infinity", "-Infinity":
				if k != ColInteger {
					return x, false, nil
				}
			}
			return "", false, fmt.Errorf("cannot write string %s to a %s column", shortValue(x), k)
		}
		return x, false, nil
	}
	g, err := FromGo(v)
	if err != nil {
		return "", false, err
	}
	return PGText(g, k)
}

func numberText(n json.Number, k ColumnKind) (string, bool, error) {
	n, err := NormalizeNumber(string(n))
	if err != nil {
		return "", false, err
	}
	switch k {
	case ColInteger:
		i, ok := integralText(n)
		if !ok {
			return "", false, fmt.Errorf("cannot write %s to an integer column without losing its fraction", n)
		}
		return i, false, nil
	case ColTimestamptz, ColTimestamp:
		t, err := unixToRFC3339(n)
		if err != nil {
			return "", false, err
		}
		s := t.(string)
		if k == ColTimestamp {
			s = strings.TrimSuffix(s, "Z")
		}
		return s, false, nil
	case ColDate:
		return "", false, fmt.Errorf("cannot write number %s to a date column", n)
	case ColBool:
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

// FormValues flattens a nested target record into form parameters the way
// Stripe reads them: metadata[id]=3, items[0][price]=p. Numbers are written
// in plain decimal (never 1e+06), booleans as true/false, and null as an
// empty string, which Stripe reads as "unset".
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
		n, err := NormalizeNumber(string(x))
		return string(n), err
	case string:
		return x, nil
	}
	g, err := FromGo(v)
	if err != nil {
		return "", err
	}
	switch g.(type) {
	case map[string]any, []any:
		return "", fmt.Errorf("a nested %s is not a form value", KindOf(g))
	}
	return FormText(g)
}
