package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/sqlpipe/remix/mixer"
)

// jsonSyntaxProblem checks that data is one JSON value and, when it is
// not, returns where it goes wrong (line and column, counted in
// characters) and why.
func jsonSyntaxProblem(path string, data []byte) (*Error, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	err := dec.Decode(&v)
	var off int64
	var msg string
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		off, msg = se.Offset-1, se.Error() // Offset counts the byte that broke it
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		off, msg = int64(len(bytes.TrimRight(data, " \t\r\n"))), "the file ends before the JSON value does"
	case err != nil:
		off, msg = dec.InputOffset(), err.Error()
	default:
		rest := data[dec.InputOffset():]
		trimmed := bytes.TrimLeft(rest, " \t\r\n")
		if len(trimmed) == 0 {
			return nil, false
		}
		off, msg = int64(len(data)-len(trimmed)), "more than one value in the file"
	}
	off = max(0, min(off, int64(len(data))))
	line, col := lineCol(data[:off])
	return &Error{Pos: Pos{File: path, Line: line, Col: col}, Msg: "not valid JSON: " + msg}, true
}

// lineCol is the 1-based line and column just after prefix.
func lineCol(prefix []byte) (int, int) {
	line := 1 + bytes.Count(prefix, []byte("\n"))
	last := bytes.LastIndexByte(prefix, '\n')
	return line, 1 + utf8.RuneCount(prefix[last+1:])
}

// compileModel compiles a model file and, when properties are wrong,
// reports every wrong property rather than the first: each time the
// compiler names a property, that property is set aside and the rest
// compiled again. pos turns a JSON pointer of the original file into a
// position. It returns the model only when nothing was wrong.
func compileModel(url string, data []byte, pos func(pointer string) Pos) (*mixer.Model, Errors) {
	var errs Errors
	var doc map[string]any
	for attempt := 0; ; attempt++ {
		m, err := mixer.CompileModel(url, data)
		if err == nil {
			if len(errs) > 0 {
				return nil, errs
			}
			return m, nil
		}
		var me *mixer.ModelError
		if !errors.As(err, &me) {
			return nil, append(errs, &Error{Pos: pos(""), Msg: err.Error()})
		}
		errs = append(errs, &Error{Pos: pos(me.Pointer), Msg: me.Msg})
		name, ok := propertyOf(me.Pointer)
		if !ok || attempt > 1000 {
			return nil, errs
		}
		if doc == nil {
			if err := json.Unmarshal(data, &doc); err != nil {
				return nil, errs
			}
		}
		if !dropProperty(doc, name) {
			return nil, errs
		}
		if data, err = json.Marshal(doc); err != nil {
			return nil, errs
		}
	}
}

// propertyOf returns the property a JSON pointer of a model points into.
func propertyOf(pointer string) (string, bool) {
	rest, ok := strings.CutPrefix(pointer, "/properties/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~"), true
}

// dropProperty removes a property, and its entry in "required", from a
// model document; false when it has no such property.
func dropProperty(doc map[string]any, name string) bool {
	props, _ := doc["properties"].(map[string]any)
	if _, ok := props[name]; !ok {
		return false
	}
	delete(props, name)
	if req, ok := doc["required"].([]any); ok {
		kept := req[:0]
		for _, r := range req {
			if r != name {
				kept = append(kept, r)
			}
		}
		doc["required"] = kept
	}
	return true
}
