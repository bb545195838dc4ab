// Command ingest reads the source systems of a Remix configuration and
// publishes their changes, remixed into model objects, to Redis. Run two or
// more for failover: one reads each source, the others stand by.
package main

import (
	"context"
	"os"

	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/cli"
)

func main() {
	cli.Main(cli.IngestMemoryLimit, func(ctx context.Context) error {
		os.Exit(app.Main(ctx, "ingest", true, false, os.Args[1:], os.Stdout, os.Stderr))
		return nil
	})
}
