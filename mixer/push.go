package mixer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrNoSearchKey marks a delete whose object has no value for any search key
// of the location: no target can tell what to delete.
var ErrNoSearchKey = errors.New("no search key has a value")

// PushField maps one model field to one place in a target record.
type PushField struct {
	Field  string // the model field; only a label when HasHardcode is set
	Target Path
	// Hardcode, when HasHardcode is set, is written instead of the model's value.
	Hardcode    any
	HasHardcode bool
	SearchKey   bool
}

// PushRule writes objects of one model to one location of a target.
type PushRule struct {
	location string
	fields   []PushField
	keys     []int // indexes into fields of the search keys, in file order
}

// NewPushRule checks the mappings of one location: every non-hardcoded field
// is a model property, at least one search key, no search key hardcoded, no
// two fields writing the same target path.
func NewPushRule(model *Model, location string, fields []PushField) (*PushRule, error) {
	r := &PushRule{location: location, fields: fields}
	targets := map[string]string{}
	for i, f := range fields {
		if !f.HasHardcode && model.Property(f.Field) == nil {
			return nil, fmt.Errorf("model %s has no field %q", model.Title, f.Field)
		}
		if f.Target.IsZero() {
			return nil, fmt.Errorf("model field %q: no target path", f.Field)
		}
		t := f.Target.String()
		if prev, dup := targets[t]; dup {
			return nil, fmt.Errorf("target field %s is written by both %q and %q", t, prev, f.Field)
		}
		targets[t] = f.Field
		if f.SearchKey {
			if f.HasHardcode {
				return nil, fmt.Errorf("model field %q: a search key cannot be hardcoded", f.Field)
			}
			r.keys = append(r.keys, i)
		}
	}
	if err := checkPathPrefixes(fields); err != nil {
		return nil, err
	}
	if len(r.keys) == 0 {
		return nil, fmt.Errorf("location %s has no search key: mark at least one field with search_key: true", location)
	}
	return r, nil
}

// checkPathPrefixes rejects a target path that is a prefix of another: one
// field cannot be both a value and an object of nested values.
func checkPathPrefixes(fields []PushField) error {
	paths := make([]string, len(fields))
	for i, f := range fields {
		paths[i] = f.Target.FormKey()
	}
	sort.Strings(paths)
	for i := 1; i < len(paths); i++ {
		if strings.HasPrefix(paths[i], paths[i-1]+"[") {
			return fmt.Errorf("target field %s holds a value and also nested field %s", paths[i-1], paths[i])
		}
	}
	return nil
}

// Location is where the rule writes.
func (r *PushRule) Location() string { return r.location }

// Fields returns the rule's mappings in file order.
func (r *PushRule) Fields() []PushField { return r.fields }

// SearchKeys returns the search-key mappings in file order.
func (r *PushRule) SearchKeys() []PushField {
	out := make([]PushField, len(r.keys))
	for i, k := range r.keys {
		out[i] = r.fields[k]
	}
	return out
}

// PushMixer is a compiled push mixer: for each model, the locations of one
// target system its objects are written to.
type PushMixer struct {
	rules map[string][]*PushRule
}

// NewPushMixer returns an empty push mixer.
func NewPushMixer() *PushMixer { return &PushMixer{rules: map[string][]*PushRule{}} }

// Add appends a rule for a model.
func (m *PushMixer) Add(model string, rule *PushRule) { m.rules[model] = append(m.rules[model], rule) }

// Models lists the models this mixer consumes, sorted.
func (m *PushMixer) Models() []string {
	out := make([]string, 0, len(m.rules))
	for k := range m.rules {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Rules returns the rules of one model.
func (m *PushMixer) Rules(model string) []*PushRule { return m.rules[model] }

// PushResult is one target record made from an object, or why not.
type PushResult struct {
	Record TargetRecord
	Err    error
}

// Push maps an object to a record for each location its model is written to,
// appended to dst.
func (m *PushMixer) Push(obj *Object, dst []PushResult) []PushResult {
	return m.PushWith(obj, dst, nil)
}

// PushWith is Push, with the records' field maps taken from maps when it
// has some (maps handed back once the records' write returned).
func (m *PushMixer) PushWith(obj *Object, dst []PushResult, maps *FieldMaps) []PushResult {
	for _, r := range m.rules[obj.Model] {
		rec, err := r.apply(obj, maps)
		dst = append(dst, PushResult{Record: rec, Err: err})
	}
	return dst
}

// Apply maps one object through this rule.
func (r *PushRule) Apply(obj *Object) (TargetRecord, error) { return r.apply(obj, nil) }

func (r *PushRule) apply(obj *Object, maps *FieldMaps) (TargetRecord, error) {
	rec := TargetRecord{Location: r.location, Op: obj.Op}
	for _, k := range r.keys {
		f := &r.fields[k]
		if v, ok := obj.Fields[f.Field]; ok && v != nil {
			rec.Key = &SearchKey{Field: f.Field, Target: f.Target, Value: v}
			break
		}
	}
	if obj.Op == OpDelete {
		if rec.Key == nil {
			return rec, fmt.Errorf("delete of %s in %s: %w (search keys: %s)", obj.Model, r.location, ErrNoSearchKey, r.keyNames())
		}
		rec.Fields = maps.get(1)
		if err := rec.Key.Target.Set(rec.Fields, rec.Key.Value); err != nil {
			return rec, err
		}
		return rec, nil
	}
	rec.Fields = maps.get(len(r.fields))
	for i := range r.fields {
		f := &r.fields[i]
		var v any
		if f.HasHardcode {
			v = f.Hardcode
		} else {
			var ok bool
			v, ok = obj.Fields[f.Field]
			if !ok {
				continue // absent: leave the target's field as it is
			}
			if v == nil && f.SearchKey {
				continue // a null identity is not data to write
			}
		}
		if err := f.Target.Set(rec.Fields, v); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

func (r *PushRule) keyNames() string {
	names := make([]string, len(r.keys))
	for i, k := range r.keys {
		names[i] = r.fields[k].Field
	}
	return strings.Join(names, ", ")
}
