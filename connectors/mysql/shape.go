package mysql

import (
	"encoding/json"
	"fmt"
	"sort"
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
	rel.gone = s.gone.Check(s.log, rel.loc, rel.table.need, have)
}

// Problem reports the mapped tables that lack columns the receive mixer
// reads, or nil (connectors.ProblemReporter).
func (s *Source) Problem() error { return s.gone.Problem() }

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
