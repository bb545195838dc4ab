package mixer

import (
	"fmt"
	"sort"
)

// ReceiveField maps one source field to one model field.
type ReceiveField struct {
	Source Path   // where the value is read in the source record; zero with Hardcode
	Field  string // the model field it becomes
	// Hardcode, when HasHardcode is set, is written to Field instead of any
	// source value.
	Hardcode    any
	HasHardcode bool
}

// ReceiveRule turns the records of one location into objects of one model.
type ReceiveRule struct {
	model    *Model
	fields   []ReceiveField
	props    []*Property
	required []string // required model fields that this rule maps
}

// NewReceiveRule checks that every field names a property of model and that
// no model field is filled twice.
func NewReceiveRule(model *Model, fields []ReceiveField) (*ReceiveRule, error) {
	r := &ReceiveRule{model: model, fields: fields, props: make([]*Property, len(fields))}
	seen := map[string]bool{}
	for i, f := range fields {
		p := model.Property(f.Field)
		if p == nil {
			return nil, fmt.Errorf("model %s has no field %q", model.Title, f.Field)
		}
		if seen[f.Field] {
			return nil, fmt.Errorf("model field %q is filled twice", f.Field)
		}
		if !f.HasHardcode && f.Source.IsZero() {
			return nil, fmt.Errorf("model field %q: no source path", f.Field)
		}
		if f.HasHardcode {
			v, err := ToModel(f.Hardcode, p)
			if err != nil {
				return nil, fmt.Errorf("hardcode for model field %q: %w", f.Field, err)
			}
			r.fields[i].Hardcode = v
		}
		seen[f.Field] = true
		r.props[i] = p
	}
	for _, req := range model.Required() {
		if seen[req] {
			r.required = append(r.required, req)
		}
	}
	return r, nil
}

// Model returns the rule's model.
func (r *ReceiveRule) Model() *Model { return r.model }

// Fields returns the rule's field mappings in file order.
func (r *ReceiveRule) Fields() []ReceiveField { return r.fields }

// Receiver is a compiled receive mixer: for each location of a source system,
// the rules that turn its records into model objects.
type Receiver struct {
	rules map[string][]*ReceiveRule
}

// NewReceiver returns an empty receive mixer.
func NewReceiver() *Receiver { return &Receiver{rules: map[string][]*ReceiveRule{}} }

// Add appends a rule for a location; rules run in the order added.
func (r *Receiver) Add(location string, rule *ReceiveRule) {
	r.rules[location] = append(r.rules[location], rule)
}

// Locations lists the mapped locations, sorted.
func (r *Receiver) Locations() []string {
	out := make([]string, 0, len(r.rules))
	for l := range r.rules {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Rules returns the rules of one location.
func (r *Receiver) Rules(location string) []*ReceiveRule { return r.rules[location] }

// SourceFields is the set of a location's fields (columns) that its rules
// read: the head of every field path that is not hard-coded.
func (r *Receiver) SourceFields(location string) map[string]bool {
	need := map[string]bool{}
	for _, rule := range r.rules[location] {
		for _, f := range rule.fields {
			if !f.HasHardcode {
				need[f.Source.Head()] = true
			}
		}
	}
	return need
}

// Result is one object made from a record, or why it could not be made.
type Result struct {
	Model  string
	Object Object
	Err    error // a conversion or validation error: the record is bad for this model
}

// Receive maps a record to the objects its location produces, one per rule,
// appended to dst. A location nobody mapped gives no results. An upsert that
// carries none of the mapped fields gives no object either: there is nothing
// to say about the model.
func (r *Receiver) Receive(rec *Record, dst []Result) []Result {
	return r.ReceiveWith(rec, dst, nil)
}

// ReceiveWith is Receive with the objects' field maps taken from maps
// where it has some (see FieldMaps).
func (r *Receiver) ReceiveWith(rec *Record, dst []Result, maps *FieldMaps) []Result {
	for _, rule := range r.rules[rec.Location] {
		if rec.Op == OpTruncate { // every object of the model from here is gone
			dst = append(dst, Result{Model: rule.model.Title, Object: Object{Model: rule.model.Title, Op: OpTruncate, Fields: map[string]any{}}})
			continue
		}
		obj, err := rule.apply(rec, maps)
		if err == nil && obj.Fields == nil {
			continue
		}
		dst = append(dst, Result{Model: rule.model.Title, Object: obj, Err: err})
	}
	return dst
}

func (r *ReceiveRule) apply(rec *Record, maps *FieldMaps) (Object, error) {
	var fields map[string]any
	var problems []FieldError
	// A model checked field by field is checked here, as each field is
	// set, with the property the rule already holds (see Model.Validate).
	perField := r.model.perField
	var invalid []FieldError
	var decoded map[string]any // JSON columns that paths go into, decoded once
	for i := range r.fields {
		f := &r.fields[i]
		var v any
		if f.HasHardcode {
			v = f.Hardcode
		} else {
			if decoded == nil && f.Source.Len() > 1 {
				if _, isJSON := rec.Fields[f.Source.Head()].(JSONText); isJSON {
					decoded = map[string]any{}
				}
			}
			raw, ok := f.Source.lookup(rec.Fields, decoded)
			if !ok {
				continue
			}
			c, err := ToModel(raw, r.props[i])
			if err != nil {
				problems = append(problems, FieldError{Field: f.Field, Reason: fmt.Sprintf("from %s: %v", f.Source, err)})
				continue
			}
			v = c
		}
		if fields == nil {
			fields = maps.get(len(r.fields))
		}
		fields[f.Field] = v
		if perField {
			var err error
			if invalid, err = r.model.checkField(f.Field, r.props[i], v, invalid); err != nil {
				return Object{Model: r.model.Title, Op: rec.Op, Fields: fields}, err
			}
		}
	}
	obj := Object{Model: r.model.Title, Op: rec.Op, Fields: fields, Created: rec.Created && rec.Op == OpUpsert}
	if len(problems) > 0 {
		return obj, &ValidationError{Model: r.model.Title, Fields: problems}
	}
	if fields == nil {
		if rec.Op == OpDelete {
			return obj, &ValidationError{Model: r.model.Title, Fields: []FieldError{{Reason: "the delete carries none of the mapped fields, so no target can find what to delete"}}}
		}
		return obj, nil
	}
	var required []string
	if rec.Op == OpUpsert && rec.Complete {
		required = r.required
	}
	if !perField {
		if err := r.model.Validate(fields, required); err != nil {
			return obj, err
		}
		return obj, nil
	}
	if err := r.model.invalid(append(absentFields(fields, required, nil), invalid...)); err != nil {
		return obj, err
	}
	return obj, nil
}
