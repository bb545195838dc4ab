package mysql

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sqlpipe/remix/mixer"
)

// param renders a model value as the parameter a column of c takes: nil
// for NULL. A value that cannot go into the column without changing is an
// error (the record is dead-lettered): a fraction for an integer column, a
// negative number for an unsigned one, text that is not base64 for a
// binary column. What the column's own type then refuses (too long, out of
// range, an invalid date) the strict sql_mode refuses.
func param(v any, c *column) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case mixer.JSONText:
		if c.json || c.kind() == kindText {
			return string(x), nil
		}
		d, err := x.Decode()
		if err != nil {
			return nil, err
		}
		switch d.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("cannot write a JSON %s to a %s column", x.Kind(), c.dataType)
		}
		return param(d, c) // JSON null becomes NULL: the column has no other null
	case map[string]any, []any:
		if !c.json && c.kind() != kindText {
			return nil, fmt.Errorf("cannot write a nested %s to a %s column", mixer.KindOf(v), c.dataType)
		}
		return jsonString(x)
	}
	if c.json {
		return jsonString(v)
	}
	switch x := v.(type) {
	case bool:
		switch c.kind() {
		case kindInt, kindDecimal, kindFloat, kindBit:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case kindText:
			return strconv.FormatBool(x), nil
		}
		return nil, fmt.Errorf("cannot write a boolean to a %s column", c.dataType)
	case json.Number:
		return numberParam(string(x), c)
	case string:
		switch c.kind() {
		case kindInt, kindDecimal, kindFloat, kindBit, kindYear:
			if _, err := mixer.NormalizeNumber(x); err != nil {
				return nil, fmt.Errorf("cannot write string %s to a %s column", quoteShort(x), c.dataType)
			}
			return numberParam(x, c)
		case kindBinary:
			b, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				return nil, fmt.Errorf("a %s column takes base64 text (as the mysql source reads binary values): %w", c.dataType, err)
			}
			return b, nil
		case kindDatetime, kindTimestamp:
			return datetimeParam(x, c)
		case kindDate:
			return dateParam(x)
		}
		return x, nil
	}
	g, err := mixer.FromGo(v)
	if err != nil {
		return nil, err
	}
	return param(g, c)
}

// numberParam renders a number for a column: integers exactly (unsigned up
// to 2^64-1), decimals in plain notation; a number for a DATETIME or
// TIMESTAMP column is Unix seconds.
func numberParam(s string, c *column) (any, error) {
	n, err := mixer.NormalizeNumber(s)
	if err != nil {
		return nil, err
	}
	switch c.kind() {
	case kindInt, kindBit, kindYear:
		i, ok := mixer.IntegralText(n)
		if !ok {
			return nil, fmt.Errorf("cannot write %s to a %s column without losing its fraction", n, c.dataType)
		}
		if c.unsigned || c.kind() == kindBit {
			u, err := strconv.ParseUint(i, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s does not fit a %s column", i, c.columnType)
			}
			return u, nil
		}
		v, err := strconv.ParseInt(i, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s does not fit a %s column", i, c.columnType)
		}
		return v, nil
	case kindDecimal, kindFloat, kindText:
		return string(n), nil
	case kindDatetime, kindTimestamp:
		r, err := mixer.UnixToRFC3339(n)
		if err != nil {
			return nil, err
		}
		return datetimeParam(r, c)
	}
	return nil, fmt.Errorf("cannot write number %s to a %s column", n, c.dataType)
}

// datetimeParam turns an RFC 3339 timestamp into the UTC wall-clock time a
// DATETIME or TIMESTAMP column takes (sessions run in UTC). Text already in
// MySQL's form (2024-01-02 03:04:05.5) goes as it is.
func datetimeParam(s string, c *column) (any, error) {
	if len(s) >= 19 && s[10] == ' ' {
		return s, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if len(s) == 10 { // a date alone: midnight
			return s + " 00:00:00", nil
		}
		return nil, fmt.Errorf("cannot write %s to a %s column: not an RFC 3339 timestamp", quoteShort(s), c.dataType)
	}
	return t.UTC().Format("2006-01-02 15:04:05.999999999"), nil
}

// dateParam takes a date, or a timestamp at midnight UTC.
func dateParam(s string) (any, error) {
	if len(s) <= 10 {
		return s, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("cannot write %s to a date column", quoteShort(s))
	}
	u := t.UTC()
	if u.Hour() != 0 || u.Minute() != 0 || u.Second() != 0 || u.Nanosecond() != 0 {
		return nil, fmt.Errorf("cannot write %s to a date column without losing its time of day", quoteShort(s))
	}
	return u.Format("2006-01-02"), nil
}

// jsonString writes v as compact JSON without escaping <, > and &.
func jsonString(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// keyText is a rendered search-key parameter as text, to find a row twice
// in one batch.
func keyText(p any) string {
	switch x := p.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	}
	return fmt.Sprint(p)
}

// quoteShort quotes a string for an error message, shortened.
func quoteShort(s string) string {
	if len(s) > 48 {
		s = strings.ToValidUTF8(s[:45], "") + "..."
	}
	return strconv.Quote(s)
}

// paramSize estimates the bytes a parameter adds to a statement.
func paramSize(p any) int {
	switch x := p.(type) {
	case string:
		return len(x) + 3
	case []byte:
		return 2*len(x) + 10
	}
	return 21
}
