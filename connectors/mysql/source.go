package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// Source reads a MySQL or MariaDB database through its binary log
// (row-based replication, as a replica would): an initial snapshot of the
// mapped tables without locks, reconciled with the log by watermarks
// (snapshot.go), then every insert, update and delete, transaction by
// transaction. Its position is the executed GTID set, saved in the
// checkpoints only once the ingest says the changes up to it are durable
// downstream.
type Source struct {
	sys       *config.System
	deps      connectors.SourceDeps
	log       *slog.Logger
	tables    map[string]*srcTable
	serverID  uint32
	watermark string // database.table of the watermark rows

	db      *sql.DB
	cfg     *driver.Config
	flavor  string
	charset map[uint64]string // collation id -> character set

	out     chan item
	errc    chan error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []func()

	confirmed atomic.Uint64 // the sequence number of the last confirmed position
	seq       atomic.Uint64 // the sequence number of the last position handed over
	snapshot  atomic.Bool   // a snapshot is not yet durable downstream
	stats     Stats

	posMu         sync.Mutex
	readPos       string
	confirmedGTID string
	saver         saver // the confirmed position until it is saved (checkpoint.go)

	gone connectors.MissingFields // mapped tables without some mapped columns (shape.go)
}

// Stats are counters a source keeps, for metrics.
type Stats struct {
	SnapshotRows     atomic.Int64
	SnapshotEstimate atomic.Int64
	Transactions     atomic.Int64
	Changes          atomic.Int64
}

// Stats returns the source's counters.
func (s *Source) Stats() *Stats { return &s.stats }

// srcTable is a mapped source table.
type srcTable struct {
	loc     string
	need    map[string]bool // columns the receive mixer reads
	info    *tableInfo
	keyCols []string
}

// item is what the reading goroutine hands to Next: a run of changes and,
// at the end of a transaction, the position to confirm.
type item struct {
	changes []connectors.Change
	pos     string
	label   string // what its objects carry as their position: the GTID set
	commit  time.Time
}

// NewSource returns a source for a mysql system with a receive mixer.
func NewSource(sys *config.System, deps connectors.SourceDeps) (connectors.Source, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg, err := sessionConfig(sys)
	if err != nil {
		return nil, err
	}
	if cfg.Net != "tcp" && cfg.Net != "tcp6" {
		return nil, fmt.Errorf("%s: a mysql source connects over TCP (replication needs host and port), not %s", sys.PosOf(SettingDSN), cfg.Net)
	}
	wm, err := qualify(sys.Settings.String(SettingWatermarkTable), cfg.DBName)
	if err != nil {
		return nil, fmt.Errorf("%s: watermark_table %w", sys.PosOf(SettingWatermarkTable), err)
	}
	s := &Source{sys: sys, deps: deps, log: log, tables: map[string]*srcTable{}, serverID: serverID(sys), watermark: wm}
	for _, loc := range sys.Receive.Locations() {
		s.tables[loc] = &srcTable{loc: loc, need: sys.Receive.SourceFields(loc)}
	}
	return s, nil
}

// checkpointName is where the source keeps its state in the checkpoints.
const checkpointName = "mysql"

// state is the source's checkpoint, and every position it hands over: the
// GTID set durable downstream and how far the initial snapshot got.
type state struct {
	Flavor   string   `json:"flavor"`
	GTID     string   `json:"gtid"`
	Snapshot string   `json:"snapshot"`        // "running", "done" or "skipped"
	Done     []string `json:"done,omitempty"`  // tables copied whole
	Table    string   `json:"table,omitempty"` // running: the table being copied
	After    []string `json:"after,omitempty"` // running: its last key copied (binary key columns in base64)
	Seq      uint64   `json:"seq,omitempty"`   // orders positions of one run (not kept)
}

// positionPrefix marks this connector's positions.
const positionPrefix = "mysql:"

func (st *state) position() string {
	b, _ := json.Marshal(st)
	return positionPrefix + string(b)
}

func parsePosition(p string) (*state, error) {
	rest, ok := strings.CutPrefix(p, positionPrefix)
	if !ok {
		return nil, fmt.Errorf("position %q is not a mysql source's", p)
	}
	var st state
	if err := json.Unmarshal([]byte(rest), &st); err != nil {
		return nil, fmt.Errorf("position %q: %w", p, err)
	}
	return &st, nil
}

// toCopy lists the mapped tables the state has not copied whole, sorted.
func (st *state) toCopy(tables map[string]*srcTable) []string {
	done := map[string]bool{}
	for _, t := range st.Done {
		done[t] = true
	}
	var out []string
	for loc := range tables {
		if !done[loc] {
			out = append(out, loc)
		}
	}
	sort.Strings(out)
	return out
}

// Open checks the server, works out where to start, and starts reading:
// the binary log from the saved GTID set (or the server's current one),
// with snapshot chunks in between while a snapshot is due.
func (s *Source) Open(ctx context.Context) (err error) {
	db, cfg, err := openDB(ctx, s.sys)
	if err != nil {
		return err
	}
	s.db, s.cfg = db, cfg
	defer func() {
		if err != nil {
			db.Close()
			s.db = nil
		}
	}()
	if err := s.check(ctx); err != nil {
		return err
	}
	st, err := s.loadState(ctx)
	if err != nil {
		return err
	}
	if st != nil && st.Flavor != "" && st.Flavor != s.flavor {
		return fmt.Errorf("%w: %s: the checkpoint holds a %s position but the server is %s; run `remix reset %s` to start over",
			ErrBinlogGone, s.sys.Name, st.Flavor, s.flavor, s.sys.Name)
	}
	if st == nil {
		if st, err = s.start(ctx); err != nil {
			return err
		}
	} else if err := s.checkRetained(ctx, st.GTID); err != nil {
		return err
	}
	if st.Snapshot == "done" && s.sys.Settings.Bool(SettingInitialSnap) && len(st.toCopy(s.tables)) > 0 {
		// Tables mapped since the last copy: copy them now.
		st.Snapshot, st.Table, st.After = "running", "", nil
		s.log.Info("copying tables mapped since the last snapshot", "tables", st.toCopy(s.tables))
	}
	s.snapshot.Store(st.Snapshot == "running")
	s.posMu.Lock()
	s.confirmedGTID, s.readPos = st.GTID, st.GTID
	s.posMu.Unlock()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q := newEventQueue(runCtx.Done()) // Close cancels runCtx before it closes the syncer, which waits for a queued event
	str, err := s.startStream(ctx, st.GTID, q)
	if err != nil {
		cancel()
		return err
	}
	s.cancel = cancel
	s.out = make(chan item, 2) // a snapshot item is a whole chunk: two bound the memory waiting here
	s.errc = make(chan error, 1)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.saveLoop(runCtx)
	}()
	go func() {
		defer s.wg.Done()
		err := s.run(runCtx, str, q, st)
		if err != nil && runCtx.Err() == nil {
			s.errc <- err
		}
		close(s.out)
	}()
	return nil
}

// start is the first start of a source: it reads from the server's
// current GTID set, and copies the tables first when initial_snapshot is
// set. The state is saved at once, so a restart resumes from there.
func (s *Source) start(ctx context.Context) (*state, error) {
	v := "@@gtid_binlog_pos"
	if s.flavor == flavorMySQL {
		v = "@@gtid_executed"
	}
	var gtid string
	if err := s.db.QueryRowContext(ctx, "SELECT "+v).Scan(&gtid); err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, v, err)
	}
	st := &state{Flavor: s.flavor, GTID: strings.ReplaceAll(gtid, "\n", ""), Snapshot: "running"}
	if !s.sys.Settings.Bool(SettingInitialSnap) {
		st.Snapshot = "skipped"
	}
	if err := s.saveState(ctx, st); err != nil {
		return nil, err
	}
	s.log.Info("starting from the server's current position", "gtid", st.GTID, "snapshot", st.Snapshot)
	return st, nil
}

// Next returns the next batch: every change waiting, up to 5 000.
func (s *Source) Next(ctx context.Context) (connectors.Batch, error) {
	var b connectors.Batch
	add := func(it item) {
		b.Changes = append(b.Changes, it.changes...)
		if it.pos != "" {
			b.Position, b.Label = it.pos, it.label
		}
		if !it.commit.IsZero() {
			b.CommitTime = it.commit
		}
	}
	select {
	case <-ctx.Done():
		return b, ctx.Err()
	case err := <-s.errc:
		return b, err
	case it, ok := <-s.out:
		if !ok {
			select {
			case err := <-s.errc:
				return b, err
			default:
				return b, errors.New("binary log reading stopped")
			}
		}
		add(it)
	}
	for len(b.Changes) < 5000 {
		select {
		case it, ok := <-s.out:
			if !ok {
				return b, nil
			}
			add(it)
			continue
		default:
		}
		break
	}
	return b, nil
}

// Confirm saves a position: its GTID set and snapshot progress are durable
// downstream. Positions of one run are confirmed in order; an older one
// than the last confirmed changes nothing.
func (s *Source) Confirm(ctx context.Context, position string) error {
	st, err := parsePosition(position)
	if err != nil {
		return err
	}
	for {
		cur := s.confirmed.Load()
		if st.Seq <= cur {
			return nil
		}
		if s.confirmed.CompareAndSwap(cur, st.Seq) {
			break
		}
	}
	seq := st.Seq
	st.Seq = 0
	if err := s.confirmState(ctx, st, seq); err != nil {
		return err
	}
	s.posMu.Lock()
	s.confirmedGTID = st.GTID
	s.posMu.Unlock()
	if st.Snapshot != "running" && s.snapshot.Load() && seq > 0 {
		s.snapshot.Store(false)
		s.log.Info("snapshot durable downstream", "rows", s.stats.SnapshotRows.Load())
	}
	return nil
}

// Close stops reading and closes the connections.
func (s *Source) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if err := s.flushCheckpoint(ctx, true); err != nil {
		s.log.Warn("saving the last confirmed position at close", "error", err)
	}
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
	return nil
}

func (s *Source) loadState(ctx context.Context) (*state, error) {
	v, ok, err := s.deps.Checkpoints.Load(ctx, checkpointName)
	if err != nil || !ok || v == "" {
		return nil, err
	}
	var st state
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return nil, fmt.Errorf("reading the %s checkpoint: %w", s.sys.Name, err)
	}
	return &st, nil
}

func (s *Source) saveState(ctx context.Context, st *state) error {
	b, _ := json.Marshal(st)
	return s.deps.Checkpoints.Save(ctx, checkpointName, string(b))
}

// Progress reports the snapshot's progress and the GTID sets read and
// confirmed (connectors.ProgressReporter).
func (s *Source) Progress() connectors.Progress {
	s.posMu.Lock()
	defer s.posMu.Unlock()
	return connectors.Progress{
		Snapshotting: s.snapshot.Load(), SnapshotRows: s.stats.SnapshotRows.Load(), SnapshotEstimate: s.stats.SnapshotEstimate.Load(),
		ReadPosition: s.readPos, ConfirmedPosition: s.confirmedGTID,
	}
}

// Reset forgets a source's position so that the next start reads from the
// server's current GTID set and copies the tables again (`remix reset`).
// Nothing on the server holds a binary log for a source, so there is
// nothing else to drop.
func Reset(ctx context.Context, sys *config.System, cps connectors.Checkpoints) error {
	return cps.Save(ctx, checkpointName, "")
}
