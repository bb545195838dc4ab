package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// The checks of a system against its mixers, shared by Open (which refuses
// to start on a problem) and Check (`remix validate --online`, which lists
// them all). Each problem is placed where the configuration writes what it
// concerns.

// problemAt is a problem at a key path of the system.
func problemAt(sys *config.System, keys []string, format string, args ...any) *config.Error {
	return &config.Error{Pos: sys.PosOf(keys...), Key: config.KeyPath(append([]string{sys.Name}, keys...)...), Msg: fmt.Sprintf(format, args...)}
}

// checkTables checks every mapped table of a source: it exists, has every
// column the receive mixer reads, and a replica identity that names each
// row (recorded in the table's keyCols). The error is set when the catalog
// could not be read: never a missing column for a broken connection.
func (s *Source) checkTables(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	report := func(keys []string, msg string) { problems = append(problems, problemAt(s.sys, keys, "%s", msg)) }
	for _, loc := range s.locations() {
		t := s.tables[loc]
		var ident string
		var relid uint32
		err := s.pool.QueryRow(ctx, `SELECT c.oid, c.relreplident FROM pg_class c WHERE c.oid = to_regclass($1)`, quoteQualified(loc)).Scan(&relid, &ident)
		if errors.Is(err, pgx.ErrNoRows) {
			report([]string{"receive_mixer", loc}, fmt.Sprintf("table %s does not exist", loc))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading the catalog entry of %s: %w", connectors.ErrUnavailable, loc, err)
		}
		// Read whole, errors included: a connection that fails half-way must
		// not read as a table without some column.
		names, err := s.catalogNames(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, relid)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the columns of %s: %w", connectors.ErrUnavailable, loc, err)
		}
		cols := map[string]bool{}
		for _, n := range names {
			cols[n] = true
		}
		need := make([]string, 0, len(t.need))
		for c := range t.need {
			need = append(need, c)
		}
		sort.Strings(need)
		for _, c := range need {
			if !cols[c] {
				report(s.fieldPath(loc, c), fmt.Sprintf("table %s has no column %q%s", loc, c, nearest(c, names)))
			}
		}
		// The identity: the primary key for REPLICA IDENTITY DEFAULT, the
		// chosen index for USING INDEX; FULL still needs a key to tell rows
		// apart in the snapshot and in the streams.
		var keyQuery string
		switch ident {
		case "d", "f":
			keyQuery = `SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(n, o) ON true
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.o`
		case "i":
			keyQuery = `SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(n, o) ON true
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n WHERE i.indrelid = $1 AND i.indisreplident ORDER BY k.o`
		default:
			report([]string{"receive_mixer", loc}, fmt.Sprintf("table %s has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be replicated; give it a primary key (or ALTER TABLE %s REPLICA IDENTITY USING INDEX ...)", loc, quoteQualified(loc)))
			continue
		}
		keys, err := s.catalogNames(ctx, keyQuery, relid)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the key of %s: %w", connectors.ErrUnavailable, loc, err)
		}
		t.keyCols = keys
		if len(t.keyCols) == 0 {
			report([]string{"receive_mixer", loc}, fmt.Sprintf("table %s has no primary key, so Remix cannot tell its rows apart; add one (ALTER TABLE %s ADD PRIMARY KEY (...)) or a unique index and REPLICA IDENTITY USING INDEX", loc, quoteQualified(loc)))
		}
	}
	return problems, nil
}

// locations lists the mapped tables, sorted.
func (s *Source) locations() []string {
	locs := make([]string, 0, len(s.tables))
	for l := range s.tables {
		locs = append(locs, l)
	}
	sort.Strings(locs)
	return locs
}

// checkTables checks every push location of a sink: the table exists,
// every mapped column exists, nested paths go into jsonb columns, and every
// search key is a primary key or has a unique index of its own. The tables
// are loaded (and kept) on the way.
func (s *Sink) checkTables(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			loc := rule.Location()
			path := []string{"push_mixer", model, loc}
			t, err := s.loadTable(ctx, loc)
			if err != nil {
				return nil, err
			}
			if t == nil {
				problems = append(problems, problemAt(s.sys, path, "table %s does not exist", loc))
				continue
			}
			uniques, err := s.uniqueColumns(ctx, loc)
			if err != nil {
				return nil, err
			}
			names := make([]string, len(t.order))
			for i, c := range t.order {
				names[i] = c.name
			}
			for _, f := range rule.Fields() {
				fpath := append(append([]string(nil), path...), f.Field)
				c := t.cols[f.Target.Head()]
				switch {
				case c == nil:
					problems = append(problems, problemAt(s.sys, fpath, "table %s has no column %q%s", loc, f.Target.Head(), nearest(f.Target.Head(), names)))
				case f.Target.Len() > 1 && !c.jsonb:
					problems = append(problems, problemAt(s.sys, fpath, "nested path %s needs a jsonb column, but %s is %s", f.Target, c.name, c.typ))
				case f.SearchKey && f.Target.Len() > 1:
					problems = append(problems, problemAt(s.sys, fpath, "a search key must be a column, not the nested path %s", f.Target))
				case f.SearchKey && !uniques[c.name]:
					problems = append(problems, problemAt(s.sys, fpath, "column %s of %s is a search key but neither its primary key nor covered by a unique index of its own; add one: CREATE UNIQUE INDEX ON %s (%s)", c.name, loc, quoteQualified(loc), quoteIdent(c.name)))
				case f.Target.Len() > 1:
					c.nested = true
				}
			}
		}
	}
	return problems, nil
}

// nearest is ` (did you mean "x"?)` for the column closest to a
// misspelt name, or "".
func nearest(name string, columns []string) string {
	best, bestD := "", 3
	for _, c := range columns {
		if d := distance(name, c); d < bestD || d == bestD && best != "" && c < best {
			best, bestD = c, d
		}
	}
	if best == "" || bestD >= len(name) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between two names.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
