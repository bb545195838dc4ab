// Command remix checks configurations, runs a whole Remix in one process,
// and manages dead letters and sources.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/cli"
)

const usage = `usage: remix <command> [flags]

commands:
  validate                      check the configuration offline and print every problem
  run                           run an ingest and a pusher in one process
  dlq list [--system S]...      list dead letters
  dlq replay SYSTEM [--id ID]   replay dead letters in order with the current configuration
  dlq drop SYSTEM (--id ID|--all)
                                drop dead letters and unpark their keys
  reset SYSTEM                  drop a source's slot and checkpoint: the next start copies the tables again
  reconcile SYSTEM [--apply]    delete from the targets the rows no source holds any more (after a reset);
                                without --apply a dry run: prints what would go, per target location

every command takes --systems and --models (or SYSTEMS_DIR and MODELS_DIR);
those that reach Redis take --redis (REDIS_URL) and --namespace.
`

func main() {
	cli.Main(func(ctx context.Context) error {
		if code := run(ctx, os.Args[1:], os.Stdout, os.Stderr); code != 0 {
			os.Exit(code)
		}
		return nil
	})
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	if cmd == "dlq" && len(rest) > 0 {
		cmd, rest = "dlq "+rest[0], rest[1:]
	}
	switch cmd {
	case "validate":
		return validate(rest, stdout, stderr)
	case "run":
		return runAll(ctx, rest, stderr)
	case "dlq list", "dlq replay", "dlq drop", "reset", "reconcile":
		return operate(ctx, cmd, rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "remix: unknown command %q\n%s", cmd, usage)
	return 2
}

func runAll(ctx context.Context, args []string, stderr io.Writer) int {
	return app.Main(ctx, "remix run", true, true, args, stderr)
}

func operate(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("remix "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common cli.Common
	var fleet cli.Fleet
	common.Register(fs)
	fleet.Register(fs)
	var systems, ids cli.Systems
	fs.Var(&systems, "system", "system whose dead letters to list (repeatable; default all)")
	fs.Var(&ids, "id", "dead letter id (repeatable)")
	all := fs.Bool("all", false, "drop every dead letter of the system")
	limit := fs.Int("limit", 100, "most dead letters listed per system")
	asJSON := fs.Bool("json", false, "list as JSON lines")
	apply := fs.Bool("apply", false, "reconcile: delete (default: a dry run that prints what would be deleted)")
	wait := fs.Duration("wait", 2*time.Minute, "reconcile: how long to wait for the targets to apply the streams, before comparing and after deleting")
	sample := fs.Int("sample", 10, "reconcile: keys shown per target location")
	// The system name comes first for replay, drop and reset.
	var system string
	if cmd != "dlq list" {
		if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
			fmt.Fprintf(stderr, "remix %s: name the system first\n", cmd)
			return 2
		}
		system, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	env, err := app.Setup(ctx, common, fleet, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer env.Coord.Redis().Close()
	switch cmd {
	case "dlq list":
		err = app.ListDeadLetters(ctx, env, systems, *limit, *asJSON, stdout)
	case "dlq replay":
		err = app.ReplayDeadLetters(ctx, env, system, ids, stdout)
	case "dlq drop":
		err = app.DropDeadLetters(ctx, env, system, ids, *all, stdout)
	case "reset":
		err = app.Reset(ctx, env, system, stdout)
	case "reconcile":
		err = app.Reconcile(ctx, env, system, *apply, *wait, *sample, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
