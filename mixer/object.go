package mixer

import (
	"fmt"
	"time"
)

// Op is what a change does to its row or object.
type Op uint8

// The operations a change can carry.
const (
	OpUpsert Op = iota + 1 // insert or update
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Record is one change as a source system delivers it: a PostgreSQL row, a
// Stripe object. Fields is nested; a field missing from its map is absent (for
// example an unchanged TOASTed column), which is different from a field that
// holds nil (JSON null).
type Record struct {
	Location string // PostgreSQL: schema.table; Stripe: the object type
	Op       Op
	Fields   map[string]any
	// Complete says the record carries every field the source has for it (an
	// insert, a snapshot row, a whole Stripe object). Only complete upserts
	// are held to the model's "required" list.
	Complete bool
	// Created says the change created the row or object (an insert, a
	// snapshot row, a created event), as opposed to changing one that
	// existed. Two-way sync uses it: a change to a row the other side
	// deleted meanwhile does not bring the row back.
	Created bool
}

// Get reads a nested field; ok is false when it is absent.
func (r *Record) Get(p Path) (v any, ok bool) { return p.Lookup(r.Fields) }

// Object is an instance of a canonical model. Fields holds the model's
// top-level fields (a JSON value whole as a JSONText); a field missing
// from the map is absent and leaves targets untouched, a nil value is null and
// sets null.
type Object struct {
	Model  string
	Op     Op
	Fields map[string]any
	// Created says the change created the object (see Record.Created).
	Created bool
}

// Get returns a field's value; ok is false when the field is absent.
func (o *Object) Get(field string) (v any, ok bool) {
	v, ok = o.Fields[field]
	return v, ok
}

// TargetRecord is what one push writes to one location of a target system.
type TargetRecord struct {
	Location string
	Op       Op
	// Fields is nested where the push mixer's paths say so (metadata[id]).
	// Only mapped fields that are present in the object appear here.
	Fields map[string]any
	// Key is the search key that identifies the row or object: the first one,
	// in file order, whose value is present and not null. Nil means no search
	// key has a value: an upsert then creates.
	Key *SearchKey
	// Origin says where the record came from. The pusher sets it; mapping
	// leaves it zero.
	Origin Origin
	// Created says the change created the object at its source (see
	// Record.Created).
	Created bool
}

// Origin locates a target record in the stream it was read from and in its
// source, for sinks that keep it with the data (append-only logs, files).
type Origin struct {
	// Model and Partition name the stream.
	Model     string
	Partition int
	// Entry and Index are the stream entry's id and the object's place in
	// it: the same every time the object is delivered again, and in stream
	// order within a partition.
	Entry string
	Index int
	// Source and Position are the source system and the change's position
	// there (an LSN, an event id); CommitTime when the source committed it
	// (zero if unknown).
	Source, Position string
	CommitTime       time.Time
	// System is where the change was first made: Source, or the system on
	// whose behalf Remix wrote it into Source (two-way sync). A sink that
	// can mark its writes with it (a PostgreSQL replication origin, an API
	// idempotency key) lets the source it writes into recognise them.
	System string
}

// SearchKey is the identifying field of a target record.
type SearchKey struct {
	Field  string // the model field
	Target Path   // where it lives in the target
	Value  any
}
