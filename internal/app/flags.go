package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sqlpipe/remix/internal/cli"
)

// Flags registers on fs the flags of a process that runs an ingest, a
// pusher or both, and returns the Options they fill once fs is parsed. The
// three ways to start one (the ingest and pusher binaries, `remix run`)
// share it. Every flag has an environment variable.
func Flags(fs *flag.FlagSet, ingest, pusher bool) *Options {
	o := &Options{Ingest: ingest, Pusher: pusher}
	o.Common.Register(fs)
	o.Fleet.Register(fs)
	addr := ":8080"
	if pusher && !ingest {
		addr = ":8081"
	}
	fs.StringVar(&o.HTTPAddr, "http-addr", cli.EnvOr("HTTP_ADDR", addr), "address of /healthz, /readyz and /metrics (env HTTP_ADDR)")
	fs.BoolVar(&o.PProf, "pprof", os.Getenv("REMIX_PPROF") == "true", "serve Go profiles under /debug/pprof/ (env REMIX_PPROF=true)")
	if ingest {
		o.Fleet.RegisterPublish(fs)
		fs.BoolVar(&o.AcceptLoss, "accept-redis-data-loss", os.Getenv("REMIX_ACCEPT_REDIS_DATA_LOSS") == "true",
			"run on a Redis without AOF, accepting that a Redis restart can lose confirmed changes (env REMIX_ACCEPT_REDIS_DATA_LOSS=true)")
	}
	switch {
	case ingest && !pusher:
		fs.Var(cli.NewEnvSystems(&o.Sources, "REMIX_SYSTEMS"), "system", "read only this source system (repeatable; default all; env REMIX_SYSTEMS, comma-separated)")
	case pusher && !ingest:
		fs.Var(cli.NewEnvSystems(&o.Targets, "REMIX_SYSTEMS"), "system", "push only to this target system (repeatable; default all; env REMIX_SYSTEMS, comma-separated)")
	}
	return o
}

// usages of the three ways to run a process.
var usages = map[string]cli.Usage{
	"ingest": {Synopsis: "ingest [flags]",
		Summary: "Reads the source systems of the configuration and publishes their changes to Redis.\nRun two or more: one reads each source, the others stand by."},
	"pusher": {Synopsis: "pusher [flags]",
		Summary: "Reads model objects from Redis and writes them to the target systems.\nRun as many as the targets take: they share the partitions and the rate limits."},
	"remix run": {Synopsis: "remix run [flags]", Summary: "Runs an ingest and a pusher in one process."},
}

// Main parses a process's arguments and runs it until ctx ends. Help and
// --version print to stdout and exit 0; a bad flag is reported with the
// usage and exit code 2.
func Main(ctx context.Context, name string, ingest, pusher bool, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	o := Flags(fs, ingest, pusher)
	version := fs.Bool("version", false, "print the version and exit")
	rest, done, code := cli.Parse(fs, usages[name], args, stdout, stderr)
	if done {
		return code
	}
	if *version {
		fmt.Fprintln(stdout, cli.Version(name))
		return 0
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, rest[0])
		return 2
	}
	if err := Run(ctx, *o, stderr); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
