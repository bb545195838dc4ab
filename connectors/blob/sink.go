package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Sink writes a blob system's datasets. It is a connectors.Buffered: what
// Write gets is held in spool files until Flush uploads them.
type Sink struct {
	sys      *config.System
	deps     connectors.SinkDeps
	log      *slog.Logger
	format   string
	maxBytes int64
	window   time.Duration
	now      func() time.Time

	st       *store
	layouts  map[string]*layout
	schemas  map[string]*parquet.Schema
	spoolDir string

	mu    sync.Mutex
	holds map[connectors.Partition]*hold
}

// hold is what one partition holds: complete files waiting for a flush,
// and the file under construction per location.
type hold struct {
	mu         sync.Mutex
	sealed     []*part
	cur        map[string]*part
	firstWrite time.Time
	lastWrite  time.Time
	// broken is set when a spool file could not be written: what the
	// partition held is no longer whole, so it refuses writes and flushes
	// until its tenure ends (Discard) and the entries are read again.
	broken error
}

// NewSink builds the sink of a blob system. It connects in Open.
func NewSink(sys *config.System, deps connectors.SinkDeps) (connectors.Sink, error) {
	maxBytes, err := ParseSize(sys.Settings.String(SettingMaxFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SettingMaxFileBytes, err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Sink{sys: sys, deps: deps, log: log, format: sys.Settings.String(SettingFormat), maxBytes: maxBytes,
		window: sys.Settings.Duration(SettingMaxFileAge), now: time.Now, holds: map[connectors.Partition]*hold{}}, nil
}

// Open derives each dataset's columns from the models, opens the bucket
// and checks that it can be written (a small object under
// PREFIX/_remix/, written, read back and deleted).
func (s *Sink) Open(ctx context.Context) error {
	if s.deps.Models == nil {
		return fmt.Errorf("%s: a blob sink needs the models to lay out its columns", s.sys.Name)
	}
	layouts, problems := layoutsOf(s.sys, s.deps.Models)
	if len(problems) > 0 {
		return problems
	}
	s.layouts = layouts
	s.schemas = map[string]*parquet.Schema{}
	for loc, l := range layouts {
		s.schemas[loc] = parquetSchema(l)
	}
	st, err := openStore(ctx, s.sys)
	if err != nil {
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
	}
	if err := checkWritable(ctx, st); err != nil {
		st.bucket.Close()
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
	}
	dir, err := os.MkdirTemp("", "remix-spool-")
	if err != nil {
		st.bucket.Close()
		return fmt.Errorf("spool folder: %w", err)
	}
	s.st, s.spoolDir = st, dir
	return nil
}

// checkWritable writes, reads back and deletes a probe object.
func checkWritable(ctx context.Context, st *store) error {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := st.prefix + "_remix/probe-" + hex.EncodeToString(b)
	body := []byte("remix can write here\n")
	if err := st.bucket.WriteAll(ctx, key, body, nil); err != nil {
		return fmt.Errorf("%s cannot be written (%s): %s", st.where, gcerrors.Code(err), firstLine(err))
	}
	got, err := st.bucket.ReadAll(ctx, key)
	if err != nil || !bytes.Equal(got, body) {
		return fmt.Errorf("%s: an object written cannot be read back: %v", st.where, err)
	}
	if err := st.bucket.Delete(ctx, key); err != nil {
		return fmt.Errorf("%s: cannot delete %s: %w", st.where, key, err)
	}
	return nil
}

// Write converts the records and adds them to their partitions' files,
// all or none: a record that cannot be converted is refused before any is
// written. A truncate is applied at once (see truncate).
func (s *Sink) Write(ctx context.Context, recs []mixer.TargetRecord, _ []connectors.Fence) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	permanent := func(i int, err error) error {
		return &connectors.RecordError{Index: i, Err: fmt.Errorf("%w: %w", connectors.ErrPermanent, err)}
	}
	rows := make([]row, len(recs))
	entries := make([]entryID, len(recs))
	epochs := map[string]int{}
	for i := range recs {
		r := &recs[i]
		l := s.layouts[r.Location]
		switch {
		case l == nil:
			return permanent(i, fmt.Errorf("no dataset %s in this system's push mixer", r.Location))
		case r.Op == mixer.OpTruncate:
			if err := s.truncate(ctx, l); err != nil {
				return err
			}
			delete(epochs, r.Location)
			continue
		case r.Origin.Model == "":
			return permanent(i, errors.New("a record without its stream origin"))
		}
		e, err := parseEntry(r.Origin.Entry)
		if err != nil {
			return permanent(i, err)
		}
		ep, ok := epochs[r.Location]
		if !ok {
			if ep, err = s.epoch(ctx, l); err != nil {
				return err
			}
			epochs[r.Location] = ep
		}
		entries[i] = e
		if rows[i], err = l.rowOf(r, ep, e); err != nil {
			return permanent(i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	byPart := map[connectors.Partition][]int{}
	var order []connectors.Partition
	for i := range recs {
		if recs[i].Op == mixer.OpTruncate {
			continue
		}
		p := connectors.Partition{Model: recs[i].Origin.Model, Index: recs[i].Origin.Partition}
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], i)
	}
	var errs []error
	for _, p := range order {
		if err := s.add(p, recs, rows, entries, byPart[p]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Sink) holdOf(p connectors.Partition, create bool) *hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.holds[p]
	if h == nil && create {
		h = &hold{cur: map[string]*part{}}
		s.holds[p] = h
	}
	return h
}

// add appends one partition's rows to its files: a file holds one
// window of entry times and at most max_file_bytes; past either it is
// sealed and the next one begins.
func (s *Sink) add(p connectors.Partition, recs []mixer.TargetRecord, rows []row, entries []entryID, idx []int) error {
	h := s.holdOf(p, true)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broken != nil {
		return fmt.Errorf("partition %s/%d: %w (it is read again once the pusher lets it go)", p.Model, p.Index, h.broken)
	}
	now := s.now()
	for start := 0; start < len(idx); {
		first := idx[start]
		loc := recs[first].Location
		win := s.windowOf(entries[first])
		end := start + 1
		for end < len(idx) && recs[idx[end]].Location == loc && s.windowOf(entries[idx[end]]).Equal(win) {
			end++
		}
		cur := h.cur[loc]
		if cur != nil && !cur.window.Equal(win) {
			if err := h.seal(loc); err != nil {
				return err
			}
			cur = nil
		}
		if cur == nil {
			var err error
			if cur, err = s.newPart(loc, p.Model, p.Index, win, entries[first], recs[first].Origin.Index); err != nil {
				h.broken = err
				return err
			}
			h.cur[loc] = cur
			if h.firstWrite.IsZero() {
				h.firstWrite = now
			}
		}
		run := make([]row, 0, end-start)
		for _, i := range idx[start:end] {
			run = append(run, rows[i])
		}
		if err := cur.add(run, entries[idx[end-1]]); err != nil {
			h.broken = err
			return err
		}
		if cur.size() >= s.maxBytes {
			if err := h.seal(loc); err != nil {
				return err
			}
		}
		start = end
	}
	h.lastWrite = now
	return nil
}

// seal completes the current file of a location.
func (h *hold) seal(loc string) error {
	cur := h.cur[loc]
	if cur == nil {
		return nil
	}
	delete(h.cur, loc)
	h.sealed = append(h.sealed, cur)
	if err := cur.seal(); err != nil {
		h.broken = err
		return err
	}
	return nil
}

func (s *Sink) windowOf(e entryID) time.Time {
	w := s.window.Milliseconds()
	return time.UnixMilli(int64(e.ms) - int64(e.ms)%w).UTC()
}

// Pending reports whether a partition holds rows, and whether they are
// due: a file is complete (its window ended with a later entry, or it
// reached max_file_bytes), or the window of the files under way is over
// by the pusher's clock and nothing came for a moment, or the first of
// them was written twice max_file_age ago.
func (s *Sink) Pending(p connectors.Partition) (held, due bool) {
	h := s.holdOf(p, false)
	if h == nil {
		return false, false
	}
	if !h.mu.TryLock() { // being written or flushed
		return true, false
	}
	defer h.mu.Unlock()
	if len(h.sealed) == 0 && len(h.cur) == 0 {
		return false, false
	}
	if h.broken != nil || len(h.sealed) > 0 {
		return true, true
	}
	now := s.now()
	grace := min(s.window, 2*time.Second)
	if now.Sub(h.firstWrite) >= 2*s.window {
		return true, true
	}
	for _, c := range h.cur {
		if now.Before(c.window.Add(s.window + grace)) {
			return true, false
		}
	}
	return true, now.Sub(h.lastWrite) >= grace
}

// Flush uploads every file the partitions hold, each complete under its
// final name (a single put, or a multipart upload completed at the end).
// A partition whose files could not all be uploaded keeps the rest held;
// the next flush tries again under the same names.
func (s *Sink) Flush(ctx context.Context, parts []connectors.Partition) error {
	var errs []error
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		h := s.holdOf(p, false)
		if h == nil {
			continue
		}
		if err := s.flush(ctx, h); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("partition %s/%d: %w", p.Model, p.Index, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Sink) flush(ctx context.Context, h *hold) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broken != nil {
		return h.broken
	}
	for _, loc := range slices.Sorted(maps.Keys(h.cur)) {
		if err := h.seal(loc); err != nil {
			return err
		}
	}
	for len(h.sealed) > 0 {
		if err := s.upload(ctx, h.sealed[0]); err != nil {
			return err
		}
		h.sealed[0].drop()
		h.sealed = h.sealed[1:]
	}
	// The hold stays in the map, empty: a write waiting for it adds to it.
	h.firstWrite, h.lastWrite = time.Time{}, time.Time{}
	return nil
}

// upload writes a sealed file under its final name.
func (s *Sink) upload(ctx context.Context, pt *part) error {
	if _, err := pt.f.Seek(0, 0); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	name := partName(s.st.prefix, pt.location, pt.model, pt.partition, pt.window, pt.first, pt.firstIndex, pt.last, s.format)
	err := s.st.bucket.Upload(ctx, name, pt.f, s.writerOptions(pt.rows))
	if err != nil {
		return fmt.Errorf("%w: uploading %s%s: %w", connectors.ErrUnavailable, s.st.where, strings.TrimPrefix(name, s.st.prefix), err)
	}
	return nil
}

func (s *Sink) writerOptions(rows int64) *blob.WriterOptions {
	ct := "application/vnd.apache.parquet"
	if s.format == FormatJSONL {
		ct = "application/gzip"
	}
	return &blob.WriterOptions{ContentType: ct, BufferSize: 8 << 20, MaxConcurrency: 2,
		Metadata: map[string]string{MetaRows: strconv.FormatInt(rows, 10)}}
}

// MetaRows is the object metadata key that holds a file's row count
// (where the store keeps metadata).
const MetaRows = "remixrows"

// Discard drops what the partitions hold: their new owner writes it.
func (s *Sink) Discard(parts []connectors.Partition) {
	for _, p := range parts {
		s.mu.Lock()
		h := s.holds[p]
		delete(s.holds, p)
		s.mu.Unlock()
		if h != nil {
			h.mu.Lock()
			h.drop()
			h.mu.Unlock()
		}
	}
}

func (h *hold) drop() {
	for _, pt := range h.sealed {
		pt.drop()
	}
	for _, pt := range h.cur {
		pt.drop()
	}
	h.sealed, h.cur = nil, map[string]*part{}
}

// Close drops what is held (read again by whoever pushes next) and
// closes the bucket.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	holds := s.holds
	s.holds = map[connectors.Partition]*hold{}
	s.mu.Unlock()
	for _, h := range holds {
		h.mu.Lock()
		h.drop()
		h.mu.Unlock()
	}
	if s.spoolDir != "" {
		os.RemoveAll(s.spoolDir)
	}
	if s.st != nil {
		return s.st.bucket.Close()
	}
	return nil
}

// epoch reads a dataset's current epoch: 0 until its first truncate.
func (s *Sink) epoch(ctx context.Context, l *layout) (int, error) {
	b, err := s.st.bucket.ReadAll(ctx, epochKey(s.st.prefix, l.location))
	if gcerrors.Code(err) == gcerrors.NotFound {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: reading the epoch of %s: %w", connectors.ErrUnavailable, l.location, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > maxEpoch {
		return 0, fmt.Errorf("%w: %s holds %q, not an epoch", connectors.ErrUnavailable, epochKey(s.st.prefix, l.location), b)
	}
	return n, nil
}

// truncate starts a new epoch of a dataset: a marker file whose one row
// (_remix_op truncate) has the lowest version of the new epoch, then the
// epoch itself. Rows written from then on carry it; the latest-state query
// keeps only rows above the last marker.
func (s *Sink) truncate(ctx context.Context, l *layout) error {
	ep, err := s.epoch(ctx, l)
	if err != nil {
		return err
	}
	next := ep + 1
	if next > maxEpoch {
		return fmt.Errorf("dataset %s has had %d truncates, the most its versions can count", l.location, maxEpoch)
	}
	now := s.now().UTC()
	var buf bytes.Buffer
	var enc encoder
	if s.format == FormatJSONL {
		enc = newJSONLEncoder(&buf, l)
	} else {
		enc = newParquetEncoder(&buf, l, s.schemas[l.location])
	}
	if err := enc.write([]row{l.truncateRow(next, now.UnixMicro())}); err != nil {
		return err
	}
	if err := enc.close(); err != nil {
		return err
	}
	name := truncateName(s.st.prefix, l.location, next, now, s.format)
	if err := s.st.bucket.WriteAll(ctx, name, buf.Bytes(), s.writerOptions(1)); err != nil {
		return fmt.Errorf("%w: writing the truncate marker of %s: %w", connectors.ErrUnavailable, l.location, err)
	}
	if err := s.st.bucket.WriteAll(ctx, epochKey(s.st.prefix, l.location), []byte(strconv.Itoa(next)+"\n"), nil); err != nil {
		return fmt.Errorf("%w: writing the epoch of %s: %w", connectors.ErrUnavailable, l.location, err)
	}
	s.log.Info("dataset truncated: a new epoch starts", "location", l.location, "epoch", next)
	return nil
}

var (
	_ connectors.Sink     = (*Sink)(nil)
	_ connectors.Buffered = (*Sink)(nil)
)

// firstLine is an error's first line: some SDKs add a page of details.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
