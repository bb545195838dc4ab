package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

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
	// gone is set when columns the receive mixer reads are not in this
	// description: the table's upserts are dead-lettered whole (shape.go).
	gone *connectors.MissingFieldsError
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

// newFields returns an empty map for a record's fields: one the ingest
// handed back (Recycle), or a new one with room for n.
func (s *Source) newFields(n int) map[string]any {
	if m, ok := s.fieldMaps.Get().(map[string]any); ok {
		return m
	}
	return make(map[string]any, n)
}

// Recycle takes back the field maps of changes the ingest has mapped
// (connectors.Recycler). Each change holds a map of its own: the decoders
// make one per record and never share it. (mixer.FieldMaps does the same
// within one goroutine; these maps cross from the ingest's mapper to the
// reader, hence the sync.Pool.)
func (s *Source) Recycle(changes []connectors.Change) {
	for i := range changes {
		if m := changes[i].Record.Fields; m != nil {
			clear(m)
			s.fieldMaps.Put(m)
		}
	}
}

// changeFromTuple turns a tuple of the stream into a change. keysOnly keeps
// the identity columns only (a delete's or an update's old key tuple, whose
// other columns arrive as nulls that mean nothing).
func (s *Source) changeFromTuple(r *relation, t *pglogrepl.TupleData, op mixer.Op, keysOnly bool) (connectors.Change, error) {
	fields := s.newFields(len(r.table.need) + len(r.keyIdx))
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
	if len(keyCols) == 1 {
		v, ok := fields[keyCols[0]]
		if !ok || v == nil {
			return "", fmt.Errorf("%s: a change without its key column %s", loc, keyCols[0])
		}
		k := keyText(v)
		b.Grow(len(s.sys.Name) + len(loc) + len(k) + 2) // one allocation, not a doubling
		b.WriteString(s.sys.Name)
		b.WriteByte('/')
		b.WriteString(loc)
		b.WriteByte('/')
		b.WriteString(k)
		return b.String(), nil
	}
	b.WriteString(s.sys.Name)
	b.WriteByte('/')
	b.WriteString(loc)
	b.WriteByte('/')
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

// firstUserOID is where the OIDs of user-defined types (and domains) start.
const firstUserOID = 16384

// resolveDomains gives each column of a domain type its base type (through
// domains over domains), as a query's result columns already have, so the
// stream decodes a value exactly as the snapshot does. Each type is looked
// up once per connection.
func (r *reader) resolveDomains(ctx context.Context, m *pglogrepl.RelationMessage) error {
	var unknown []uint32
	for _, c := range m.Columns {
		if _, ok := r.baseTypes[c.DataType]; !ok && c.DataType >= firstUserOID && !slices.Contains(unknown, c.DataType) {
			unknown = append(unknown, c.DataType)
		}
	}
	if len(unknown) > 0 {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		rows, err := r.s.pool.Query(ctx, `
			WITH RECURSIVE d(oid, base) AS (
				SELECT oid, typbasetype FROM pg_type WHERE oid = ANY($1::oid[])
				UNION ALL
				SELECT d.oid, t.typbasetype FROM d JOIN pg_type t ON t.oid = d.base WHERE t.typtype = 'd'
			)
			SELECT oid, base FROM d WHERE base = 0 OR NOT EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = d.base AND t.typtype = 'd')`, unknown)
		if err != nil {
			return fmt.Errorf("%w: looking up the column types of %s.%s: %w", connectors.ErrUnavailable, m.Namespace, m.RelationName, err)
		}
		for rows.Next() {
			var oid, base uint32
			if err := rows.Scan(&oid, &base); err != nil {
				rows.Close()
				return err
			}
			r.baseTypes[oid] = base
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%w: looking up the column types of %s.%s: %w", connectors.ErrUnavailable, m.Namespace, m.RelationName, err)
		}
		for _, oid := range unknown {
			if _, ok := r.baseTypes[oid]; !ok {
				r.baseTypes[oid] = 0 // dropped meanwhile: decoded as text
			}
		}
	}
	for _, c := range m.Columns {
		if base := r.baseTypes[c.DataType]; base != 0 {
			c.DataType = base
		}
	}
	return nil
}
