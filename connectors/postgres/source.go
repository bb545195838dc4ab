package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// Source reads a PostgreSQL database through logical replication (pgoutput,
// protocol 2): an initial snapshot of the mapped tables consistent with the
// slot, then every insert, update, delete and truncate, transaction by
// transaction. A position is confirmed to PostgreSQL only once the ingest
// says its changes are durable downstream.
type Source struct {
	sys    *config.System
	deps   connectors.SourceDeps
	log    *slog.Logger
	slot   string
	pub    string
	claim  string // this source's token in its checkpoint and its publication's mark
	tables map[string]*srcTable

	pool *pgxpool.Pool
	repl *pgconn.PgConn

	out      chan item
	pushBack *item // taken from out by Next but held for the next call
	errc     chan error
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	started  bool

	// durable is the highest LSN the ingest confirmed (or, when nothing is in
	// flight, the server's WAL end). lastEmitted is the position of the last
	// transaction handed over. snapshotPending holds back confirmations until
	// the snapshot is durable.
	durable atomic.Uint64
	// afterMovedRead, in tests, runs between fillMoved's read and its look
	// at the transaction's visibility.
	afterMovedRead func()
	// readWALEnd, in tests, replaces reading the server's WAL end.
	readWALEnd func(context.Context) (pglogrepl.LSN, error)
	// walEnd is the server's WAL end as last read (every walEndEvery while
	// streaming): how far behind the reader is.
	walEnd          atomic.Uint64
	lastEmitted     atomic.Uint64
	snapshotPending atomic.Bool
	stats           Stats

	gone connectors.MissingFields // mapped tables without some mapped columns (shape.go)

	// fieldMaps holds the field maps of records the ingest has mapped
	// (Recycle), for the decoders' next rows. A sync.Pool, since the
	// reader fills them and the ingest's mapper hands them back.
	fieldMaps sync.Pool
}

// Stats are counters a source keeps, for metrics.
type Stats struct {
	SnapshotRows     atomic.Int64
	SnapshotEstimate atomic.Int64
	Transactions     atomic.Int64
	Changes          atomic.Int64
	ConfirmedLSN     atomic.Uint64
	ReceivedLSN      atomic.Uint64
	// CatchUps counts the times the reader found itself far enough behind
	// to wait for fuller reads (see lowWaterBytes).
	CatchUps atomic.Int64
}

// Stats returns the source's counters.
func (s *Source) Stats() *Stats { return &s.stats }

// item is what the reading goroutine hands to Next: a run of changes and,
// at the end of a transaction or snapshot chunk, the position to confirm.
type item struct {
	changes []connectors.Change
	pos     string
	label   string // what its objects carry as their position, when not pos
	commit  time.Time
}

// NewSource returns a source for a postgresql system with a receive mixer.
func NewSource(sys *config.System, deps connectors.SourceDeps) (connectors.Source, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{sys: sys, deps: deps, log: log, tables: map[string]*srcTable{}}
	s.slot, s.pub = names(sys)
	if !identRE.MatchString(s.slot) {
		return nil, fmt.Errorf("%s: slot name %q: use lowercase letters, digits and _ (at most 63)", sys.PosOf(SettingSlotName), s.slot)
	}
	for _, loc := range sys.Receive.Locations() {
		s.tables[loc] = &srcTable{loc: loc, need: sys.Receive.SourceFields(loc)}
	}
	return s, nil
}

// checkpointName is where the source keeps its state in the checkpoints.
const checkpointName = "postgresql"

// state is the source's checkpoint: which slot it reads, its claim (see
// slot.go), and how far the initial snapshot got.
type state struct {
	Slot     string   `json:"slot"`
	Claim    string   `json:"claim,omitempty"`
	Snapshot string   `json:"snapshot"`        // "done", "running" or "skipped"
	Done     []string `json:"done,omitempty"`  // tables copied whole
	Table    string   `json:"table,omitempty"` // running: the table being copied
	After    []string `json:"after,omitempty"` // running: its last key copied
}

// toCopy lists the mapped tables the state has not copied whole, sorted.
// (A state marked done without its list predates the list: all were.)
func (st *state) toCopy(tables map[string]*srcTable) []string {
	done := map[string]bool{}
	for _, t := range st.Done {
		done[t] = true
	}
	var out []string
	for loc := range tables {
		if !done[loc] && !(st.Snapshot == "done" && len(st.Done) == 0) {
			out = append(out, loc)
		}
	}
	sort.Strings(out)
	return out
}

// Open checks the database, makes the publication and slot if missing, and
// starts reading: first the snapshot, when one is due, then the stream.
func (s *Source) Open(ctx context.Context) (err error) {
	pool, err := newPool(ctx, s.sys, "remix-ingest")
	if err != nil {
		return err
	}
	s.pool = pool
	defer func() {
		if err != nil { // nothing is left open by a failed start
			if s.repl != nil {
				_ = s.repl.Close(context.WithoutCancel(ctx))
				s.repl = nil
			}
			s.pool.Close()
			s.pool = nil
		}
	}()
	if err := s.check(ctx); err != nil {
		return err
	}
	st, err := s.loadState(ctx)
	if err != nil {
		return err
	}
	s.followLegacyName(st)
	slotLSN, exists, err := s.slotState(ctx)
	if err != nil {
		return err
	}
	view, err := readView(ctx, s.pool, s.slot, s.pub)
	if err != nil {
		return err
	}
	if err := s.checkOwnership(st, exists, view); err != nil {
		return err
	}
	if st, err = s.ensureClaim(ctx, st); err != nil {
		return err
	}
	if err := s.ensurePublication(ctx, view); err != nil {
		return err
	}
	repl, err := s.connectReplication(ctx)
	if err != nil {
		return err
	}
	s.repl = repl
	var snap *snapshotPlan
	var start pglogrepl.LSN
	switch {
	case !exists && st.Slot == s.slot:
		return fmt.Errorf("%w: %s: the slot %s this source was reading no longer exists; changes made since it went are gone. "+
			"Remix will not create a new slot at the current position. To start over with a fresh snapshot, run `remix reset %s` and restart the ingest",
			ErrSlotLost, s.sys.Name, s.slot, s.sys.Name)
	case !exists:
		res, err := pglogrepl.CreateReplicationSlot(ctx, repl, s.slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
		if err != nil {
			return fmt.Errorf("creating replication slot %s: %w", s.slot, err)
		}
		if start, err = pglogrepl.ParseLSN(res.ConsistentPoint); err != nil {
			return err
		}
		s.log.Info("replication slot created", "slot", s.slot, "consistent_point", res.ConsistentPoint)
		st = &state{Slot: s.slot, Claim: s.claim, Snapshot: "running"}
		if !s.sys.Settings.Bool(SettingInitialSnapshot) {
			st.Snapshot = "skipped"
		}
		if err := s.saveState(ctx, st); err != nil {
			return err
		}
		if st.Snapshot == "running" {
			snap = &snapshotPlan{exported: res.SnapshotName, tables: st.toCopy(s.tables)}
		}
	default:
		start = slotLSN
		if st.Slot != s.slot {
			// A slot this source's mark claims but its checkpoint does not
			// name (made by hand for it, or the checkpoint was not saved
			// after the slot was made): the targets may lack the rows from
			// before it, so copy them; a snapshot taken now converges with
			// the stream.
			st = &state{Slot: s.slot, Claim: s.claim, Snapshot: "running"}
			if !s.sys.Settings.Bool(SettingInitialSnapshot) {
				st.Snapshot = "skipped"
			}
			s.log.Warn("replication slot exists without a checkpoint; copying the tables again", "slot", s.slot)
		}
		switch missing := st.toCopy(s.tables); {
		case st.Snapshot == "running":
			snap = &snapshotPlan{tables: missing, done: st.Done, resumeTable: st.Table, resumeAfter: st.After}
		case st.Snapshot == "done" && len(missing) > 0 && s.sys.Settings.Bool(SettingInitialSnapshot):
			// Tables mapped since the last copy: copy them now. The stream
			// has carried their changes only since they joined the
			// publication, and a copy taken now converges with it.
			s.log.Info("copying tables mapped since the last snapshot", "tables", missing)
			snap = &snapshotPlan{tables: missing, done: st.Done}
		}
	}
	s.durable.Store(uint64(start))
	s.stats.ConfirmedLSN.Store(uint64(start))
	s.snapshotPending.Store(snap != nil)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	// Two items only: the reader gathers finished transactions into large
	// items while the ingest is busy, and a snapshot item is a whole chunk,
	// so this bounds the memory that waits here to two chunks (four gave
	// no more throughput and held twice the memory).
	s.out = make(chan item, 2)
	s.errc = make(chan error, 1)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.watchWALEnd(runCtx)
	}()
	go func() {
		defer s.wg.Done()
		err := s.run(runCtx, snap, start)
		if err != nil && runCtx.Err() == nil {
			s.errc <- err
		}
		close(s.out)
	}()
	s.started = true
	return nil
}

// walEndEvery is how often the server's WAL end is read.
const walEndEvery = 250 * time.Millisecond

// watchWALEnd reads the server's WAL end until ctx ends, so the reader
// knows when it is catching up (see catchUpBytes). A failed read keeps the
// last value; the replication connection reports a server that is gone.
func (s *Source) watchWALEnd(ctx context.Context) {
	t := time.NewTicker(walEndEvery)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var end pglogrepl.LSN
		var err error
		if s.readWALEnd != nil {
			end, err = s.readWALEnd(qctx)
		} else {
			err = s.pool.QueryRow(qctx, `SELECT pg_current_wal_lsn()`).Scan(&end)
		}
		if err == nil {
			s.walEnd.Store(uint64(end))
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Source) run(ctx context.Context, snap *snapshotPlan, start pglogrepl.LSN) error {
	if snap != nil {
		if err := s.snapshot(ctx, snap); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	return s.stream(ctx, start)
}

// Next returns the next batch: every change waiting, up to 5 000, across
// transactions.
func (s *Source) Next(ctx context.Context) (connectors.Batch, error) {
	var b connectors.Batch
	if it := s.pushBack; it != nil {
		s.pushBack = nil
		b.Changes, b.Position, b.Label, b.CommitTime = it.changes, it.pos, it.label, it.commit
		return b, nil
	}
	add := func(it item) {
		if b.Changes == nil {
			b.Changes = it.changes // the item's own: no copy (a snapshot chunk is one item)
		} else {
			b.Changes = append(b.Changes, it.changes...)
		}
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
				return b, errors.New("replication stopped")
			}
		}
		add(it)
		if strings.HasPrefix(it.pos, snapshotPrefix) {
			return b, nil // snapshot progress is confirmed chunk by chunk, apart from stream positions
		}
	}
	for len(b.Changes) < 5000 {
		select {
		case it, ok := <-s.out:
			if !ok {
				return b, nil
			}
			if strings.HasPrefix(it.pos, snapshotPrefix) && b.Position != "" && !strings.HasPrefix(b.Position, snapshotPrefix) {
				s.pushBack = &it
				return b, nil
			}
			add(it)
			if strings.HasPrefix(it.pos, snapshotPrefix) {
				return b, nil
			}
			continue
		default:
		}
		break
	}
	return b, nil
}

// Confirm records that everything up to position is durable downstream.
// Stream positions are LSNs sent to PostgreSQL as flushed with the next
// status update; snapshot positions save the snapshot's progress.
func (s *Source) Confirm(ctx context.Context, position string) error {
	if rest, ok := strings.CutPrefix(position, snapshotPrefix); ok {
		var st state
		if err := json.Unmarshal([]byte(rest), &st); err != nil {
			return fmt.Errorf("snapshot position %q: %w", position, err)
		}
		if err := s.saveState(ctx, &st); err != nil {
			return err
		}
		if st.Snapshot == "done" {
			s.snapshotPending.Store(false)
			s.log.Info("snapshot durable downstream", "rows", s.stats.SnapshotRows.Load())
		}
		return nil
	}
	lsn, err := pglogrepl.ParseLSN(position)
	if err != nil {
		return fmt.Errorf("position %q: %w", position, err)
	}
	for {
		cur := s.durable.Load()
		if uint64(lsn) <= cur || s.durable.CompareAndSwap(cur, uint64(lsn)) {
			break
		}
	}
	s.stats.ConfirmedLSN.Store(s.durable.Load())
	return nil
}

// Close stops reading and closes the connections.
func (s *Source) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel() // interrupts the reader; the connection is its own until it returns
	}
	s.wg.Wait()
	if s.repl != nil {
		_ = s.repl.Close(ctx)
	}
	if s.pool != nil {
		s.pool.Close()
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

// check verifies, before anything is created, that the database can do
// what the receive mixer asks: logical WAL, every mapped table and column
// present, and a replica identity that names each row.
func (s *Source) check(ctx context.Context) error {
	var level string
	if err := s.pool.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return fmt.Errorf("%w: reading wal_level: %w", connectors.ErrUnavailable, err)
	}
	if level != "logical" {
		return fmt.Errorf("%s: wal_level is %q; logical replication needs wal_level = logical (set it in postgresql.conf or with ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", s.sys.Name, level)
	}
	problems, err := s.checkTables(ctx)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("source %s does not fit its receive mixer:\n%s", s.sys.Name, problems.Error())
	}
	return nil
}

// catalogNames runs a catalog query that returns one name per row, and
// reads it whole: a scan or connection error is an error, never a shorter
// list.
func (s *Source) catalogNames(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// fieldPath finds where a column is mapped in the receive mixer, for messages.
func (s *Source) fieldPath(loc, col string) []string {
	for _, rule := range s.sys.Receive.Rules(loc) {
		for _, f := range rule.Fields() {
			if !f.HasHardcode && f.Source.Head() == col {
				return []string{"receive_mixer", loc, rule.Model().Title, f.Source.String()}
			}
		}
	}
	return []string{"receive_mixer", loc}
}

// connectReplication opens the replication connection, printing values as
// decodeText reads them.
func (s *Source) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	dsn := s.sys.Settings.Secret(SettingReplicationDSN)
	if dsn.IsZero() {
		dsn = s.sys.Settings.Secret(SettingDSN)
	}
	cfg, err := pgconn.ParseConfig(dsn.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%s: replication_dsn %s: %w", s.sys.Name, dsn, redactErr(err, dsn))
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "remix-ingest-" + s.slot
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: replication connection to %s (%s): %w", connectors.ErrUnavailable, s.sys.Name, dsn, redactErr(err, dsn))
	}
	return conn, nil
}
