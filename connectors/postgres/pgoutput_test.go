package postgres

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
)

// col is one column of a test tuple: kind 't', 'b', 'n' or 'u'.
type col struct {
	kind byte
	data string
}

func appendTuple(b []byte, cols ...col) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = append(b, c.kind)
		if c.kind == 't' || c.kind == 'b' {
			b = binary.BigEndian.AppendUint32(b, uint32(len(c.data)))
			b = append(b, c.data...)
		}
	}
	return b
}

// rowMsg builds a row message: kind, optional xid, relation, then the parts
// (a tag byte followed by a tuple).
func rowMsg(kind byte, xid uint32, rel uint32, parts ...any) []byte {
	b := []byte{kind}
	if xid != 0 {
		b = binary.BigEndian.AppendUint32(b, xid)
	}
	b = binary.BigEndian.AppendUint32(b, rel)
	for _, p := range parts {
		switch p := p.(type) {
		case byte:
			b = append(b, p)
		case []col:
			b = appendTuple(b, p...)
		}
	}
	return b
}

func tupleOf(t *pglogrepl.TupleData) []col {
	if t == nil {
		return nil
	}
	out := make([]col, 0, len(t.Columns))
	for _, c := range t.Columns {
		out = append(out, col{c.DataType, string(c.Data)})
	}
	return out
}

func TestRowDecoder(t *testing.T) {
	t.Parallel()
	row := []col{{'t', "42"}, {'n', ""}, {'u', ""}, {'t', ""}, {'b', "\x00\x01"}}
	key := []col{{'t', "41"}, {'n', ""}, {'n', ""}, {'n', ""}, {'n', ""}}
	cases := []struct {
		name     string
		msg      []byte
		inStream bool
		want     rowMessage
		old, new []col
		err      string
	}{
		{name: "insert", msg: rowMsg('I', 0, 16384, byte('N'), row),
			want: rowMessage{Kind: 'I', RelationID: 16384}, new: row},
		{name: "insert in a streamed transaction", msg: rowMsg('I', 777, 16384, byte('N'), row), inStream: true,
			want: rowMessage{Kind: 'I', Xid: 777, RelationID: 16384}, new: row},
		{name: "update", msg: rowMsg('U', 0, 7, byte('N'), row),
			want: rowMessage{Kind: 'U', RelationID: 7}, new: row},
		{name: "update of the key", msg: rowMsg('U', 0, 7, byte('K'), key, byte('N'), row),
			want: rowMessage{Kind: 'U', RelationID: 7, OldKind: 'K'}, old: key, new: row},
		{name: "update with replica identity full", msg: rowMsg('U', 0, 7, byte('O'), row, byte('N'), row),
			want: rowMessage{Kind: 'U', RelationID: 7, OldKind: 'O'}, old: row, new: row},
		{name: "delete by key", msg: rowMsg('D', 0, 7, byte('K'), key),
			want: rowMessage{Kind: 'D', RelationID: 7, OldKind: 'K'}, old: key},
		{name: "delete with the old row", msg: rowMsg('D', 9, 7, byte('O'), row), inStream: true,
			want: rowMessage{Kind: 'D', Xid: 9, RelationID: 7, OldKind: 'O'}, old: row},
		{name: "no columns", msg: rowMsg('I', 0, 1, byte('N'), []col{}),
			want: rowMessage{Kind: 'I', RelationID: 1}, new: []col{}},

		{name: "truncated value", msg: rowMsg('I', 0, 1, byte('N'), row)[:20], err: "message ends early"},
		{name: "no tuple", msg: rowMsg('I', 0, 1), err: "message ends early"},
		{name: "unknown column kind", msg: rowMsg('I', 0, 1, byte('N'), []col{{'x', ""}}), err: `unknown column kind 'x'`},
		{name: "insert with an old tuple", msg: rowMsg('I', 0, 1, byte('K'), key, byte('N'), row), err: "insert with an old tuple ('K')"},
		{name: "delete without an old tuple", msg: rowMsg('D', 0, 1, byte('N'), row), err: "delete without an old tuple ('N')"},
		{name: "update without a new tuple", msg: rowMsg('U', 0, 1, byte('K'), key), err: "message ends early"},
		{name: "wrong tag", msg: rowMsg('U', 0, 1, byte('K'), key, byte('Z'), row), err: "expected a new tuple, got 'Z'"},
		{name: "trailing bytes", msg: append(rowMsg('I', 0, 1, byte('N'), row), 0), err: "1 bytes after the tuple"},
		{name: "missing xid", msg: []byte{'I', 0, 0}, inStream: true, err: "message ends early"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d rowDecoder
			got, err := d.decode(tc.msg, tc.inStream)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tupleOf(got.Old), tc.old) || !reflect.DeepEqual(tupleOf(got.New), tc.new) {
				t.Errorf("tuples old %q new %q, want %q and %q", tupleOf(got.Old), tupleOf(got.New), tc.old, tc.new)
			}
			got.Old, got.New = nil, nil
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The decoder's buffers are reused: a later, shorter message must not show
// columns of an earlier one.
func TestRowDecoderReuse(t *testing.T) {
	t.Parallel()
	var d rowDecoder
	if _, err := d.decode(rowMsg('I', 0, 1, byte('N'), []col{{'t', "a"}, {'t', "b"}, {'t', "c"}}), false); err != nil {
		t.Fatal(err)
	}
	m, err := d.decode(rowMsg('I', 0, 1, byte('N'), []col{{'n', ""}}), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := tupleOf(m.New); !reflect.DeepEqual(got, []col{{'n', ""}}) || m.New.ColumnNum != 1 {
		t.Fatalf("second message decoded as %q (%d columns)", got, m.New.ColumnNum)
	}
}

// FuzzRowDecoder checks the decoder against pglogrepl's: whatever it
// accepts, pglogrepl decodes to the same message.
func FuzzRowDecoder(f *testing.F) {
	row := []col{{'t', "42"}, {'n', ""}, {'u', ""}, {'b', "\xff"}}
	f.Add(rowMsg('I', 0, 16384, byte('N'), row), false)
	f.Add(rowMsg('I', 5, 16384, byte('N'), row), true)
	f.Add(rowMsg('U', 0, 1, byte('K'), row, byte('N'), row), false)
	f.Add(rowMsg('U', 0, 1, byte('O'), row, byte('N'), row), false)
	f.Add(rowMsg('U', 0, 1, byte('N'), row), false)
	f.Add(rowMsg('D', 0, 1, byte('K'), row), false)
	f.Add(rowMsg('D', 3, 1, byte('O'), row), true)
	f.Fuzz(func(t *testing.T, msg []byte, inStream bool) {
		if len(msg) == 0 || !bytes.ContainsRune([]byte("IUD"), rune(msg[0])) {
			return
		}
		var d rowDecoder
		got, err := d.decode(msg, inStream)
		if err != nil {
			return
		}
		var want any
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("accepted %q, which pglogrepl cannot decode (%v)", msg, p)
				}
			}()
			want, err = pglogrepl.ParseV2(msg, inStream)
		}()
		if err != nil && strings.Contains(err.Error(), "must have") && got.New != nil && got.New.ColumnNum == 0 {
			return // pglogrepl wants at least one column; a table can have none
		}
		if err != nil {
			t.Fatalf("accepted %q, which pglogrepl refuses: %v", msg, err)
		}
		var wantOld, wantNew *pglogrepl.TupleData
		var wantRel, wantXid uint32
		var wantOldKind byte
		switch w := want.(type) {
		case *pglogrepl.InsertMessageV2:
			wantRel, wantXid, wantNew = w.RelationID, w.Xid, w.Tuple
		case *pglogrepl.UpdateMessageV2:
			wantRel, wantXid, wantOld, wantNew, wantOldKind = w.RelationID, w.Xid, w.OldTuple, w.NewTuple, w.OldTupleType
		case *pglogrepl.DeleteMessageV2:
			wantRel, wantXid, wantOld, wantOldKind = w.RelationID, w.Xid, w.OldTuple, w.OldTupleType
		default:
			t.Fatalf("pglogrepl decoded %q as %T", msg, want)
		}
		if got.RelationID != wantRel || got.Xid != wantXid || got.OldKind != wantOldKind {
			t.Fatalf("%q: got relation %d xid %d old %q, pglogrepl %d %d %q", msg, got.RelationID, got.Xid, got.OldKind, wantRel, wantXid, wantOldKind)
		}
		if !reflect.DeepEqual(tupleOf(got.Old), tupleOf(wantOld)) || !reflect.DeepEqual(tupleOf(got.New), tupleOf(wantNew)) {
			t.Fatalf("%q: got tuples %q / %q, pglogrepl %q / %q", msg, tupleOf(got.Old), tupleOf(got.New), tupleOf(wantOld), tupleOf(wantNew))
		}
	})
}

func TestFormatLSN(t *testing.T) {
	t.Parallel()
	for _, l := range []pglogrepl.LSN{0, 1, 0xA, 0x16B3748, 0x1_0000_0000, 0xFFFFFFFF_FFFFFFFF, 0xABCDEF01_23456789} {
		if got, want := formatLSN(l), l.String(); got != want {
			t.Errorf("formatLSN(%d) = %s, want %s", uint64(l), got, want)
		}
	}
	for i := uint64(1); i != 0; i = i*3 + 7 {
		if got, want := formatLSN(pglogrepl.LSN(i)), pglogrepl.LSN(i).String(); got != want {
			t.Fatalf("formatLSN(%d) = %s, want %s", i, got, want)
		}
		if i > 1<<62 {
			break
		}
	}
}
