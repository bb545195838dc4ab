package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/cli"
)

// opUsages are the help texts of the commands that manage a fleet's state.
var opUsages = map[string]cli.Usage{
	"dlq list": {Synopsis: "remix dlq list [--system S]... [flags]",
		Summary: "Lists dead letters (all systems unless --system), with the reason, attempts, model and key,\nthen how full each queue is. The last line names the Redis and namespace read. With\n--superseded, lists instead the dead letters a newer complete version of their key set aside."},
	"dlq show": {Synopsis: "remix dlq show ID [--system S] [flags]",
		Summary: "Prints one dead letter whole: where it came from, its record, every reason, and the dead\nletters of the same key that wait behind it."},
	"dlq replay": {Synopsis: "remix dlq replay SYSTEM [--id ID]... [flags]",
		Summary: "Replays a system's dead letters in order with the current configuration. A source's are\nreplayed here; a target's by its running pushers, which this command waits for (--wait).\nExits 1, saying why for each, when any failed again."},
	"dlq drop": {Synopsis: "remix dlq drop SYSTEM (--id ID... | --all) [flags]",
		Summary: "Drops dead letters and unparks their keys."},
	"reset": {Synopsis: "remix reset SYSTEM [flags]",
		Summary: "Drops a source's slot and checkpoint: its next ingest copies the tables again.\nStop the ingests of the source first."},
	"reconcile": {Synopsis: "remix reconcile SYSTEM [--apply] [flags]",
		Summary: "Deletes from the targets the rows no source holds any more (after a reset). Without --apply,\na dry run that prints what would go, per target location."},
}

// operate runs the commands that read or change a fleet's state in Redis.
func operate(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("remix "+cmd, flag.ContinueOnError)
	var common cli.Common
	var fleet cli.Fleet
	common.RegisterConfig(fs)
	common.RegisterRedis(fs)
	switch cmd {
	case "reset", "reconcile": // they take the reader lock: its time matters
		fleet.Register(fs)
	default:
		fleet.RegisterNamespace(fs)
	}
	common.RegisterLog(fs)
	var systems, ids cli.Systems
	var all, asJSON, apply, superseded *bool
	var limit, sample *int
	var wait *time.Duration
	switch cmd {
	case "dlq list":
		fs.Var(&systems, "system", "system whose dead letters to list (repeatable; default all)")
		limit = fs.Int("limit", 100, "most dead letters listed per system")
		asJSON = fs.Bool("json", false, "list as JSON lines")
		superseded = fs.Bool("superseded", false, "list the dead letters a newer complete version of their key set aside, with what superseded them")
	case "dlq show":
		fs.Var(&systems, "system", "look only in this system's queue (default every system)")
	case "dlq replay":
		fs.Var(&ids, "id", "replay only this dead letter (repeatable; default all of the system)")
		wait = fs.Duration("wait", 30*time.Second, "how long to wait for the pushers to replay a target's dead letters (0: do not wait)")
	case "dlq drop":
		fs.Var(&ids, "id", "dead letter to drop (repeatable)")
		all = fs.Bool("all", false, "drop every dead letter of the system")
	case "reconcile":
		apply = fs.Bool("apply", false, "delete (default: a dry run that prints what would be deleted)")
		wait = fs.Duration("wait", 2*time.Minute, "how long to wait for the targets to apply the streams, before comparing and after deleting")
		sample = fs.Int("sample", 10, "keys shown per target location")
	}
	rest, done, code := cli.Parse(fs, opUsages[cmd], args, stdout, stderr)
	if done {
		return code
	}
	// The system name (dlq show: the dead letter id) comes first.
	var name string
	if cmd != "dlq list" {
		if len(rest) == 0 {
			what := "the system"
			if cmd == "dlq show" {
				what = "the dead letter (its id, from remix dlq list)"
			}
			fmt.Fprintf(stderr, "remix %s: name %s\nusage: %s\n", cmd, what, opUsages[cmd].Synopsis)
			return 2
		}
		name, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "remix %s: unexpected argument %q\nusage: %s\n", cmd, rest[0], opUsages[cmd].Synopsis)
		return 2
	}
	setup := app.SetupRedis // the dead-letter commands use Redis alone
	if cmd == "reset" || cmd == "reconcile" {
		setup = app.Setup // they connect to the source, or to both systems
	}
	env, err := setup(ctx, common, fleet, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer env.Coord.Redis().Close()
	if cmd == "dlq list" || cmd == "dlq show" || cmd == "dlq replay" || cmd == "dlq drop" {
		if err := env.RequireFleet(ctx); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
	}
	switch cmd {
	case "dlq list":
		err = app.ListDeadLetters(ctx, env, systems, app.ListOptions{Limit: *limit, JSON: *asJSON, Superseded: *superseded}, stdout)
	case "dlq show":
		err = app.ShowDeadLetter(ctx, env, name, systems, stdout)
	case "dlq replay":
		err = app.ReplayDeadLetters(ctx, env, name, ids, *wait, stdout)
	case "dlq drop":
		err = app.DropDeadLetters(ctx, env, name, ids, *all, stdout)
	case "reset":
		err = app.Reset(ctx, env, name, stdout)
	case "reconcile":
		err = app.Reconcile(ctx, env, name, *apply, *wait, *sample, stdout)
	}
	if errors.Is(err, app.ErrReported) {
		return 1 // the command said what failed
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
