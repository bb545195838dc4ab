package stripe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// event is the part of a Stripe event Remix reads.
type event struct {
	ID      string      `json:"id"`
	Type    string      `json:"type"`
	Created json.Number `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
	Request *struct {
		ID             *string `json:"id"`
		IdempotencyKey *string `json:"idempotency_key"`
	} `json:"request"`
}

// parseEvent reads an event, numbers kept exact.
func parseEvent(b []byte) (*event, map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var e event
	if err := d.Decode(&e); err != nil {
		return nil, nil, fmt.Errorf("not a Stripe event: %w", err)
	}
	if e.ID == "" || e.Type == "" || len(e.Data.Object) == 0 {
		return nil, nil, fmt.Errorf("not a Stripe event: id, type or data.object missing")
	}
	obj, err := decodeObject(e.Data.Object)
	if err != nil {
		return nil, nil, fmt.Errorf("event %s: data.object: %w", e.ID, err)
	}
	return &e, obj, nil
}

func (e *event) createdUnix() int64 {
	n, _ := e.Created.Int64()
	return n
}

// idempotencyKey is the key of the request that caused the event, "" for
// changes made in the dashboard or by Stripe itself.
func (e *event) idempotencyKey() string {
	if e.Request == nil || e.Request.IdempotencyKey == nil {
		return ""
	}
	return *e.Request.IdempotencyKey
}

// objectType is the type of an object ("product", "checkout.session").
func objectType(obj map[string]any) string {
	s, _ := obj["object"].(string)
	return s
}

func objectID(obj map[string]any) string {
	s, _ := obj["id"].(string)
	return s
}

// unixField reads a Unix time field such as created or updated; 0 when the
// object has none.
func unixField(obj map[string]any, name string) int64 {
	switch v := obj[name].(type) {
	case json.Number:
		n, err := v.Int64()
		if err == nil {
			return n
		}
	case float64:
		return int64(v)
	case int64:
		return v
	}
	return 0
}

// Versions order the changes of one object (connectors.Change.Version,
// compared as strings). An event's is its created time, then the object's
// own updated time where it has one, both zero-padded:
//
//	000001767225600.000001767225598
//
// A state read from the API (a fetch after a tie, a backfill listing)
// takes the time Stripe answered instead of an event's, followed by the
// nanoseconds of the local clock, so it sorts after every event of the
// same second and two reads of one second still differ in order:
//
//	000001767225600.000001767225598.123456789
func eventVersion(created, updated int64) string {
	return fmt.Sprintf("%015d.%015d", created, updated)
}

func readVersion(at time.Time, updated int64) string {
	return fmt.Sprintf("%015d.%015d.%09d", at.Unix(), updated, time.Now().Nanosecond())
}

// mapper turns events and objects into changes for one system.
type mapper struct {
	system    string
	locations map[string]bool // object types the receive mixer reads
}

func newMapper(system string, locations []string) *mapper {
	m := &mapper{system: system, locations: map[string]bool{}}
	for _, l := range locations {
		m.locations[l] = true
	}
	return m
}

// eventChange is the change an event brings; ok is false for an event
// about an object type the receive mixer does not read. The event's
// type decides little: any event's data.object is the object's state
// after it (so customer.subscription.updated and
// checkout.session.completed work as product.updated does), *.deleted
// events and objects marked deleted are deletes.
//
// Origin: an event caused by a request Remix made on behalf of another
// system (its idempotency key says which) is that system's change, not
// sent back to it, with one exception: the event of the object the request
// created (product.created for a products create) brings what the origin
// lacks, the id Stripe assigned, so it flows back to it like a change made
// here. Objects a request created on the side (the default price of a
// product created with default_price_data) are not that exception.
func (m *mapper) eventChange(e *event, obj map[string]any) (connectors.Change, bool) {
	typ := objectType(obj)
	if !m.locations[typ] || objectID(obj) == "" {
		return connectors.Change{}, false
	}
	deleted := strings.HasSuffix(e.Type, ".deleted") || obj["deleted"] == true
	c := m.objectChange(obj, deleted, eventVersion(e.createdUnix(), unixField(obj, "updated")))
	c.Record.Created = !deleted && strings.HasSuffix(e.Type, ".created")
	// When it happened, for the other side's last-writer rule. Stripe's
	// times are whole seconds: a change counts as made at the end of its
	// second, so within one second Stripe's change wins.
	c.CommitTime = time.Unix(max(e.createdUnix(), unixField(obj, "updated")), 999_999_000).UTC()
	if system, tag, ok := parseKey(e.idempotencyKey()); ok && system != m.system {
		if c.Record.Created && tag == typ {
			// The object Remix created for system: back to it goes only
			// what it lacks, the ids Stripe assigned; the rest came from
			// it, and is left as it is there now. Applied whenever it
			// arrives (it changes nothing the other side wrote).
			c.Record.Fields, c.Record.Complete, c.CommitTime = assignedFields(obj), false, time.Time{}
		} else {
			c.Origin = system
		}
	}
	return c, true
}

// assignedFields keeps what Stripe assigns to an object it creates (its
// id, the id of a default price made with it) and what finds the row it
// came from (metadata).
func assignedFields(obj map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"id", "object", "metadata", "default_price"} {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	return out
}

// objectChange is the change that sets an object to obj (or deletes it).
func (m *mapper) objectChange(obj map[string]any, deleted bool, version string) connectors.Change {
	typ := objectType(obj)
	op := mixer.OpUpsert
	if deleted {
		op = mixer.OpDelete
	}
	return connectors.Change{
		Key:     m.system + "/" + typ + "/" + objectID(obj),
		Version: version,
		Record:  mixer.Record{Location: typ, Op: op, Fields: obj, Complete: true},
	}
}
