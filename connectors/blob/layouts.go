package blob

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/mixer"
)

// problemAt places a problem where the configuration writes it.
func problemAt(sys *config.System, keys []string, format string, args ...any) *config.Error {
	return &config.Error{Pos: sys.PosOf(keys...), Key: config.KeyPath(append([]string{sys.Name}, keys...)...), Msg: fmt.Sprintf(format, args...)}
}

// layoutsOf derives the columns of every dataset a blob system writes from
// its push mixer and the models' types. The problems come placed at
// file:line:col.
func layoutsOf(sys *config.System, models map[string]*mixer.Model) (map[string]*layout, config.Errors) {
	out := map[string]*layout{}
	var problems config.Errors
	if sys.Push == nil {
		return out, nil
	}
	for _, model := range sys.Push.Models() {
		m := models[model]
		for _, rule := range sys.Push.Rules(model) {
			loc := rule.Location()
			at := []string{"push_mixer", model, loc}
			if m == nil {
				problems = append(problems, problemAt(sys, at, "model %s is not loaded: a dataset's column types come from its model", model))
				continue
			}
			l := &layout{location: loc, keyIndex: -1}
			bad := false
			keys := 0
			for _, f := range rule.Fields() {
				fat := append(slices.Clone(at), f.Field)
				name := f.Target.String()
				switch {
				case f.Target.Len() != 1 || name != f.Target.Head():
					problems = append(problems, problemAt(sys, fat, "a dataset column is a plain name, not the nested path %s", name))
					bad = true
					continue
				case strings.HasPrefix(name, MetaPrefix):
					problems = append(problems, problemAt(sys, fat, "column names starting with %s are Remix's own", MetaPrefix))
					bad = true
					continue
				}
				c, err := columnOf(f, m.Property(f.Field))
				if err != nil {
					problems = append(problems, problemAt(sys, fat, "%v", err))
					bad = true
					continue
				}
				if c.key {
					keys++
					l.keyIndex = len(l.columns)
				}
				l.columns = append(l.columns, c)
			}
			if keys != 1 {
				problems = append(problems, problemAt(sys, at, "a dataset needs exactly one search key (the key of its latest-state view), found %d", keys))
				bad = true
			}
			if bad {
				continue
			}
			if prev, ok := out[loc]; ok {
				if !sameColumns(prev.columns, l.columns) {
					problems = append(problems, problemAt(sys, at, "dataset %s is written by two models with different columns: give each its own location", loc))
				}
				continue
			}
			out[loc] = l
		}
	}
	return out, problems
}

func sameColumns(a, b []column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || a[i].kind != b[i].kind || a[i].precision != b[i].precision || a[i].scale != b[i].scale || a[i].key != b[i].key {
			return false
		}
	}
	return true
}
