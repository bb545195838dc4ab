// Package builtin lists the connectors compiled into Remix: one explicit map
// from connector type to its implementation, which cmd/ and internal/app
// hand to the ingest and the pusher. Adding a connector is adding its
// package and one line here. It is a package of its own so that connector
// packages can import package connectors without a cycle, and so that the
// fleet (ingest, pusher, coord, mixer) depends on no connector.
package builtin

import (
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/blob"
	"github.com/sqlpipe/remix/connectors/mysql"
	"github.com/sqlpipe/remix/connectors/postgres"
	"github.com/sqlpipe/remix/connectors/stripe"
)

// Connectors returns the built-in connectors.
func Connectors() connectors.Registry {
	return connectors.Registry{
		postgres.Type:  {Spec: postgres.Spec(), NewSource: postgres.NewSource, NewSink: postgres.NewSink, Reset: postgres.Reset},
		mysql.Type:     {Spec: mysql.Spec(), NewSource: mysql.NewSource, NewSink: mysql.NewSink, Reset: mysql.Reset},
		stripe.Type:    {Spec: stripe.Spec(), NewSource: stripe.NewSource, NewSink: stripe.NewSink, NewReceiver: stripe.NewReceiver, Reset: stripe.Reset},
		blob.TypeS3:    {Spec: blob.Spec(blob.TypeS3), NewSink: blob.NewSink},
		blob.TypeGCS:   {Spec: blob.Spec(blob.TypeGCS), NewSink: blob.NewSink},
		blob.TypeAzure: {Spec: blob.Spec(blob.TypeAzure), NewSink: blob.NewSink},
		blob.TypeFile:  {Spec: blob.Spec(blob.TypeFile), NewSink: blob.NewSink},
	}
}
