package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// snapshotPrefix marks positions that record snapshot progress.
const snapshotPrefix = "snapshot:"

// snapshotLabel is the position snapshot rows carry downstream (a
// dataset's _remix_position): the chunk's resume state stays with the
// source's checkpoint.
const snapshotLabel = "snapshot"

// snapshotPlan says how to copy the mapped tables.
type snapshotPlan struct {
	// exported is the snapshot the new slot exported: reading through it
	// sees exactly the data before the slot's consistent point, so the copy
	// and the stream neither miss nor repeat a change.
	exported string
	// resumeTable and resumeAfter restart an interrupted copy after the last
	// key that was durable downstream. The exported snapshot died with its
	// session, so the rest is read from a fresh one: newer than the slot's
	// position, which the stream then replays on top. Every row ends as the
	// source has it; some change twice on the way.
	resumeTable string
	resumeAfter []string
	// tables are those still to copy, sorted; done those copied before.
	tables []string
	done   []string
}

// snapshot copies every mapped table, in key order and in chunks, handing
// each chunk over with its progress as position.
func (s *Source) snapshot(ctx context.Context, plan *snapshotPlan) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	pg := conn.Conn().PgConn()
	begin := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	if _, err := pg.Exec(ctx, begin).ReadAll(); err != nil {
		return err
	}
	defer func() { _, _ = pg.Exec(context.WithoutCancel(ctx), "ROLLBACK").ReadAll() }()
	if plan.exported != "" {
		if _, err := pg.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(plan.exported)).ReadAll(); err != nil {
			return fmt.Errorf("importing the slot's snapshot %s: %w", plan.exported, err)
		}
	}
	locs := plan.tables
	done := append([]string(nil), plan.done...)
	// This session must not be cut by server-side timeouts while it waits
	// for the ingest between chunks.
	for _, set := range []string{"SET LOCAL idle_in_transaction_session_timeout = 0", "SET LOCAL statement_timeout = 0"} {
		if _, err := pg.Exec(ctx, set).ReadAll(); err != nil {
			return err
		}
	}
	var estimate int64
	for _, loc := range locs {
		var n float64
		// reltuples is -1 until the table is first analyzed; the statistics
		// collector's live tuple count is the next best cheap guess.
		if err := conn.QueryRow(ctx, `SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples ELSE COALESCE(s.n_live_tup, 0) END
			FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass($1)`, quoteQualified(loc)).Scan(&n); err == nil {
			estimate += int64(n)
		}
	}
	s.stats.SnapshotEstimate.Store(estimate)
	s.log.Info("snapshot started", "tables", len(locs), "estimated_rows", estimate, "resuming", plan.resumeTable != "")

	chunk := int(s.sys.Settings.Int(SettingSnapshotChunk))
	started := time.Now()
	lastLog := started
	for _, loc := range locs {
		t := s.tables[loc]
		var after []string
		if loc == plan.resumeTable {
			after = plan.resumeAfter
		}
		cols, types, err := s.snapshotColumns(ctx, conn, t)
		if err != nil {
			return err
		}
		twoWay := s.writtenTo(loc)
		for {
			q, args := snapshotQuery(t, cols, types, after, chunk, twoWay)
			rr := pg.ExecParams(ctx, q, args, nil, nil, nil)
			fields := rr.FieldDescriptions()
			changes := make([]connectors.Change, 0, min(chunk, 8192)) // chunks are mostly full: one allocation, not a doubling
			var last []string
			for rr.NextRow() {
				vals := rr.Values()
				rec := s.newFields(len(vals))
				keyText := make([]string, 0, len(t.keyCols))
				var committed time.Time
				cols := fields
				if twoWay { // the row's commit time, last
					committed = parseCommitTime(vals[len(vals)-1])
					vals, cols = vals[:len(vals)-1], fields[:len(fields)-1]
				}
				for i, f := range cols {
					if vals[i] == nil {
						rec[f.Name] = nil
						continue
					}
					v, err := decodeText(f.DataTypeOID, vals[i])
					if err != nil {
						rr.Close()
						return fmt.Errorf("%s column %s: %w", loc, f.Name, err)
					}
					rec[f.Name] = v
				}
				for i := range t.keyCols {
					keyText = append(keyText, string(vals[i]))
				}
				key, err := s.rowKey(loc, t.keyCols, rec)
				if err != nil {
					rr.Close()
					return err
				}
				for _, k := range t.keyCols {
					if !t.need[k] {
						delete(rec, k)
					}
				}
				changes = append(changes, connectors.Change{Record: mixer.Record{Location: loc, Op: mixer.OpUpsert, Fields: rec, Complete: true, Created: true}, Key: key, CommitTime: committed})
				last = keyText
			}
			if _, err := rr.Close(); err != nil {
				return fmt.Errorf("copying %s: %w", loc, err)
			}
			if len(changes) == 0 {
				break
			}
			after = last
			progress, _ := json.Marshal(state{Slot: s.slot, Claim: s.claim, Snapshot: "running", Done: done, Table: loc, After: last})
			if err := s.emit(ctx, item{changes: changes, pos: snapshotPrefix + string(progress), label: snapshotLabel}); err != nil {
				return err
			}
			done := s.stats.SnapshotRows.Add(int64(len(changes)))
			if time.Since(lastLog) >= 5*time.Second {
				lastLog = time.Now()
				rate := float64(done) / time.Since(started).Seconds()
				s.log.Info("snapshot progress", "table", loc, "rows", done, "estimated_rows", estimate, "rows_per_second", int64(rate))
			}
			if len(changes) < chunk {
				break
			}
		}
		done = append(done, loc)
	}
	sort.Strings(done)
	final, _ := json.Marshal(state{Slot: s.slot, Claim: s.claim, Snapshot: "done", Done: done})
	if err := s.emit(ctx, item{pos: snapshotPrefix + string(final)}); err != nil {
		return err
	}
	s.log.Info("snapshot read", "rows", s.stats.SnapshotRows.Load(), "seconds", time.Since(started).Seconds())
	return nil
}

// snapshotColumns lists the columns to copy, key columns first, with the
// type names of the keys for the resume condition.
func (s *Source) snapshotColumns(ctx context.Context, conn *pgxpool.Conn, t *srcTable) ([]string, map[string]string, error) {
	cols := append([]string(nil), t.keyCols...)
	isKey := map[string]bool{}
	for _, k := range t.keyCols {
		isKey[k] = true
	}
	var rest []string
	for c := range t.need {
		if !isKey[c] {
			rest = append(rest, c)
		}
	}
	sort.Strings(rest)
	cols = append(cols, rest...)
	types := map[string]string{}
	rows, err := conn.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, quoteQualified(t.loc))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			return nil, nil, err
		}
		types[n] = typ
	}
	return cols, types, rows.Err()
}

// snapshotQuery reads the next chunk in key order after the given key.
func snapshotQuery(t *srcTable, cols []string, types map[string]string, after []string, limit int, committed bool) (string, [][]byte) {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quoteIdent(c)
	}
	keys := make([]string, len(t.keyCols))
	params := make([]string, len(t.keyCols))
	for i, k := range t.keyCols {
		keys[i] = quoteIdent(k)
		params[i] = "$" + strconv.Itoa(i+1) + "::" + types[k]
	}
	if committed { // two-way: each row's version travels with it
		quoted = append(quoted, "pg_xact_commit_timestamp(xmin)")
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM " + quoteQualified(t.loc)
	var args [][]byte
	if after != nil {
		q += " WHERE (" + strings.Join(keys, ", ") + ") > (" + strings.Join(params, ", ") + ")"
		for _, a := range after {
			args = append(args, []byte(a))
		}
	}
	q += " ORDER BY " + strings.Join(keys, ", ") + " LIMIT " + strconv.Itoa(limit)
	return q, args
}

// emit hands an item to Next; while Next is slow it keeps the replication
// connection alive (see stream.go).
func (s *Source) emit(ctx context.Context, it item) error {
	select {
	case s.out <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writtenTo reports whether this system is also a target of a table it
// reads (two-way sync): its snapshot rows then carry their commit times,
// the versions the other side compares.
func (s *Source) writtenTo(loc string) bool {
	if s.sys.Push == nil {
		return false
	}
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			if rule.Location() == loc {
				return true
			}
		}
	}
	return false
}

// parseCommitTime reads a commit timestamp in the session's ISO output
// (UTC); zero when there is none (a frozen row, commit timestamps off).
func parseCommitTime(b []byte) time.Time {
	if b == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, isoTimestamp(b, true))
	if err != nil {
		return time.Time{}
	}
	return t
}
