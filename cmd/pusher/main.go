// Command pusher reads model objects from Redis and writes them to the
// target systems of a Remix configuration. Run as many as the targets can
// take: they share the partitions and the rate limits.
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
		fs := flag.NewFlagSet("pusher", flag.ExitOnError)
		var o app.Options
		o.Common.Register(fs)
		o.Fleet.Register(fs)
		var systems cli.Systems
		fs.Var(&systems, "system", "push only to this target system (repeatable; default all)")
		fs.StringVar(&o.HTTPAddr, "http-addr", envOr("HTTP_ADDR", ":8081"), "address of /healthz, /readyz and /metrics (env HTTP_ADDR)")
		fs.BoolVar(&o.PProf, "pprof", os.Getenv("REMIX_PPROF") == "true", "serve Go profiles under /debug/pprof/ (env REMIX_PPROF=true)")
		_ = fs.Parse(os.Args[1:])
		o.Pusher, o.Targets = true, systems
		return app.Run(ctx, o, os.Stderr)
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
