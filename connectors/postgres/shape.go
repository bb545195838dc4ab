package postgres

import (
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// When a column the receive mixer reads is renamed or dropped while the
// source streams, PostgreSQL describes the table anew (a Relation message)
// before its next change. Without the column, an update would leave the
// target's value as it was and an insert would leave it null, silently. So
// while a mapped table lacks a mapped column, each of its upserts is
// dead-lettered whole (every column of the row, so that a replay with a
// mixer fixed to the new name finds it), later changes of the same row
// wait behind it, and Problem reports it for readiness. Deletes carry only
// the key and go on. A later description with the column (renamed back)
// ends it. See docs/decisions/2026-12-05-mapped-column-gone.md.

// checkShape compares a mapped table's description with the columns its
// receive mixer reads, and records what is missing.
func (s *Source) checkShape(rel *relation) {
	have := make([]string, len(rel.cols))
	for i, c := range rel.cols {
		have[i] = c.name
	}
	rel.gone = s.gone.Check(s.log, rel.loc, rel.table.need, have)
	if rel.gone != nil {
		for i := range rel.cols {
			rel.cols[i].need = true // the dead letters keep whole rows
		}
	}
}

// markGone makes a relation's upserts dead letters; deletes go on.
func markGone(rel *relation, changes []connectors.Change) {
	for i := range changes {
		if changes[i].Err == nil && changes[i].Record.Op == mixer.OpUpsert {
			changes[i].Err = rel.gone
		}
	}
}

// Problem reports the mapped tables that lack columns the receive mixer
// reads, or nil (connectors.ProblemReporter).
func (s *Source) Problem() error { return s.gone.Problem() }
