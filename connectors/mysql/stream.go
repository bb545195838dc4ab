package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// chunkChanges is the most changes handed over at once from inside a
// transaction; a transaction's position goes with its last chunk only.
const chunkChanges = 1000

// coalesceChanges is how many changes of finished transactions gather into
// one item while Next is not taking items; past it the reader waits.
const coalesceChanges = 5000

// startStream connects to the server as a replica and asks for every
// transaction after the GTID set; the syncer hands each event to q.
func (s *Source) startStream(ctx context.Context, gtid string, q *eventQueue) (*replication.BinlogStreamer, error) {
	host, port, err := splitAddr(s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: dsn address %q: %w", s.sys.PosOf(SettingDSN), s.cfg.Addr, err)
	}
	hb := s.sys.Settings.Duration(SettingHeartbeat)
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: s.serverID, Flavor: s.flavor, Host: host, Port: port, User: s.cfg.User, Password: s.cfg.Passwd,
		Localhost: s.registration(), Charset: "utf8mb4", TLSConfig: s.cfg.TLS,
		TimestampStringLocation: time.UTC, HeartbeatPeriod: hb, ReadTimeout: 3*hb + 10*time.Second,
		DisableRetrySync: true, DiscardGTIDSet: true, SynchronousEventHandler: q,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), // its own reconnect chatter; errors come back through GetEvent
	})
	set, err := mysql.ParseGTIDSet(s.flavor, gtid)
	if err != nil {
		syncer.Close()
		return nil, fmt.Errorf("%s: GTID set %q: %w", s.sys.Name, gtid, err)
	}
	str, err := syncer.StartSyncGTID(set)
	if err != nil {
		syncer.Close()
		return nil, s.streamError(err)
	}
	s.closers = append(s.closers, syncer.Close)
	s.log.Info("streaming changes", "gtid", gtid, "server_id", s.serverID, "flavor", s.flavor)
	return str, nil
}

// streamError classifies an error of the replication connection.
func (s *Source) streamError(err error) error {
	var me *mysql.MyError
	msg := err.Error()
	if errors.As(err, &me) {
		msg = me.Message
	}
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "purged") || strings.Contains(low, "could not find gtid state") || strings.Contains(low, "gtid") && strings.Contains(low, "not found"):
		return fmt.Errorf("%w: %s: %s; run `remix reset %s` and restart the ingest to copy the tables again", ErrBinlogGone, s.sys.Name, msg, s.sys.Name)
	case strings.Contains(low, "same server_id") || strings.Contains(low, "same server_uuid") || strings.Contains(low, "slave with the same") || strings.Contains(low, "replica with the same"):
		return fmt.Errorf("%w: %s: %s; give the source a server_id of its own", ErrServerSetup, s.sys.Name, msg)
	case me != nil && (me.Code == errSpecificAccess || me.Code == errAccessDenied):
		return fmt.Errorf("%w: %s: %s (the dsn's user needs REPLICATION SLAVE)", ErrServerSetup, s.sys.Name, msg)
	}
	return fmt.Errorf("%w: %s: replication connection: %w", connectors.ErrUnavailable, s.sys.Name, err)
}

// relation is a table as a table map event of the log describes it.
type relation struct {
	loc       string
	table     *srcTable // nil when the receive mixer does not map it
	watermark bool
	cols      []colDec
	need      []bool
	keyIdx    []int
	gone      *connectors.MissingFieldsError // columns the mixer reads are missing (shape.go)
}

// eventQueue takes the syncer's events (go-mysql's SynchronousEventHandler,
// called on the syncer's goroutine) into a channel of our own. The
// library's buffer works the same way but hides its length, and a
// lingering reader decides by it whether the log is quiet (see lingering).
type eventQueue struct {
	ch   chan *replication.BinlogEvent
	done <-chan struct{}
}

// queueEvents is how many events wait for the reader before the syncer
// stops reading the connection: go-mysql's own default (EventCacheCount).
const queueEvents = 10240

func newEventQueue(done <-chan struct{}) *eventQueue {
	return &eventQueue{ch: make(chan *replication.BinlogEvent, queueEvents), done: done}
}

// HandleEvent queues an event, waiting while the queue is full (the
// server then waits on the connection).
func (q *eventQueue) HandleEvent(e *replication.BinlogEvent) error {
	select {
	case q.ch <- e:
		return nil
	case <-q.done:
		return context.Canceled
	}
}

// reader decodes the binary log. It runs on one goroutine.
type reader struct {
	s       *Source
	events  chan *replication.BinlogEvent // the queue's channel
	errc    chan error                    // the stream's end: its error
	timer   *time.Timer
	rels    map[uint64]*relation
	gtid    *gtidTracker
	st      state // the progress every position carries
	seq     uint64
	cur     []connectors.Change // the open transaction's changes
	curTime time.Time
	inBegin bool
	open    bool  // inside a transaction: its GTID event read, its commit not yet
	pending *item // finished transactions not yet taken by Next
	tried   time.Time
	snap    *snapRun
	win     *window

	linger    time.Duration // how long finished transactions gather while the log is quiet (the linger setting)
	pendingAt time.Time     // when pending began gathering changes
	draining  bool          // reading what came while the reader lingered: it joins the pending batch
}

// errQuiet: no event came within the wait.
var errQuiet = errors.New("no event")

func (s *Source) run(ctx context.Context, str *replication.BinlogStreamer, q *eventQueue, st *state) error {
	g, err := newTracker(s.flavor, st.GTID)
	if err != nil {
		return err
	}
	r := &reader{s: s, events: q.ch, errc: make(chan error, 1), timer: time.NewTimer(time.Hour), rels: map[uint64]*relation{}, gtid: g, st: *st,
		linger: connectors.Linger(s.sys)}
	r.timer.Stop()
	go func() {
		// With a handler of its own, the streamer only ever carries the
		// stream's end.
		_, err := str.GetEvent(ctx)
		r.errc <- err
	}()
	if st.Snapshot == "running" {
		r.snap = s.newSnapRun(ctx, st)
	}
	for {
		if r.snap != nil && r.win == nil && (r.pending == nil || len(r.pending.changes) < coalesceChanges) {
			if err := r.nextChunk(ctx); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
		}
		if r.lingering() {
			// Sleep instead of waking for every transaction (the queue
			// takes what comes meanwhile), then read that into the same
			// batch and hand it over.
			if err := connectors.Sleep(ctx, time.Until(r.pendingAt.Add(r.linger))); err != nil {
				return err
			}
			r.draining = true
			for n := len(r.events); n > 0; n-- {
				if err := r.handle(ctx, <-r.events); err != nil {
					return err
				}
			}
			r.draining = false
			r.handOver()
			continue
		}
		wait := 250 * time.Millisecond
		if r.pending != nil && len(r.pending.changes) > 0 {
			wait = r.pendingWait()
		}
		ev, err := r.next(ctx, wait)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == errQuiet:
			if err := r.flush(ctx); err != nil { // hand over what waits
				return err
			}
			continue
		case err != nil:
			return s.streamError(err)
		}
		if err := r.handle(ctx, ev); err != nil {
			return err
		}
		if r.pending != nil && time.Since(r.tried) > 200*time.Millisecond {
			r.handOver()
		}
	}
}

// next returns the next event, or errQuiet when none came within wait.
func (r *reader) next(ctx context.Context, wait time.Duration) (*replication.BinlogEvent, error) {
	select {
	case ev := <-r.events: // one waiting: no timer
		return ev, nil
	default:
	}
	r.timer.Reset(wait)
	defer r.timer.Stop()
	select {
	case ev := <-r.events:
		return ev, nil
	case err := <-r.errc:
		return nil, err
	case <-r.timer.C:
		return nil, errQuiet
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// quietEvents: with fewer events than this queued, the log is quiet and a
// lingering reader may sleep; with more it is catching up, and reads on
// (its batches then fill without waiting).
const quietEvents = 100

// lingering reports whether the reader sleeps before reading on: finished
// transactions wait for their linger and the log is quiet (hardly any
// event queued, not inside a transaction, no snapshot running).
func (r *reader) lingering() bool {
	return r.linger > 0 && r.pending != nil && len(r.pending.changes) > 0 && time.Since(r.pendingAt) < r.linger &&
		len(r.events) < quietEvents && !r.open && len(r.cur) == 0 && r.snap == nil
}

// gathering reports whether finished transactions, n changes so far, are
// kept back for more to join them: their linger is not over, or what came
// meanwhile is being read.
func (r *reader) gathering(n int) bool {
	return r.linger > 0 && n < coalesceChanges && (r.draining || time.Since(r.pendingAt) < r.linger)
}

// pendingWait is how long the reader waits for the next event while
// finished transactions are pending: until their linger is over, else
// 2 ms (a quiet log's pending transactions go on at once, while one event
// more can still join them to a catch-up's).
func (r *reader) pendingWait() time.Duration {
	if r.linger > 0 {
		if d := time.Until(r.pendingAt.Add(r.linger)); d > 0 {
			return d
		}
	}
	return 2 * time.Millisecond
}

// handle applies one event.
func (r *reader) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	switch e := ev.Event.(type) {
	case *replication.MariadbGTIDEvent:
		r.gtid.beginMariaDB(e.GTID)
		r.begin(time.Unix(int64(ev.Header.Timestamp), 0).UTC())
	case *replication.GTIDEvent:
		if err := r.gtid.beginMySQL(e.SID, e.GNO); err != nil {
			return err
		}
		at := time.Unix(int64(ev.Header.Timestamp), 0).UTC()
		if e.OriginalCommitTimestamp > 0 {
			at = e.OriginalCommitTime().UTC()
		}
		r.begin(at)
	case *replication.TableMapEvent:
		return r.tableMap(ctx, e)
	case *replication.RowsEvent:
		return r.rows(ctx, ev.Header.EventType, e)
	case *replication.XIDEvent:
		return r.commit(ctx)
	case *replication.QueryEvent:
		switch q := strings.TrimSpace(string(e.Query)); {
		case strings.EqualFold(q, "BEGIN"):
			r.inBegin = true
		case strings.EqualFold(q, "COMMIT"):
			return r.commit(ctx)
		case !r.inBegin:
			// A statement that is its own transaction (DDL): tables it
			// changed get new table ids, and so a fresh description.
			return r.commit(ctx)
		}
	case *replication.TransactionPayloadEvent: // MySQL's compressed transactions
		for _, inner := range e.Events {
			if err := r.handle(ctx, inner); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *reader) begin(at time.Time) {
	r.curTime, r.inBegin, r.open = at, false, true
}

// tableMap describes the table of the rows events that follow.
func (r *reader) tableMap(ctx context.Context, e *replication.TableMapEvent) error {
	loc := string(e.Schema) + "." + string(e.Table)
	if old := r.rels[e.TableID]; old != nil && old.loc == loc {
		return nil
	}
	rel := &relation{loc: loc, table: r.s.tables[loc], watermark: loc == r.s.watermark}
	r.rels[e.TableID] = rel
	if rel.table == nil {
		return nil
	}
	names := e.ColumnNameString()
	if len(names) != int(e.ColumnCount) {
		return fmt.Errorf("%w: %s: the binary log has no column names for %s: set binlog_row_metadata = FULL", ErrServerSetup, r.s.sys.Name, loc)
	}
	t := rel.table
	info := t.info
	for _, n := range names {
		if info == nil || info.cols[n] == nil {
			fresh, err := loadTable(ctx, r.s.db, loc)
			if err != nil {
				return err
			}
			if fresh != nil {
				info = fresh
				t.info = fresh
			}
			break
		}
	}
	unsigned, collations := e.UnsignedMap(), e.CollationMap()
	enums, sets := e.EnumStrValueMap(), e.SetStrValueMap()
	rel.cols = make([]colDec, len(names))
	rel.need = make([]bool, len(names))
	for i, n := range names {
		var ic *column
		if info != nil {
			ic = info.cols[n]
		}
		cs := ""
		if id, ok := collations[i]; ok {
			cs = r.s.charset[id]
			if cs == "" && id == 63 {
				cs = "binary"
			}
		}
		rel.cols[i] = streamDec(n, e.ColumnType[i], e.ColumnMeta[i], unsigned[i], cs, enums[i], sets[i], ic)
		rel.need[i] = t.need[n]
	}
	for _, k := range e.PrimaryKey {
		rel.keyIdx = append(rel.keyIdx, int(k))
	}
	if len(rel.keyIdx) == 0 {
		for _, k := range t.keyCols {
			for i, n := range names {
				if n == k {
					rel.keyIdx = append(rel.keyIdx, i)
				}
			}
		}
	}
	r.s.checkShape(rel, names)
	return nil
}

// rows turns a rows event of a mapped table into changes.
func (r *reader) rows(ctx context.Context, typ replication.EventType, e *replication.RowsEvent) error {
	rel := r.rels[e.TableID]
	if rel == nil {
		return fmt.Errorf("a rows event of table id %d came before its table map", e.TableID)
	}
	if rel.watermark {
		return r.watermarkRows(typ, e)
	}
	if rel.table == nil {
		return nil
	}
	var changes []connectors.Change
	switch typ {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2, replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		for _, row := range e.Rows {
			c := r.s.change(rel, row, mixer.OpUpsert)
			c.Record.Created = c.Err == nil
			changes = append(changes, c)
		}
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2,
		replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			before := r.s.change(rel, e.Rows[i], mixer.OpDelete)
			after := r.s.change(rel, e.Rows[i+1], mixer.OpUpsert)
			if typ == replication.PARTIAL_UPDATE_ROWS_EVENT && after.Err == nil {
				after.Err = fmt.Errorf("%s: a partial JSON update does not carry the whole value: set binlog_row_value_options = ''", rel.loc)
			}
			if before.Err == nil && after.Err == nil && before.Key != after.Key {
				// The row moved to a new key: its old key is deleted.
				after.Record.Created = true
				changes = append(changes, before)
			}
			changes = append(changes, after)
		}
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		for _, row := range e.Rows {
			changes = append(changes, r.s.change(rel, row, mixer.OpDelete))
		}
	default:
		return nil
	}
	if r.win != nil && r.win.open && r.win.table == rel.loc {
		r.win.drop(changes) // the log has these rows newer than the chunk
	}
	return r.add(ctx, changes)
}

// change decodes one row image. A delete keeps the key columns only; an
// upsert the columns the mixer reads (every column, while some it reads
// are gone). A row that cannot be decoded is a change with Err set.
func (s *Source) change(rel *relation, row []any, op mixer.Op) connectors.Change {
	fields := make(map[string]any, len(rel.cols))
	var bad error
	for i, d := range rel.cols {
		if i >= len(row) {
			break
		}
		isKey := false
		for _, k := range rel.keyIdx {
			isKey = isKey || k == i
		}
		if !isKey && (op == mixer.OpDelete || !rel.need[i] && rel.gone == nil) {
			continue
		}
		v, err := d.stream(row[i])
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("%s column %s: %w", rel.loc, d.name, err)
			}
			continue
		}
		fields[d.name] = v
	}
	key, kerr := s.rowKey(rel.loc, rel.keyNames(), fields)
	if kerr != nil {
		key = s.sys.Name + "/" + rel.loc
		bad = errors.Join(bad, kerr)
	}
	for _, k := range rel.keyIdx {
		if k < len(rel.cols) && !rel.need[k] && rel.gone == nil {
			delete(fields, rel.cols[k].name)
		}
	}
	c := connectors.Change{Record: mixer.Record{Location: rel.loc, Op: op, Fields: fields, Complete: op == mixer.OpUpsert}, Key: key}
	switch {
	case bad != nil:
		c.Err = bad
	case rel.gone != nil && op == mixer.OpUpsert:
		c.Err = rel.gone
	}
	return c
}

func (rel *relation) keyNames() []string {
	out := make([]string, len(rel.keyIdx))
	for i, k := range rel.keyIdx {
		if k < len(rel.cols) {
			out[i] = rel.cols[k].name
		}
	}
	return out
}

// add queues changes of the open transaction.
func (r *reader) add(ctx context.Context, changes []connectors.Change) error {
	if len(changes) == 0 {
		return nil
	}
	r.s.stats.Changes.Add(int64(len(changes)))
	for i := range changes {
		changes[i].CommitTime = r.curTime
	}
	r.cur = append(r.cur, changes...)
	if len(r.cur) >= chunkChanges {
		it := item{changes: r.cur, commit: r.curTime}
		r.cur = nil
		return r.emit(ctx, it)
	}
	return nil
}

// commit ends the open transaction: its changes go with the position that
// includes it.
func (r *reader) commit(ctx context.Context) error {
	if err := r.gtid.commit(); err != nil {
		return err
	}
	r.inBegin, r.open = false, false
	r.s.stats.Transactions.Add(1)
	r.seq++
	r.st.GTID, r.st.Seq = r.gtid.String(), r.seq
	it := item{changes: r.cur, pos: r.st.position(), label: r.st.GTID, commit: r.curTime}
	r.cur = nil
	r.s.posMu.Lock()
	r.s.readPos = r.st.GTID
	r.s.posMu.Unlock()
	if len(it.changes) == 0 {
		// Nothing mapped: the position alone, handed over when Next is
		// free or the log is quiet.
		if r.pending == nil {
			r.pending = &it
		} else {
			r.pending.pos, r.pending.label = it.pos, it.label
		}
		return nil
	}
	return r.emit(ctx, it)
}

// emit hands an item over; while Next is busy, or while their linger
// lasts, finished transactions gather into one pending item (the last
// position stands for all), up to coalesceChanges, and only then does the
// reader wait.
func (r *reader) emit(ctx context.Context, it item) error {
	if r.pending != nil {
		if len(r.pending.changes) == 0 {
			r.pendingAt = time.Now()
		}
		r.pending.changes = append(r.pending.changes, it.changes...)
		if it.pos != "" {
			r.pending.pos, r.pending.label = it.pos, it.label
		}
		if !it.commit.IsZero() {
			r.pending.commit = it.commit
		}
	} else {
		r.pending, r.pendingAt = &it, time.Now()
	}
	if r.gathering(len(r.pending.changes)) || r.try() {
		return nil
	}
	if len(r.pending.changes) < coalesceChanges {
		return nil
	}
	return r.flush(ctx)
}

// handOver hands the pending item over if it is done gathering and Next
// is free; else it keeps gathering.
func (r *reader) handOver() {
	if r.pending != nil && !r.gathering(len(r.pending.changes)) {
		r.try()
	}
}

// try hands the pending item over if Next is waiting for one.
func (r *reader) try() bool {
	r.tried = time.Now()
	select {
	case r.s.out <- *r.pending:
		r.pending = nil
		return true
	default:
		return false
	}
}

// flush hands the pending item over, waiting as long as it takes.
func (r *reader) flush(ctx context.Context) error {
	if r.pending == nil {
		return nil
	}
	select {
	case r.s.out <- *r.pending:
		r.pending = nil
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
