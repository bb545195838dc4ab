package blob

import (
	"fmt"
	"math/big"
	"slices"

	"github.com/sqlpipe/remix/mixer"
)

// layout is how one location's rows are written: its data columns.
type layout struct {
	location string
	columns  []column
	keyIndex int // the search key's column
}

// row is one record converted for a file.
type row struct {
	cells     []cell
	absent    []int // columns the change did not carry
	op        string
	key       string
	hasKey    bool
	version   *big.Int
	committed int64 // µs since the Unix epoch
	hasCommit bool
	created   bool
	source    string
	position  string
	system    string // "" when the change was made where it was read
}

// rowOf converts a record. Its error is the record's fault.
func (l *layout) rowOf(r *mixer.TargetRecord, epoch int, entry entryID) (row, error) {
	if r.Origin.Index > maxIndex {
		return row{}, fmt.Errorf("object %d of its stream entry: more than this version can number", r.Origin.Index)
	}
	out := row{cells: make([]cell, len(l.columns)), op: r.Op.String(), created: r.Created,
		version: version(epoch, entry, r.Origin.Index), source: r.Origin.Source, position: r.Origin.Position}
	if r.Origin.System != r.Origin.Source {
		out.system = r.Origin.System
	}
	if !r.Origin.CommitTime.IsZero() {
		out.committed, out.hasCommit = r.Origin.CommitTime.UnixMicro(), true
	}
	if r.Key == nil {
		return row{}, fmt.Errorf("no value for the search key %s: a dataset row needs its key", l.columns[l.keyIndex].field)
	}
	out.key, out.hasKey = textOf(r.Key.Value), true
	for i := range l.columns {
		c := &l.columns[i]
		v, ok := r.Fields[c.name]
		if !ok {
			out.absent = append(out.absent, i)
			out.cells[i].null = true
			continue
		}
		var err error
		if out.cells[i], err = c.convert(v); err != nil {
			return row{}, fmt.Errorf("field %s: %w", c.name, err)
		}
	}
	return out, nil
}

// truncateRow is the marker row of a truncate that starts epoch.
func (l *layout) truncateRow(epoch int, committed int64) row {
	out := row{cells: make([]cell, len(l.columns)), op: "truncate", version: epochStart(epoch), committed: committed, hasCommit: true}
	for i := range out.cells {
		out.cells[i].null = true
	}
	return out
}

// isAbsent reports whether column i is absent from the row.
func (r *row) isAbsent(i int) bool { return slices.Contains(r.absent, i) }

// encoder writes rows to a file of one format.
type encoder interface {
	// write adds rows; the file is not valid until close.
	write(rows []row) error
	// buffered is roughly how many bytes are held in memory, not yet in
	// the file.
	buffered() int
	// flush writes what is held in memory to the file (a row group).
	flush() error
	// close completes the file.
	close() error
}
