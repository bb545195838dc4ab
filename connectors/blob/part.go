package blob

import (
	"fmt"
	"io"
	"os"
	"time"
)

// part is one file under construction: its rows go to a spool file on
// local disk as they are written (a row group at a time for Parquet), so a
// pusher's memory does not grow with max_file_bytes; the file is uploaded
// whole when its partition is flushed.
type part struct {
	location    string
	model       string
	partition   int
	window      time.Time // the start of the window its entries fall in
	first, last entryID
	firstIndex  int // the first row's place in its entry: above 0 when the file begins inside an entry
	rows        int64
	path        string
	f           *os.File
	out         *countWriter
	enc         encoder
	sealed      bool // complete: no more rows
}

// countWriter counts the bytes that reached the spool file.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// rowGroupBytes bounds what a part holds in memory before it writes a row
// group to its spool file.
const rowGroupBytes = 4 << 20

func (s *Sink) newPart(location, model string, partition int, window time.Time, first entryID, firstIndex int) (*part, error) {
	f, err := os.CreateTemp(s.spoolDir, "part-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	p := &part{location: location, model: model, partition: partition, window: window, first: first, last: first, firstIndex: firstIndex,
		path: f.Name(), f: f, out: &countWriter{w: f}}
	l := s.layouts[location]
	if s.format == FormatJSONL {
		p.enc = newJSONLEncoder(p.out, l)
	} else {
		p.enc = newParquetEncoder(p.out, l, s.schemas[location])
	}
	return p, nil
}

// add writes rows of entries up to last.
func (p *part) add(rows []row, last entryID) error {
	if err := p.enc.write(rows); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	p.rows += int64(len(rows))
	p.last = last
	if p.enc.buffered() >= rowGroupBytes {
		if err := p.enc.flush(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	return nil
}

// size is roughly how large the file is so far.
func (p *part) size() int64 { return p.out.n + int64(p.enc.buffered()) }

// seal completes the file in its spool.
func (p *part) seal() error {
	if p.sealed {
		return nil
	}
	if err := p.enc.close(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	p.sealed = true
	return nil
}

// drop removes the spool file.
func (p *part) drop() {
	p.f.Close()
	os.Remove(p.path)
}
