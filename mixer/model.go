package mixer

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// TypeSet is the set of JSON Schema types a model property allows.
type TypeSet uint8

// The JSON Schema types a model property may declare. A property that allows
// object or array (or declares no type) holds a JSON value whole: see
// JSONText.
const (
	TypeNull TypeSet = 1 << iota
	TypeBoolean
	TypeInteger
	TypeNumber
	TypeString
	TypeObject
	TypeArray
)

// AnyScalar is the set of the scalar types.
const AnyScalar = TypeNull | TypeBoolean | TypeInteger | TypeNumber | TypeString

// AnyType is the TypeSet of a property that declares no type.
const AnyType = AnyScalar | TypeObject | TypeArray

// typeNames are the type names in TypeSet bit order.
var typeNames = [...]string{"null", "boolean", "integer", "number", "string", "object", "array"}

// ParseType maps a JSON Schema type name to its TypeSet bit.
func ParseType(name string) (TypeSet, bool) {
	switch name {
	case "null":
		return TypeNull, true
	case "boolean":
		return TypeBoolean, true
	case "integer":
		return TypeInteger, true
	case "number":
		return TypeNumber, true
	case "string":
		return TypeString, true
	case "object":
		return TypeObject, true
	case "array":
		return TypeArray, true
	}
	return 0, false
}

// Has reports whether every type in t is allowed.
func (s TypeSet) Has(t TypeSet) bool { return s&t == t }

func (s TypeSet) String() string {
	var names []string
	for _, n := range typeNames {
		if t, _ := ParseType(n); s.Has(t) {
			names = append(names, n)
		}
	}
	return strings.Join(names, " or ")
}

// Property is one field of a model.
type Property struct {
	Name   string
	Types  TypeSet
	Format string // JSON Schema format, e.g. "date-time"; empty when none
	// simple is set when the property's schema says nothing but its type (and
	// annotations): the mixer then checks it without the schema library.
	simple bool
	// formatCheck is the format's check for a simple property with a
	// format (formatCheck in format.go); nil when it has none.
	formatCheck func(any) bool
	schema      *jsonschema.Schema // the property's own schema, for the others
}

// Model is a compiled canonical model: a JSON Schema of an object, with a
// title. Mixers map its top-level properties; a property may hold a whole
// JSON value (see JSONText).
type Model struct {
	Title    string
	File     string // where it was loaded from, for messages
	props    map[string]*Property
	order    []string // property names in schema order
	required []string
	schema   *jsonschema.Schema // the model without its object-level keywords; see NewModel
	// perField is set when the model's top level has nothing but its
	// properties (and annotations), so objects can be checked field by field.
	perField bool
}

// NewModel builds a Model. fieldSchema must be the model compiled without
// "required" (and other keywords about the set of present fields), so that a
// partial object, one whose absent fields were left unchanged at the source,
// validates on the fields it has; required fields are checked by the mixer.
func NewModel(title, file string, props []*Property, required []string, fieldSchema *jsonschema.Schema) *Model {
	m := &Model{Title: title, File: file, props: make(map[string]*Property, len(props)), schema: fieldSchema}
	for _, p := range props {
		m.props[p.Name] = p
		m.order = append(m.order, p.Name)
	}
	m.required = append([]string(nil), required...)
	return m
}

// Property returns the named property, or nil.
func (m *Model) Property(name string) *Property { return m.props[name] }

// Fields returns the property names in schema order.
func (m *Model) Fields() []string { return m.order }

// Required returns the names the schema lists as required.
func (m *Model) Required() []string { return m.required }

// FieldError says which field of an object is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("field %s: %s", e.Field, e.Reason)
}

// ValidationError lists every problem found in one object.
type ValidationError struct {
	Model  string
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return fmt.Sprintf("object does not match model %s: %s", e.Model, strings.Join(parts, "; "))
}

// checkField appends what is wrong with v as the value of field name, whose
// property is p (nil: not a field of the model), to problems: the check
// Validate makes of each field of a model checked field by field.
func (m *Model) checkField(name string, p *Property, v any, problems []FieldError) ([]FieldError, error) {
	switch {
	case p == nil:
		problems = append(problems, FieldError{Field: name, Reason: "not a field of the model"})
	case p.simple:
		if !typeAllows(p.Types, v) { // as in the library, a wrong type is the only problem
			problems = append(problems, FieldError{Field: name, Reason: fmt.Sprintf("expected %s, but got %s", p.Types, schemaKind(v))})
		} else if p.formatCheck != nil {
			d, err := decodedValue(v)
			if err != nil {
				problems = append(problems, FieldError{Field: name, Reason: err.Error()})
			} else if !p.formatCheck(d) {
				problems = append(problems, FieldError{Field: name, Reason: formatProblem(d, p.Format)})
			}
		}
	case p.schema != nil:
		d, err := decodedValue(v)
		if err != nil {
			return append(problems, FieldError{Field: name, Reason: err.Error()}), nil
		}
		if err := p.schema.Validate(d); err != nil {
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				return problems, fmt.Errorf("validating field %s of model %s: %w", name, m.Title, err)
			}
			for _, fe := range flattenSchemaError(ve) {
				problems = append(problems, FieldError{Field: name, Reason: fe.Reason})
			}
		}
	}
	return problems, nil
}

// Validate checks fields against the model. requiredOf lists the required
// fields that must be present (the caller decides which apply: see
// Receiver). Each present field is checked against its property schema.
func (m *Model) Validate(fields map[string]any, requiredOf []string) error {
	problems := absentFields(fields, requiredOf, nil)
	if m.perField {
		for name, v := range fields {
			var err error
			if problems, err = m.checkField(name, m.props[name], v, problems); err != nil {
				return err
			}
		}
	} else if m.schema != nil {
		decoded, err := decodedFields(fields)
		if err != nil {
			return fmt.Errorf("validating against model %s: %w", m.Title, err)
		}
		if err := m.schema.Validate(decoded); err != nil {
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				return fmt.Errorf("validating against model %s: %w", m.Title, err)
			}
			problems = append(problems, flattenSchemaError(ve)...)
		}
	}
	return m.invalid(problems)
}

// absentFields appends a problem for each name of required that fields
// lacks.
func absentFields(fields map[string]any, required []string, problems []FieldError) []FieldError {
	for _, r := range required {
		if _, ok := fields[r]; !ok {
			problems = append(problems, FieldError{Field: r, Reason: "required by the model but absent"})
		}
	}
	return problems
}

// invalid is the ValidationError of problems, in the order of their
// fields, or nil when there are none.
func (m *Model) invalid(problems []FieldError) error {
	if len(problems) == 0 {
		return nil
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Field < problems[j].Field })
	return &ValidationError{Model: m.Title, Fields: problems}
}

// decodedFields returns fields with every JSONText decoded, as the schema
// library must see them; fields itself when it holds none.
func decodedFields(fields map[string]any) (map[string]any, error) {
	var out map[string]any
	for k, v := range fields {
		j, ok := v.(JSONText)
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(fields))
			for k2, v2 := range fields {
				out[k2] = v2
			}
		}
		d, err := j.Decode()
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		out[k] = d
	}
	if out == nil {
		return fields, nil
	}
	return out, nil
}

// flattenSchemaError turns the library's tree of causes into one line per
// failing field, keeping the innermost (most specific) messages.
func flattenSchemaError(ve *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			field := strings.TrimPrefix(e.InstanceLocation, "/")
			field = strings.ReplaceAll(strings.ReplaceAll(field, "~1", "/"), "~0", "~")
			out = append(out, FieldError{Field: field, Reason: e.Message})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// formatProblem words a failed format as the schema library does.
func formatProblem(v any, format string) string {
	val := fmt.Sprint(v)
	if s, ok := v.(string); ok {
		val = quoteLikeSchema(s)
	}
	return fmt.Sprintf("%s is not valid %s", val, quoteLikeSchema(format))
}

// quoteLikeSchema quotes as the schema library's messages do: 'like this'.
func quoteLikeSchema(s string) string {
	s = strconv.Quote(s)
	s = strings.ReplaceAll(s, `\"`, `"`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s[1:len(s)-1] + "'"
}

// typeAllows is JSON Schema's "type" keyword for the values Remix holds: an
// integer is a number without fraction (our numbers are exact decimal text).
func typeAllows(t TypeSet, v any) bool {
	if t == 0 {
		return true
	}
	switch x := v.(type) {
	case nil:
		return t.Has(TypeNull)
	case bool:
		return t.Has(TypeBoolean)
	case json.Number:
		if t.Has(TypeNumber) {
			return true
		}
		if t.Has(TypeInteger) {
			n, err := NormalizeNumber(string(x))
			if err != nil {
				return false
			}
			_, ok := IntegralText(n)
			return ok
		}
		return false
	case string:
		return t.Has(TypeString)
	case map[string]any:
		return t.Has(TypeObject)
	case []any:
		return t.Has(TypeArray)
	case JSONText:
		switch x.Kind() {
		case "object":
			return t.Has(TypeObject)
		case "array":
			return t.Has(TypeArray)
		case "string":
			return t.Has(TypeString)
		case "boolean":
			return t.Has(TypeBoolean)
		case "null":
			return t.Has(TypeNull)
		case "number":
			return typeAllows(t, json.Number(strings.TrimSpace(string(x))))
		}
	}
	return false
}

// schemaKind names a value's JSON type the way the schema library does.
func schemaKind(v any) string {
	switch x := v.(type) {
	case json.Number:
		return "number"
	case JSONText:
		return x.Kind()
	}
	return KindOf(v)
}
