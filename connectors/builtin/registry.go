// Package builtin lists the connectors compiled into Remix: one explicit map
// from connector type to its implementation, wired by cmd/. It is a package of
// its own so connector packages can import package connectors without a cycle.
package builtin

import (
	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors/postgres"
	"github.com/sqlpipe/remix/connectors/stripe"
)

// Connector is one connector type's description and constructors.
type Connector struct {
	Spec *config.Spec
}

// Registry maps a connector type to its implementation.
type Registry map[string]Connector

// Connectors returns the built-in connectors.
func Connectors() Registry {
	return Registry{
		postgres.Type: {Spec: postgres.Spec()},
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
