package postgres

import "strings"

// Two-way sync: when Remix writes into a PostgreSQL target changes that
// were first made in system X, the sink's session runs under a replication
// origin named originPrefix+X. A source reading that database sees an
// Origin message before such a transaction and marks its changes with X
// (connectors.Change.Origin), so they are never written back into X.

// originPrefix starts the name of every replication origin Remix uses.
const originPrefix = "remix:"

// originName is the replication origin of writes made for system.
func originName(system string) string { return originPrefix + system }

// originSystem is the system a replication origin name stands for, ""
// when the origin is not Remix's (another tool's writes count as changes
// made here).
func originSystem(name string) string {
	if sys, ok := strings.CutPrefix(name, originPrefix); ok {
		return sys
	}
	return ""
}
