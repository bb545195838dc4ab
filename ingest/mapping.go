package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/mixer"
)

// mapper turns a source's changes into items to publish.
type mapper struct {
	sys     *config.System
	targets map[string][]string // model -> the systems that push it
	results []mixer.Result
	// maps holds the field maps of objects already encoded, for the next
	// objects to fill.
	maps  mixer.FieldMaps
	arena []byte
	// perChange estimates the envelope bytes of one change, from the last
	// batch.
	perChange int
}

func newMapper(cfg *config.Config, sys *config.System) *mapper {
	m := &mapper{sys: sys, targets: map[string][]string{}}
	for _, loc := range sys.Receive.Locations() {
		for _, rule := range sys.Receive.Rules(loc) {
			title := rule.Model().Title
			if _, done := m.targets[title]; done {
				continue
			}
			var names []string
			for _, t := range cfg.TargetsOf(title) {
				names = append(names, t.Name)
			}
			m.targets[title] = names
		}
	}
	return m
}

func (m *mapper) models() []string {
	out := make([]string, 0, len(m.targets))
	for k := range m.targets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// storedRecord is how a bad record is kept in the dead-letter queue: enough
// to map it again after the configuration is fixed. The JSON values of
// json and jsonb columns are kept apart, as their text, so that they map
// again exactly as they came (key order, duplicate keys, JSON null).
type storedRecord struct {
	Location string         `json:"location"`
	Op       string         `json:"op"`
	Complete bool           `json:"complete,omitempty"`
	Fields   map[string]any `json:"fields"`
	// Columns, when set, are every field the source had when the record
	// was read (a change dead-lettered because mapped fields were gone):
	// a replay refuses to map it while the mixer reads a field not among
	// them, which would otherwise be taken for an unchanged one.
	Columns []string `json:"columns,omitempty"`
	// JSON holds the fields that are JSON values, as their text.
	JSON map[string]string `json:"json_text,omitempty"`
}

// encodeRecord stores a bad record with the reason it could not be read.
func encodeRecord(r *mixer.Record, readErr error) []byte {
	s := storedRecord{Location: r.Location, Op: r.Op.String(), Complete: r.Complete, Fields: r.Fields}
	var gone *connectors.MissingFieldsError
	if errors.As(readErr, &gone) {
		s.Columns = gone.Have
	}
	for k, v := range r.Fields {
		if j, ok := v.(mixer.JSONText); ok {
			if s.JSON == nil {
				s.JSON = map[string]string{}
				s.Fields = make(map[string]any, len(r.Fields))
				for k2, v2 := range r.Fields {
					s.Fields[k2] = v2
				}
			}
			s.JSON[k] = string(j)
			delete(s.Fields, k)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		b, _ = json.Marshal(storedRecord{Location: r.Location, Op: r.Op.String()})
	}
	return b
}

func decodeRecord(b []byte) (mixer.Record, []string, error) {
	var s storedRecord
	if err := unmarshalNumbers(b, &s); err != nil {
		return mixer.Record{}, nil, fmt.Errorf("decoding the stored record: %w", err)
	}
	r := mixer.Record{Location: s.Location, Complete: s.Complete, Fields: s.Fields}
	switch s.Op {
	case "upsert":
		r.Op = mixer.OpUpsert
	case "delete":
		r.Op = mixer.OpDelete
	default:
		return r, nil, fmt.Errorf("stored record has op %q", s.Op)
	}
	if r.Fields == nil {
		r.Fields = map[string]any{}
	}
	for k, text := range s.JSON {
		j, err := mixer.ParseJSONText([]byte(text))
		if err != nil {
			return r, nil, fmt.Errorf("decoding the stored record's field %s: %w", k, err)
		}
		r.Fields[k] = j
	}
	return r, s.Columns, nil
}

// checkColumns refuses a stored record that lacks a field rule reads, when
// the record says which fields its source had.
func checkColumns(rule *mixer.ReceiveRule, rec *mixer.Record, columns []string) error {
	if columns == nil {
		return nil
	}
	for _, f := range rule.Fields() {
		if !f.HasHardcode && !slices.Contains(columns, f.Source.Head()) {
			return fmt.Errorf("%s had no field %s when this change was read (it had %s): fix the receive mixer to the field's new name, or drop the dead letter",
				rec.Location, f.Source.Head(), strings.Join(columns, ", "))
		}
	}
	return nil
}

// items maps a batch. Each object becomes an envelope for its model's
// streams; a change that cannot be mapped or validated becomes a bad record
// for the dead-letter queue, with the reason. Models no target pushes are
// validated but not published.
func (m *mapper) items(b connectors.Batch) []coord.Item {
	out := make([]coord.Item, 0, len(b.Changes))
	position := b.Position
	if b.Label != "" {
		position = b.Label
	}
	// Sized from the previous batch (up to 8 MiB), so it does not grow by
	// copying.
	m.arena = make([]byte, 0, min(m.perChange*len(b.Changes), 8<<20))
	type span struct{ i, start, end int }
	spans := make([]span, 0, len(b.Changes))
	for ci := range b.Changes {
		c := &b.Changes[ci]
		if c.Err != nil {
			for _, rule := range m.sys.Receive.Rules(c.Record.Location) {
				out = append(out, coord.Item{Key: c.Key, Model: rule.Model().Title, Bad: true, Location: c.Record.Location,
					Reason: "cannot read the change: " + c.Err.Error(), Payload: encodeRecord(&c.Record, c.Err)})
			}
			continue
		}
		m.results = m.sys.Receive.ReceiveWith(&c.Record, m.results[:0], &m.maps)
		for _, r := range m.results {
			if r.Err != nil {
				out = append(out, coord.Item{Key: c.Key, Model: r.Model, Bad: true, Location: c.Record.Location,
					Reason: r.Err.Error(), Payload: encodeRecord(&c.Record, nil)})
				continue
			}
			if len(m.targets[r.Model]) == 0 {
				m.maps.Put(r.Object.Fields)
				continue
			}
			start := len(m.arena)
			var err error
			committed := b.CommitTime
			if !c.CommitTime.IsZero() {
				committed = c.CommitTime
			}
			env := mixer.Envelope{Object: r.Object, Source: m.sys.Name, Location: c.Record.Location, Position: position, CommitTime: committed, Origin: c.Origin}
			m.arena, err = mixer.AppendEnvelope(m.arena, &env)
			m.maps.Put(r.Object.Fields) // encoded (or failed): nothing refers to it now
			if err != nil {
				m.arena = m.arena[:start]
				out = append(out, coord.Item{Key: c.Key, Model: r.Model, Bad: true, Location: c.Record.Location,
					Reason: err.Error(), Payload: encodeRecord(&c.Record, nil)})
				continue
			}
			out = append(out, coord.Item{Key: c.Key, Model: r.Model, AllPartitions: r.Object.Op == mixer.OpTruncate,
				Supersedes: r.Object.Op == mixer.OpDelete || r.Object.Op == mixer.OpUpsert && c.Record.Complete, Version: c.Version})
			spans = append(spans, span{len(out) - 1, start, len(m.arena)})
		}
	}
	// The arena may have moved while it grew: slice it once it is final.
	// Each batch gets a new arena, since the items go out with it.
	arena := m.arena
	m.arena = nil
	if len(b.Changes) > 0 {
		m.perChange = len(arena)/len(b.Changes) + len(arena)/len(b.Changes)/8 + 8
	}
	for _, s := range spans {
		out[s.i].Payload = arena[s.start:s.end:s.end]
	}
	return out
}

// ReplayFunc returns what `remix dlq replay` calls for a source's receive
// stage dead letters: a bad record is mapped again with the current
// configuration (and fails again if it is still bad); an object held behind
// one is published as it was.
func ReplayFunc(cfg *config.Config, system string) (func(context.Context, *coord.DeadLetter) ([]coord.Item, error), error) {
	sys := cfg.System(system)
	if sys == nil || sys.Receive == nil {
		return nil, fmt.Errorf("%s is not a source in this configuration", system)
	}
	return func(_ context.Context, d *coord.DeadLetter) ([]coord.Item, error) {
		switch d.Kind {
		case coord.KindObject:
			return []coord.Item{{Model: d.Model, Key: d.Key, Payload: d.Payload}}, nil
		case coord.KindRecord:
		default:
			return nil, fmt.Errorf("dead letter %s is a %s, not a receive-stage one", d.ID, d.Kind)
		}
		rec, columns, err := decodeRecord(d.Payload)
		if err != nil {
			return nil, err
		}
		for _, rule := range sys.Receive.Rules(rec.Location) {
			if rule.Model().Title == d.Model {
				if err := checkColumns(rule, &rec, columns); err != nil {
					return nil, err
				}
			}
		}
		for _, r := range sys.Receive.Receive(&rec, nil) {
			if r.Model != d.Model {
				continue
			}
			if r.Err != nil {
				return nil, r.Err
			}
			env := mixer.Envelope{Object: r.Object, Source: system, Location: rec.Location, Position: "replay:" + d.ID}
			b, err := mixer.AppendEnvelope(nil, &env)
			if err != nil {
				return nil, err
			}
			return []coord.Item{{Model: d.Model, Key: d.Key, Payload: b}}, nil
		}
		return nil, errors.New("the record no longer maps to model " + d.Model)
	}, nil
}

func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
