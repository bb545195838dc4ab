package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
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

// ErrSlotLost means the replication slot this source was reading is gone
// (dropped, or invalidated by max_slot_wal_keep_size). Remix stops rather
// than create a new slot at the current position, which would skip every
// change made in between.
var ErrSlotLost = errors.New("replication slot lost")

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
	durable         atomic.Uint64
	lastEmitted     atomic.Uint64
	snapshotPending atomic.Bool
	stats           Stats
}

// Stats are counters a source keeps, for metrics.
type Stats struct {
	SnapshotRows     atomic.Int64
	SnapshotEstimate atomic.Int64
	Transactions     atomic.Int64
	Changes          atomic.Int64
	ConfirmedLSN     atomic.Uint64
	ReceivedLSN      atomic.Uint64
}

// Stats returns the source's counters.
func (s *Source) Stats() *Stats { return &s.stats }

// item is what the reading goroutine hands to Next: a run of changes and,
// at the end of a transaction or snapshot chunk, the position to confirm.
type item struct {
	changes []connectors.Change
	pos     string
	commit  time.Time
}

// NewSource returns a source for a postgresql system with a receive mixer.
func NewSource(sys *config.System, deps connectors.SourceDeps) (connectors.Source, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{sys: sys, deps: deps, log: log, tables: map[string]*srcTable{},
		slot: sys.Settings.String(SettingSlotName), pub: sys.Settings.String(SettingPublicationName)}
	if s.slot == "" {
		s.slot = DefaultName(sys.Name)
	}
	if s.pub == "" {
		s.pub = DefaultName(sys.Name)
	}
	if !identRE.MatchString(s.slot) {
		return nil, fmt.Errorf("%s: slot name %q: use lowercase letters, digits and _ (at most 63)", sys.PosOf(SettingSlotName), s.slot)
	}
	for _, loc := range sys.Receive.Locations() {
		t := &srcTable{loc: loc, need: map[string]bool{}}
		for _, rule := range sys.Receive.Rules(loc) {
			for _, f := range rule.Fields() {
				if !f.HasHardcode {
					t.need[f.Source.Head()] = true
				}
			}
		}
		s.tables[loc] = t
	}
	return s, nil
}

var identRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// DefaultName is the slot and publication name of a system: remix_ and the
// system name, lowercased, with '-' and '.' turned into '_'.
func DefaultName(system string) string {
	n := "remix_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(system))
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// checkpointName is where the source keeps its state in the checkpoints.
const checkpointName = "postgresql"

// state is the source's checkpoint: which slot it reads, and how far the
// initial snapshot got.
type state struct {
	Slot     string   `json:"slot"`
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
	if err := s.ensurePublication(ctx); err != nil {
		return err
	}
	st, err := s.loadState(ctx)
	if err != nil {
		return err
	}
	slotLSN, exists, err := s.slotState(ctx)
	if err != nil {
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
	case !exists && st != nil && st.Slot == s.slot:
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
		st = &state{Slot: s.slot, Snapshot: "running"}
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
		if st == nil {
			// A slot without our checkpoint (made by hand, or Redis lost its
			// data): the targets may lack the rows from before it, so copy
			// them; a snapshot taken now converges with the stream.
			st = &state{Slot: s.slot, Snapshot: "running"}
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
	// A few items only: the reader gathers finished transactions into large
	// items while the ingest is busy, and a snapshot item is a whole chunk,
	// so this bounds the memory that waits here to a few chunks.
	s.out = make(chan item, 4)
	s.errc = make(chan error, 1)
	s.wg.Add(1)
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
		b.Changes, b.Position, b.CommitTime = it.changes, it.pos, it.commit
		return b, nil
	}
	add := func(it item) {
		b.Changes = append(b.Changes, it.changes...)
		if it.pos != "" {
			b.Position = it.pos
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
	var problems []string
	report := func(keys []string, msg string) {
		problems = append(problems, fmt.Sprintf("%s: %s.%s: %s", s.sys.PosOf(keys...), s.sys.Name, strings.Join(keys, "."), msg))
	}
	locs := make([]string, 0, len(s.tables))
	for l := range s.tables {
		locs = append(locs, l)
	}
	sort.Strings(locs)
	for _, loc := range locs {
		t := s.tables[loc]
		var ident string
		var relid uint32
		err := s.pool.QueryRow(ctx, `SELECT c.oid, c.relreplident FROM pg_class c WHERE c.oid = to_regclass($1)`, quoteQualified(loc)).Scan(&relid, &ident)
		if err != nil {
			report([]string{"receive_mixer", loc}, fmt.Sprintf("table %s does not exist", loc))
			continue
		}
		cols := map[string]bool{}
		rows, err := s.pool.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, relid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			cols[n] = true
		}
		rows.Close()
		for c := range t.need {
			if !cols[c] {
				report(s.fieldPath(loc, c), fmt.Sprintf("table %s has no column %q", loc, c))
			}
		}
		// The identity: the primary key for REPLICA IDENTITY DEFAULT, the
		// chosen index for USING INDEX; FULL still needs a key to tell rows
		// apart in the snapshot and in the streams.
		var keyQuery string
		switch ident {
		case "d", "f":
			keyQuery = `SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(n, o) ON true
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.o`
		case "i":
			keyQuery = `SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(n, o) ON true
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n WHERE i.indrelid = $1 AND i.indisreplident ORDER BY k.o`
		default:
			report([]string{"receive_mixer", loc}, fmt.Sprintf("table %s has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be replicated; give it a primary key (or ALTER TABLE %s REPLICA IDENTITY USING INDEX ...)", loc, quoteQualified(loc)))
			continue
		}
		rows, err = s.pool.Query(ctx, keyQuery, relid)
		if err != nil {
			return err
		}
		t.keyCols = t.keyCols[:0]
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			t.keyCols = append(t.keyCols, n)
		}
		rows.Close()
		if len(t.keyCols) == 0 {
			report([]string{"receive_mixer", loc}, fmt.Sprintf("table %s has no primary key, so Remix cannot tell its rows apart; add one (ALTER TABLE %s ADD PRIMARY KEY (...)) or a unique index and REPLICA IDENTITY USING INDEX", loc, quoteQualified(loc)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("source %s does not fit its receive mixer:\n%s", s.sys.Name, strings.Join(problems, "\n"))
	}
	return nil
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

// ensurePublication creates the publication for the mapped tables, or adds
// the tables it lacks, and checks it publishes every kind of change.
func (s *Source) ensurePublication(ctx context.Context) error {
	var all, ins, upd, del, trunc bool
	err := s.pool.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`, s.pub).
		Scan(&all, &ins, &upd, &del, &trunc)
	quoted := make([]string, 0, len(s.tables))
	for loc := range s.tables {
		quoted = append(quoted, quoteQualified(loc))
	}
	sort.Strings(quoted)
	if err != nil {
		if _, err := s.pool.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", quoteIdent(s.pub), strings.Join(quoted, ", "))); err != nil {
			return fmt.Errorf("creating publication %s: %w", s.pub, err)
		}
		s.log.Info("publication created", "publication", s.pub, "tables", len(quoted))
		return nil
	}
	if !ins || !upd || !del || !trunc {
		return fmt.Errorf("%s: publication %s does not publish every kind of change (insert %v, update %v, delete %v, truncate %v); "+
			"ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate')", s.sys.Name, s.pub, ins, upd, del, trunc, quoteIdent(s.pub))
	}
	if all {
		return nil
	}
	for loc := range s.tables {
		var in bool
		schema, table, _ := strings.Cut(loc, ".")
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)`,
			s.pub, schema, table).Scan(&in); err != nil {
			return err
		}
		if !in {
			if _, err := s.pool.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", quoteIdent(s.pub), quoteQualified(loc))); err != nil {
				return fmt.Errorf("adding %s to publication %s: %w", loc, s.pub, err)
			}
			s.log.Info("table added to the publication", "publication", s.pub, "table", loc)
		}
	}
	return nil
}

// slotState returns the slot's confirmed position, whether it exists, and
// fails when it exists but cannot be used.
func (s *Source) slotState(ctx context.Context) (pglogrepl.LSN, bool, error) {
	var plugin, walStatus string
	var confirmed *string
	var db string
	err := s.pool.QueryRow(ctx, `SELECT plugin, COALESCE(wal_status, ''), confirmed_flush_lsn::text, database FROM pg_replication_slots WHERE slot_name = $1`, s.slot).
		Scan(&plugin, &walStatus, &confirmed, &db)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil { // not an answer about the slot: never read as "it is gone"
		return 0, false, fmt.Errorf("%w: reading the state of slot %s: %w", connectors.ErrUnavailable, s.slot, err)
	}
	if plugin != "pgoutput" {
		return 0, true, fmt.Errorf("%s: replication slot %s uses plugin %s, not pgoutput; name another slot with slot_name", s.sys.Name, s.slot, plugin)
	}
	if walStatus == "lost" {
		return 0, true, fmt.Errorf("%w: %s: replication slot %s was invalidated (wal_status lost, see max_slot_wal_keep_size): the WAL it needed is gone. "+
			"Run `remix reset %s` to drop it and copy the tables again", ErrSlotLost, s.sys.Name, s.slot, s.sys.Name)
	}
	if confirmed == nil {
		return 0, true, fmt.Errorf("%s: replication slot %s has no confirmed position", s.sys.Name, s.slot)
	}
	lsn, err := pglogrepl.ParseLSN(*confirmed)
	return lsn, true, err
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

// Reset forgets a source's replication state: drops its slot (ending a
// session that holds it) and clears its checkpoint, so the next start takes
// a new snapshot. Used by `remix reset`.
func Reset(ctx context.Context, sys *config.System, cps connectors.Checkpoints) error {
	src, err := NewSource(sys, connectors.SourceDeps{Checkpoints: cps})
	if err != nil {
		return err
	}
	s := src.(*Source)
	pool, err := newPool(ctx, sys, "remix-reset")
	if err != nil {
		return err
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, s.slot)
	if _, err := pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, s.slot); err != nil {
		return fmt.Errorf("dropping slot %s: %w", s.slot, err)
	}
	return cps.Save(ctx, checkpointName, "")
}
