package config

import (
	"encoding/json"
	"errors"
	"math/big"

	"fmt"
	"strings"

	"github.com/sqlpipe/remix/mixer"

	"gopkg.in/yaml.v3"
)

// file is one YAML file being read; problems are collected, not returned,
// so one load reports everything it finds.
type file struct {
	name   string
	getenv func(string) (string, bool)
	errs   *Errors
	unset  *Errors // where an unset variable is reported as a warning; nil: it is an error
}

func (f *file) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: f.name}
	}
	return Pos{File: f.name, Line: n.Line, Col: n.Column}
}

func (f *file) errorf(n *yaml.Node, key []string, format string, args ...any) {
	*f.errs = append(*f.errs, &Error{Pos: f.pos(n), Key: keyPath(key...), Msg: fmt.Sprintf(format, args...)})
}

// entry is one key of a mapping.
type entry struct {
	name string
	key  *yaml.Node
	val  *yaml.Node
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// mapping returns the entries of a mapping node in file order, with aliases
// resolved and merge keys (<<: *base) expanded where they stand, explicit keys
// winning over merged ones. Duplicate keys are errors. what names the
// expected content for the error when n is not a mapping.
func (f *file) mapping(n *yaml.Node, path []string, what string) ([]entry, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			f.errorf(n, path, "is empty; expected %s", what)
		} else {
			f.errorf(n, path, "expected %s, found %s", what, nodeKind(n))
		}
		return nil, false
	}
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k.Kind == yaml.ScalarNode && k.Tag != "!!merge" {
			explicit[k.Value] = true
		}
	}
	var out []entry
	seen := map[string]*yaml.Node{}
	add := func(k, v *yaml.Node, merged bool) {
		if merged && explicit[k.Value] {
			return
		}
		if prev, dup := seen[k.Value]; dup {
			if !merged {
				f.errorf(k, sub(path, k.Value), "duplicate key; first written at line %d", prev.Line)
			}
			return
		}
		seen[k.Value] = k
		out = append(out, entry{name: k.Value, key: k, val: v})
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			f.errorf(k, path, "keys must be plain strings, found %s", nodeKind(k))
			continue
		}
		if k.Tag == "!!merge" {
			for _, src := range mergeSources(v) {
				src = resolve(src)
				if src == nil || src.Kind != yaml.MappingNode {
					f.errorf(k, path, "<< must refer to a mapping (an &anchor of keys)")
					continue
				}
				for j := 0; j+1 < len(src.Content); j += 2 {
					add(resolve(src.Content[j]), src.Content[j+1], true)
				}
			}
			continue
		}
		add(k, v, false)
	}
	return out, true
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	v = resolve(v)
	if v != nil && v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return []*yaml.Node{v}
}

// scalar returns a scalar's interpolated text.
func (f *file) scalar(n *yaml.Node, path []string) (string, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		f.errorf(n, path, "expected a single value, found %s", nodeKind(n))
		return "", false
	}
	s, err := interpolate(n.Value, f.getenv)
	var unset *UnsetVariableError
	if f.unset != nil && errors.As(err, &unset) {
		*f.unset = append(*f.unset, &Error{Pos: f.pos(n), Key: keyPath(path...),
			Msg: fmt.Sprintf("%v (an error when Remix runs); the value is not checked", err)})
		return "", false
	}
	if err != nil {
		f.errorf(n, path, "%v", err)
		return "", false
	}
	return s, true
}

// scalarValue returns a scalar as a mixer value: strings, exact numbers
// (json.Number via the mixer), booleans and null. Interpolated values are
// strings; the mixer converts them to the field's type.
func (f *file) scalarValue(n *yaml.Node, path []string) (any, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		f.errorf(n, path, "expected a single value, found %s", nodeKind(n))
		return nil, false
	}
	if strings.Contains(n.Value, "$") {
		return f.scalar(n, path)
	}
	switch n.Tag {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			f.errorf(n, path, "%v", err)
			return nil, false
		}
		return b, true
	case "!!int", "!!float":
		num, err := normalizeYAMLNumber(n.Value)
		if err != nil {
			f.errorf(n, path, "%v; quote it if you mean a string", err)
			return nil, false
		}
		return num, true
	}
	return n.Value, true
}

func nodeKind(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("the value %q", truncate(n.Value, 40))
	}
	return "something else"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// normalizeYAMLNumber turns a YAML int or float into an exact decimal:
// hexadecimal and octal ints are converted, infinities and NaN refused.
func normalizeYAMLNumber(s string) (json.Number, error) {
	t := strings.ReplaceAll(s, "_", "")
	body := strings.TrimLeft(t, "+-")
	if strings.HasPrefix(body, "0x") || strings.HasPrefix(body, "0o") {
		i, ok := new(big.Int).SetString(t, 0)
		if !ok {
			return "", fmt.Errorf("%q is not a number", s)
		}
		return json.Number(i.String()), nil
	}
	sign := t[:len(t)-len(body)]
	if strings.HasPrefix(body, ".") {
		body = "0" + body
	}
	body = strings.Replace(body, ".e", ".0e", 1)
	body = strings.Replace(body, ".E", ".0E", 1)
	body = strings.TrimSuffix(body, ".")
	n, err := mixer.NormalizeNumber(sign + body)
	if err != nil {
		return "", fmt.Errorf("%q is not a decimal number", s)
	}
	return n, nil
}
