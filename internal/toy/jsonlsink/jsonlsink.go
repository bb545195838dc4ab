// Package jsonlsink is a toy sink of the test tree: a system of type
// "jsonl" writes its records as JSON lines into files under a directory,
// an append-only log such as an object store would keep. It shows what a
// sink needs to be (its own package, a Spec, a constructor, one registry
// line) and passes the sink conformance suite as an append-only,
// connectors.Buffered sink; no build of Remix includes it.
//
// Write holds each partition's lines in memory; Flush writes what a
// partition holds as one file per location, named from the partition and
// the first and last stream entries it holds
// (DIR/LOCATION/MODEL.PARTITION.FIRST.LAST.jsonl), so a flush repeated for
// the same entries rewrites the same file. Entries read again after a
// takeover land in a file of their own: each line carries its Origin, by
// which a reader tells the repeats apart (ReadDir returns them in order).
// Fences are not kept: a stale writer only adds files of entries already
// written. Truncates are refused: the toy has no way to order one against
// every partition's files.
package jsonlsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Type is the connector type name used in system files.
const Type = "jsonl"

// Setting names of a jsonl system.
const (
	SettingDir        = "dir"
	SettingMaxRecords = "max_records"
	SettingMaxAge     = "max_age"
)

// Spec describes a jsonl system's keys for the configuration loader.
func Spec() *config.Spec {
	return &config.Spec{
		Type: Type,
		Push: true,
		Settings: []config.SettingSpec{
			{Name: SettingDir, Kind: config.KindString, Required: true, Doc: "the directory that holds a folder of files per location"},
			{Name: SettingMaxRecords, Kind: config.KindInt, Default: int64(1000), Min: config.Float64(1), Doc: "a partition's held records are due for a flush at this many"},
			{Name: SettingMaxAge, Kind: config.KindDuration, Default: time.Minute, Min: config.Float64(0.001), Doc: "a partition's held records are due for a flush this long after the first of them was written"},
		},
		PushLocation: checkLocation,
	}
}

var locationName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func checkLocation(loc string) error {
	if !locationName.MatchString(loc) {
		return errors.New("a jsonl location is a folder name such as items (lowercase letters, digits, _)")
	}
	return nil
}

// Sink writes JSON lines files. It is safe for concurrent use.
type Sink struct {
	dir        string
	maxRecords int
	maxAge     time.Duration
	locations  []string

	mu   sync.Mutex
	held map[connectors.Partition]*hold
}

// hold is what a partition holds: its lines per location, in order.
type hold struct {
	lines       map[string][][]byte
	count       int
	first, last string // stream entries
	since       time.Time
}

// NewSink builds the sink of a jsonl system.
func NewSink(sys *config.System, _ connectors.SinkDeps) (connectors.Sink, error) {
	s := &Sink{
		dir:        sys.Settings.String(SettingDir),
		maxRecords: int(sys.Settings.Int(SettingMaxRecords)),
		maxAge:     sys.Settings.Duration(SettingMaxAge),
		held:       map[connectors.Partition]*hold{},
	}
	if s.dir == "" {
		return nil, fmt.Errorf("jsonl system %s: no %s", sys.Name, SettingDir)
	}
	if sys.Push != nil {
		for _, m := range sys.Push.Models() {
			for _, r := range sys.Push.Rules(m) {
				if !slices.Contains(s.locations, r.Location()) {
					s.locations = append(s.locations, r.Location())
				}
			}
		}
	}
	return s, nil
}

// Open makes the folder of every location and checks it can be written.
func (s *Sink) Open(ctx context.Context) error {
	for _, loc := range s.locations {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(s.dir, loc)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
		}
		f, err := os.CreateTemp(dir, ".check-*")
		if err != nil {
			return fmt.Errorf("%w: %s cannot be written: %w", connectors.ErrUnavailable, dir, err)
		}
		f.Close()
		if err := os.Remove(f.Name()); err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
		}
	}
	return nil
}

// Write holds the records' lines, all or none, until their partitions are
// flushed.
func (s *Sink) Write(ctx context.Context, recs []mixer.TargetRecord, _ []connectors.Fence) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lines := make([][]byte, len(recs))
	for i := range recs {
		r := &recs[i]
		var err error
		switch {
		case r.Op == mixer.OpTruncate:
			err = errors.New("a jsonl system takes no truncate")
		case r.Origin.Model == "":
			err = errors.New("a record without its stream origin")
		case !slices.Contains(s.locations, r.Location):
			err = fmt.Errorf("no location %s", r.Location)
		default:
			if _, err = parseEntry(r.Origin.Entry); err == nil {
				lines[i], err = json.Marshal(lineOf(r))
			}
		}
		if err != nil {
			return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: %w", connectors.ErrPermanent, err)}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for i := range recs {
		r := &recs[i]
		p := connectors.Partition{Model: r.Origin.Model, Index: r.Origin.Partition}
		h := s.held[p]
		if h == nil {
			h = &hold{lines: map[string][][]byte{}, first: r.Origin.Entry, since: now}
			s.held[p] = h
		}
		h.lines[r.Location] = append(h.lines[r.Location], lines[i])
		h.count++
		h.last = r.Origin.Entry
	}
	return nil
}

// Pending reports whether a partition holds lines, and whether they are
// due: max_records of them, or the first written max_age ago.
func (s *Sink) Pending(p connectors.Partition) (held, due bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[p]
	if h == nil {
		return false, false
	}
	return true, h.count >= s.maxRecords || time.Since(h.since) >= s.maxAge
}

// Flush writes what each partition holds, a file per location; a
// partition whose files could not all be written keeps its lines held (a
// later flush rewrites the same files).
func (s *Sink) Flush(ctx context.Context, parts []connectors.Partition) error {
	var errs []error
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		h := s.held[p]
		delete(s.held, p) // detached while it is written
		s.mu.Unlock()
		if h == nil {
			continue
		}
		if err := s.writeFiles(ctx, p, h); err != nil {
			s.reattach(p, h)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reattach puts lines that could not be flushed back in front of what the
// partition got meanwhile.
func (s *Sink) reattach(p connectors.Partition, h *hold) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if later := s.held[p]; later != nil {
		for loc, lines := range later.lines {
			h.lines[loc] = append(h.lines[loc], lines...)
		}
		h.count += later.count
		h.last = later.last
	}
	s.held[p] = h
}

// writeFiles writes a partition's files: each to a temporary name, synced,
// then renamed into place.
func (s *Sink) writeFiles(ctx context.Context, p connectors.Partition, h *hold) error {
	name := fileName(p, h.first, h.last)
	var temps []string
	defer func() {
		for _, tmp := range temps {
			os.Remove(tmp)
		}
	}()
	for _, loc := range slices.Sorted(maps.Keys(h.lines)) {
		tmp, err := writeTemp(filepath.Join(s.dir, loc), h.lines[loc])
		if err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
		}
		temps = append(temps, tmp)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, tmp := range temps {
		dir := filepath.Dir(tmp)
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
		}
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
		}
	}
	temps = nil
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeTemp(dir string, lines [][]byte) (string, error) {
	f, err := os.CreateTemp(dir, ".flush-*")
	if err != nil {
		return "", err
	}
	for _, l := range lines {
		if _, err = f.Write(append(l, '\n')); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Discard drops what the partitions hold: their new owner writes them.
func (s *Sink) Discard(parts []connectors.Partition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		delete(s.held, p)
	}
}

// Close drops what is held: the entries are read again by whoever pushes
// next.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.held)
	return nil
}

// fileName is the name of a partition's file of the entries first to last.
func fileName(p connectors.Partition, first, last string) string {
	return strings.Join([]string{url.PathEscape(p.Model), fmt.Sprint(p.Index), first, last, "jsonl"}, ".")
}
