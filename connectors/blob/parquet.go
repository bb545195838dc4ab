package blob

import (
	"io"
	"math/big"
	"reflect"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding"
)

// orderedGroup is a parquet group whose fields keep the order given
// (parquet.Group sorts them by name): data columns in the push mixer's
// order, then the metadata.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g orderedGroup) Fields() []parquet.Field     { return g.fields }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }
func (g orderedGroup) String() string              { return "remix dataset row" }
func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) Type() parquet.Type          { return g.Group.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (f namedNode) Name() string                   { return f.name }
func (f namedNode) Value(base reflect.Value) reflect.Value {
	return base.MapIndex(reflect.ValueOf(f.name))
}

type namedNode struct {
	parquet.Node
	name string
}

// leafOf is the parquet type of a data column; every data column is
// optional, since a delete row carries only the key.
func leafOf(c column) parquet.Node {
	var n parquet.Node
	switch c.kind {
	case kindInt64:
		n = parquet.Int(64)
	case kindDecimal:
		switch {
		case c.precision <= 9:
			n = parquet.Decimal(c.scale, c.precision, parquet.Int32Type)
		case c.precision <= 18:
			n = parquet.Decimal(c.scale, c.precision, parquet.Int64Type)
		default:
			n = parquet.Decimal(c.scale, c.precision, parquet.FixedLenByteArrayType(16))
		}
	case kindDouble:
		n = parquet.Leaf(parquet.DoubleType)
	case kindBool:
		n = parquet.Leaf(parquet.BooleanType)
	case kindTimestamp:
		n = parquet.TimestampAdjusted(parquet.Microsecond, true)
	case kindDate:
		n = parquet.Date()
	case kindJSON:
		n = parquet.JSON()
	default:
		n = parquet.String()
	}
	return parquet.Optional(n)
}

// parquetSchema is the schema of a location's files.
func parquetSchema(l *layout) *parquet.Schema {
	var fields []parquet.Field
	for _, c := range l.columns {
		fields = append(fields, namedNode{leafOf(c), c.name})
	}
	meta := []namedNode{
		{parquet.String(), ColOp},
		{parquet.Optional(parquet.String()), ColKey},
		{parquet.Decimal(0, 38, parquet.FixedLenByteArrayType(16)), ColVersion},
		{parquet.Optional(parquet.TimestampAdjusted(parquet.Microsecond, true)), ColCommitted},
		{parquet.Leaf(parquet.BooleanType), ColCreated},
		{parquet.List(parquet.String()), ColAbsent},
		{parquet.Optional(parquet.String()), ColSource},
		{parquet.Optional(parquet.String()), ColPosition},
		{parquet.Optional(parquet.String()), ColSystem},
	}
	for _, m := range meta {
		fields = append(fields, m)
	}
	return parquet.NewSchema("remix", orderedGroup{Group: parquet.Group{}, fields: fields})
}

// parquetEncoder writes a Parquet file, zstd-compressed, a row group at
// a time.
type parquetEncoder struct {
	l       *layout
	w       *parquet.Writer
	row     parquet.Row
	rows    []parquet.Row
	pending int // bytes of values written since the last row group
}

func newParquetEncoder(out io.Writer, l *layout, schema *parquet.Schema) *parquetEncoder {
	w := parquet.NewWriter(out, schema, parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.CreatedBy("remix", "", ""), parquet.PageBufferSize(256<<10))
	return &parquetEncoder{l: l, w: w}
}

func (e *parquetEncoder) buffered() int { return e.pending }

func (e *parquetEncoder) write(rows []row) error {
	e.rows = e.rows[:0]
	for i := range rows {
		e.rows = append(e.rows, e.values(&rows[i]))
	}
	_, err := e.w.WriteRows(e.rows)
	return err
}

// values lays one row out as parquet values, in column order: each data
// column (definition level 1 when present), then the metadata.
func (e *parquetEncoder) values(r *row) parquet.Row {
	out := make(parquet.Row, 0, len(r.cells)+9+len(r.absent))
	col := 0
	opt := func(v parquet.Value, null bool) {
		if null {
			out = append(out, parquet.NullValue().Level(0, 0, col))
		} else {
			out = append(out, v.Level(0, 1, col))
			e.pending += sizeOf(v)
		}
		col++
	}
	for i, c := range e.l.columns {
		x := &r.cells[i]
		if x.null {
			opt(parquet.Value{}, true)
			continue
		}
		var v parquet.Value
		switch c.kind {
		case kindInt64:
			v = parquet.Int64Value(x.i)
		case kindDecimal:
			switch {
			case c.precision <= 9:
				v = parquet.Int32Value(int32(x.d.Int64()))
			case c.precision <= 18:
				v = parquet.Int64Value(x.d.Int64())
			default:
				v = parquet.FixedLenByteArrayValue(fixed16(x.d))
			}
		case kindDouble:
			v = parquet.DoubleValue(x.f)
		case kindBool:
			v = parquet.BooleanValue(x.i != 0)
		case kindTimestamp:
			v = parquet.Int64Value(x.i)
		case kindDate:
			v = parquet.Int32Value(int32(x.i))
		default:
			v = parquet.ByteArrayValue([]byte(x.s))
		}
		opt(v, false)
	}
	req := func(v parquet.Value) {
		out = append(out, v.Level(0, 0, col))
		e.pending += sizeOf(v)
		col++
	}
	req(parquet.ByteArrayValue([]byte(r.op)))
	opt(parquet.ByteArrayValue([]byte(r.key)), !r.hasKey)
	req(parquet.FixedLenByteArrayValue(fixed16(r.version)))
	opt(parquet.Int64Value(r.committed), !r.hasCommit)
	req(parquet.BooleanValue(r.created))
	if len(r.absent) == 0 {
		out = append(out, parquet.NullValue().Level(0, 0, col))
	}
	for j, i := range r.absent {
		out = append(out, parquet.ByteArrayValue([]byte(e.l.columns[i].name)).Level(min(j, 1), 1, col))
	}
	col++
	opt(parquet.ByteArrayValue([]byte(r.source)), r.source == "")
	opt(parquet.ByteArrayValue([]byte(r.position)), r.position == "")
	opt(parquet.ByteArrayValue([]byte(r.system)), r.system == "")
	return out
}

// fixed16 is a 16-byte big-endian two's complement of d.
func fixed16(d *big.Int) []byte {
	b := make([]byte, 16)
	if d.Sign() >= 0 {
		d.FillBytes(b)
		return b
	}
	// two's complement: 2^128 + d
	t := new(big.Int).Lsh(big.NewInt(1), 128)
	t.Add(t, d)
	t.FillBytes(b)
	return b
}

func (e *parquetEncoder) flush() error {
	e.pending = 0
	return e.w.Flush()
}

func (e *parquetEncoder) close() error { return e.w.Close() }

// sizeOf is roughly what a value takes in memory.
func sizeOf(v parquet.Value) int {
	if k := v.Kind(); k == parquet.ByteArray || k == parquet.FixedLenByteArray {
		return 8 + len(v.ByteArray())
	}
	return 8
}
