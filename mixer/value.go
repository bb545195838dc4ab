package mixer

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Values are what encoding/json produces with UseNumber, so they validate
// against JSON Schema as they are and never pass through float64:
//
//	nil            JSON null
//	bool           true / false
//	json.Number    a number, exact, always in plain decimal notation (no exponent)
//	string
//	map[string]any a nested object (source and target records only)
//	[]any          an array (source and target records only)
//	JSONText       a JSON value carried whole: a json/jsonb column's value,
//	               or an object or array held by a model field
//
// A model field holds nil, bool, json.Number, string or JSONText.
// An absent field is not a value: it is a key missing from its map.

// maxNumberDigits bounds how long a number may grow when its exponent is
// written out, so "1e999999999" is an error rather than a gigabyte string.
const maxNumberDigits = 4096

// NormalizeNumber checks that s is a JSON number (a leading '+' is tolerated)
// and rewrites it without an exponent, exactly: "1e+06" becomes "1000000",
// "1.5E-3" becomes "0.0015". Digits are kept as written otherwise, so a numeric
// "12.50" stays "12.50".
func NormalizeNumber(s string) (json.Number, error) {
	if plainNumber(s) {
		return json.Number(s), nil
	}
	neg := false
	body := s
	if len(body) > 0 && (body[0] == '-' || body[0] == '+') {
		neg = body[0] == '-'
		body = body[1:]
	}
	mant, expPart, hasExp := strings.Cut(strings.ToLower(body), "e")
	if !validMantissa(mant) || hasExp && expPart == "" {
		return "", fmt.Errorf("%q is not a number", s)
	}
	if !hasExp { // "+12.5"
		if neg {
			return json.Number("-" + mant), nil
		}
		return json.Number(mant), nil
	}
	exp, err := strconv.Atoi(expPart)
	if err != nil || len(expPart) > 12 {
		return "", fmt.Errorf("%q is not a number", s)
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + exp // position of the decimal point within digits
	if point > maxNumberDigits || point < -maxNumberDigits {
		return "", fmt.Errorf("%q is out of range (more than %d digits without an exponent)", s, maxNumberDigits)
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case point <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -point))
		b.WriteString(digits)
	case point >= len(digits):
		b.WriteString(trimLeadingZeros(digits + strings.Repeat("0", point-len(digits))))
	default:
		b.WriteString(trimLeadingZeros(digits[:point]))
		b.WriteByte('.')
		b.WriteString(digits[point:])
	}
	return json.Number(b.String()), nil
}

func trimLeadingZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

// plainNumber reports whether s is a JSON number without an exponent, the
// form every number takes inside Remix.
func plainNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
	}
	return validMantissa(s) && (len(s) == 1 || s[0] != '0' || s[1] == '.')
}

func validMantissa(s string) bool {
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) {
		return false
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return false
	}
	if hasPoint && (frac == "" || !allDigits(frac)) {
		return false
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IntegralText returns the integer spelling of a normalized number whose
// fraction is zero ("12.00" -> "12"), and false when the fraction is not
// zero: a number is an integer only without losing anything.
func IntegralText(n json.Number) (string, bool) {
	s := string(n)
	intPart, frac, ok := strings.Cut(s, ".")
	if !ok {
		return s, true
	}
	if strings.Trim(frac, "0") != "" {
		return "", false
	}
	if intPart == "-0" {
		intPart = "0"
	}
	return intPart, true
}

// NumberFromFloat converts a float64 to a number exactly as Go prints its
// shortest round-trip form; NaN and infinities are errors.
func NumberFromFloat(f float64) (json.Number, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%v is not a JSON number", f)
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), nil
}

// FromGo turns the Go values a connector may hold (ints, floats, times, byte
// slices, nested maps and slices) into Remix values.
func FromGo(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, JSONText:
		return x, nil
	case json.Number:
		return NormalizeNumber(string(x))
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	case int8:
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	case int16:
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), nil
	case uint:
		return json.Number(strconv.FormatUint(uint64(x), 10)), nil
	case uint8:
		return json.Number(strconv.FormatUint(uint64(x), 10)), nil
	case uint16:
		return json.Number(strconv.FormatUint(uint64(x), 10)), nil
	case uint32:
		return json.Number(strconv.FormatUint(uint64(x), 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(x, 10)), nil
	case float32:
		return NumberFromFloat(float64(x))
	case float64:
		return NumberFromFloat(x)
	case time.Time:
		return FormatTime(x), nil
	case []byte:
		return string(x), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := FromGo(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := FromGo(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of Go type %T", v)
}

// FormatTime renders t as RFC 3339 in UTC with as many fractional digits as
// it has.
func FormatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// KindOf names the JSON type of a value for error messages.
func KindOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		if _, ok := IntegralText(x); ok {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case JSONText:
		return x.Kind()
	}
	return fmt.Sprintf("%T", v)
}
