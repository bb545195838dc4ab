package mixer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// JSONText is a JSON value carried whole, as text: an object, an array, or
// any other JSON value that a source column holds as JSON (PostgreSQL json
// and jsonb). Remix never rewrites it: key order, duplicate keys,
// whitespace and the spelling of numbers arrive as they left, and its JSON
// null is not SQL NULL (a nil value). It always holds exactly one valid JSON
// value in UTF-8; make one with ParseJSONText.
type JSONText string

// ParseJSONText checks that b is one JSON value in UTF-8 and returns it as a
// JSONText, unchanged (surrounding whitespace included).
func ParseJSONText(b []byte) (JSONText, error) {
	if !utf8.Valid(b) {
		return "", errors.New("JSON text is not valid UTF-8")
	}
	if !json.Valid(b) {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return "", fmt.Errorf("not valid JSON: %w", err)
		}
		return "", errors.New("not valid JSON")
	}
	return JSONText(b), nil
}

// MarshalJSON writes the value itself, so a JSONText inside a map that
// encoding/json writes (a nested target field) is JSON, not a string.
func (j JSONText) MarshalJSON() ([]byte, error) { return []byte(j), nil }

// Decode returns the value as encoding/json reads it with UseNumber:
// map[string]any, []any, string, json.Number, bool or nil. Numbers keep
// their spelling.
func (j JSONText) Decode() (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(j)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding JSON value: %w", err)
	}
	return v, nil
}

// Kind names the JSON type of the value: "object", "array", "string",
// "number", "boolean" or "null".
func (j JSONText) Kind() string {
	s := strings.TrimLeft(string(j), " \t\r\n")
	if s == "" {
		return "empty"
	}
	switch s[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// IsNull reports whether the value is JSON null.
func (j JSONText) IsNull() bool { return j.Kind() == "null" }

// jsonTextOf writes a decoded JSON value (or a Remix value) as compact JSON
// text without escaping <, > and &: the form a nested value found through
// a path, or a nested Go value, is carried in.
func jsonTextOf(v any) (JSONText, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return JSONText(bytes.TrimRight(b.Bytes(), "\n")), nil
}

// allowsJSON reports whether a property of these types holds a JSON value
// whole: it is untyped or allows an object or an array.
func allowsJSON(types TypeSet) bool {
	return types == 0 || types&(TypeObject|TypeArray) != 0
}

// decodedValue is v as the schema library must see it: a JSONText decoded,
// anything else as it is.
func decodedValue(v any) (any, error) {
	if j, ok := v.(JSONText); ok {
		return j.Decode()
	}
	return v, nil
}
