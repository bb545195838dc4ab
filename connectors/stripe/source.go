package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// checkpointName is the name of the source's cursor in its checkpoints.
const checkpointName = "events"

// eventRetention is how long Stripe keeps events (30 days), less a day
// of margin: a cursor older than this is not resumed but backfilled.
const eventRetention = 29 * 24 * time.Hour

// pageSize is the most objects one list call returns.
const pageSize = 100

// cursor is the source's position, kept in its checkpoint (JSON; see
// testdata/cursor.golden): the newest event read, or a backfill under way.
type cursor struct {
	V       int       `json:"v"`
	Event   string    `json:"event,omitempty"`   // the newest event read
	Created int64     `json:"created,omitempty"` // its created time
	Fill    *backfill `json:"backfill,omitempty"`
}

// backfill is a full listing of the mapped object types under way.
type backfill struct {
	// Start and StartCreated are the newest event when the backfill began
	// ("" when the account had none): events are read from there after it.
	Start        string `json:"start,omitempty"`
	StartCreated int64  `json:"start_created,omitempty"`
	Location     int    `json:"location"`        // index into the sorted object types
	After        string `json:"after,omitempty"` // the last object listed of that type
	Rows         int64  `json:"rows"`
}

func (c cursor) encode() string {
	c.V = 1
	b, _ := json.Marshal(c)
	return string(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("reading the Stripe cursor: %w", err)
	}
	if c.V != 1 {
		return c, fmt.Errorf("the Stripe cursor has version %d; this build reads 1", c.V)
	}
	return c, nil
}

// Source reads the Events API under the system's reader lock
// (connectors.Source): what webhooks missed, every poll_interval, and
// first, when it has no cursor or one older than Stripe keeps events, a
// backfill that lists every object of each mapped type. Changes carry the
// same Versions as the webhooks', so both paths agree on every object's
// order and publish each state once.
type Source struct {
	sys    *config.System
	api    *client
	cp     connectors.Checkpoints
	log    *slog.Logger
	mapper *mapper
	types  []string // object types read, sorted
	every  time.Duration
	// settle holds back events younger than this: an event list may show
	// a newer event before an older one of the same moment, and a cursor
	// past the older one would skip it.
	settle time.Duration
	now    func() time.Time

	cur      cursor
	lastPoll time.Time
	// pending are read events not yet handed over, one per batch: each
	// carries its own event's time as its commit time, which two-way sync
	// orders conflicting edits by.
	pending []connectors.Batch

	mu        sync.Mutex
	progress  connectors.Progress
	confirmed cursor
}

// NewSource builds the Events API reader of a Stripe system.
func NewSource(sys *config.System, deps connectors.SourceDeps) (connectors.Source, error) {
	return newSource(sys, deps, nil), nil
}

func newSource(sys *config.System, deps connectors.SourceDeps, hc *http.Client) *Source {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	types := sys.Receive.Locations()
	sort.Strings(types)
	every := sys.Settings.Duration(SettingPollInterval)
	if every <= 0 {
		every = DefaultPollInterval
	}
	src := &Source{sys: sys, cp: deps.Checkpoints, log: log, types: types, every: every, settle: 5 * time.Second, now: time.Now,
		api: newClient(apiBase(sys), sys.Settings.Secret(SettingAPIKey).Reveal(), log, hc), mapper: newMapper(sys.Name, types)}
	src.api.limiter = deps.Limiter // its reads count against the account's limit too
	return src
}

// Open loads the cursor, or starts a backfill when there is none or it is
// older than Stripe keeps events.
func (s *Source) Open(ctx context.Context) error {
	if s.sys.Settings.Secret(SettingAPIKey).IsZero() {
		return errors.New("stripe: api_key is empty")
	}
	if err := CLIProblem(s.sys, nil); err != nil {
		s.log.Warn(err.Error())
	}
	text, ok, err := s.cp.Load(ctx, checkpointName)
	if err != nil {
		return fmt.Errorf("loading the Stripe cursor: %w", err)
	}
	ok = ok && text != "" // "" is a cursor Reset forgot
	if ok {
		if s.cur, err = decodeCursor(text); err != nil {
			return err
		}
	}
	switch {
	case !ok:
		s.log.Info("no Events API cursor: listing every object of the mapped types first", "types", s.types)
		return s.startBackfill(ctx)
	case s.cur.Fill == nil && s.cur.Event != "" && s.now().Sub(time.Unix(s.cur.Created, 0)) > eventRetention:
		s.log.Warn("the Events API cursor is older than Stripe keeps events: listing every object of the mapped types again", "cursor", s.cur.Event)
		return s.startBackfill(ctx)
	}
	s.setProgress()
	s.mu.Lock()
	s.confirmed = s.cur
	s.mu.Unlock()
	return nil
}

// startBackfill notes the newest event, from which events are read once
// every object was listed.
func (s *Source) startBackfill(ctx context.Context) error {
	res, err := s.api.call(ctx, http.MethodGet, "/v1/events", url.Values{"limit": {"1"}}, "")
	if err != nil {
		return fmt.Errorf("reading the newest event: %w", err)
	}
	fill := &backfill{}
	if data, _ := res.Object["data"].([]any); len(data) > 0 {
		if e, ok := data[0].(map[string]any); ok {
			fill.Start, fill.StartCreated = objectID(e), unixField(e, "created")
		}
	}
	s.cur = cursor{Fill: fill}
	s.setProgress()
	return nil
}

// Next returns the next page of a backfill, or of events: at once while
// there are more, else after poll_interval.
func (s *Source) Next(ctx context.Context) (connectors.Batch, error) {
	for {
		if len(s.pending) > 0 {
			b := s.pending[0]
			s.pending = s.pending[1:]
			return b, nil
		}
		if s.cur.Fill != nil {
			return s.nextListing(ctx)
		}
		if wait := s.every - s.now().Sub(s.lastPoll); wait > 0 {
			if err := connectors.Sleep(ctx, wait); err != nil {
				return connectors.Batch{}, err
			}
		}
		batches, more, err := s.nextEvents(ctx)
		if err != nil {
			return connectors.Batch{}, err
		}
		if !more {
			s.lastPoll = s.now()
		}
		s.pending = batches
	}
}

// nextListing lists the next page of the backfill's current object type.
func (s *Source) nextListing(ctx context.Context) (connectors.Batch, error) {
	f := s.cur.Fill
	if f.Location >= len(s.types) {
		s.log.Info("backfill done; reading events from where it started", "objects", f.Rows, "from_event", f.Start)
		s.cur = cursor{Event: f.Start, Created: f.StartCreated}
		s.lastPoll = s.now() // events since the start: at the next poll
		s.setProgress()
		return connectors.Batch{Position: s.cur.encode(), CommitTime: time.Unix(f.StartCreated, 0)}, nil
	}
	typ := s.types[f.Location]
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	if f.After != "" {
		q.Set("starting_after", f.After)
	}
	if typ == "subscription" {
		q.Set("status", "all") // canceled ones too
	}
	res, err := s.api.call(ctx, http.MethodGet, "/v1/"+resourceOf(typ), q, "")
	var ae *APIError
	if errors.As(err, &ae) && (ae.missing() || ae.Status == http.StatusBadRequest) && f.After == "" {
		return connectors.Batch{}, fmt.Errorf("%w: %s objects cannot be listed (%v), so they cannot be backfilled", connectors.ErrPositionLost, typ, err)
	}
	if err != nil {
		return connectors.Batch{}, fmt.Errorf("listing %s objects: %w", typ, err)
	}
	data, _ := res.Object["data"].([]any)
	var b connectors.Batch
	for _, d := range data {
		obj, ok := d.(map[string]any)
		if !ok || objectType(obj) != typ {
			continue
		}
		c := s.mapper.objectChange(obj, obj["deleted"] == true, readVersion(res.Date, unixField(obj, "updated")))
		c.Record.Created = true
		b.Changes = append(b.Changes, c)
		f.After = objectID(obj)
	}
	f.Rows += int64(len(b.Changes))
	if more, _ := res.Object["has_more"].(bool); !more || len(data) == 0 {
		f.Location++
		f.After = ""
	}
	b.Position = s.cur.encode()
	b.CommitTime = res.Date
	s.setProgress()
	return b, nil
}

// nextEvents reads the events after the cursor, oldest first, one page
// at a time; more says another page is waiting.
func (s *Source) nextEvents(ctx context.Context) (b []connectors.Batch, more bool, err error) {
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	if s.cur.Event != "" {
		q.Set("ending_before", s.cur.Event)
	}
	res, err := s.api.call(ctx, http.MethodGet, "/v1/events", q, "")
	var ae *APIError
	if errors.As(err, &ae) && ae.missing() && s.cur.Event != "" {
		s.log.Warn("the Events API no longer has the cursor's event: listing every object of the mapped types again", "cursor", s.cur.Event)
		return nil, true, s.startBackfill(ctx)
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading events: %w", err)
	}
	data, _ := res.Object["data"].([]any)
	more, _ = res.Object["has_more"].(bool)
	if s.cur.Event == "" && more {
		// No cursor (the account had no event when the backfill began):
		// the list runs newest first, so begin at its oldest end.
		return s.oldestEvents(ctx)
	}
	events := make([]map[string]any, 0, len(data))
	for i := len(data) - 1; i >= 0; i-- { // the list is newest first
		if e, ok := data[i].(map[string]any); ok {
			events = append(events, e)
		}
	}
	return s.eventBatch(ctx, events, res.Date, more)
}

// oldestEvents pages to the oldest end of the event list and returns its
// first page.
func (s *Source) oldestEvents(ctx context.Context) ([]connectors.Batch, bool, error) {
	var all []map[string]any
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	var date time.Time
	for {
		res, err := s.api.call(ctx, http.MethodGet, "/v1/events", q, "")
		if err != nil {
			return nil, false, fmt.Errorf("reading events: %w", err)
		}
		date = res.Date
		data, _ := res.Object["data"].([]any)
		for _, d := range data {
			if e, ok := d.(map[string]any); ok {
				all = append(all, e)
			}
		}
		more, _ := res.Object["has_more"].(bool)
		if !more || len(data) == 0 {
			break
		}
		q.Set("starting_after", objectID(all[len(all)-1]))
	}
	slices.Reverse(all)
	n := min(len(all), pageSize)
	return s.eventBatch(ctx, all[:n], date, len(all) > n)
}

// eventBatch turns events (oldest first) into batches of one change each,
// with the event's time as commit time; the last one carries the cursor
// even when its event maps to nothing. Events younger than settle are left
// for the next poll; two events of one object with the same version are
// settled by reading the object.
func (s *Source) eventBatch(ctx context.Context, events []map[string]any, answered time.Time, more bool) ([]connectors.Batch, bool, error) {
	var out []connectors.Batch
	seen := map[string]int{} // key|version -> index in out
	for _, raw := range events {
		created := unixField(raw, "created")
		if answered.Sub(time.Unix(created, 0)) < s.settle {
			more = false // wait for it to settle; the cursor stays before it
			break
		}
		s.cur = cursor{Event: objectID(raw), Created: created}
		e, obj, err := eventOf(raw)
		if err != nil {
			s.log.Warn("skipping an event that cannot be read", "event", objectID(raw), "error", err)
			continue
		}
		c, ok := s.mapper.eventChange(e, obj)
		if !ok {
			continue
		}
		if i, tie := seen[c.Key+"|"+c.Version]; tie {
			now, err := fetchChange(ctx, s.api, s.mapper, c.Record.Location, objectID(obj))
			if err != nil {
				return nil, false, err
			}
			out[i].Changes[0] = now
			continue
		}
		seen[c.Key+"|"+c.Version] = len(out)
		out = append(out, connectors.Batch{Changes: []connectors.Change{c}, Position: s.cur.encode(), CommitTime: time.Unix(created, 0)})
	}
	if s.cur.Event != "" && (len(out) == 0 || out[len(out)-1].Position != s.cur.encode()) {
		out = append(out, connectors.Batch{Position: s.cur.encode(), CommitTime: time.Unix(s.cur.Created, 0)})
	}
	s.setProgress()
	return out, more, nil
}

// eventOf reads a listed event as a delivered one.
func eventOf(raw map[string]any) (*event, map[string]any, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, nil, err
	}
	return parseEvent(b)
}

// Confirm saves the cursor once everything before it is durable.
func (s *Source) Confirm(ctx context.Context, position string) error {
	c, err := decodeCursor(position)
	if err != nil {
		return err
	}
	if err := s.cp.Save(ctx, checkpointName, position); err != nil {
		return fmt.Errorf("saving the Stripe cursor: %w", err)
	}
	s.mu.Lock()
	s.confirmed = c
	s.progress.ConfirmedPosition = c.Event
	s.progress.ConfirmedOffset = uint64(max(c.Created, 0))
	s.mu.Unlock()
	return nil
}

// Reset forgets the source's cursor (`remix reset`): the next start lists
// every object of the mapped types again, then reads events from there.
func Reset(ctx context.Context, _ *config.System, cp connectors.Checkpoints) error {
	if err := cp.Save(ctx, checkpointName, ""); err != nil {
		return fmt.Errorf("forgetting the Stripe cursor: %w", err)
	}
	return nil
}

// Close has nothing to release.
func (s *Source) Close(context.Context) error { return nil }

// Progress reports the backfill and the event cursor
// (connectors.ProgressReporter).
func (s *Source) Progress() connectors.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress
}

func (s *Source) setProgress() {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.progress
	p.Snapshotting = s.cur.Fill != nil
	if s.cur.Fill != nil {
		p.SnapshotRows = s.cur.Fill.Rows
	}
	p.ReadPosition = s.cur.Event
	p.ReadOffset = uint64(max(s.cur.Created, 0))
	p.ConfirmedPosition = s.confirmed.Event
	p.ConfirmedOffset = uint64(max(s.confirmed.Created, 0))
}
