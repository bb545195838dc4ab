// Command pusher reads model objects from Redis and writes them to the
// target systems of a Remix configuration. Run as many as the targets can
// take: they share the partitions and the rate limits.
package main

import (
	"context"
	"os"

	_ "github.com/sqlpipe/remix/connectors/blob/cloud" // writes datasets to S3, GCS and Azure Blob
	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/cli"
)

func main() {
	cli.Main(cli.FleetMemoryLimit, func(ctx context.Context) error {
		os.Exit(app.Main(ctx, "pusher", false, true, os.Args[1:], os.Stdout, os.Stderr))
		return nil
	})
}
