package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/cli"
)

var statusUsage = cli.Usage{Synopsis: "remix status [--watch] [--format text|json] [flags]",
	Summary: `Shows the fleet from Redis on one screen: each ingest and pusher and what it does, who holds
each source's reader lock and how far the source got, each target's backlog per model (entries,
age of the oldest, entries applied per second, partitions per pusher), and the dead letters of
each system. Without --watch it reads twice, a second apart, for the rates.`}

// status prints the fleet's state, once or with --watch until interrupted.
func status(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("remix status", flag.ContinueOnError)
	var common cli.Common
	var fleet cli.Fleet
	common.RegisterConfig(fs)
	common.RegisterRedis(fs)
	fleet.RegisterNamespace(fs)
	watch := fs.Bool("watch", false, "show it again every --interval until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "time between readings with --watch")
	format := fs.String("format", "text", "text or json (with --watch, one JSON object per line)")
	rest, done, code := cli.Parse(fs, statusUsage, args, stdout, stderr)
	if done {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "remix status: unexpected argument %q\n", rest[0])
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "remix status: --format %q is neither text nor json\n", *format)
		return 2
	}
	if *interval <= 0 {
		fmt.Fprintln(stderr, "remix status: --interval must be above 0")
		return 2
	}
	env, err := app.SetupRedis(ctx, common, fleet, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer env.Coord.Redis().Close()
	if err := env.RequireFleet(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if err := app.Status(ctx, env, *format, *watch, *interval, stdout); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
