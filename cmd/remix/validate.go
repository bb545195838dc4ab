package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/internal/cli"
)

// problem is one line of `remix validate --format json`.
type problem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Key      string `json:"key,omitempty"`
	Message  string `json:"message"`
	Severity string `json:"severity"` // error or warning
}

// validate loads the configuration and prints every problem as
// file:line:col: message. Exit status: 0 clean (warnings allowed), 1
// problems, 2 bad usage.
func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("remix validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common cli.Common
	common.Register(fs)
	format := fs.String("format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "remix validate: --format %q is neither text nor json\n", *format)
		return 2
	}
	cfg, err := common.Load()
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		fmt.Fprintf(stderr, "remix validate: %v\n", err)
		return 1
	}
	var warnings config.Errors
	if cfg != nil {
		warnings = cfg.Warnings
	}
	problems := make([]problem, 0, len(errs)+len(warnings))
	for _, list := range []struct {
		errs     config.Errors
		severity string
	}{{errs, "error"}, {warnings, "warning"}} {
		for _, e := range list.errs {
			problems = append(problems, problem{File: e.File, Line: e.Line, Column: e.Col, Key: e.Key, Message: e.Msg, Severity: list.severity})
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(problems); err != nil {
			fmt.Fprintf(stderr, "remix validate: %v\n", err)
			return 1
		}
	} else {
		for _, e := range errs {
			fmt.Fprintln(stdout, e.Error())
		}
		for _, w := range warnings {
			fmt.Fprintf(stdout, "%s: warning: %s: %s\n", w.Pos, w.Key, w.Msg)
		}
		if len(errs) == 0 {
			fmt.Fprintf(stderr, "configuration is valid: %d systems, %d models\n", len(cfg.Systems), len(cfg.Models))
		} else {
			fmt.Fprintf(stderr, "%d problems\n", len(errs))
		}
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}
