package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pglogrepl"
)

// The row messages of pgoutput (insert, update, delete) are decoded here
// rather than by pglogrepl.ParseV2, which allocates every column and copies
// its bytes one at a time: this is the hot path of every row. The tuples
// decoded here are reused from message to message and their columns point
// into the message itself, which stays valid until the next message is
// read; decodeText copies every value it keeps before then. Every other
// message still goes through pglogrepl.

var errShortMessage = errors.New("message ends early")

// tupleBuf is a reusable decoded tuple.
type tupleBuf struct {
	td   pglogrepl.TupleData
	cols []pglogrepl.TupleDataColumn
}

// decode reads a TupleData from src and returns what follows it.
func (b *tupleBuf) decode(src []byte) ([]byte, error) {
	if len(src) < 2 {
		return nil, errShortMessage
	}
	n := int(binary.BigEndian.Uint16(src))
	src = src[2:]
	if cap(b.cols) < n {
		b.cols = make([]pglogrepl.TupleDataColumn, n)
		b.td.Columns = make([]*pglogrepl.TupleDataColumn, 0, n)
	}
	b.cols = b.cols[:n]
	b.td.ColumnNum = uint16(n)
	b.td.Columns = b.td.Columns[:0]
	for i := range b.cols {
		if len(src) < 1 {
			return nil, errShortMessage
		}
		c := &b.cols[i]
		*c = pglogrepl.TupleDataColumn{DataType: src[0]}
		src = src[1:]
		switch c.DataType {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if len(src) < 4 {
				return nil, errShortMessage
			}
			l := binary.BigEndian.Uint32(src)
			src = src[4:]
			if uint64(len(src)) < uint64(l) {
				return nil, errShortMessage
			}
			c.Length, c.Data = l, src[:l:l]
			src = src[l:]
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
		default:
			return nil, fmt.Errorf("unknown column kind %q", c.DataType)
		}
		b.td.Columns = append(b.td.Columns, c)
	}
	return src, nil
}

// rowMessage is a decoded insert ('I'), update ('U') or delete ('D').
// OldKind is 'K' (key columns only) or 'O' (the whole old row) when the
// message carries an old tuple, and 0 when it does not.
type rowMessage struct {
	Kind       byte
	Xid        uint32 // only inside a streamed transaction
	RelationID uint32
	OldKind    byte
	Old, New   *pglogrepl.TupleData
}

// rowDecoder decodes row messages into its two reusable tuples.
type rowDecoder struct {
	old, new tupleBuf
}

// decode reads a row message; inStream says whether it belongs to a
// streamed transaction (and so carries its xid).
func (d *rowDecoder) decode(data []byte, inStream bool) (rowMessage, error) {
	m := rowMessage{Kind: data[0]}
	src := data[1:]
	if inStream {
		if len(src) < 4 {
			return m, errShortMessage
		}
		m.Xid = binary.BigEndian.Uint32(src)
		src = src[4:]
	}
	if len(src) < 5 {
		return m, errShortMessage
	}
	m.RelationID = binary.BigEndian.Uint32(src)
	src = src[4:]
	var err error
	if src[0] == 'K' || src[0] == 'O' {
		if m.Kind == 'I' {
			return m, fmt.Errorf("insert with an old tuple (%q)", src[0])
		}
		m.OldKind = src[0]
		if src, err = d.old.decode(src[1:]); err != nil {
			return m, err
		}
		m.Old = &d.old.td
		if m.Kind == 'D' {
			return m, trailing(src)
		}
		if len(src) < 1 {
			return m, errShortMessage
		}
	} else if m.Kind == 'D' {
		return m, fmt.Errorf("delete without an old tuple (%q)", src[0])
	}
	if src[0] != 'N' {
		return m, fmt.Errorf("expected a new tuple, got %q", src[0])
	}
	if src, err = d.new.decode(src[1:]); err != nil {
		return m, err
	}
	m.New = &d.new.td
	return m, trailing(src)
}

func trailing(src []byte) error {
	if len(src) > 0 {
		return fmt.Errorf("%d bytes after the tuple", len(src))
	}
	return nil
}

// formatLSN is pglogrepl.LSN.String without fmt, which shows in profiles
// at one call per transaction.
func formatLSN(l pglogrepl.LSN) string {
	var b [24]byte
	out := strconv.AppendUint(b[:0], uint64(l)>>32, 16)
	out = append(out, '/')
	out = strconv.AppendUint(out, uint64(l)&0xFFFFFFFF, 16)
	for i, c := range out {
		if c >= 'a' && c <= 'f' {
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out)
}
