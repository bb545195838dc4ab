package connectors

import "context"

// KeyLister reads what one location of a system holds, a page at a time,
// so that `remix reconcile` can compare a source with its targets. Sources
// and sinks that can list their rows implement it (checked with a type
// assertion). It opens and closes its own connection: the Source or Sink
// need not be open.
type KeyLister interface {
	// ListKeys calls page with the rows of location until every row was
	// read, page returned an error, or ctx ended. Each row holds the named
	// top-level fields (PostgreSQL: columns), decoded as the system's
	// changes are. Rows come in no particular order; page may keep the
	// slice it is given.
	ListKeys(ctx context.Context, location string, fields []string, page func(rows []map[string]any) error) error
}

// RowKeyer is a source that can rebuild the key its changes of a row carry
// (Change.Key, the partition key) from the row's identity, for a row that
// no longer exists: `remix reconcile` publishes the delete of such a row in
// the partition its earlier changes went to.
type RowKeyer interface {
	// IdentityFields lists the fields that identify a row of location, in
	// order (PostgreSQL: the columns of the replica identity).
	IdentityFields(ctx context.Context, location string) ([]string, error)
	// RowKey returns the Change.Key of the row of location whose identity
	// fields hold values (in IdentityFields order).
	RowKey(location string, values []any) (string, error)
}
