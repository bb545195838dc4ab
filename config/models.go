package config

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sqlpipe/remix/mixer"
)

// modelFile is a loaded model and where its title was written.
type modelFile struct {
	model *mixer.Model
	pos   Pos
}

// loadModels compiles every *.json file of dir. A file that fails is
// reported and left out, so the mixers can still be checked against the rest.
func loadModels(dir string, errs *Errors) map[string]*modelFile {
	models := map[string]*modelFile{}
	names, ok := listDir(dir, "models", errs, ".json")
	if !ok {
		return models
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			*errs = append(*errs, &Error{Pos: Pos{File: path}, Msg: err.Error()})
			continue
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		if e, bad := jsonSyntaxProblem(path, data); bad {
			*errs = append(*errs, e)
			continue
		}
		var root yaml.Node
		located := yaml.Unmarshal(data, &root) == nil
		m, problems := compileModel("file://"+filepath.ToSlash(abs), data, func(pointer string) Pos {
			if !located {
				return Pos{File: path}
			}
			return pointerPos(path, &root, pointer)
		})
		if len(problems) > 0 {
			*errs = append(*errs, problems...)
			continue
		}
		titlePos := Pos{File: path}
		if located {
			titlePos = pointerPos(path, &root, "/title")
		}
		if prev, dup := models[m.Title]; dup {
			*errs = append(*errs, &Error{Pos: titlePos, Msg: "model title " + strconv.Quote(m.Title) + " is already used by " + prev.pos.String() + "; titles must be unique"})
			continue
		}
		models[m.Title] = &modelFile{model: m, pos: titlePos}
	}
	return models
}

// listDir returns the names in dir with one of the extensions, sorted.
func listDir(dir, what string, errs *Errors, exts ...string) ([]string, bool) {
	if dir == "" {
		*errs = append(*errs, &Error{Msg: "no " + what + " directory given (set " + strings.ToUpper(what) + "_DIR or --" + what + ")"})
		return nil, false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		*errs = append(*errs, &Error{Pos: Pos{File: dir}, Msg: "cannot read the " + what + " directory: " + err.Error()})
		return nil, false
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		for _, ext := range exts {
			if strings.HasSuffix(e.Name(), ext) {
				names = append(names, e.Name())
				break
			}
		}
	}
	sort.Strings(names)
	return names, true
}

// pointerPos finds the line of a JSON pointer in a document parsed as YAML
// (JSON is YAML): the deepest node the pointer reaches.
func pointerPos(file string, root *yaml.Node, pointer string) Pos {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	best := n
	if pointer != "" {
		for _, seg := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
			seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
			var next *yaml.Node
			switch n.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == seg {
						best = n.Content[i]
						next = n.Content[i+1]
						break
					}
				}
			case yaml.SequenceNode:
				if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n.Content) {
					next = n.Content[i]
					best = next
				}
			}
			if next == nil {
				break
			}
			n = next
		}
	}
	return Pos{File: file, Line: best.Line, Col: best.Column}
}
