package blob

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// jsonlEncoder writes gzip-compressed JSON Lines: one object per row, data
// columns first, an absent column left out (and named in _remix_absent),
// then the metadata. Values that JSON numbers would not keep exact in most
// readers (decimals, exact numbers, the version) are strings.
type jsonlEncoder struct {
	l   *layout
	gz  *gzip.Writer
	w   *bufio.Writer
	buf []byte
}

func newJSONLEncoder(out io.Writer, l *layout) *jsonlEncoder {
	gz, _ := gzip.NewWriterLevel(out, gzip.DefaultCompression)
	return &jsonlEncoder{l: l, gz: gz, w: bufio.NewWriterSize(gz, 64<<10)}
}

func (e *jsonlEncoder) buffered() int { return e.w.Buffered() }

func (e *jsonlEncoder) write(rows []row) error {
	for i := range rows {
		e.buf = e.line(e.buf[:0], &rows[i])
		if _, err := e.w.Write(e.buf); err != nil {
			return err
		}
	}
	return nil
}

func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

func (e *jsonlEncoder) line(b []byte, r *row) []byte {
	b = append(b, '{')
	first := true
	key := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, name)
		b = append(b, ':')
	}
	for i, c := range e.l.columns {
		if r.isAbsent(i) {
			continue
		}
		key(c.name)
		x := &r.cells[i]
		switch {
		case x.null:
			b = append(b, "null"...)
		case c.kind == kindInt64:
			b = strconv.AppendInt(b, x.i, 10)
		case c.kind == kindDouble:
			b = strconv.AppendFloat(b, x.f, 'g', -1, 64)
		case c.kind == kindBool:
			b = strconv.AppendBool(b, x.i != 0)
		case c.kind == kindTimestamp:
			b = appendString(b, time.UnixMicro(x.i).UTC().Format("2006-01-02T15:04:05.000000Z"))
		case c.kind == kindDate:
			b = appendString(b, time.Unix(x.i*86400, 0).UTC().Format(time.DateOnly))
		case c.kind == kindJSON:
			b = append(b, x.s...)
		default: // strings, exact numbers and decimals as text
			b = appendString(b, x.s)
		}
	}
	key(ColOp)
	b = appendString(b, r.op)
	key(ColKey)
	if r.hasKey {
		b = appendString(b, r.key)
	} else {
		b = append(b, "null"...)
	}
	key(ColVersion)
	b = appendString(b, versionText(r.version))
	key(ColCommitted)
	if r.hasCommit {
		b = appendString(b, time.UnixMicro(r.committed).UTC().Format("2006-01-02T15:04:05.000000Z"))
	} else {
		b = append(b, "null"...)
	}
	key(ColCreated)
	b = strconv.AppendBool(b, r.created)
	key(ColAbsent)
	b = append(b, '[')
	for j, i := range r.absent {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendString(b, e.l.columns[i].name)
	}
	b = append(b, ']')
	for _, m := range [...]struct{ name, v string }{{ColSource, r.source}, {ColPosition, r.position}, {ColSystem, r.system}} {
		if m.v != "" {
			key(m.name)
			b = appendString(b, m.v)
		}
	}
	return append(b, '}', '\n')
}

func (e *jsonlEncoder) flush() error { return e.w.Flush() }

func (e *jsonlEncoder) close() error {
	if err := e.w.Flush(); err != nil {
		return err
	}
	return e.gz.Close()
}
