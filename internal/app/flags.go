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
// share it.
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
		fs.BoolVar(&o.AcceptLoss, "accept-redis-data-loss", false, "run on a Redis without AOF, accepting that a Redis restart can lose confirmed changes")
	}
	switch {
	case ingest && !pusher:
		fs.Var((*cli.Systems)(&o.Sources), "system", "read only this source system (repeatable; default all)")
	case pusher && !ingest:
		fs.Var((*cli.Systems)(&o.Targets), "system", "push only to this target system (repeatable; default all)")
	}
	return o
}

// Main parses a process's arguments and runs it until ctx ends. A bad flag
// is reported with the usage and exit code 2.
func Main(ctx context.Context, name string, ingest, pusher bool, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := Flags(fs, ingest, pusher)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if err := Run(ctx, *o, stderr); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
