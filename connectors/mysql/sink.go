package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Sink writes records to MySQL or MariaDB tables: each Write is one
// transaction of INSERT ... ON DUPLICATE KEY UPDATE statements (one per
// table and set of columns, many rows each) and DELETE ... IN statements,
// in the strict sql_mode, with the write's fencing tokens recorded first.
// Only mapped columns are written: an absent field leaves its column as it
// is, a null sets NULL.
type Sink struct {
	sys    *config.System
	log    *slog.Logger
	db     *sql.DB
	cfg    *driver.Config
	tables map[string]*tableInfo // by location
	fences string                // the fence table, quoted; "" when fencing is off
}

// NewSink returns a sink for a mysql system with a push mixer.
func NewSink(sys *config.System, deps connectors.SinkDeps) (connectors.Sink, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	if _, err := sessionConfig(sys); err != nil {
		return nil, err
	}
	return &Sink{sys: sys, log: log, tables: map[string]*tableInfo{}}, nil
}

// Open connects and checks every push location: the table exists, every
// mapped column exists, and every search key is the primary key or a
// unique index of its own. It makes the fence table if missing.
func (s *Sink) Open(ctx context.Context) error {
	db, cfg, err := openDB(ctx, s.sys)
	if err != nil {
		return err
	}
	s.db, s.cfg = db, cfg
	problems, err := s.checkTables(ctx)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("target %s does not fit its push mixer:\n%s", s.sys.Name, problems.Error())
	}
	if err == nil {
		err = s.openFences(ctx)
	}
	if err != nil {
		db.Close()
		s.db = nil
		return err
	}
	return nil
}

// Close closes the pool.
func (s *Sink) Close(context.Context) error {
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}

func problemAt(sys *config.System, keys []string, format string, args ...any) *config.Error {
	return &config.Error{Pos: sys.PosOf(keys...), Key: config.KeyPath(append([]string{sys.Name}, keys...)...), Msg: fmt.Sprintf(format, args...)}
}

// checkTables loads every push location and checks it against the mixer.
func (s *Sink) checkTables(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			loc := rule.Location()
			path := []string{"push_mixer", model, loc}
			t := s.tables[loc]
			if t == nil {
				var err error
				if t, err = loadTable(ctx, s.db, loc); err != nil {
					return nil, err
				}
			}
			if t == nil {
				problems = append(problems, problemAt(s.sys, path, "table %s does not exist", loc))
				continue
			}
			s.tables[loc] = t
			for _, f := range rule.Fields() {
				fpath := append(append([]string(nil), path...), f.Field)
				c := t.cols[f.Target.Head()]
				switch {
				case c == nil:
					problems = append(problems, problemAt(s.sys, fpath, "table %s has no column %q", loc, f.Target.Head()))
				case f.Target.Len() > 1:
					problems = append(problems, problemAt(s.sys, fpath, "nested path %s: the mysql sink writes whole columns; map the field to a column (a JSON column takes an object whole)", f.Target))
				case c.generated:
					problems = append(problems, problemAt(s.sys, fpath, "column %s of %s is generated and cannot be written", c.name, loc))
				case f.SearchKey && !t.unique[c.name]:
					problems = append(problems, problemAt(s.sys, fpath, "column %s of %s is a search key but neither its primary key nor a unique index of its own; add one: CREATE UNIQUE INDEX %s ON %s (%s)",
						c.name, loc, quoteIdent("remix_"+c.name), quoteTable(loc), quoteIdent(c.name)))
				}
			}
		}
	}
	return problems, nil
}

// row is what a batch does to one row, found by its search key: an
// optional delete, then an optional upsert whose columns merge every upsert
// of the row in the batch (later values win; absent columns stay absent).
type row struct {
	loc, keyCol string
	key         any
	del         bool
	up          map[string]any // column -> parameter (nil: NULL)
}

type rowID struct{ loc, keyCol, key string }

// ReleasesRecords reports that a write keeps nothing of its records once
// it returns (connectors.RecordReleaser): their values become statement
// arguments, which the driver has sent by then.
func (s *Sink) ReleasesRecords() bool { return true }

// Write applies records in order, all or nothing, in one transaction.
func (s *Sink) Write(ctx context.Context, recs []mixer.TargetRecord, fences []connectors.Fence) error {
	stmts, err := s.plan(recs)
	if err != nil {
		return err
	}
	if len(stmts) == 0 {
		return nil
	}
	err = s.apply(ctx, s.fenceStatement(fences), stmts)
	if len(recs) == 1 && errors.Is(err, connectors.ErrPermanent) {
		err = &connectors.RecordError{Index: 0, Err: err} // the only record is the bad one
	}
	return err
}

// apply runs the statements in one transaction.
func (s *Sink) apply(ctx context.Context, fence *statement, stmts []statement) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	if fence != nil {
		stmts = append([]statement{*fence}, stmts...)
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.sql, st.args...); err != nil {
			_ = tx.Rollback()
			return mapError(err)
		}
	}
	return mapError(tx.Commit())
}

// statement is one SQL statement and its parameters.
type statement struct {
	sql  string
	args []any
}

// plan turns records into statements. Records collapse per row, so each
// row is touched at most twice; rows then go out in as few statements as
// their tables and column sets allow. A truncate ends a segment: what
// came before goes first, then the table is emptied.
func (s *Sink) plan(recs []mixer.TargetRecord) ([]statement, error) {
	var out []statement
	rows := map[rowID]*row{}
	var order, inserts []*row
	flush := func() {
		out = append(out, s.statements(order, inserts)...)
		rows, order, inserts = map[rowID]*row{}, nil, nil
	}
	for i := range recs {
		r := &recs[i]
		t := s.tables[r.Location]
		if t == nil {
			return nil, &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: no table for location %s", connectors.ErrPermanent, r.Location)}
		}
		if r.Op == mixer.OpTruncate {
			flush()
			out = append(out, statement{sql: "DELETE FROM " + quoteTable(t.loc)})
			continue
		}
		vals := make(map[string]any, len(r.Fields))
		for name, v := range r.Fields {
			c := t.cols[name]
			if c == nil {
				return nil, &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: table %s has no column %q", connectors.ErrPermanent, t.loc, name)}
			}
			p, err := param(v, c)
			if err != nil {
				return nil, &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: column %s: %w", connectors.ErrPermanent, name, err)}
			}
			vals[name] = p
		}
		if r.Key == nil {
			if r.Op == mixer.OpDelete {
				return nil, &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: delete without a search key", connectors.ErrPermanent)}
			}
			inserts = append(inserts, &row{loc: r.Location, up: vals})
			continue
		}
		keyCol := r.Key.Target.Head()
		key, ok := vals[keyCol]
		if !ok || key == nil {
			return nil, &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: search key %s is null", connectors.ErrPermanent, keyCol)}
		}
		id := rowID{r.Location, keyCol, keyText(key)}
		st := rows[id]
		if st == nil {
			st = &row{loc: r.Location, keyCol: keyCol, key: key}
			rows[id] = st
			order = append(order, st)
		}
		switch {
		case r.Op == mixer.OpDelete:
			st.del, st.up = true, nil
		case st.up == nil:
			st.up = vals
		default:
			for k, v := range vals {
				st.up[k] = v
			}
		}
	}
	flush()
	return out, nil
}

// Bounds of one statement: MySQL takes at most 65 535 placeholders, and a
// statement must fit max_allowed_packet (16 MiB by default on MariaDB, 64
// MiB on MySQL 8).
const (
	maxParams        = 60000
	maxStatementSize = 4 << 20
	maxDeleteKeys    = 1000
)

// statements renders collapsed rows: deletes first (a row deleted then
// upserted in the batch is deleted, then inserted anew), then upserts by
// table, key column and column set, then plain inserts.
func (s *Sink) statements(order, inserts []*row) []statement {
	var out []statement
	type delGroup struct {
		loc, keyCol string
		keys        []any
	}
	var dels []*delGroup
	byDel := map[[2]string]*delGroup{}
	for _, r := range order {
		if !r.del {
			continue
		}
		g := byDel[[2]string{r.loc, r.keyCol}]
		if g == nil {
			g = &delGroup{loc: r.loc, keyCol: r.keyCol}
			byDel[[2]string{r.loc, r.keyCol}] = g
			dels = append(dels, g)
		}
		g.keys = append(g.keys, r.key)
	}
	for _, g := range dels {
		for start := 0; start < len(g.keys); start += maxDeleteKeys {
			keys := g.keys[start:min(start+maxDeleteKeys, len(g.keys))]
			q := fmt.Sprintf("DELETE FROM %s WHERE %s IN (%s)", quoteTable(g.loc), quoteIdent(g.keyCol), placeholders(len(keys)))
			out = append(out, statement{sql: q, args: keys})
		}
	}
	type upGroup struct {
		loc, keyCol string
		cols        []string
		rows        []map[string]any
	}
	var ups []*upGroup
	byShape := map[string]*upGroup{}
	for _, list := range [][]*row{order, inserts} {
		for _, r := range list {
			if r.up == nil {
				continue
			}
			cols := make([]string, 0, len(r.up))
			for c := range r.up {
				cols = append(cols, c)
			}
			sort.Strings(cols)
			shape := r.loc + "\x00" + r.keyCol + "\x00" + strings.Join(cols, "\x00")
			g := byShape[shape]
			if g == nil {
				g = &upGroup{loc: r.loc, keyCol: r.keyCol, cols: cols}
				byShape[shape] = g
				ups = append(ups, g)
			}
			g.rows = append(g.rows, r.up)
		}
	}
	for _, g := range ups {
		head, tail := s.upsertSQL(g.loc, g.keyCol, g.cols)
		one := "(" + placeholders(len(g.cols)) + ")"
		var b strings.Builder
		var args []any
		size := 0
		emit := func() {
			if len(args) > 0 {
				out = append(out, statement{sql: head + b.String() + tail, args: args})
			}
			b.Reset()
			args, size = nil, 0
		}
		for _, vals := range g.rows {
			rowSize := 0
			for _, c := range g.cols {
				rowSize += paramSize(vals[c])
			}
			if len(args) > 0 && (len(args)+len(g.cols) > maxParams || size+rowSize > maxStatementSize) {
				emit()
			}
			if len(args) > 0 {
				b.WriteByte(',')
			}
			b.WriteString(one)
			for _, c := range g.cols {
				args = append(args, vals[c])
			}
			size += rowSize
		}
		emit()
	}
	return out
}

// upsertSQL returns the statement around the VALUES rows: with a key
// column, a row whose key exists has the given columns updated (and only
// those); without, rows are inserted and the table assigns their keys.
func (s *Sink) upsertSQL(loc, keyCol string, cols []string) (head, tail string) {
	quoted := make([]string, len(cols))
	var set []string
	for i, c := range cols {
		quoted[i] = quoteIdent(c)
		if c != keyCol {
			set = append(set, fmt.Sprintf("%s = VALUES(%s)", quoteIdent(c), quoteIdent(c)))
		}
	}
	head = fmt.Sprintf("INSERT INTO %s (%s) VALUES ", quoteTable(loc), strings.Join(quoted, ", "))
	switch {
	case keyCol == "":
	case len(set) == 0: // the key alone: make the row exist
		tail = fmt.Sprintf(" ON DUPLICATE KEY UPDATE %s = %s", quoteIdent(keyCol), quoteIdent(keyCol))
	default:
		tail = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	return head, tail
}

func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
