// Command remix checks configurations, shows a running fleet, runs a whole
// Remix in one process, and manages dead letters and sources.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	_ "github.com/sqlpipe/remix/connectors/blob/cloud" // writes datasets to S3, GCS and Azure Blob
	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/cli"
)

const usage = `usage: remix <command> [flags]

commands:
  validate [--online]           check the configuration and print every problem as file:line:col;
                                --online also checks it against the systems and Redis (alias: check)
  status [--watch]              the fleet at a glance: members, sources, backlog per target, dead letters
  datasets [--query duckdb]     the datasets of the object-storage targets: where each model's files go,
                                their columns, and a query that reads the latest state
  run                           run an ingest and a pusher in one process
  dlq list [--system S]...      list dead letters
  dlq show ID                   one dead letter: its record, every reason, what waits behind it
  dlq replay SYSTEM [--id ID]   replay dead letters in order with the current configuration
  dlq drop SYSTEM (--id ID|--all)
                                drop dead letters and unpark their keys
  reset SYSTEM                  drop a source's slot and checkpoint: the next start copies the tables again
  reconcile SYSTEM [--apply]    delete from the targets the rows no source holds any more (after a reset);
                                without --apply a dry run: prints what would go, per target location
  healthcheck URL               one GET of a /readyz or /healthz address: exit 0 on 2xx (container checks)
  help [COMMAND]                this text, or a command's own flags
  version                       the version of this build (also --version)

"remix help COMMAND" (or "remix COMMAND --help") lists the command's flags, each with its
environment variable.
`

func main() {
	cli.Main(cli.FleetMemoryLimit, func(ctx context.Context) error {
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
	if cmd == "dlq" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = "dlq "+rest[0], rest[1:]
	}
	switch cmd {
	case "validate", "check":
		return validate(ctx, cmd, rest, stdout, stderr)
	case "status":
		return status(ctx, rest, stdout, stderr)
	case "datasets":
		return datasets(ctx, rest, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, stdout, stderr)
	case "run":
		return app.Main(ctx, "remix run", true, true, rest, stdout, stderr)
	case "dlq list", "dlq show", "dlq replay", "dlq drop", "reset", "reconcile":
		return operate(ctx, cmd, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		return help(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, cli.Version("remix"))
		return 0
	}
	if cmd == "dlq" {
		if len(rest) > 0 && isHelp(rest[0]) {
			fmt.Fprint(stdout, dlqUsage())
			return 0
		}
		fmt.Fprintf(stderr, "remix dlq: name what to do: list, show, replay or drop\n%s", dlqUsage())
		return 2
	}
	fmt.Fprintf(stderr, "remix: unknown command %q\n%s", cmd, usage)
	return 2
}

// dlqUsage lists the dead-letter commands, each with what it does.
func dlqUsage() string {
	var b strings.Builder
	b.WriteString("usage: remix dlq <list|show|replay|drop> [flags]\n\n")
	for _, c := range []string{"dlq list", "dlq show", "dlq replay", "dlq drop"} {
		u := opUsages[c]
		fmt.Fprintf(&b, "%s\n    %s\n\n", u.Synopsis, strings.ReplaceAll(u.Summary, "\n", "\n    "))
	}
	b.WriteString(`"remix help dlq COMMAND" (or "remix dlq COMMAND --help") lists the command's flags, each with
its environment variable.
`)
	return b.String()
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// help prints the usage, or a command's own: `remix help dlq list` is
// `remix dlq list --help`.
func help(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if args[0] == "help" || args[0] == "version" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd := args
	if args[0] == "dlq" && len(args) == 1 {
		fmt.Fprint(stdout, dlqUsage())
		return 0
	}
	if args[0] == "dlq" {
		cmd = args[:2]
	} else {
		cmd = args[:1]
	}
	return run(ctx, append(append([]string(nil), cmd...), "--help"), stdout, stderr)
}
