package postgres

import (
	"fmt"
	"strconv"
	"strings"
)

// A record that carries only some columns of a row (an update that left
// TOASTed columns out, Stripe bringing back the id it assigned) cannot be
// written with INSERT ... ON CONFLICT when the table has a NOT NULL column
// without a default among those left out: PostgreSQL checks the row to be
// inserted before it looks for the conflict. Such upserts update the rows
// that exist and insert only those that do not (which then fail, rightly,
// for the missing column: a partial change of a row the target never had).

// lacksRequired reports whether cols leaves out a column a row needs.
func lacksRequired(t *table, cols []string) bool {
	have := make(map[string]bool, len(cols))
	for _, c := range cols {
		have[c] = true
	}
	for _, c := range t.order {
		if c.required && !have[c.name] {
			return true
		}
	}
	return false
}

// partialUpsertSQL updates the existing rows by key, then inserts the
// others, in one statement. The pieces are upsertSQL's: the select list
// with its casts, the column list, the parameters, their aliases and the
// SET list written against EXCLUDED.
func (s *Sink) partialUpsertSQL(t *table, keyCol string, cols, sel, list, params, aliases, set []string) string {
	keyAlias := ""
	for i, name := range cols {
		if name == keyCol {
			keyAlias = "c" + strconv.Itoa(i)
		}
	}
	keyCast := t.cols[keyCol].keyType
	// The update's SET: EXCLUDED (the proposed row of ON CONFLICT) is u's
	// cast value here.
	upd := make([]string, 0, len(set))
	for i, name := range cols {
		if name == keyCol {
			continue
		}
		v := "u." + "c" + strconv.Itoa(i) + "::" + t.cols[name].cast
		if t.cols[name].nested {
			upd = append(upd, fmt.Sprintf("%s = COALESCE(t.%s, '{}'::jsonb) || %s", quoteIdent(name), quoteIdent(name), v))
		} else {
			upd = append(upd, fmt.Sprintf("%s = %s", quoteIdent(name), v))
		}
	}
	where := fmt.Sprintf("t.%s = u.%s::%s", quoteIdent(keyCol), keyAlias, keyCast)
	var lwwWhere, conflict string
	if t.lww { // two-way: the run's commit time is the last parameter
		at := "$" + strconv.Itoa(len(cols)+1)
		where += " AND " + notNewer("t.xmin", at)
		if t.tombKey == keyCol {
			lwwWhere, conflict = s.lwwConditions(t, keyAlias, at)
			lwwWhere = strings.Replace(lwwWhere, " WHERE ", " AND ", 1)
		} else {
			_, conflict = s.lwwConditions(t, "", at)
		}
	}
	return fmt.Sprintf(`WITH u AS (SELECT * FROM unnest(%s) AS u(%s)),
upd AS (UPDATE %s AS t SET %s FROM u WHERE %s)
INSERT INTO %s AS t (%s) SELECT %s FROM u WHERE NOT EXISTS (SELECT 1 FROM %s x WHERE x.%s = u.%s::%s)%s
ON CONFLICT (%s) DO UPDATE SET %s%s`,
		strings.Join(params, ", "), strings.Join(aliases, ", "),
		t.quoted, strings.Join(upd, ", "), where,
		t.quoted, strings.Join(list, ", "), strings.Join(sel, ", "), t.quoted, quoteIdent(keyCol), keyAlias, keyCast, lwwWhere,
		quoteIdent(keyCol), strings.Join(set, ", "), conflict)
}
