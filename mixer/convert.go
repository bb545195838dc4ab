package mixer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ToModel converts a source value to what the model property holds. It never
// loses precision: numbers stay decimal text, a fraction never becomes an
// integer, and anything that does not fit is an error that names the types.
//
//   - null stays null (the schema decides whether null is allowed);
//   - a number goes to number or integer (when it has no fraction), else to
//     string as its decimal text;
//   - a string goes to string; else to number/integer when it is a number's
//     text (Stripe sends decimals as strings); else to boolean for
//     "true"/"false";
//   - a boolean goes to boolean, else to string;
//   - a number into a string property with format date-time is read as Unix
//     seconds (Stripe's timestamps) and written as RFC 3339;
//   - a JSON value (JSONText) goes whole to a property that is untyped or
//     allows an object or an array, as it is; otherwise a JSON scalar is
//     converted as that scalar (JSON null to null), and an object or array
//     goes to a string property as its text;
//   - a nested object or array (a Stripe field, a value found through a
//     path) goes whole to a property that is untyped or allows an object or
//     an array, as compact JSON text; to a string property as that text.
//
// Models map top-level fields only: a nested value is carried, never mapped
// into.
func ToModel(v any, p *Property) (any, error) {
	types := p.Types
	if types == 0 {
		types = AnyType
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		switch {
		case types.Has(TypeBoolean):
			return x, nil
		case types.Has(TypeString):
			return strconv.FormatBool(x), nil
		}
	case json.Number:
		n, err := NormalizeNumber(string(x))
		if err != nil {
			return nil, err
		}
		return numberToModel(n, v, p, types)
	case string:
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("string is not valid UTF-8 (model values are JSON strings): %s", shortValue(strings.ToValidUTF8(x, "\uFFFD")))
		}
		if types.Has(TypeString) {
			return v, nil // v, not x: x would be boxed again, an allocation per field
		}
		if types.Has(TypeNumber) || types.Has(TypeInteger) {
			if n, err := NormalizeNumber(x); err == nil {
				if out, err := numberToModel(n, nil, p, types&^TypeString); err == nil {
					return out, nil
				}
			}
		}
		if types.Has(TypeBoolean) {
			switch x {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
	case JSONText:
		if allowsJSON(types) {
			return v, nil
		}
		d, err := x.Decode()
		if err != nil {
			return nil, err
		}
		switch d.(type) {
		case map[string]any, []any:
			if types.Has(TypeString) {
				return string(x), nil
			}
			return nil, fmt.Errorf("cannot put a JSON %s into a model field of type %s; make the field an %s, or map one of its fields with a path such as %s.id", x.Kind(), types, x.Kind(), p.Name)
		}
		return ToModel(d, p)
	case map[string]any, []any:
		if allowsJSON(types) || types.Has(TypeString) {
			j, err := jsonTextOf(x)
			if err != nil {
				return nil, err
			}
			if allowsJSON(types) {
				return j, nil
			}
			return string(j), nil
		}
		return nil, fmt.Errorf("cannot put a nested %s into a model field of type %s; make the field an %s, or map one of its fields with a path such as %s.id", KindOf(v), types, KindOf(v), p.Name)
	default:
		g, err := FromGo(v)
		if err != nil {
			return nil, err
		}
		return ToModel(g, p)
	}
	return nil, fmt.Errorf("cannot convert %s %s to %s", KindOf(v), shortValue(v), types)
}

// numberToModel converts the normalized number n to the model's types.
// orig is the value n was read from, if any: returned as it is when the
// number comes out unchanged, since boxing n again costs an allocation per
// field.
func numberToModel(n json.Number, orig any, p *Property, types TypeSet) (any, error) {
	if types.Has(TypeNumber) {
		return orNumber(n, orig), nil
	}
	if types.Has(TypeInteger) {
		if i, ok := IntegralText(n); ok {
			return orNumber(json.Number(i), orig), nil
		}
		if !types.Has(TypeString) {
			return nil, fmt.Errorf("cannot convert %s to integer without losing its fraction", n)
		}
	}
	if types.Has(TypeString) {
		if p.Format == "date-time" {
			return UnixToRFC3339(n)
		}
		return string(n), nil
	}
	return nil, fmt.Errorf("cannot convert number %s to %s", n, types)
}

// orNumber is orig when it holds n, else n.
func orNumber(n json.Number, orig any) any {
	if o, ok := orig.(json.Number); ok && o == n {
		return orig
	}
	return n
}

// UnixToRFC3339 reads n (a normalized number) as seconds since the Unix
// epoch, with an optional fraction, and formats it as RFC 3339 in UTC: how a
// number becomes a date-time, in a model field as in a target column.
func UnixToRFC3339(n json.Number) (string, error) {
	sec, frac, _ := cutPoint(string(n))
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return "", fmt.Errorf("cannot read %s as Unix seconds: %w", n, err)
	}
	var nanos int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		for len(frac) < 9 {
			frac += "0"
		}
		nanos, _ = strconv.ParseInt(frac, 10, 64)
		if s < 0 || sec == "-0" {
			nanos = -nanos
		}
	}
	return FormatTime(time.Unix(s, nanos)), nil
}

func cutPoint(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// shortValue quotes a value for an error message, shortened so a large
// payload does not flood a log line.
func shortValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprintf("%v", x)
		} else {
			s = string(b)
		}
	}
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return s
}
