package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Sink writes records to PostgreSQL tables: idempotent upserts keyed by the
// search key (INSERT ... ON CONFLICT on its unique index), deletes by the
// search key, only mapped columns. A Write is one round trip: every
// statement of the batch is pipelined and runs in one implicit transaction.
// Large groups of rows created at the source go by COPY instead, in one
// explicit transaction of two round trips (copy.go).
type Sink struct {
	sys    *config.System
	log    *slog.Logger
	pool   *pgxpool.Pool
	tables map[string]*table // by location

	mu  sync.Mutex
	sql map[shape]string // statement cache

	fenceSQL string // records a write's fences; empty when fencing is off

	conflicts atomic.Int64 // two-way rows an older change lost to (Conflicts)

	twoWay *twoWay // set when some table is also read by this system (twoway.go)

	copyMin int // the smallest group of upserts tried as a COPY; 0: never (copy.go)
	// copied counts the rows written by COPY, copyFailures the COPYs that
	// failed and were written again as upserts.
	copied, copyFailures atomic.Int64
}

type table struct {
	loc    string
	quoted string
	cols   map[string]*column
	order  []*column // by index
	// lww marks a two-way table: changes apply only when at least as new as
	// the row, and tombstones are kept by tombKey (twoway.go).
	lww     bool
	tombKey string
	copy    copyGate // whether large batches of upserts try COPY (copy.go)
	// copyable: new rows may go by COPY (copyTable).
	copyable bool
}

type column struct {
	index int // place in order, for statement shapes
	// required: NOT NULL without a default, so a row cannot be inserted
	// without it (a partial upsert then updates the row that exists).
	required bool
	// always: an identity column GENERATED ALWAYS, which an INSERT may
	// not write (and COPY would).
	always bool
	base   uint32 // the base type's OID (through domains)
	name   string
	typ    string // the declared type, format_type with its modifier
	// cast is the type that parameters are cast to before the column's
	// own assignment applies its modifier: the base type (through
	// domains) without modifier, so a value that does not fit fails
	// rather than being cut (see castTypes).
	cast string
	// keyType is what a search key is compared as in a delete: cast for
	// character and bit types, whose explicit cast would cut a value,
	// the declared type otherwise, whose modifier rounds (numeric scale,
	// timestamp precision) as an assignment does.
	keyType string
	limit   lengthLimit
	kind    columnKind
	jsonb   bool
	nested  bool // written through nested paths: merged into the existing JSON
}

// NewSink returns a sink for a postgresql system with a push mixer.
func NewSink(sys *config.System, deps connectors.SinkDeps) (connectors.Sink, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Sink{sys: sys, log: log, tables: map[string]*table{}, sql: map[shape]string{},
		copyMin: int(sys.Settings.Int(SettingCopyMinRows))}, nil
}

// Open connects and checks every push location: the table exists, every
// mapped column exists, nested paths go into jsonb columns, and every
// search key is a primary key or has a unique index of its own.
func (s *Sink) Open(ctx context.Context) error {
	pool, err := newPool(ctx, s.sys, "remix-pusher")
	if err != nil {
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
	}
	s.pool = pool
	problems, err := s.checkTables(ctx)
	if err != nil {
		pool.Close()
		return err
	}
	if len(problems) > 0 {
		pool.Close()
		return fmt.Errorf("target %s does not fit its push mixer:\n%s", s.sys.Name, problems.Error())
	}
	if err := s.openFences(ctx); err != nil {
		pool.Close()
		return err
	}
	if err := s.openTwoWay(ctx); err != nil {
		pool.Close()
		return err
	}
	return nil
}

// Close closes the pool.
func (s *Sink) Close(context.Context) error {
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
}

func (s *Sink) loadTable(ctx context.Context, loc string) (*table, error) {
	if t, ok := s.tables[loc]; ok {
		return t, nil
	}
	// Each column with its base type and modifier: a domain's are those of
	// the type it is over (domains over domains carry no modifier of
	// their own).
	rows, err := s.pool.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname = 'jsonb',
			b.base, format_type(b.base, -1), b.typmod, format_type(b.base, b.typmod),
			a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '',
			a.attidentity = 'a'
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		CROSS JOIN LATERAL (
			WITH RECURSIVE d(oid, typmod, depth) AS (
				SELECT a.atttypid, a.atttypmod, 0
				UNION ALL
				SELECT bt.typbasetype, bt.typtypmod, d.depth + 1 FROM d JOIN pg_type bt ON bt.oid = d.oid WHERE bt.typtype = 'd'
			)
			SELECT oid AS base, typmod FROM d ORDER BY depth DESC LIMIT 1
		) b
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, quoteQualified(loc))
	if err != nil {
		return nil, fmt.Errorf("%w: reading columns of %s: %w", connectors.ErrUnavailable, loc, err)
	}
	t := &table{loc: loc, quoted: quoteQualified(loc), cols: map[string]*column{}}
	for rows.Next() {
		var c column
		var base uint32
		var typmod int32
		var baseTyp string
		if err := rows.Scan(&c.name, &c.typ, &c.jsonb, &base, &c.cast, &typmod, &baseTyp, &c.required, &c.always); err != nil {
			rows.Close()
			return nil, err
		}
		c.kind, c.base = kindOf(base), base
		c.keyType, c.limit = castTypes(&c, base, typmod, baseTyp)
		c.index = len(t.order)
		t.cols[c.name] = &c
		t.order = append(t.order, &c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading columns of %s: %w", connectors.ErrUnavailable, loc, err)
	}
	if len(t.cols) == 0 {
		return nil, nil
	}
	if t.copyable, err = s.copyTable(ctx, loc); err != nil {
		return nil, err
	}
	s.tables[loc] = t
	return t, nil
}

// uniqueColumns returns the columns that alone make up a unique index (or
// the primary key) without predicate or expression: what ON CONFLICT needs.
func (s *Sink) uniqueColumns(ctx context.Context, loc string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1
		  AND i.indpred IS NULL AND i.indexprs IS NULL`, quoteQualified(loc))
	if err != nil {
		return nil, fmt.Errorf("%w: reading indexes of %s: %w", connectors.ErrUnavailable, loc, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out[name] = true
	}
	return out, rows.Err()
}

// ReleasesRecords reports that a write keeps nothing of its records once
// it returns (connectors.RecordReleaser): their values become statement
// arguments, which pgx has sent and let go of by then.
func (s *Sink) ReleasesRecords() bool { return true }

// Write applies records in order, all or nothing, in one round trip (two
// when rows go by COPY).
func (s *Sink) Write(ctx context.Context, recs []mixer.TargetRecord, fences []connectors.Fence) error {
	if s.twoWay != nil {
		return s.writeTwoWay(ctx, recs, fences)
	}
	if s.copyMin > 0 && len(recs) >= s.copyMin {
		if done, err := s.writeWithCopy(ctx, recs, fences); done {
			return err
		}
	}
	b := &pgx.Batch{}
	s.queueFences(b, fences)
	fenced := b.Len()
	if err := s.plan(recs, b, time.Time{}); err != nil {
		return err
	}
	if b.Len() == fenced {
		return nil
	}
	return s.sendPlanned(ctx, recs, b)
}

// sendPlanned sends the statements planned for recs.
func (s *Sink) sendPlanned(ctx context.Context, recs []mixer.TargetRecord, b *pgx.Batch) error {
	err := s.send(ctx, b)
	if len(recs) == 1 && errors.Is(err, connectors.ErrPermanent) {
		err = &connectors.RecordError{Index: 0, Err: err} // the only record is the bad one
	}
	return err
}

// send runs a batch in one round trip and returns its first error, mapped
// to the connector classes.
func (s *Sink) send(ctx context.Context, b *pgx.Batch) error {
	return sendBatch(ctx, s.pool, b)
}

// sendBatch runs a batch through to and returns its first error, mapped to
// the connector classes.
func sendBatch(ctx context.Context, to batchSender, b *pgx.Batch) error {
	return mapError(sendBatchRaw(ctx, to, b))
}

// sendBatchRaw is sendBatch with the error as pgx gives it.
func sendBatchRaw(ctx context.Context, to batchSender, b *pgx.Batch) error {
	br := to.SendBatch(ctx, b)
	var first error
	for _, qq := range b.QueuedQueries {
		var err error
		if qq.Fn != nil {
			err = qq.Fn(br)
		} else {
			_, err = br.Exec()
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// plan turns records into statements. Records collapse per row so each row
// is touched at most twice; rows then go out in one statement per table,
// key column and set of columns. A truncate record ends a segment: what
// came before is flushed, then the table is emptied.
func (s *Sink) plan(recs []mixer.TargetRecord, b *pgx.Batch, at time.Time) error {
	return s.planInto(recs, b, at, nil)
}

// planInto is plan, with the last segment's large groups of upserts put
// in copies instead of b when copies is not nil: they are written after
// every statement in b (copy.go), which is their place, since no other
// statement of their segment touches their rows.
func (s *Sink) planInto(recs []mixer.TargetRecord, b *pgx.Batch, at time.Time, copies *[]copyGroup) error {
	var slab rowSlab
	var keyed []*keyedRows // a new one per location and key column; usually one
	var cur *keyedRows
	order := make([]*rowState, 0, len(recs))
	var inserts []*rowState
	flush := func() {
		s.queueRows(b, order, inserts, at, nil)
		keyed, cur, order, inserts = nil, nil, nil, nil
	}
	var t *table
	for i := range recs {
		r := &recs[i]
		if t == nil || t.loc != r.Location {
			t = s.tables[r.Location]
		}
		if t == nil {
			return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: no table for location %s", connectors.ErrPermanent, r.Location)}
		}
		if r.Op == mixer.OpTruncate {
			flush()
			b.Queue("DELETE FROM " + t.quoted)
			continue
		}
		vals, err := s.columns(t, r, slab.rowVals(len(t.order), len(recs)-i))
		if err != nil {
			return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: %w", connectors.ErrPermanent, err)}
		}
		if r.Key == nil {
			if r.Op == mixer.OpDelete {
				return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: delete without a search key", connectors.ErrPermanent)}
			}
			st := slab.state(len(recs) - i)
			st.loc, st.up = r.Location, vals
			inserts = append(inserts, st)
			continue
		}
		keyCol := r.Key.Target.Head()
		var kp *string
		if c := t.cols[keyCol]; c != nil && vals.has(c.index) {
			kp = vals.text(c.index)
		}
		if kp == nil {
			return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: search key %s is null", connectors.ErrPermanent, keyCol)}
		}
		if cur == nil || cur.loc != r.Location || cur.keyCol != keyCol {
			cur = nil
			for _, k := range keyed {
				if k.loc == r.Location && k.keyCol == keyCol {
					cur = k
					break
				}
			}
			if cur == nil {
				// The first is sized once (batches run to thousands of
				// rows, mostly of one table); others grow as they fill.
				hint := 0
				if len(keyed) == 0 {
					hint = len(recs) - i
				}
				cur = &keyedRows{loc: r.Location, keyCol: keyCol, rows: make(map[string]*rowState, hint)}
				keyed = append(keyed, cur)
			}
		}
		st := cur.rows[*kp]
		if st == nil {
			st = slab.state(len(recs) - i)
			st.loc, st.keyCol, st.key = r.Location, keyCol, *kp
			cur.rows[*kp] = st
			order = append(order, st)
		}
		switch {
		case r.Op == mixer.OpDelete:
			st.del, st.up = true, nil
		case st.up == nil:
			st.up = vals
			st.fresh = r.Created || st.del // a row deleted earlier in the batch is new again
		default:
			st.up.merge(vals)
		}
	}
	s.queueRows(b, order, inserts, at, copies)
	return nil
}

// columns renders a record's fields as column texts into out, which is
// empty.
func (s *Sink) columns(t *table, r *mixer.TargetRecord, out *rowVals) (*rowVals, error) {
	for name, v := range r.Fields {
		c := t.cols[name]
		if c == nil {
			return nil, fmt.Errorf("table %s has no column %q", t.loc, name)
		}
		text, null, err := pgText(v, c.kind)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		if !null && c.limit.kind != noLimit {
			if err := c.limit.check(text); err != nil {
				return nil, fmt.Errorf("column %s: %w", name, err)
			}
		}
		out.texts[c.index] = text
		out.mark(c.index, null)
	}
	return out, nil
}

// shape identifies one statement: what it does, where, by which key, to
// which columns (a bit per column, by index).
type shape struct {
	del    bool
	loc    string
	keyCol string
	cols   [4]uint64 // up to 256 columns; wider tables use wide
	wide   string
	copy   bool // the COPY of an upsert's rows (copy.go)
}

// queueRows adds the statements for collapsed rows: deletes first (a row
// deleted then upserted in the batch is deleted, then inserted anew), then
// upserts, then plain inserts. Rows of one shape go in one statement.
func (s *Sink) queueRows(b *pgx.Batch, order, inserts []*rowState, at time.Time, copies *[]copyGroup) {
	type group struct {
		sql  string
		args [][]*string
		t    *table
		copy string // the COPY its rows may take instead (copy.go)
		lww  bool   // a two-way table's: the run's commit time goes last
		// upsert: an upsert's (its rows are counted when an older change
		// loses to the row, see Conflicts)
		upsert bool
	}
	// Rows new at their source (fresh) go in groups of their own when they
	// may be copied.
	type groupKey struct {
		sh    shape
		fresh bool
	}
	var groups []*group
	byShape := map[groupKey]*group{}
	groupFor := func(sh shape, fresh bool, params int, mk func() string) *group {
		g := byShape[groupKey{sh, fresh}]
		if g == nil {
			g = &group{sql: s.cached(sh, mk), args: make([][]*string, params), lww: s.tables[sh.loc].lww, upsert: !sh.del}
			if len(byShape) == 0 { // most batches have one shape: its columns take every row
				for i := range g.args {
					g.args[i] = make([]*string, 0, len(order)+len(inserts))
				}
			}
			byShape[groupKey{sh, fresh}] = g
			groups = append(groups, g)
		}
		return g
	}
	for _, st := range order {
		if st.del {
			t := s.tables[st.loc]
			keyCol := st.keyCol
			g := groupFor(shape{del: true, loc: st.loc, keyCol: keyCol}, false, 1, func() string {
				if t.lww {
					return s.lwwDeleteSQL(t, keyCol)
				}
				return s.deleteSQL(t, keyCol)
			})
			g.args[0] = append(g.args[0], &st.key)
		}
	}
	for _, list := range [][]*rowState{order, inserts} {
		for _, st := range list {
			if st.up == nil {
				continue
			}
			t := s.tables[st.loc]
			sh := shape{loc: st.loc, keyCol: st.keyCol}
			n := 0
			for _, w := range st.up.set {
				n += bits.OnesCount64(w)
			}
			if len(st.up.set) <= len(sh.cols) {
				copy(sh.cols[:], st.up.set)
			} else {
				wide := make([]byte, 0, 8*len(st.up.set))
				for _, w := range st.up.set {
					wide = binary.LittleEndian.AppendUint64(wide, w)
				}
				sh.wide = string(wide)
			}
			keyCol, up := st.keyCol, st.up
			names := func() []string {
				names := make([]string, 0, n)
				up.each(func(i int) { names = append(names, t.order[i].name) })
				return names
			}
			fresh := copies != nil && st.fresh
			g := groupFor(sh, fresh, n, func() string { return s.upsertSQL(t, keyCol, names()) })
			if fresh && g.t == nil {
				g.t = t
				sh.copy = true
				g.copy = s.cached(sh, func() string { return copySQL(t, keyCol, names()) })
			}
			j := 0
			up.each(func(i int) {
				g.args[j] = append(g.args[j], up.text(i))
				j++
			})
		}
	}
	// Whether a table's rows may be copied is asked once a batch.
	var gates []struct {
		t  *table
		ok bool
	}
	mayCopy := func(t *table) bool {
		for _, g := range gates {
			if g.t == t {
				return g.ok
			}
		}
		ok := t.copy.try()
		gates = append(gates, struct {
			t  *table
			ok bool
		}{t, ok})
		return ok
	}
	for _, g := range groups {
		if g.copy != "" && len(g.args[0]) >= s.copyMin && mayCopy(g.t) {
			*copies = append(*copies, copyGroup{t: g.t, sql: g.copy, args: g.args})
			continue
		}
		args := make([]any, len(g.args), len(g.args)+1)
		for i, a := range g.args {
			args[i] = textArray(a)
		}
		qq := b.Queue(g.sql, args...)
		if g.lww {
			qq.Arguments = append(qq.Arguments, at)
			if rows := len(g.args[0]); g.upsert && !strings.HasPrefix(g.sql, "WITH ") {
				// Rows an older change did not overwrite (or bring back):
				// conflicts the last-writer rule resolved.
				qq.Exec(func(ct pgconn.CommandTag) error {
					if skipped := int64(rows) - ct.RowsAffected(); skipped > 0 {
						s.conflicts.Add(skipped)
					}
					return nil
				})
			}
		}
	}
}

func (s *Sink) cached(sh shape, mk func() string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.sql[sh]; ok {
		return q
	}
	q := mk()
	if len(s.sql) < 4096 {
		s.sql[sh] = q
	}
	return q
}

// deleteSQL deletes rows by their search keys, compared as the key
// column's keyType: a key too long for a character column cannot match the
// row of a shorter one.
func (s *Sink) deleteSQL(t *table, keyCol string) string {
	c := t.cols[keyCol]
	return fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1::text[]::%s[])", t.quoted, quoteIdent(keyCol), c.keyType)
}

// upsertSQL inserts rows from text arrays, cast to the columns' base types
// without modifiers, so that the INSERT's assignment applies each column's
// own modifier (and fails on a value that does not fit, where a cast would
// cut it); with a key column, a conflict on it updates the given columns
// only (a jsonb column written through nested paths is merged into what it
// holds).
func (s *Sink) upsertSQL(t *table, keyCol string, cols []string) string {
	var sel, list, params, aliases, set []string
	for i, name := range cols {
		c := t.cols[name]
		alias := "c" + strconv.Itoa(i)
		list = append(list, quoteIdent(name))
		params = append(params, "$"+strconv.Itoa(i+1)+"::text[]")
		aliases = append(aliases, alias)
		sel = append(sel, "u."+alias+"::"+c.cast)
		if name == keyCol {
			continue
		}
		if c.nested {
			set = append(set, fmt.Sprintf("%s = COALESCE(t.%s, '{}'::jsonb) || EXCLUDED.%s", quoteIdent(name), quoteIdent(name), quoteIdent(name)))
		} else {
			set = append(set, fmt.Sprintf("%s = EXCLUDED.%s", quoteIdent(name), quoteIdent(name)))
		}
	}
	if keyCol != "" && len(set) > 0 && lacksRequired(t, cols) {
		return s.partialUpsertSQL(t, keyCol, cols, sel, list, params, aliases, set)
	}
	q := fmt.Sprintf("INSERT INTO %s AS t (%s) SELECT %s FROM unnest(%s) AS u(%s)",
		t.quoted, strings.Join(list, ", "), strings.Join(sel, ", "), strings.Join(params, ", "), strings.Join(aliases, ", "))
	var conflict string
	if t.lww { // two-way: the run's commit time is the last parameter
		at := "$" + strconv.Itoa(len(cols)+1)
		where := ""
		for i, name := range cols {
			if name == t.tombKey && name == keyCol {
				where, conflict = s.lwwConditions(t, "c"+strconv.Itoa(i), at)
			}
		}
		if where == "" {
			_, conflict = s.lwwConditions(t, "", at)
		}
		q += where
	}
	switch {
	case keyCol == "":
	case len(set) == 0:
		q += fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", quoteIdent(keyCol))
	default:
		q += fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s%s", quoteIdent(keyCol), strings.Join(set, ", "), conflict)
	}
	return q
}

// textArray is a text[] parameter. pgx encodes a []*string by reflection,
// boxing every element; this hands it each element as a pointer, which
// boxes for free.
type textArray []*string

func (a textArray) Dimensions() []pgtype.ArrayDimension {
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}

func (a textArray) Index(i int) any {
	if a[i] == nil {
		return nil // NULL
	}
	return (*textElem)(a[i])
}

func (a textArray) IndexType() any { return (*textElem)(nil) }

// textElem is one element of a textArray.
type textElem string

func (t *textElem) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*t), Valid: true}, nil
}

// Conflicts counts the changes to two-way tables that lost to a newer row
// (or a later deletion) under the last-writer rule
// (connectors.ConflictReporter).
func (s *Sink) Conflicts() int64 { return s.conflicts.Load() }

// BulkWrites counts the rows written by COPY and the writes with COPY
// that were refused and written again as upserts (connectors.BulkReporter).
func (s *Sink) BulkWrites() (records, fallbacks int64) {
	return s.copied.Load(), s.copyFailures.Load()
}
