// Package memsource is a toy source of the test tree: a test appends
// changes to an in-memory Feed, and a system of type "memory" reads them
// through the connectors.Source it builds. It shows what a source needs to
// be (its own package, a Spec, a constructor, one registry line) and
// passes the source conformance suite; no build of Remix includes it.
//
// A source resumes after the position it last confirmed, which it keeps
// in its checkpoints; when the feed has forgotten changes after that
// position, Open and Next fail with connectors.ErrPositionLost. A change
// whose bytes do not decode is handed over with Err set.
package memsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Type is the connector type name used in system files.
const Type = "memory"

// Setting names of a memory system.
const (
	SettingFeed      = "feed"
	SettingKeyField  = "key_field"
	SettingBatchSize = "batch_size"
)

// checkpointName is the checkpoint that holds the last confirmed position.
const checkpointName = "position"

// Spec describes a memory system's keys for the configuration loader.
func Spec() *config.Spec {
	return &config.Spec{
		Type:    Type,
		Receive: true,
		Settings: []config.SettingSpec{
			{Name: SettingFeed, Kind: config.KindString, Required: true, Doc: "the name of the feed (in the process's Hub) to read"},
			{Name: SettingKeyField, Kind: config.KindString, Default: "id", Doc: "the field that identifies a row: its changes keep their order"},
			{Name: SettingBatchSize, Kind: config.KindInt, Default: int64(100), Min: config.Float64(1), Doc: "the most changes handed over at once"},
		},
		ReceiveLocation: checkLocation,
	}
}

var location = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func checkLocation(loc string) error {
	if !location.MatchString(loc) {
		return errors.New("a memory location is a lowercase name such as items")
	}
	return nil
}

// NewSource builds a source of a memory system over the hub's feed.
func (h *Hub) NewSource(sys *config.System, deps connectors.SourceDeps) (connectors.Source, error) {
	if deps.Checkpoints == nil {
		return nil, errors.New("memsource: a source needs checkpoints")
	}
	return &Source{
		sys:      sys,
		feed:     h.Feed(sys.Settings.String(SettingFeed)),
		cps:      deps.Checkpoints,
		keyField: sys.Settings.String(SettingKeyField),
		batch:    int(sys.Settings.Int(SettingBatchSize)),
	}, nil
}

// Source reads a feed from the position after the last one it confirmed.
// Next and Confirm may run on different goroutines.
type Source struct {
	sys      *config.System
	feed     *Feed
	cps      connectors.Checkpoints
	keyField string
	batch    int

	mu        sync.Mutex
	read      uint64 // the last position handed over
	confirmed uint64
}

// Open loads the confirmed position and checks that the feed still holds
// what follows it.
func (s *Source) Open(ctx context.Context) error {
	v, ok, err := s.cps.Load(ctx, checkpointName)
	if err != nil {
		return fmt.Errorf("%w: loading the position of %s: %w", connectors.ErrUnavailable, s.sys.Name, err)
	}
	var pos uint64
	if ok {
		if pos, err = parsePosition(v); err != nil {
			return fmt.Errorf("checkpoint of %s: %w", s.sys.Name, err)
		}
	}
	s.mu.Lock()
	s.read, s.confirmed = pos, pos
	s.mu.Unlock()
	if _, _, first, _ := s.feed.read(pos, 0); pos+1 < first {
		return s.lost(pos, first)
	}
	return nil
}

func (s *Source) lost(pos, first uint64) error {
	return fmt.Errorf("%w: %s resumes after position %d but its feed starts at %d", connectors.ErrPositionLost, s.sys.Name, pos, first)
}

// Next returns the next changes of mapped locations, waiting for some.
func (s *Source) Next(ctx context.Context) (connectors.Batch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return connectors.Batch{}, err
		}
		s.mu.Lock()
		after := s.read
		s.mu.Unlock()
		changes, last, first, wake := s.feed.read(after, s.batch)
		if after+1 < first {
			return connectors.Batch{}, s.lost(after, first)
		}
		if len(changes) == 0 {
			select {
			case <-ctx.Done():
				return connectors.Batch{}, ctx.Err()
			case <-wake:
				continue
			}
		}
		b := connectors.Batch{Position: strconv.FormatUint(last, 10), CommitTime: changes[len(changes)-1].at}
		for i, c := range changes {
			if len(s.sys.Receive.Rules(c.location)) == 0 {
				continue // not mapped
			}
			b.Changes = append(b.Changes, s.decode(after+1+uint64(i), c))
		}
		s.mu.Lock()
		s.read = last
		s.mu.Unlock()
		if len(b.Changes) > 0 {
			return b, nil
		}
	}
}

// decode turns a stored change into a Change: its record and the key of
// its row, or the reason it cannot be read.
func (s *Source) decode(pos uint64, c stored) connectors.Change {
	out := connectors.Change{Record: mixer.Record{Location: c.location, Op: mixer.OpUpsert}, Key: s.sys.Name + "/" + c.location}
	fail := func(err error) connectors.Change {
		out.Err = fmt.Errorf("change at position %d of %s: %w", pos, c.location, err)
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(c.data))
	dec.UseNumber()
	var w wireChange
	if err := dec.Decode(&w); err != nil {
		return fail(err)
	}
	switch w.Op {
	case "upsert":
		out.Record.Complete = true // a feed carries whole rows
	case "delete":
		out.Record.Op = mixer.OpDelete
	default:
		return fail(fmt.Errorf("unknown operation %q", w.Op))
	}
	key, ok := w.Fields[s.keyField]
	if !ok || key == nil {
		return fail(fmt.Errorf("no key field %s", s.keyField))
	}
	out.Record.Fields = w.Fields
	out.Key += "/" + keyText(key)
	return out
}

func keyText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Confirm keeps position as the one to resume after.
func (s *Source) Confirm(ctx context.Context, position string) error {
	pos, err := parsePosition(position)
	if err != nil {
		return err
	}
	s.mu.Lock()
	done := pos <= s.confirmed
	s.mu.Unlock()
	if done {
		return nil
	}
	// Confirm runs on one goroutine at a time: nothing lower is saved
	// meanwhile.
	if err := s.cps.Save(ctx, checkpointName, position); err != nil {
		return fmt.Errorf("%w: saving the position of %s: %w", connectors.ErrUnavailable, s.sys.Name, err)
	}
	s.mu.Lock()
	s.confirmed = max(s.confirmed, pos)
	s.mu.Unlock()
	return nil
}

// Close lets go of nothing: the feed is the test's.
func (s *Source) Close(context.Context) error { return nil }

// Progress reports the positions read and confirmed
// (connectors.ProgressReporter).
func (s *Source) Progress() connectors.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return connectors.Progress{
		ReadPosition: strconv.FormatUint(s.read, 10), ConfirmedPosition: strconv.FormatUint(s.confirmed, 10),
		ReadOffset: s.read, ConfirmedOffset: s.confirmed,
	}
}
