package memsource

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Hub holds a test's feeds by name: the feed setting of a memory system
// names one. A Hub's NewSource is the connector's source constructor.
type Hub struct {
	mu    sync.Mutex
	feeds map[string]*Feed
}

// NewHub returns a hub without feeds.
func NewHub() *Hub { return &Hub{feeds: map[string]*Feed{}} }

// Feed returns the named feed, made empty on first use.
func (h *Hub) Feed(name string) *Feed {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.feeds[name]
	if f == nil {
		f = &Feed{first: 1, next: 1, wake: make(chan struct{})}
		h.feeds[name] = f
	}
	return f
}

// Feed is an append-only log of changes kept in memory, as a system's
// change log or a broker topic would keep them: each change has a position
// (its sequence number, from 1) and is kept encoded, as JSON, until it is
// forgotten.
type Feed struct {
	mu      sync.Mutex
	changes []stored // positions first, first+1, ...
	first   uint64   // the position of changes[0]
	next    uint64   // the position the next change gets
	wake    chan struct{}
}

type stored struct {
	location string
	data     []byte
	at       time.Time
}

// wireChange is a change as a feed keeps it.
type wireChange struct {
	Op     string         `json:"op"` // upsert or delete
	Fields map[string]any `json:"fields"`
}

// Upsert appends the insert or update of a row of location and returns its
// position. Fields are the whole row (nil is null), which the source hands
// over as JSON values (numbers as json.Number).
func (f *Feed) Upsert(location string, fields map[string]any) (string, error) {
	return f.appendChange(location, wireChange{Op: "upsert", Fields: fields})
}

// Delete appends the delete of the row of location that key (its key
// field, at least) identifies.
func (f *Feed) Delete(location string, key map[string]any) (string, error) {
	return f.appendChange(location, wireChange{Op: "delete", Fields: key})
}

func (f *Feed) appendChange(location string, c wireChange) (string, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding a change of %s: %w", location, err)
	}
	return f.AppendRaw(location, data), nil
}

// AppendRaw appends a change of location as the bytes the source will
// decode, whether they decode or not, and returns its position.
func (f *Feed) AppendRaw(location string, data []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, stored{location: location, data: data, at: time.Now()})
	pos := f.next
	f.next++
	close(f.wake)
	f.wake = make(chan struct{})
	return strconv.FormatUint(pos, 10)
}

// Last returns the position of the last change appended ("0" when none).
func (f *Feed) Last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strconv.FormatUint(f.next-1, 10)
}

// Forget drops the changes up to and including position, as a log that
// keeps only so much does: a source that had not confirmed past it has lost
// its position.
func (f *Feed) Forget(position string) error {
	pos, err := parsePosition(position)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if pos < f.first {
		return nil
	}
	pos = min(pos, f.next-1)
	f.changes = f.changes[pos-f.first+1:]
	f.first = pos + 1
	return nil
}

// read returns up to max changes after position after, the position of
// the first change kept, and a channel closed when a change is appended.
func (f *Feed) read(after uint64, max int) ([]stored, uint64, uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if after+1 < f.first {
		return nil, 0, f.first, f.wake
	}
	from := after + 1 - f.first
	if from >= uint64(len(f.changes)) {
		return nil, 0, f.first, f.wake
	}
	to := min(from+uint64(max), uint64(len(f.changes)))
	return f.changes[from:to], after + to - from, f.first, f.wake
}

func parsePosition(s string) (uint64, error) {
	p, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("position %q: not a feed position", s)
	}
	return p, nil
}
