package mysql

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// The initial snapshot takes no lock (DBLog's watermarks). It copies each
// mapped table in chunks of snapshot_chunk_rows rows in primary-key order
// while the binary log is read as usual. For each chunk the reader:
//
//  1. writes a low watermark (an upsert of this source's row in the
//     watermark table, which the log carries like any change);
//  2. selects the chunk (a plain, lock-free read);
//  3. writes a high watermark;
//  4. goes on reading the log. Between the low and the high watermark,
//     every change of the table removes the row with its key from the
//     chunk: the log has that row newer than (or as new as) the chunk.
//     At the high watermark, the rows left are handed over, in the log's
//     order at that point.
//
// A row that changed while the chunk was read is therefore delivered by
// the log alone; every other chunk row holds its value as of the high
// watermark, and its later changes come after it. Every position carries
// the last key copied, so a source killed at any point resumes after the
// last chunk that was durable downstream, from the GTID set of that
// position: what it copies again converges with what the log replays.

// snapRun is the snapshot in progress.
type snapRun struct {
	tables  []string // still to copy, sorted; the first is being copied
	after   []string // the last key copied of the first table, as query text
	chunk   int
	n       int // chunks started, for watermark names
	cols    []string
	decs    []colDec
	keyN    int // the first keyN of cols are the primary key
	started time.Time
	lastLog time.Time
}

// window is a chunk between its low and high watermark.
type window struct {
	table     string
	low, high string
	open      bool // the low watermark was read
	rows      []connectors.Change
	byKey     map[string]int // index in rows; dropped rows are zero
	last      []string       // the chunk's last key, as query text
	short     bool           // fewer rows than a chunk: the table is copied
}

// drop removes the chunk rows of changes read inside the window.
func (w *window) drop(changes []connectors.Change) {
	for _, c := range changes {
		if i, ok := w.byKey[c.Key]; ok {
			w.rows[i] = connectors.Change{}
			delete(w.byKey, c.Key)
		}
	}
}

func (s *Source) newSnapRun(ctx context.Context, st *state) *snapRun {
	sr := &snapRun{tables: st.toCopy(s.tables), chunk: int(s.sys.Settings.Int(SettingSnapshotChunk)), started: time.Now()}
	if st.Table != "" && len(sr.tables) > 0 && sr.tables[0] == st.Table {
		sr.after = st.After
	}
	var estimate int64
	for _, loc := range sr.tables {
		db, table, _ := strings.Cut(loc, ".")
		var n sql.NullInt64
		if s.db.QueryRowContext(ctx, `SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, db, table).Scan(&n) == nil {
			estimate += n.Int64
		}
	}
	s.stats.SnapshotEstimate.Store(estimate)
	s.log.Info("snapshot started", "tables", len(sr.tables), "estimated_rows", estimate, "resuming", sr.after != nil)
	return sr
}

// watermarkDDL creates the watermark table.
func watermarkDDL(table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (source VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, "+
		"mark VARCHAR(64) NOT NULL, written_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))", quoteTable(table))
}

// ensureWatermarkTable makes the watermark table if a snapshot may need it.
func (s *Source) ensureWatermarkTable(ctx context.Context) error {
	if !s.sys.Settings.Bool(SettingInitialSnap) {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, watermarkDDL(s.watermark)); err != nil {
		return fmt.Errorf("%w: %s: creating the watermark table %s: %w (the snapshot writes its watermarks there: create it as `%s` "+
			"and GRANT SELECT, INSERT, UPDATE ON %s TO the dsn's user, or set watermark_table)",
			ErrServerSetup, s.sys.Name, s.watermark, mapError(err), watermarkDDL(s.watermark), quoteTable(s.watermark))
	}
	return nil
}

// mark writes a watermark.
func (s *Source) mark(ctx context.Context, value string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO "+quoteTable(s.watermark)+" (source, mark) VALUES (?, ?) ON DUPLICATE KEY UPDATE mark = VALUES(mark)",
		s.sys.Name, value)
	if err != nil {
		return fmt.Errorf("writing a watermark to %s: %w", s.watermark, mapError(err))
	}
	return nil
}

// nextChunk writes the low watermark, reads the next chunk of the table
// being copied and writes the high watermark; the chunk waits in a window
// until the log reaches the high watermark.
func (r *reader) nextChunk(ctx context.Context) error {
	sr, s := r.snap, r.s
	if len(sr.tables) == 0 {
		return nil
	}
	loc := sr.tables[0]
	t := s.tables[loc]
	if sr.cols == nil {
		info, err := loadTable(ctx, s.db, loc)
		if err != nil {
			return err
		}
		if info == nil || len(info.pk) == 0 {
			return fmt.Errorf("table %s is gone or has no primary key", loc)
		}
		t.info, t.keyCols = info, info.pk
		sr.cols, sr.keyN = append([]string(nil), info.pk...), len(info.pk)
		var rest []string
		for c := range t.need {
			if info.cols[c] != nil && !contains(info.pk, c) {
				rest = append(rest, c)
			}
		}
		sort.Strings(rest)
		sr.cols = append(sr.cols, rest...)
		sr.decs = make([]colDec, len(sr.cols))
		for i, c := range sr.cols {
			sr.decs[i] = snapshotDec(info.cols[c])
		}
	}
	sr.n++
	w := &window{table: loc, low: fmt.Sprintf("low-%d-%d", time.Now().UnixNano(), sr.n), byKey: map[string]int{}}
	w.high = "high" + strings.TrimPrefix(w.low, "low")
	if err := s.mark(ctx, w.low); err != nil {
		return err
	}
	q, args := r.chunkQuery(loc)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, loc, err)
	}
	raw := make([]sql.RawBytes, len(sr.cols))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return err
		}
		n++
		fields := make(map[string]any, len(sr.cols))
		var bad error
		for i, d := range sr.decs {
			v, err := d.text(raw[i])
			if err != nil && bad == nil {
				bad = fmt.Errorf("%s column %s: %w", loc, d.name, err)
			}
			fields[d.name] = v
		}
		key, err := s.rowKey(loc, sr.cols[:sr.keyN], fields)
		if err != nil {
			rows.Close()
			return err
		}
		w.last = w.last[:0]
		for i := 0; i < sr.keyN; i++ {
			if sr.decs[i].kind == kindBinary {
				w.last = append(w.last, base64.StdEncoding.EncodeToString(raw[i]))
			} else {
				w.last = append(w.last, string(raw[i]))
			}
		}
		for _, k := range sr.cols[:sr.keyN] {
			if !t.need[k] {
				delete(fields, k)
			}
		}
		c := connectors.Change{Record: mixer.Record{Location: loc, Op: mixer.OpUpsert, Fields: fields, Complete: true, Created: true}, Key: key, Err: bad}
		w.byKey[key] = len(w.rows)
		w.rows = append(w.rows, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, loc, err)
	}
	w.short = n < sr.chunk
	if err := s.mark(ctx, w.high); err != nil {
		return err
	}
	r.win = w
	return nil
}

// chunkQuery reads the next chunk of a table after the last key copied:
// (a > ?) OR (a = ? AND b > ?) ... for a composite key, which uses the
// primary key's index on every server.
func (r *reader) chunkQuery(loc string) (string, []any) {
	sr := r.snap
	quoted := make([]string, len(sr.cols))
	for i, c := range sr.cols {
		quoted[i] = quoteIdent(c)
	}
	keys := quoted[:sr.keyN]
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM " + quoteTable(loc)
	var args []any
	if sr.after != nil {
		var ors []string
		for i := range keys {
			var ands []string
			for j := 0; j < i; j++ {
				ands = append(ands, keys[j]+" = ?")
				args = append(args, r.afterArg(j))
			}
			ands = append(ands, keys[i]+" > ?")
			args = append(args, r.afterArg(i))
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		q += " WHERE " + strings.Join(ors, " OR ")
	}
	return q + " ORDER BY " + strings.Join(keys, ", ") + " LIMIT " + strconv.Itoa(sr.chunk), args
}

func (r *reader) afterArg(i int) any {
	v := r.snap.after[i]
	if r.snap.decs[i].kind == kindBinary {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			return b
		}
	}
	return v
}

// watermarkRows watches this source's row of the watermark table: the low
// watermark opens the window, the high one closes it and hands the chunk
// over.
func (r *reader) watermarkRows(typ replication.EventType, e *replication.RowsEvent) error {
	if r.win == nil {
		return nil
	}
	step := 1
	switch typ {
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
		step = 2 // before and after images: the after image counts
	}
	for i := step - 1; i < len(e.Rows); i += step {
		row := e.Rows[i]
		if len(row) < 2 || fmt.Sprint(row[0]) != r.s.sys.Name {
			continue
		}
		switch fmt.Sprint(row[1]) {
		case r.win.low:
			r.win.open = true
		case r.win.high:
			if !r.win.open {
				return fmt.Errorf("the high watermark of %s came without its low one: the watermark table %s must be in the binary log (binlog_do_db / binlog_ignore_db)", r.win.table, r.s.watermark)
			}
			r.closeWindow()
		}
	}
	return nil
}

// closeWindow hands the chunk rows left over, as changes of the high
// watermark's transaction, and records the progress its position carries.
func (r *reader) closeWindow() {
	w, sr := r.win, r.snap
	r.win = nil
	var rows []connectors.Change
	for _, c := range w.rows {
		if c.Key != "" {
			c.CommitTime = r.curTime
			rows = append(rows, c)
		}
	}
	r.cur = append(r.cur, rows...)
	total := r.s.stats.SnapshotRows.Add(int64(len(rows)))
	if len(w.rows) > 0 {
		sr.after = append([]string(nil), w.last...)
	}
	r.st.Table, r.st.After = w.table, sr.after
	if w.short {
		r.st.Done = append(append([]string(nil), r.st.Done...), w.table)
		sort.Strings(r.st.Done)
		r.st.Table, r.st.After = "", nil
		sr.tables, sr.after, sr.cols, sr.decs = sr.tables[1:], nil, nil, nil
		if len(sr.tables) == 0 {
			r.st.Snapshot = "done"
			r.snap = nil
			r.s.log.Info("snapshot read", "rows", total, "seconds", time.Since(sr.started).Seconds())
			return
		}
	}
	if time.Since(sr.lastLog) >= 5*time.Second {
		sr.lastLog = time.Now()
		r.s.log.Info("snapshot progress", "table", w.table, "rows", total, "estimated_rows", r.s.stats.SnapshotEstimate.Load(),
			"rows_per_second", int64(float64(total)/time.Since(sr.started).Seconds()))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
