package mixer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// ModelError is a problem with a model file. Pointer is the JSON pointer of
// the offending part ("" for the whole document) so a loader that knows the
// file's layout can name the line.
type ModelError struct {
	Pointer string
	Msg     string
}

func (e *ModelError) Error() string {
	if e.Pointer == "" {
		return e.Msg
	}
	return e.Pointer + ": " + e.Msg
}

// objectLevelKeywords are dropped from the schema a model validates objects
// with: they speak of which fields are present, and a partial object (fields
// unchanged at the source are absent) must still validate on what it has.
// "required" is checked by the mixer where it applies.
var objectLevelKeywords = []string{"required", "dependentRequired", "dependencies", "minProperties", "maxProperties"}

// CompileModel compiles one model file's JSON. url names it in messages and
// as the schema's base; references must stay inside the file.
func CompileModel(url string, data []byte) (*Model, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &ModelError{Msg: "not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ModelError{Msg: "not valid JSON: more than one value in the file"}
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, &ModelError{Msg: fmt.Sprintf("a model must be a JSON object, found %s", KindOf(doc))}
	}
	title, ok := root["title"].(string)
	if !ok || strings.TrimSpace(title) == "" {
		if _, has := root["title"]; has {
			return nil, &ModelError{Pointer: "/title", Msg: "title must be a non-empty string: it is the model's name"}
		}
		return nil, &ModelError{Msg: `missing "title": every model needs one, it is the model's name`}
	}
	var required []string
	if raw, has := root["required"]; has {
		list, ok := raw.([]any)
		if !ok {
			return nil, &ModelError{Pointer: "/required", Msg: "required must be an array of field names"}
		}
		for i, r := range list {
			s, ok := r.(string)
			if !ok {
				return nil, &ModelError{Pointer: fmt.Sprintf("/required/%d", i), Msg: "required must be an array of field names"}
			}
			required = append(required, s)
		}
	}
	partial := make(map[string]any, len(root))
	for k, v := range root {
		partial[k] = v
	}
	for _, k := range objectLevelKeywords {
		delete(partial, k)
	}
	c, schema, err := compileSchema(url, root, partial)
	if err != nil {
		return nil, err
	}
	if len(schema.Types) > 0 && !slices.Contains(schema.Types, "object") {
		return nil, &ModelError{Pointer: "/type", Msg: fmt.Sprintf(`a model must be an object schema ("type": "object"), found %q`, strings.Join(schema.Types, ", "))}
	}
	props, err := modelProperties(data, schema)
	if err != nil {
		return nil, err
	}
	perField := onlyKeys(root, topLevelKeys)
	rawProps, _ := root["properties"].(map[string]any)
	for _, p := range props {
		raw, _ := rawProps[p.Name].(map[string]any)
		p.simple = raw != nil && onlyKeys(raw, simplePropertyKeys)
		if f, ok := raw["format"].(string); ok && !p.simple && onlyKeys(raw, simplePropertyKeys, "format") {
			// A type and a format (a timestamp field, typically): checked
			// with the schema library's own format function, without its
			// per-value machinery, which shows in profiles.
			if check := formatCheck(f); check != nil {
				p.simple, p.formatCheck = true, check
			}
		}
		if perField && !p.simple {
			if p.schema, err = c.Compile(url + "#" + propertyPointer(p.Name)); err != nil {
				return nil, schemaCompileError(err)
			}
		}
	}
	known := map[string]bool{}
	for _, p := range props {
		known[p.Name] = true
	}
	for i, r := range required {
		if !known[r] {
			return nil, &ModelError{Pointer: fmt.Sprintf("/required/%d", i), Msg: fmt.Sprintf("required field %q is not among the model's properties", r)}
		}
	}
	m := NewModel(title, url, props, required, schema)
	m.perField = perField
	return m, nil
}

// topLevelKeys may appear at a model's top level without stopping field-by-
// field validation: none of them constrains an object made of model fields.
var topLevelKeys = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "$defs": true, "definitions": true,
	"title": true, "description": true, "type": true, "properties": true, "required": true,
	"additionalProperties": true, "examples": true, "default": true, "deprecated": true,
	"readOnly": true, "writeOnly": true,
}

// simplePropertyKeys are the keywords of a property checked by its type alone.
var simplePropertyKeys = map[string]bool{
	"type": true, "title": true, "description": true, "$comment": true, "examples": true,
	"default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

func onlyKeys(m map[string]any, allowed map[string]bool, also ...string) bool {
	for k := range m {
		if !allowed[k] && !slices.Contains(also, k) {
			return false
		}
	}
	return true
}

func propertyPointer(name string) string {
	esc := strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
	return "/properties/" + neturl.PathEscape(esc)
}

func compileSchema(url string, root, partial map[string]any) (*jsonschema.Compiler, *jsonschema.Schema, error) {
	// Compile the document as written first, so keyword errors point at it;
	// then the partial form used for validation.
	for i, doc := range []map[string]any{root, partial} {
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, nil, &ModelError{Msg: err.Error()}
		}
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		c.AssertFormat = true
		c.LoadURL = func(u string) (io.ReadCloser, error) {
			return nil, fmt.Errorf("reference to %s: a model may only reference its own definitions ($defs)", u)
		}
		if err := c.AddResource(url, bytes.NewReader(b)); err != nil {
			return nil, nil, schemaCompileError(err)
		}
		s, err := c.Compile(url)
		if err != nil {
			return nil, nil, schemaCompileError(err)
		}
		if i == 1 {
			return c, s, nil
		}
	}
	return nil, nil, nil
}

func schemaCompileError(err error) error {
	var se *jsonschema.SchemaError
	if errors.As(err, &se) {
		var ve *jsonschema.ValidationError
		if errors.As(se.Err, &ve) {
			leaves := flattenSchemaError(ve)
			if len(leaves) > 0 {
				l := leaves[0]
				return &ModelError{Pointer: "/" + l.Field, Msg: "not a valid JSON Schema: " + l.Reason}
			}
		}
		return &ModelError{Msg: "not a valid JSON Schema: " + se.Err.Error()}
	}
	return &ModelError{Msg: "not a valid JSON Schema: " + err.Error()}
}

func modelProperties(data []byte, schema *jsonschema.Schema) ([]*Property, error) {
	names := propertyOrder(data)
	if len(names) != len(schema.Properties) { // fall back to sorted order
		names = names[:0]
		for n := range schema.Properties {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	props := make([]*Property, 0, len(names))
	for _, name := range names {
		ps := schema.Properties[name]
		ptr := "/properties/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
		p := &Property{Name: name}
		// An object or array property holds a JSON value whole, checked
		// by its own schema; mixers still map top-level fields only.
		for s := ps; s != nil; s = s.Ref {
			for _, t := range s.Types {
				bit, ok := ParseType(t)
				if !ok {
					return nil, &ModelError{Pointer: ptr, Msg: fmt.Sprintf("property %q has type %q, which is not a JSON Schema type", name, t)}
				}
				p.Types |= bit
			}
			if p.Format == "" {
				p.Format = s.Format
			}
		}
		props = append(props, p)
	}
	return props, nil
}

// propertyOrder returns the keys of the top-level "properties" object in the
// order the file writes them.
func propertyOrder(data []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil
		}
		if k != "properties" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return nil
		}
		var names []string
		for dec.More() {
			n, err := dec.Token()
			if err != nil {
				return nil
			}
			names = append(names, n.(string))
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
		}
		return names
	}
	return nil
}
