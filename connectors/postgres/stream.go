package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// chunkChanges is the most changes handed over at once from inside a
// transaction; a transaction's position goes with its last chunk only.
const chunkChanges = 1000

// reader decodes the replication stream. It runs on one goroutine.
type reader struct {
	s           *Source
	conn        *pgconn.PgConn
	relations   map[uint32]*relation
	baseTypes   map[uint32]uint32 // user-defined type -> its base type if a domain, else 0
	cur         *item             // the open non-streamed transaction's pending changes
	curXid      uint32
	curOrigin   string // the system Remix wrote the open transaction for (see originSystem)
	pending     *item  // finished transactions not yet taken by Next
	inStream    bool
	streamXid   uint32
	streamed    map[uint32]*streamBuf
	rows        rowDecoder           // reused for every row message
	one         [1]connectors.Change // reused for single-change messages (addChanges copies)
	received    pglogrepl.LSN
	interval    time.Duration
	next        time.Time     // next status update
	lastMessage time.Time     // when the server last sent anything
	lowWater    int           // the socket's receive low-water mark: 0 the system's, -1 not settable (see lowWaterBytes)
	rate        float64       // bytes a second the last receive call read
	pendingAt   time.Time     // when pending began gathering
	linger      time.Duration // how long finished transactions gather while the stream is quiet (the linger setting)
	drainUntil  time.Time     // having lingered, the reader reads what came meanwhile into the pending batch until then
	// Capacity hints: how many changes the last transaction had, and the
	// last gathered item handed over. Changes are large values; a slice
	// grown by append from empty to thousands copies them several times
	// over (a quarter at a time once past 256), and a catch-up gathers
	// every change into one.
	lastTx, lastGathered int
}

// stream starts replication at start (the slot's confirmed position) and
// reads until ctx ends or the connection fails.
func (s *Source) stream(ctx context.Context, start pglogrepl.LSN) error {
	args := []string{"proto_version '2'", "publication_names " + quoteLiteral(s.pub), "streaming 'on'", "messages 'false'"}
	if err := pglogrepl.StartReplication(ctx, s.repl, s.slot, start, pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: args}); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch pgErr.Code {
			case "55006": // object in use: another session reads the slot
				return fmt.Errorf("%w: replication slot %s is being read by another process: %s", connectors.ErrUnavailable, s.slot, pgErr.Message)
			case "42704": // undefined object
				return fmt.Errorf("%w: %s: replication slot %s disappeared; run `remix reset %s` to start over with a fresh snapshot", ErrSlotLost, s.sys.Name, s.slot, s.sys.Name)
			case "55000": // object not in prerequisite state: an invalidated slot
				if strings.Contains(pgErr.Message, "can no longer get changes") || strings.Contains(pgErr.Message, "invalidated") {
					return fmt.Errorf("%w: %s: %s; run `remix reset %s` to start over with a fresh snapshot", ErrSlotLost, s.sys.Name, pgErr.Message, s.sys.Name)
				}
			}
		}
		return fmt.Errorf("starting replication from %s: %w", start, err)
	}
	s.log.Info("streaming changes", "slot", s.slot, "from", start.String())
	interval := min(s.sys.Settings.Duration(SettingStatusInterval), 10*time.Second)
	r := &reader{s: s, conn: s.repl, relations: map[uint32]*relation{}, baseTypes: map[uint32]uint32{}, streamed: map[uint32]*streamBuf{}, received: start, interval: interval,
		linger: connectors.Linger(s.sys)}
	defer r.dropStreamed()
	err := r.loop(ctx)
	if ctx.Err() != nil {
		// A graceful stop: tell the server what is durable, so the next
		// reader does not read it again.
		_ = r.conn.Conn().SetReadDeadline(time.Time{})
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = r.status(sctx, false)
		cancel()
	}
	return err
}

func (r *reader) loop(ctx context.Context) error {
	// Reads wait on a socket deadline rather than a context: pgconn watches a
	// context with extra work on every call, and this loop makes one call per
	// WAL message. Cancelling ctx moves the deadline to now.
	stop := context.AfterFunc(ctx, func() { _ = r.conn.Conn().SetReadDeadline(time.Now()) })
	defer stop()
	r.next = time.Now().Add(r.interval)
	r.lastMessage = time.Now()
	for {
		if !time.Now().Before(r.next) {
			// Ask for a reply: it keeps an idle slot moving and shows the
			// connection is alive.
			if err := r.status(ctx, true); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		deadline := r.next
		if r.pending != nil { // do not sit on finished transactions while the stream is quiet
			deadline = r.pendingDeadline()
		}
		if d := time.Now().Add(lowWaterWait); r.catchingUp() && d.Before(deadline) {
			deadline = d
		}
		if err := r.conn.Conn().SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("%w: replication connection: %w", connectors.ErrUnavailable, err)
		}
		if ctx.Err() != nil { // cancelled between the check above and the deadline
			return ctx.Err()
		}
		quiet, err := r.receive(ctx)
		if err != nil {
			return err
		}
		if quiet {
			if err := r.flush(ctx); err != nil {
				return err
			}
			// The server answers every status update that asks for a reply
			// (and sends keepalives on its own): silence this long means the
			// network is gone without telling us.
			if time.Since(r.lastMessage) > 2*time.Minute {
				return fmt.Errorf("%w: nothing from the server for %v", connectors.ErrUnavailable, time.Since(r.lastMessage).Round(time.Second))
			}
		}
	}
}

// receive handles messages until the read deadline passes or the next
// status update is due. It is quiet when the deadline passed with nothing
// read since the call: a deadline that cuts a read short while messages
// keep coming (the short ones of a catch-up) is not a quiet stream.
func (r *reader) receive(ctx context.Context) (quiet bool, err error) {
	shortened := r.pending != nil // the caller already set a short deadline
	got, bytes, began := false, 0, time.Now()
	defer func() { r.rate = float64(bytes) / max(time.Since(began).Seconds(), 1e-6) }()
	for {
		msg, err := r.conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if pgconn.Timeout(err) {
				r.handOver() // its linger may be over
				// Gathering stops at gatherFor, even while messages come:
				// they may add nothing to gather (transactions of tables
				// not published, a long streamed transaction), and what
				// is pending waits to be confirmed.
				return !got || r.pending != nil && time.Since(r.pendingAt) >= gatherFor, nil
			}
			return false, fmt.Errorf("%w: replication connection: %w", connectors.ErrUnavailable, err)
		}
		now := time.Now() // once per message: on busy streams the clock shows in profiles
		r.lastMessage, got = now, true
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			bytes += len(m.Data)
			if err := r.copyData(ctx, m.Data); err != nil {
				return false, err
			}
		case *pgproto3.ErrorResponse:
			pgErr := pgconn.ErrorResponseToPgError(m)
			if pgErr.Code == "42704" || strings.Contains(pgErr.Message, "does not exist") && strings.Contains(pgErr.Message, "slot") {
				return false, fmt.Errorf("%w: %s: %s", ErrSlotLost, r.s.sys.Name, pgErr.Message)
			}
			return false, fmt.Errorf("replication: %w", pgErr)
		}
		if !now.Before(r.next) {
			return false, nil
		}
		r.handOver()
		if now.Before(r.drainUntil) { // still reading what came while lingering
			continue
		}
		if r.pending != nil && r.linger > 0 && r.cur == nil && !r.inStream && r.nearEnd() {
			// Lingering between transactions: sleep instead of waking for
			// every transaction, then read what came meanwhile into the
			// same batch. (Inside a transaction the rest of it is coming
			// now: read on.)
			if wait := min(time.Until(r.pendingAt.Add(r.linger)), time.Until(r.next)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return false, ctx.Err()
				case <-t.C:
				}
			}
			shortened = true
			r.drainUntil = time.Now().Add(lingerDrain)
			if err := r.conn.Conn().SetReadDeadline(r.drainUntil); err != nil {
				return false, err
			}
			continue
		}
		// Do not sit on finished transactions if the stream goes quiet
		// now, gathering or not: the deadline set before they were
		// pending is the next status update, seconds away. (A reader
		// "behind" only because other databases of the server write WAL
		// gathers too, and then the stream often goes quiet at once.)
		if r.pending != nil && !shortened {
			shortened = true
			if err := r.conn.Conn().SetReadDeadline(r.pendingDeadline()); err != nil {
				return false, err
			}
		}
	}
}

// idle reports whether nothing read is waiting to be confirmed: then the
// slot can move to the server's position, so WAL of unrelated tables does
// not pile up.
func (r *reader) idle() bool {
	return r.cur == nil && r.pending == nil && len(r.streamed) == 0 && !r.s.snapshotPending.Load() &&
		r.s.durable.Load() >= r.s.lastEmitted.Load()
}

// status tells the server how far the ingest has made changes durable.
// Write, flush and apply are all set: pglogrepl fills a zero flush position
// with the write position, which would confirm what is not yet durable.
func (r *reader) status(ctx context.Context, reply bool) error {
	flush := pglogrepl.LSN(r.s.durable.Load())
	write := max(r.received, flush)
	_ = r.conn.Conn().SetWriteDeadline(time.Now().Add(10 * time.Second)) // a half-open connection must not hang us
	err := pglogrepl.SendStandbyStatusUpdate(ctx, r.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: write, WALFlushPosition: flush, WALApplyPosition: flush, ReplyRequested: reply,
	})
	_ = r.conn.Conn().SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("%w: sending replication status: %w", connectors.ErrUnavailable, err)
	}
	r.next = time.Now().Add(r.interval)
	return nil
}

func (r *reader) copyData(ctx context.Context, data []byte) error {
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return err
		}
		// A logical walsender's keepalive carries how far it has decoded and
		// sent: nothing before it is still to come.
		if r.idle() && uint64(ka.ServerWALEnd) > r.s.durable.Load() {
			r.s.durable.Store(uint64(ka.ServerWALEnd))
			r.s.lastEmitted.Store(uint64(ka.ServerWALEnd))
			r.s.stats.ConfirmedLSN.Store(uint64(ka.ServerWALEnd))
		}
		if ka.ReplyRequested {
			return r.status(ctx, false)
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return err
		}
		if end := xld.WALStart + pglogrepl.LSN(len(xld.WALData)); end > r.received {
			r.received = end
			r.s.stats.ReceivedLSN.Store(uint64(end))
		}
		return r.message(ctx, xld.WALData)
	}
	return nil
}

// message handles one pgoutput message.
func (r *reader) message(ctx context.Context, data []byte) error {
	if len(data) > 0 && (data[0] == 'I' || data[0] == 'U' || data[0] == 'D') {
		m, err := r.rows.decode(data, r.inStream)
		if err != nil {
			return fmt.Errorf("decoding a pgoutput %q message: %w", data[0], err)
		}
		return r.add(ctx, &m)
	}
	msg, err := pglogrepl.ParseV2(data, r.inStream)
	if err != nil {
		return fmt.Errorf("decoding a pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessageV2:
		return r.relation(ctx, &m.RelationMessage)
	case *pglogrepl.BeginMessage:
		r.cur, r.curXid, r.curOrigin = &item{commit: m.CommitTime}, m.Xid, ""
		if r.lastTx > 1 {
			r.cur.changes = make([]connectors.Change, 0, r.lastTx)
		}
	case *pglogrepl.OriginMessage:
		// A transaction written under a replication origin: Remix's own
		// writes carry one named for the system they were made for.
		if r.inStream {
			if b := r.streamed[r.streamXid]; b != nil {
				b.origin = originSystem(m.Name)
			}
		} else {
			r.curOrigin = originSystem(m.Name)
		}
	case *pglogrepl.CommitMessage:
		it := r.cur
		if it == nil {
			it = &item{}
		}
		r.cur = nil
		r.lastTx = min(len(it.changes), chunkChanges)
		it.pos, it.commit = formatLSN(m.TransactionEndLSN), m.CommitTime
		r.s.stats.Transactions.Add(1)
		return r.emit(ctx, *it, m.TransactionEndLSN)
	case *pglogrepl.TruncateMessageV2:
		var changes []connectors.Change
		for _, id := range m.RelationIDs {
			if rel := r.relations[id]; rel != nil && rel.table != nil {
				changes = append(changes, connectors.Change{Record: mixer.Record{Location: rel.loc, Op: mixer.OpTruncate, Fields: map[string]any{}},
					Key: r.s.sys.Name + "/" + rel.loc})
			}
		}
		if r.inStream {
			return r.addStreamed(m.Xid, changes, nil)
		}
		return r.addChanges(ctx, changes)
	case *pglogrepl.StreamStartMessageV2:
		r.inStream, r.streamXid = true, m.Xid
		if r.streamed[m.Xid] == nil {
			r.streamed[m.Xid] = r.s.newStreamBuf(m.Xid)
		}
	case *pglogrepl.StreamStopMessageV2:
		r.inStream = false
	case *pglogrepl.StreamAbortMessageV2:
		if b := r.streamed[m.Xid]; b != nil {
			if m.Xid == m.SubXid {
				b.close()
				delete(r.streamed, m.Xid)
			} else {
				b.aborted[m.SubXid] = true
			}
		}
	case *pglogrepl.StreamCommitMessageV2:
		b := r.streamed[m.Xid]
		delete(r.streamed, m.Xid)
		r.s.stats.Transactions.Add(1)
		if b == nil {
			return r.emit(ctx, item{pos: formatLSN(m.TransactionEndLSN), commit: m.CommitTime}, m.TransactionEndLSN)
		}
		defer b.close()
		return b.replay(ctx, func(changes []connectors.Change, last bool) error {
			for i := range changes {
				changes[i].Origin, changes[i].CommitTime = b.origin, m.CommitTime
			}
			it := item{changes: changes}
			if last {
				it.pos, it.commit = formatLSN(m.TransactionEndLSN), m.CommitTime
				return r.emit(ctx, it, m.TransactionEndLSN)
			}
			return r.emit(ctx, it, 0)
		})
	}
	return nil
}

func (r *reader) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	if err := r.resolveDomains(ctx, m); err != nil {
		return err
	}
	rel := r.s.newRelation(m)
	if old := r.relations[m.RelationID]; old != nil {
		rel.version = old.version + 1
		if rel.table != nil && !sameColumns(old, rel) {
			r.s.log.Warn("schema of a mapped table changed", "table", rel.loc, "columns", columnNames(rel))
		}
	}
	if rel.table != nil {
		r.s.checkShape(rel)
	}
	r.relations[m.RelationID] = rel
	return nil
}

// update turns an update into changes: when the row's key changed, the row
// under the old key is deleted first. With REPLICA IDENTITY FULL the old
// row fills the unchanged TOASTed columns the new one leaves out; otherwise
// a moved row's left-out columns are read from the source (fillMoved): at
// once for a committed transaction, at its commit for a streamed one, whose
// changes are returned with moved set.
func (r *reader) update(ctx context.Context, rel *relation, m *rowMessage) ([]connectors.Change, *movedRow, error) {
	newTuple := m.New
	if m.OldKind == 'O' {
		filled := *newTuple
		filled.Columns = append([]*pglogrepl.TupleDataColumn(nil), newTuple.Columns...)
		for i, c := range filled.Columns {
			if c.DataType == pglogrepl.TupleDataTypeToast && i < len(m.Old.Columns) {
				filled.Columns[i] = m.Old.Columns[i]
			}
		}
		newTuple = &filled
	}
	upd, err := r.s.changeFromTuple(rel, newTuple, mixer.OpUpsert, false)
	if err != nil || m.Old == nil {
		return []connectors.Change{upd}, nil, err
	}
	old, err := r.s.changeFromTuple(rel, m.Old, mixer.OpDelete, m.OldKind == 'K')
	if err != nil {
		return nil, nil, err
	}
	if sameKey(old, upd) {
		return []connectors.Change{upd}, nil, nil
	}
	upd.Record.Created = true // a new row under its new key
	changes := []connectors.Change{old, upd}
	if upd.Record.Complete {
		return changes, nil, nil
	}
	moved := newMovedRow(rel, newTuple)
	if moved == nil || r.inStream {
		return changes, moved, nil
	}
	return changes, nil, r.s.fillMoved(ctx, moved, r.curXid, &changes[1])
}

// add decodes a row change of a mapped relation and queues it.
func (r *reader) add(ctx context.Context, m *rowMessage) error {
	rel := r.relations[m.RelationID]
	if rel == nil {
		return fmt.Errorf("a change of relation %d arrived before its description", m.RelationID)
	}
	if rel.table == nil {
		return nil // published but not mapped
	}
	var changes []connectors.Change
	var moved *movedRow
	var err error
	switch m.Kind {
	case 'I':
		r.one[0], err = r.s.changeFromTuple(rel, m.New, mixer.OpUpsert, false)
		r.one[0].Record.Created = true
		changes = r.one[:]
	case 'U':
		changes, moved, err = r.update(ctx, rel, m)
	default:
		r.one[0], err = r.s.changeFromTuple(rel, m.Old, mixer.OpDelete, m.OldKind == 'K')
		changes = r.one[:]
	}
	if errors.Is(err, connectors.ErrUnavailable) {
		return err // the database, not the change: read it again after reconnecting
	}
	if err != nil {
		// Not a reason to stop: the change is dead-lettered with the reason.
		changes = []connectors.Change{{Record: mixer.Record{Location: rel.loc, Op: mixer.OpUpsert}, Key: r.s.sys.Name + "/" + rel.loc, Err: err}}
	} else if rel.gone != nil {
		markGone(rel, changes)
	}
	if r.inStream {
		return r.addStreamed(m.Xid, changes, moved)
	}
	return r.addChanges(ctx, changes)
}

// addStreamed buffers changes of a streamed transaction until it commits;
// moved, if set, belongs to the last change.
func (r *reader) addStreamed(xid uint32, changes []connectors.Change, moved *movedRow) error {
	if len(changes) == 0 {
		return nil
	}
	r.s.stats.Changes.Add(int64(len(changes)))
	b := r.streamed[r.streamXid]
	if b == nil {
		b = r.s.newStreamBuf(r.streamXid)
		r.streamed[r.streamXid] = b
	}
	return b.add(xid, changes, moved)
}

// addChanges queues changes of the open, committed transaction.
func (r *reader) addChanges(ctx context.Context, changes []connectors.Change) error {
	if len(changes) == 0 {
		return nil
	}
	r.s.stats.Changes.Add(int64(len(changes)))
	if r.cur == nil {
		r.cur = &item{}
	}
	start := len(r.cur.changes)
	r.cur.changes = append(r.cur.changes, changes...)
	// Each change keeps its own transaction's commit time (the Begin
	// message carries it), and origin: finished transactions may be
	// coalesced into one item, whose commit time is the last one's.
	for i := start; i < len(r.cur.changes); i++ {
		r.cur.changes[i].CommitTime, r.cur.changes[i].Origin = r.cur.commit, r.curOrigin
	}
	if len(r.cur.changes) >= chunkChanges {
		// A non-streamed transaction is sent once committed: its first
		// chunks can go ahead; its position travels with the last one.
		it := item{changes: r.cur.changes, commit: r.cur.commit}
		r.cur.changes = make([]connectors.Change, 0, chunkChanges)
		return r.emit(ctx, it, 0)
	}
	return nil
}

func (r *reader) dropStreamed() {
	for _, b := range r.streamed {
		b.close()
	}
}

func sameColumns(a, b *relation) bool {
	if len(a.cols) != len(b.cols) {
		return false
	}
	for i := range a.cols {
		if a.cols[i].name != b.cols[i].name || a.cols[i].oid != b.cols[i].oid {
			return false
		}
	}
	return true
}

func columnNames(r *relation) string {
	names := make([]string, len(r.cols))
	for i, c := range r.cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}
