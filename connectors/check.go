package connectors

import (
	"context"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/mixer"
)

// Checker is a source or sink that can tell, before anything runs and
// without changing anything, whether its system fits the configuration:
// the tables and columns its mixer names, their types against the models,
// the keys, the permissions it will need. `remix validate --online` builds
// each system's source and sink (without starting them) and asks those that
// are Checkers.
//
// Each problem is a config.Error placed where the configuration writes what
// it concerns (the system's own position when nothing closer says it), so
// it prints as file:line:col like the offline checks. Errors are what would
// stop the system or dead-letter every record; warnings what may fail for
// some records. A system that cannot be reached is an error.
type Checker interface {
	Check(ctx context.Context, models map[string]*mixer.Model) (errs, warnings config.Errors)
}
