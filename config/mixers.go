package config

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sqlpipe/remix/mixer"
)

const (
	keyField     = "field"
	keyHardcode  = "hardcode"
	keySearchKey = "search_key"
)

// fieldSpec is the parsed value of one mapping line: {field, hardcode,
// search_key}.
type fieldSpec struct {
	target      string
	targetNode  *yaml.Node
	hardcode    any
	hasHardcode bool
	hardNode    *yaml.Node
	searchKey   bool
	searchNode  *yaml.Node
}

func (l *loader) fieldSpec(f *file, n *yaml.Node, path []string, allowed []string) (*fieldSpec, bool) {
	entries, ok := f.mapping(n, path, "a mapping with "+strings.Join(allowed, ", "))
	if !ok {
		return nil, false
	}
	fs := &fieldSpec{}
	good := true
	for _, e := range entries {
		kp := sub(path, e.name)
		if !slices.Contains(allowed, e.name) {
			f.errorf(e.key, kp, "unknown key%s; a mapping takes: %s", suggest(e.name, allowed), strings.Join(allowed, ", "))
			good = false
			continue
		}
		switch e.name {
		case keyField:
			v, ok := f.scalar(e.val, kp)
			if !ok {
				good = false
				continue
			}
			if v == "" {
				f.errorf(e.val, kp, "is empty")
				good = false
				continue
			}
			fs.target, fs.targetNode = v, resolve(e.val)
		case keyHardcode:
			v, ok := f.scalarValue(e.val, kp)
			if !ok {
				good = false
				continue
			}
			fs.hardcode, fs.hasHardcode, fs.hardNode = v, true, resolve(e.val)
		case keySearchKey:
			v, ok := f.scalarValue(e.val, kp)
			b, isBool := v.(bool)
			if s, isStr := v.(string); ok && isStr {
				b, isBool = s == "true", s == "true" || s == "false"
			}
			if !ok || !isBool {
				if ok {
					f.errorf(e.val, kp, "expected true or false")
				}
				good = false
				continue
			}
			fs.searchKey, fs.searchNode = b, resolve(e.val)
		}
	}
	if fs.targetNode == nil && good {
		f.errorf(resolve(n), path, "missing key %q", keyField)
		return nil, false
	}
	return fs, good
}

// receiveMixer compiles location -> model -> source field -> {field}.
func (l *loader) receiveMixer(f *file, s *System, n *yaml.Node, path []string) *mixer.Receiver {
	recv := mixer.NewReceiver()
	locs, ok := f.mapping(n, path, "locations mapped to models")
	if !ok {
		return recv
	}
	for _, loc := range locs {
		lp := sub(path, loc.name)
		s.positions[keyPath(keyReceiveMixer, loc.name)] = f.pos(loc.key)
		if s.Spec != nil && s.Spec.ReceiveLocation != nil {
			if err := s.Spec.ReceiveLocation(loc.name); err != nil {
				f.errorf(loc.key, lp, "%v", err)
			}
		}
		models, ok := f.mapping(loc.val, lp, "model titles mapped to fields")
		if !ok {
			continue
		}
		for _, me := range models {
			mp := sub(lp, me.name)
			s.positions[keyPath(keyReceiveMixer, loc.name, me.name)] = f.pos(me.key)
			mf := l.models[me.name]
			if mf == nil {
				f.errorf(me.key, mp, "unknown model %q%s; models: %s", me.name, suggest(me.name, l.modelTitles()), strings.Join(l.modelTitles(), ", "))
				continue
			}
			fields, ok := f.mapping(me.val, mp, "source fields mapped to {field: model_field}")
			if !ok {
				continue
			}
			var rf []mixer.ReceiveField
			filled := map[string]int{}
			good := true
			for _, fe := range fields {
				fp := sub(mp, fe.name)
				s.positions[keyPath(keyReceiveMixer, loc.name, me.name, fe.name)] = f.pos(fe.key)
				spec, ok := l.fieldSpec(f, fe.val, fp, []string{keyField, keyHardcode})
				if !ok {
					good = false
					continue
				}
				rfield := mixer.ReceiveField{Field: spec.target, Hardcode: spec.hardcode, HasHardcode: spec.hasHardcode}
				if !spec.hasHardcode {
					p, err := mixer.ParsePath(fe.name)
					if err != nil {
						f.errorf(fe.key, fp, "%v", err)
						good = false
						continue
					}
					rfield.Source = p
				}
				prop := mf.model.Property(spec.target)
				if prop == nil {
					f.errorf(spec.targetNode, sub(fp, keyField), "model %s has no field %q%s; its fields: %s", me.name, spec.target, suggest(spec.target, mf.model.Fields()), strings.Join(mf.model.Fields(), ", "))
					good = false
					continue
				}
				if line, dup := filled[spec.target]; dup {
					f.errorf(spec.targetNode, sub(fp, keyField), "model field %q is already filled at line %d", spec.target, line)
					good = false
					continue
				}
				filled[spec.target] = spec.targetNode.Line
				if spec.hasHardcode {
					if _, err := mixer.ToModel(spec.hardcode, prop); err != nil {
						f.errorf(spec.hardNode, sub(fp, keyHardcode), "%v (model field %s)", err, spec.target)
						good = false
						continue
					}
				}
				rf = append(rf, rfield)
			}
			if !good {
				continue
			}
			rule, err := mixer.NewReceiveRule(mf.model, rf)
			if err != nil {
				f.errorf(me.key, mp, "%v", err)
				continue
			}
			recv.Add(loc.name, rule)
		}
	}
	return recv
}

// pushMixer compiles model -> location -> model field -> {field, search_key, hardcode}.
func (l *loader) pushMixer(f *file, s *System, n *yaml.Node, path []string) *mixer.PushMixer {
	push := mixer.NewPushMixer()
	models, ok := f.mapping(n, path, "model titles mapped to locations")
	if !ok {
		return push
	}
	for _, me := range models {
		mp := sub(path, me.name)
		s.positions[keyPath(keyPushMixer, me.name)] = f.pos(me.key)
		mf := l.models[me.name]
		if mf == nil {
			f.errorf(me.key, mp, "unknown model %q%s; models: %s", me.name, suggest(me.name, l.modelTitles()), strings.Join(l.modelTitles(), ", "))
			continue
		}
		locs, ok := f.mapping(me.val, mp, "locations mapped to fields")
		if !ok {
			continue
		}
		for _, loc := range locs {
			lp := sub(mp, loc.name)
			s.positions[keyPath(keyPushMixer, me.name, loc.name)] = f.pos(loc.key)
			if s.Spec != nil && s.Spec.PushLocation != nil {
				if err := s.Spec.PushLocation(loc.name); err != nil {
					f.errorf(loc.key, lp, "%v", err)
				}
			}
			fields, ok := f.mapping(loc.val, lp, "model fields mapped to {field: target_field}")
			if !ok {
				continue
			}
			var pf []mixer.PushField
			written := map[string]int{}
			good, hasKey := true, false
			for _, fe := range fields {
				fp := sub(lp, fe.name)
				s.positions[keyPath(keyPushMixer, me.name, loc.name, fe.name)] = f.pos(fe.key)
				spec, ok := l.fieldSpec(f, fe.val, fp, []string{keyField, keySearchKey, keyHardcode})
				if !ok {
					good = false
					continue
				}
				if !spec.hasHardcode && mf.model.Property(fe.name) == nil {
					f.errorf(fe.key, fp, "model %s has no field %q%s; its fields: %s", me.name, fe.name, suggest(fe.name, mf.model.Fields()), strings.Join(mf.model.Fields(), ", "))
					good = false
					continue
				}
				target, err := mixer.ParsePath(spec.target)
				if err != nil {
					f.errorf(spec.targetNode, sub(fp, keyField), "%v", err)
					good = false
					continue
				}
				if line, dup := written[target.String()]; dup {
					f.errorf(spec.targetNode, sub(fp, keyField), "target field %s is already written at line %d", target, line)
					good = false
					continue
				}
				written[target.String()] = spec.targetNode.Line
				if spec.searchKey && spec.hasHardcode {
					f.errorf(spec.searchNode, sub(fp, keySearchKey), "a search key cannot be hardcoded: it must identify each row")
					good = false
					continue
				}
				hasKey = hasKey || spec.searchKey
				pf = append(pf, mixer.PushField{Field: fe.name, Target: target, Hardcode: spec.hardcode, HasHardcode: spec.hasHardcode, SearchKey: spec.searchKey})
			}
			if !good {
				continue
			}
			if !hasKey {
				f.errorf(loc.key, lp, "no search key: mark at least one field with search_key: true so rows can be found for upserts and deletes")
				continue
			}
			rule, err := mixer.NewPushRule(mf.model, loc.name, pf)
			if err != nil {
				f.errorf(loc.key, lp, "%v", err)
				continue
			}
			push.Add(me.name, rule)
		}
	}
	return push
}
