package postgres

import (
	"slices"
	"sort"
	"strings"

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
	var missing []string
	for c := range rel.table.need {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		s.setGone(rel.loc, nil)
		return
	}
	sort.Strings(missing)
	rel.gone = &connectors.MissingFieldsError{Location: rel.loc, Missing: missing, Have: have}
	for i := range rel.cols {
		rel.cols[i].need = true // the dead letters keep whole rows
	}
	s.setGone(rel.loc, rel.gone)
}

// markGone makes a relation's upserts dead letters; deletes go on.
func markGone(rel *relation, changes []connectors.Change) {
	for i := range changes {
		if changes[i].Err == nil && changes[i].Record.Op == mixer.OpUpsert {
			changes[i].Err = rel.gone
		}
	}
}

// setGone records (nil: clears) a mapped table's missing columns.
func (s *Source) setGone(loc string, gone *connectors.MissingFieldsError) {
	s.goneMu.Lock()
	defer s.goneMu.Unlock()
	prev := s.gone[loc]
	switch {
	case gone == nil && prev != nil:
		delete(s.gone, loc)
		s.log.Info("the mapped columns of a table are back: its changes flow again", "table", loc)
	case gone != nil && (prev == nil || !slices.Equal(prev.Missing, gone.Missing)):
		if s.gone == nil {
			s.gone = map[string]*connectors.MissingFieldsError{}
		}
		s.gone[loc] = gone
		s.log.Error("columns the receive mixer reads are gone from a table: its inserts and updates are dead-lettered until the mixer or the table is fixed",
			"table", loc, "missing", strings.Join(gone.Missing, ","), "columns", strings.Join(gone.Have, ","))
	case gone != nil:
		s.gone[loc] = gone
	}
}

// Problem reports the mapped tables that lack columns the receive mixer
// reads, or nil (connectors.ProblemReporter).
func (s *Source) Problem() error {
	s.goneMu.Lock()
	defer s.goneMu.Unlock()
	if len(s.gone) == 0 {
		return nil
	}
	locs := make([]string, 0, len(s.gone))
	for loc := range s.gone {
		locs = append(locs, loc)
	}
	sort.Strings(locs)
	errs := make(problems, len(locs))
	for i, loc := range locs {
		errs[i] = s.gone[loc]
	}
	return errs
}

// problems are several errors on one line (readiness shows a line per
// source).
type problems []error

func (p problems) Error() string {
	texts := make([]string, len(p))
	for i, e := range p {
		texts[i] = e.Error()
	}
	return strings.Join(texts, "; ")
}

func (p problems) Unwrap() []error { return p }
