package mysql

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sqlpipe/remix/connectors"
)

// When a column the receive mixer reads is renamed or dropped while the
// source streams, the table map events that follow name the table's new
// columns (binlog_row_metadata = FULL). Without the column an update would
// leave the target's value as it was and an insert would leave it null,
// silently. So while a mapped table lacks a mapped column, its inserts and
// updates are dead-lettered whole (every column of the row, so that a
// replay with a mixer fixed to the new name finds it), with a
// connectors.MissingFieldsError as the reason, and Problem reports it for
// readiness. Deletes carry only the key and go on. A later table map with
// the column (renamed back) ends it. The PostgreSQL source does the same
// (docs/decisions/2026-12-05-mapped-column-gone.md).

// checkShape compares a mapped table's columns in the log with those its
// receive mixer reads, and records what is missing.
func (s *Source) checkShape(rel *relation, have []string) {
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
	s.setGone(rel.loc, rel.gone)
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
	var texts []string
	for _, loc := range sortedKeys(s.gone) {
		texts = append(texts, s.gone[loc].Error())
	}
	return fmt.Errorf("%s", strings.Join(texts, "; "))
}

// rowKey is a row's source identity: system/database.table/key, the key
// being the primary key column's value as text, or a JSON array of them
// for a composite key. The snapshot and the stream build it alike.
func (s *Source) rowKey(loc string, keyCols []string, fields map[string]any) (string, error) {
	if len(keyCols) == 0 {
		return "", fmt.Errorf("%s: no primary key in the log's description of the table", loc)
	}
	parts := make([]string, len(keyCols))
	for i, k := range keyCols {
		v, ok := fields[k]
		if !ok || v == nil {
			return "", fmt.Errorf("%s: a change without its key column %s", loc, k)
		}
		parts[i] = keyPart(v)
	}
	if len(parts) == 1 {
		return s.sys.Name + "/" + loc + "/" + parts[0], nil
	}
	j, _ := json.Marshal(parts)
	return s.sys.Name + "/" + loc + "/" + string(j), nil
}

func keyPart(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortStrings(s []string) { sort.Strings(s) }
