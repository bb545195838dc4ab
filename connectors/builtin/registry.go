// Package builtin lists the connectors compiled into Remix: one explicit map
// from connector type to its implementation, wired by cmd/. It is a package of
// its own so connector packages can import package connectors without a cycle.
package builtin

import (
	"context"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/postgres"
	"github.com/sqlpipe/remix/connectors/stripe"
)

// Connector is one connector type: its configuration keys and constructors.
// A nil constructor means the type cannot play that role in this build.
type Connector struct {
	Spec      *config.Spec
	NewSource func(*config.System, connectors.SourceDeps) (connectors.Source, error)
	NewSink   func(*config.System, connectors.SinkDeps) (connectors.Sink, error)
	// Reset forgets a source's replication state so it starts over with a
	// snapshot (`remix reset`); nil when there is nothing to forget.
	Reset func(context.Context, *config.System, connectors.Checkpoints) error
}

// Registry maps a connector type to its implementation.
type Registry map[string]Connector

// Connectors returns the built-in connectors.
func Connectors() Registry {
	return Registry{
		postgres.Type: {Spec: postgres.Spec(), NewSource: postgres.NewSource, NewSink: postgres.NewSink, Reset: postgres.Reset},
		stripe.Type:   {Spec: stripe.Spec()},
	}
}

// Specs returns what the configuration loader needs to know of each type.
func (r Registry) Specs() config.Specs {
	out := config.Specs{}
	for t, c := range r {
		out[t] = c.Spec
	}
	return out
}
