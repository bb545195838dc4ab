package app

import (
	"context"
	"io"
	"time"

	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/internal/reconcile"
)

// Reconcile compares a source with its targets and, with apply, deletes
// the target rows no source holds (see package reconcile).
func Reconcile(ctx context.Context, env *Env, system string, apply bool, wait time.Duration, sample int, w io.Writer) error {
	return reconcile.Run(ctx, reconcile.Config{Config: env.Config, Coord: env.Coord, Connectors: builtin.Connectors(),
		Source: system, Apply: apply, Wait: wait, Sample: sample, Logger: env.Log}, w)
}
