package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// errSkip marks a reading problem that leaves one model out instead of
// stopping the whole run.
var errSkip = errors.New("left out")

// keySet holds, per model field, the values the sources hold, as canon
// text.
type keySet map[string]map[string]bool

// canon is the text a key value is compared by: the same for a number and
// for a string holding that number's text, as a target column of another
// type gives it back.
func canon(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// compareFields is every field some live target location compares on.
func (p *modelPlan) compareFields() []string {
	set := map[string]bool{}
	for _, t := range p.live() {
		for _, f := range t.compare {
			set[f] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// readSources reads the keys every source of the model holds now. It
// returns an error wrapping errSkip when the model cannot be reconciled
// safely (a value that does not convert, a change key that the model's
// values do not rebuild).
func (p *modelPlan) readSources(ctx context.Context, cfg *Config) (keySet, error) {
	fields := p.compareFields()
	set := keySet{}
	for _, f := range fields {
		set[f] = map[string]bool{}
	}
	for i, fd := range append([]feeder{p.own}, p.others...) {
		rk, kl, err := sourceListers(cfg, fd.sys)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errSkip, err)
		}
		var cols []string
		var read []mixer.ReceiveField
		for _, f := range fields {
			rf, _ := fd.fills(f)
			if rf.HasHardcode {
				if rf.Hardcode != nil {
					set[f][canon(rf.Hardcode)] = true
				}
				continue
			}
			read = append(read, rf)
			cols = append(cols, rf.Source.Head())
		}
		own := i == 0
		if own {
			cols = append(cols, p.keyCols...)
		}
		if len(cols) == 0 {
			continue
		}
		err = kl.ListKeys(ctx, fd.loc, dedupe(cols), func(rows []map[string]any) error {
			for _, row := range rows {
				for _, rf := range read {
					v, err := p.toModel(rf.Field, rf.Source, row)
					if err != nil {
						return fmt.Errorf("%w: a row of %s: %w", errSkip, fd, err)
					}
					if v != nil {
						set[rf.Field][canon(v)] = true
					}
				}
				if own {
					if err := p.checkKey(rk, row); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return set, nil
}

// toModel reads a field of a row through path and converts it to the
// model's type; an absent field is nil.
func (p *modelPlan) toModel(field string, path mixer.Path, row map[string]any) (any, error) {
	raw, _ := path.Lookup(row)
	return p.convert(field, raw)
}

// convert turns a system's value into the model field's type.
func (p *modelPlan) convert(field string, raw any) (any, error) {
	if raw == nil {
		return nil, nil
	}
	v, err := mixer.ToModel(raw, p.model.Property(field))
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", field, err)
	}
	return v, nil
}

// checkKey makes sure that the change key of a source row comes out the
// same when rebuilt from its model values, as reconcile rebuilds the keys
// of rows that are gone.
func (p *modelPlan) checkKey(rk connectors.RowKeyer, row map[string]any) error {
	raw := make([]any, len(p.keyCols))
	model := make([]any, len(p.keyCols))
	for i, c := range p.keyCols {
		raw[i] = row[c]
		v, err := p.convert(p.identity[i], row[c])
		if err != nil {
			return fmt.Errorf("%w: a row of %s: %w", errSkip, p.own, err)
		}
		model[i] = v
	}
	want, err := rk.RowKey(p.own.loc, raw)
	if err != nil {
		return fmt.Errorf("%w: a row of %s: %w", errSkip, p.own, err)
	}
	got, err := rk.RowKey(p.own.loc, model)
	if err != nil || got != want {
		return fmt.Errorf("%w: the change key of %s rows cannot be rebuilt from their model values (%q from the row, %q from model fields %s): "+
			"a delete could go to another partition than the row's changes", errSkip, p.own, want, got, strings.Join(p.identity, ", "))
	}
	return nil
}

// readTarget reads a target location and notes each row whose key no
// source holds as a deletion.
func (p *modelPlan) readTarget(ctx context.Context, cfg *Config, t *targetLoc, set keySet) error {
	sink, err := cfg.Connectors[t.sys.Type].NewSink(t.sys, connectors.SinkDeps{Logger: cfg.Logger})
	if err != nil {
		return err
	}
	kl := sink.(connectors.KeyLister) // checked by the plan
	rk, _, err := sourceListers(cfg, p.own.sys)
	if err != nil {
		return err
	}
	fields := dedupe(append(append([]string(nil), t.compare...), p.identity...))
	paths := make(map[string]mixer.Path, len(fields))
	var cols []string
	for _, f := range fields {
		pf, _ := pushField(t.rule, f)
		paths[f] = pf.Target
		cols = append(cols, pf.Target.Head())
	}
	return kl.ListKeys(ctx, t.rule.Location(), dedupe(cols), func(rows []map[string]any) error {
		for _, row := range rows {
			t.rows++
			p.compareRow(cfg, t, rk, set, paths, row)
		}
		return nil
	})
}

// compareRow decides about one target row: kept when a source holds one of
// its keys, or when it cannot be told (no key value, a value that does not
// convert, no identity); otherwise it is to be deleted.
func (p *modelPlan) compareRow(cfg *Config, t *targetLoc, rk connectors.RowKeyer, set keySet, paths map[string]mixer.Path, row map[string]any) {
	vals := make(map[string]any, len(paths))
	for f, path := range paths {
		v, err := p.toModel(f, path, row)
		if err != nil {
			t.unidentified++
			return
		}
		vals[f] = v
	}
	anyKey := false
	for _, f := range t.compare {
		if v := vals[f]; v != nil {
			anyKey = true
			if set[f][canon(v)] {
				return
			}
		}
	}
	ids := make([]any, len(p.identity))
	for i, f := range p.identity {
		ids[i] = vals[f]
	}
	key, err := rk.RowKey(p.own.loc, ids)
	if !anyKey || err != nil {
		t.unidentified++
		return
	}
	t.missing++
	if len(t.sample) < cfg.Sample {
		var parts []string
		for _, f := range t.compare {
			if v := vals[f]; v != nil {
				parts = append(parts, paths[f].String()+"="+canon(v))
			}
		}
		t.sample = append(t.sample, strings.Join(parts, " "))
	}
	d := p.deletes[key]
	if d == nil {
		d = &deletion{key: key, fields: map[string]any{}}
		p.deletes[key] = d
	}
	for _, f := range p.identity {
		d.fields[f] = vals[f]
	}
	for _, f := range t.compare {
		if v := vals[f]; v != nil {
			d.fields[f] = v
		}
	}
}

func dedupe(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
