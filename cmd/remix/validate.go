package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/internal/app"
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

var validateUsage = cli.Usage{Synopsis: "remix validate [--online] [--strict] [--format text|json] [flags]",
	Summary: `Checks the configuration and prints every problem as file:line:col: key: message.
Offline (the default) it needs no system: an unset ${VAR} is a warning (an error at run time)
unless --strict. --online (or "remix check") also checks it against the systems and Redis:
tables, columns, types and key indexes on both sides, replication and publication rights,
Redis reachable. Exit status: 0 valid (warnings allowed), 1 problems, 2 bad usage.`}

// validate loads the configuration and prints every problem as
// file:line:col: message.
func validate(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("remix "+cmd, flag.ContinueOnError)
	var common cli.Common
	var fleet cli.Fleet
	common.RegisterConfig(fs)
	format := fs.String("format", "text", "text or json")
	strict := fs.Bool("strict", false, "an unset ${VAR} is an error, as when Remix runs")
	online := fs.Bool("online", cmd == "check", "also check against the systems and Redis (implies --strict)")
	common.RegisterRedis(fs)
	fleet.RegisterNamespace(fs)
	u := validateUsage
	if cmd == "check" {
		u.Synopsis = "remix check [flags] (remix validate --online)"
	}
	rest, done, code := cli.Parse(fs, u, args, stdout, stderr)
	if done {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "remix %s: unexpected argument %q\n", cmd, rest[0])
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "remix %s: --format %q is neither text nor json\n", cmd, *format)
		return 2
	}
	var cfg *config.Config
	var err error
	if *strict || *online {
		cfg, err = common.Load()
	} else {
		cfg, err = common.LoadUnsetWarn()
	}
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		fmt.Fprintf(stderr, "remix %s: %v\n", cmd, err)
		return 1
	}
	var warnings config.Errors
	if cfg != nil {
		warnings = cfg.Warnings
	}
	checked := false
	if *online && len(errs) == 0 {
		e, w := app.CheckOnline(ctx, cfg, common, fleet)
		errs, warnings = append(errs, e...), append(warnings, w...)
		checked = true
	}
	if *format == "json" {
		if err := printJSON(stdout, errs, warnings); err != nil {
			fmt.Fprintf(stderr, "remix %s: %v\n", cmd, err)
			return 1
		}
	} else {
		for _, e := range errs {
			fmt.Fprintln(stdout, problemLine(e, ""))
		}
		for _, w := range warnings {
			fmt.Fprintln(stdout, problemLine(w, "warning: "))
		}
		switch {
		case len(errs) > 0:
			fmt.Fprintln(stderr, cli.Plural(len(errs), "problem", "problems"))
		case checked:
			fmt.Fprintf(stderr, "configuration is valid and fits its systems and Redis: %s, %s\n",
				cli.Plural(len(cfg.Systems), "system", "systems"), cli.Plural(len(cfg.Models), "model", "models"))
		default:
			fmt.Fprintf(stderr, "configuration is valid: %s, %s\n",
				cli.Plural(len(cfg.Systems), "system", "systems"), cli.Plural(len(cfg.Models), "model", "models"))
		}
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}

// problemLine is file:line:col: [warning: ]key: message; a problem of no
// file (Redis) is key: message.
func problemLine(e *config.Error, severity string) string {
	pos := e.Pos.String() + ": "
	if e.File == "" {
		pos = ""
	}
	key := e.Key + ": "
	if e.Key == "" {
		key = ""
	}
	return pos + severity + key + e.Msg
}

func printJSON(w io.Writer, errs, warnings config.Errors) error {
	problems := make([]problem, 0, len(errs)+len(warnings))
	for _, list := range []struct {
		errs     config.Errors
		severity string
	}{{errs, "error"}, {warnings, "warning"}} {
		for _, e := range list.errs {
			problems = append(problems, problem{File: e.File, Line: e.Line, Column: e.Col, Key: e.Key, Message: e.Msg, Severity: list.severity})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(problems)
}
