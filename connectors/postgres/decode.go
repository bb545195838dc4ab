package postgres

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// srcTable is a mapped source table.
type srcTable struct {
	loc     string
	keyCols []string        // replica identity columns, in order
	need    map[string]bool // columns the receive mixer reads
}

// relation is a table as the replication stream describes it.
type relation struct {
	loc     string
	table   *srcTable // nil when the receive mixer does not map it
	cols    []relColumn
	keyIdx  []int // indexes of the identity columns in cols
	version int   // bumped when a new description replaces an old one
}

type relColumn struct {
	name string
	oid  uint32
	key  bool
	need bool
}

// newRelation builds a relation from its Relation message.
func (s *Source) newRelation(m *pglogrepl.RelationMessage) *relation {
	r := &relation{loc: m.Namespace + "." + m.RelationName}
	r.table = s.tables[r.loc]
	for i, c := range m.Columns {
		rc := relColumn{name: c.Name, oid: c.DataType, key: c.Flags&1 == 1}
		if r.table != nil {
			rc.need = r.table.need[c.Name]
		}
		if rc.key {
			r.keyIdx = append(r.keyIdx, i)
		}
		r.cols = append(r.cols, rc)
	}
	return r
}

// changeFromTuple turns a tuple of the stream into a change. keysOnly keeps
// the identity columns only (a delete's or an update's old key tuple, whose
// other columns arrive as nulls that mean nothing).
func (s *Source) changeFromTuple(r *relation, t *pglogrepl.TupleData, op mixer.Op, keysOnly bool) (connectors.Change, error) {
	fields := make(map[string]any, len(r.table.need)+len(r.keyIdx))
	complete := true
	for i, col := range t.Columns {
		if i >= len(r.cols) {
			break
		}
		rc := &r.cols[i]
		if !rc.need && !rc.key || keysOnly && !rc.key {
			continue
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			fields[rc.name] = nil
		case pglogrepl.TupleDataTypeToast:
			complete = false // unchanged TOASTed value: absent, the target keeps what it has
		case pglogrepl.TupleDataTypeText:
			v, err := decodeText(rc.oid, col.Data)
			if err != nil {
				return connectors.Change{}, fmt.Errorf("%s column %s: %w", r.loc, rc.name, err)
			}
			fields[rc.name] = v
		default:
			return connectors.Change{}, fmt.Errorf("%s column %s: unexpected tuple data type %q", r.loc, rc.name, col.DataType)
		}
	}
	key, err := s.rowKey(r.loc, r.table.keyCols, fields)
	if err != nil {
		return connectors.Change{}, err
	}
	for _, k := range r.keyIdx { // keep key columns only where the mixer reads them
		if !r.cols[k].need {
			delete(fields, r.cols[k].name)
		}
	}
	return connectors.Change{
		Record: mixer.Record{Location: r.loc, Op: op, Fields: fields, Complete: complete && op == mixer.OpUpsert && !keysOnly},
		Key:    key,
	}, nil
}

// rowKey is a row's source identity: system/schema.table/key, the key being
// the identity column's text, or a JSON array of them for a composite key.
func (s *Source) rowKey(loc string, keyCols []string, fields map[string]any) (string, error) {
	var b strings.Builder
	b.WriteString(s.sys.Name)
	b.WriteByte('/')
	b.WriteString(loc)
	b.WriteByte('/')
	if len(keyCols) == 1 {
		v, ok := fields[keyCols[0]]
		if !ok || v == nil {
			return "", fmt.Errorf("%s: a change without its key column %s", loc, keyCols[0])
		}
		b.WriteString(keyText(v))
		return b.String(), nil
	}
	parts := make([]string, len(keyCols))
	for i, k := range keyCols {
		v, ok := fields[k]
		if !ok || v == nil {
			return "", fmt.Errorf("%s: a change without its key column %s", loc, k)
		}
		parts[i] = keyText(v)
	}
	j, _ := json.Marshal(parts)
	b.Write(j)
	return b.String(), nil
}

func keyText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// sameKey reports whether two changes of one relation identify the same row.
func sameKey(a, b connectors.Change) bool { return a.Key == b.Key }
