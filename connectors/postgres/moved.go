package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/connectors"
)

// movedRow says how to read the columns a key-changing update left out
// (unchanged TOASTed values) from the row as it is now, found by its new
// key. The target gets a new row under the new key, so without them those
// columns would be lost there. It is plain data, so a streamed transaction
// that spills to disk can keep it until the transaction commits.
type movedRow struct {
	Loc     string   `json:"l"`
	Cols    []string `json:"c"` // the columns to read
	KeyCols []string `json:"k"`
	KeyOIDs []uint32 `json:"o"`
	KeyText [][]byte `json:"v"` // the new key, in text form
}

// newMovedRow returns what to read for a moved row's tuple, or nil when it
// left out no column the receive mixer reads.
func newMovedRow(rel *relation, t *pglogrepl.TupleData) *movedRow {
	m := &movedRow{Loc: rel.loc}
	for i, col := range t.Columns {
		if i < len(rel.cols) && rel.cols[i].need && col.DataType == pglogrepl.TupleDataTypeToast {
			m.Cols = append(m.Cols, rel.cols[i].name)
		}
	}
	if len(m.Cols) == 0 {
		return nil
	}
	for _, k := range rel.keyIdx {
		m.KeyCols = append(m.KeyCols, rel.cols[k].name)
		m.KeyOIDs = append(m.KeyOIDs, rel.cols[k].oid)
		m.KeyText = append(m.KeyText, bytes.Clone(t.Columns[k].Data)) // the decoder reuses its buffer
	}
	return m
}

// movedRowWait bounds how long a moved row is waited for.
const movedRowWait = 30 * time.Second

// fillMoved reads a moved row's left-out columns into c, once transaction
// xid (the top-level transaction that moved it) is visible to new
// snapshots. The wait matters twice: a streamed transaction is decoded
// before it commits, and even a committed one's WAL can be decoded a moment
// before its commit is visible to other sessions. If the row is gone by the
// time it is visible, a later change of the stream deletes or moves it, and
// the columns stay absent.
func (s *Source) fillMoved(ctx context.Context, m *movedRow, xid uint32, c *connectors.Change) error {
	ctx, cancel := context.WithTimeout(ctx, movedRowWait)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%w: reading the moved row of %s: %w", connectors.ErrUnavailable, m.Loc, err)
	}
	defer conn.Release()
	cols := make([]string, len(m.Cols))
	for i, col := range m.Cols {
		cols[i] = quoteIdent(col)
	}
	where := make([]string, len(m.KeyCols))
	for i, k := range m.KeyCols {
		where[i] = quoteIdent(k) + " = $" + strconv.Itoa(i+1)
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteQualified(m.Loc) + " WHERE " + strings.Join(where, " AND ")
	pc := conn.Conn().PgConn()
	read := func() (found bool, err error) {
		rr := pc.ExecParams(ctx, q, m.KeyText, m.KeyOIDs, nil, nil)
		fields := rr.FieldDescriptions()
		for rr.NextRow() {
			found = true
			for i, v := range rr.Values() {
				if v == nil {
					c.Record.Fields[fields[i].Name] = nil
					continue
				}
				val, err := decodeText(fields[i].DataTypeOID, v)
				if err != nil {
					rr.Close()
					return false, fmt.Errorf("%s column %s: %w", m.Loc, fields[i].Name, err)
				}
				c.Record.Fields[fields[i].Name] = val
			}
			c.Record.Complete = true
		}
		if _, err := rr.Close(); err != nil {
			return false, fmt.Errorf("%w: reading the moved row of %s: %w", connectors.ErrUnavailable, m.Loc, err)
		}
		return found, nil
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		if found, err := read(); err != nil || found {
			return err
		}
		if s.afterMovedRead != nil {
			s.afterMovedRead()
		}
		visible, err := xidVisible(ctx, conn, xid)
		if err != nil {
			return fmt.Errorf("%w: waiting for transaction %d to be visible: %w", connectors.ErrUnavailable, xid, err)
		}
		if visible {
			// The commit may have become visible after the read above took
			// its snapshot: one more read, whose snapshot is later than the
			// commit, says whether the row is really gone.
			_, err := read()
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: transaction %d that moved a row of %s is not visible after %v", connectors.ErrUnavailable, xid, m.Loc, movedRowWait)
		case <-time.After(wait):
		}
	}
}

// xidVisible reports whether a new snapshot sees transaction xid as
// finished. The stream gives 32-bit transaction ids; the snapshot's are
// 64-bit (xid8), so the id is placed in the epoch of the snapshot's xmax.
func xidVisible(ctx context.Context, conn *pgxpool.Conn, xid uint32) (bool, error) {
	var xmax uint64
	var xip []uint64
	err := conn.QueryRow(ctx, `SELECT pg_snapshot_xmax(s)::text::numeric, ARRAY(SELECT pg_snapshot_xip(s)::text::numeric)
		FROM pg_current_snapshot() s`).Scan(&xmax, &xip)
	if err != nil {
		return false, err
	}
	return snapshotSees(xmax, xip, xid), nil
}

// snapshotSees reports whether a snapshot with xmax and in-progress list
// xip sees 32-bit transaction id xid as finished. Live transaction ids lie
// within 2^31 of each other, so xid is the full id just below xmax, or not
// finished when it is at or above it.
func snapshotSees(xmax uint64, xip []uint64, xid uint32) bool {
	below := int32(uint32(xmax) - xid)
	if below <= 0 {
		return false
	}
	if uint64(below) > xmax {
		return true // an id from before the first epoch: long finished
	}
	return !slices.Contains(xip, xmax-uint64(below))
}
