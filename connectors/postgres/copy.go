package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// A batch's rows that their source created (an insert, a snapshot row:
// mixer.TargetRecord.Created), at least copy_min_rows of one table and
// column set, are first tried as a COPY straight into their table. That
// costs the target server about half of what INSERT ... ON CONFLICT costs
// a new row (BenchmarkTargetWrite, batches of 5 000: 2.2–2.7 against
// 4.4–4.5 µs), since it skips the speculative insertion and its check of
// every key. A COPY cannot update a row that is there already, and rows
// created at the source can be at the target: a batch written again after
// a crash, a second snapshot, a target filled by other means. Then the
// unique index refuses the COPY, the transaction is rolled back and the
// same batch is written again as upserts. So a COPY that succeeds did
// exactly what the upserts would have (every row was new; copySQL leaves
// out what COPY would store or refuse differently), and one that fails
// did nothing.
//
// After a refused COPY a table's batches skip COPY for the next 2, then 4,
// ... up to 1 024 batches (copyGate): a target that holds the source's new
// rows already pays one refused COPY in a thousand batches.
//
// A write with copies is two round trips instead of one (one when it is
// unfenced and has nothing else): BEGIN with the fences, deletes and other
// statements, then the COPY and the COMMIT in one query.

// SettingCopyMinRows is the smallest group of rows tried as a COPY.
const SettingCopyMinRows = "copy_min_rows"

// copyGroup is a statement group's rows bound for a COPY: the columns'
// texts, by column then row, as the upsert would have taken them.
type copyGroup struct {
	t    *table
	sql  string // COPY table (columns) FROM STDIN
	args [][]*string
}

// copyGate decides whether a table's next large batch tries COPY: skip
// counts the batches still to write as upserts after a failure; misses
// the failures since the last COPY that succeeded.
type copyGate struct {
	skip   atomic.Int64
	misses atomic.Int32
}

// maxCopySkip bounds how many batches a table's upserts skip COPY after
// failures in a row.
const maxCopySkip = 1024

// try reports whether this batch may try COPY, counting down a skip.
func (g *copyGate) try() bool {
	for {
		n := g.skip.Load()
		if n <= 0 {
			return true
		}
		if g.skip.CompareAndSwap(n, n-1) {
			return false
		}
	}
}

// failed starts or lengthens a skip; it reports whether this is the first
// failure since a COPY of the table succeeded.
func (g *copyGate) failed() bool {
	m := g.misses.Add(1)
	g.skip.Store(min(int64(1)<<min(m, 10), maxCopySkip))
	return m == 1
}

func (g *copyGate) succeeded() {
	if g.misses.Load() != 0 {
		g.misses.Store(0)
	}
}

// copySQL is the COPY of a group's columns, or "" when the group must stay
// an upsert, since a COPY might store or refuse what the upsert would not:
// rows without a search key (their INSERT may go to a view), two-way
// tables (their writes compare commit times), tables COPY treats
// differently (copyTable), rows that lack a required column (a partial
// upsert updates the row that exists), rows that write an identity column
// GENERATED ALWAYS (an INSERT refuses them; COPY would not), and rows that
// write a column of a type outside copyTypes.
func copySQL(t *table, keyCol string, cols []string) string {
	if keyCol == "" || t.lww || !t.copyable || lacksRequired(t, cols) {
		return ""
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		if col := t.cols[c]; col.always || !copyTypes[col.base] {
			return ""
		}
		quoted[i] = quoteIdent(c)
	}
	return fmt.Sprintf("COPY %s (%s) FROM STDIN", t.quoted, strings.Join(quoted, ", "))
}

// copyTypes are the base types whose input function, given the column's
// modifier, stores what the upsert's cast to the base type and assignment
// to the column store: COPY applies the modifier while it reads the text,
// the upsert after. Elsewhere they differ (an interval with a fields
// qualifier reads "5" as 5 days for COPY and 5 seconds, then cut to 0 days,
// for the upsert; text to regclass is a name for the cast and may be an
// OID for the input), so other types are not copied. Arrays and enums are
// left out too, untried.
var copyTypes = map[uint32]bool{
	pgtype.BoolOID: true, pgtype.ByteaOID: true, pgtype.Int2OID: true, pgtype.Int4OID: true, pgtype.Int8OID: true,
	pgtype.TextOID: true, pgtype.VarcharOID: true, pgtype.BPCharOID: true, pgtype.JSONOID: true, pgtype.JSONBOID: true,
	pgtype.Float4OID: true, pgtype.Float8OID: true, pgtype.NumericOID: true, pgtype.UUIDOID: true,
	pgtype.DateOID: true, pgtype.TimeOID: true, pgtype.TimetzOID: true, pgtype.TimestampOID: true, pgtype.TimestamptzOID: true,
}

// copyTable reports whether a table's new rows may go by COPY: not when it
// has rules (COPY skips them; the upsert refuses such a table), row-level
// security (COPY refuses it or skips its policies), a statement trigger on
// UPDATE (the upsert fires it; COPY does not), a column of a domain type (a
// column COPY leaves out is NULL without the domain's checks; an INSERT
// checks them), or when the sink's user may not select, insert and update
// it (the upsert needs all three; COPY only the right to insert). Read when
// the table is first loaded.
func (s *Sink) copyTable(ctx context.Context, loc string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `
		SELECT NOT (c.relhasrules OR c.relrowsecurity)
			AND has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'UPDATE')
			AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgtype & 1 = 0 AND g.tgtype & 16 <> 0)
			AND NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
				WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND ty.typtype = 'd')
		FROM pg_class c WHERE c.oid = to_regclass($1)`, quoteQualified(loc)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, loc, err)
	}
	return ok, nil
}

// writeCopy writes a batch whose large groups of new rows were planned as
// copies on conn: BEGIN and the batch's other statements (its fences
// first) in one round trip, then each COPY, the last one followed by
// COMMIT in the same query (a batch with nothing else, unfenced, is one
// round trip: BEGIN, COPY and COMMIT). The copies' text is rendered before
// the transaction begins, so it holds its locks for the round trips only.
// Any error rolls the transaction back; nothing of it stays. The error is
// as the server or pgx gave it: the caller reads its SQLSTATE.
func (s *Sink) writeCopy(ctx context.Context, conn *pgxpool.Conn, b *pgx.Batch, copies []copyGroup) error {
	buf := copyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	ends := make([]int, len(copies))
	for i := range copies {
		appendCopyRows(buf, copies[i].args)
		ends[i] = buf.Len()
	}
	begin := "BEGIN; " // with the first COPY, when nothing comes before it
	var err error
	if b.Len() > 0 {
		pre := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, b.Len()+1)}
		pre.Queue("BEGIN")
		pre.QueuedQueries = append(pre.QueuedQueries, b.QueuedQueries...)
		err = sendBatchRaw(ctx, conn, pre)
		begin = ""
	}
	for i, start := 0, 0; err == nil && i < len(copies); i++ {
		q := copies[i].sql
		if i == 0 {
			q = begin + q
		}
		if i == len(copies)-1 {
			q += "; COMMIT"
		}
		var tag pgconn.CommandTag
		tag, err = conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf.Bytes()[start:ends[i]]), q)
		start = ends[i]
		if err == nil && i == len(copies)-1 && tag.String() != "COMMIT" {
			err = fmt.Errorf("%w: it ended in %q", errNotCommitted, tag.String())
		}
	}
	if err != nil {
		// The buffer is not kept: on some errors pgx returns before its
		// sending goroutine has let go of the data.
		rollback(ctx, conn)
		return err
	}
	if buf.Cap() <= 8<<20 { // a batch of very wide rows' is not kept
		copyBufs.Put(buf)
	}
	return nil
}

// errNotCommitted is a COPY's transaction that did not end in COMMIT
// without an error saying why (not seen; guarded against).
var errNotCommitted = errors.New("the COPY's transaction was not committed")

// copyBufs keeps the buffers COPY data is rendered into.
var copyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// rollback ends a failed transaction so the connection goes back to the
// pool clean; a connection left in a transaction is closed by the pool.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		conn.Conn().PgConn().Close(ctx) //nolint:errcheck // the pool drops it
	}
}

// appendCopyRows renders rows in COPY's text format: columns separated by
// tabs, rows ended by newlines, NULL as \N, and a backslash, tab, newline
// or carriage return in a value escaped, so every value reaches the
// column's input function as the text the upsert would have cast.
func appendCopyRows(buf *bytes.Buffer, cols [][]*string) {
	if len(cols) == 0 {
		return
	}
	for r := range cols[0] {
		for c := range cols {
			if c > 0 {
				buf.WriteByte('\t')
			}
			v := cols[c][r]
			if v == nil {
				buf.WriteString(`\N`)
				continue
			}
			appendCopyText(buf, *v)
		}
		buf.WriteByte('\n')
	}
}

func appendCopyText(buf *bytes.Buffer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\t':
			esc = `\t`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		default:
			continue
		}
		buf.WriteString(s[start:i])
		buf.WriteString(esc)
		start = i + 1
	}
	buf.WriteString(s[start:])
}

// batchSender is what runs a pgx batch: the pool or one of its connections.
type batchSender interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

// writeWithCopy plans recs with the large groups of new rows as copies
// and writes them; a batch without any goes as planned, in one round trip.
// When the server refuses a write with copies, the tables copied skip COPY
// for a while and writeWithCopy reports false: the batch is to be planned
// again and written as upserts (pgx keeps what it prepared on a connection
// in each queued query, so they cannot be sent again on another). Errors
// that are not the server refusing the batch (the connection, the context,
// a newer fence) are returned as they are: upserts would meet them alike.
func (s *Sink) writeWithCopy(ctx context.Context, recs []mixer.TargetRecord, fences []connectors.Fence) (bool, error) {
	b := &pgx.Batch{}
	s.queueFences(b, fences)
	fenced := b.Len()
	var copies []copyGroup
	if err := s.planInto(recs, b, time.Time{}, &copies); err != nil {
		return true, err
	}
	if len(copies) == 0 {
		if b.Len() == fenced {
			return true, nil
		}
		return true, s.sendPlanned(ctx, recs, b)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return true, mapError(err)
	}
	err = s.writeCopy(ctx, conn, b, copies)
	conn.Release()
	if err == nil {
		for i := range copies {
			copies[i].t.copy.succeeded()
			s.copied.Add(int64(len(copies[i].args[0])))
		}
		return true, nil
	}
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	var pgErr *pgconn.PgError
	refused := errors.As(err, &pgErr)
	if mapped := mapError(err); !refused && !errors.Is(err, errNotCommitted) || errors.Is(mapped, connectors.ErrFenced) {
		return true, mapped
	}
	code := ""
	if refused {
		code = pgErr.Code
	}
	s.copyFailures.Add(1)
	first := false // the first failure since a COPY succeeded
	for i := range copies {
		if !slices.ContainsFunc(copies[:i], func(c copyGroup) bool { return c.t == copies[i].t }) {
			first = copies[i].t.copy.failed() || first // once a batch
		}
	}
	level := slog.LevelDebug
	if first {
		level = slog.LevelInfo
	}
	// The SQLSTATE only: the error's detail may quote the row.
	s.log.Log(ctx, level, "a write with COPY was refused; the batch is written as upserts, and so are the table's next batches (sqlstate 23505: one of its new rows was there already)",
		"system", s.sys.Name, "table", copies[0].t.loc, "sqlstate", code, "upserted_batches", copies[0].t.copy.skip.Load())
	return false, nil
}
