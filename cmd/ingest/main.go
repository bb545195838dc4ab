// Command ingest reads the source systems of a Remix configuration and
// publishes their changes, remixed into model objects, to Redis. Run two or
// more for failover: one reads each source, the others stand by.
package main

import (
	"context"
	"flag"
	"os"

	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/cli"
)

func main() {
	cli.Main(func(ctx context.Context) error {
		fs := flag.NewFlagSet("ingest", flag.ExitOnError)
		var o app.Options
		o.Common.Register(fs)
		o.Fleet.Register(fs)
		var systems cli.Systems
		fs.Var(&systems, "system", "read only this source system (repeatable; default all)")
		fs.StringVar(&o.HTTPAddr, "http-addr", envOr("HTTP_ADDR", ":8080"), "address of /healthz, /readyz and /metrics (env HTTP_ADDR)")
		fs.BoolVar(&o.AcceptLoss, "accept-redis-data-loss", false, "run on a Redis without AOF, accepting that a Redis restart can lose confirmed changes")
		fs.BoolVar(&o.PProf, "pprof", os.Getenv("REMIX_PPROF") == "true", "serve Go profiles under /debug/pprof/ (env REMIX_PPROF=true)")
		_ = fs.Parse(os.Args[1:])
		o.Ingest, o.Sources = true, systems
		return app.Run(ctx, o, os.Stderr)
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
