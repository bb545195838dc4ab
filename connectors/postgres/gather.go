package postgres

import (
	"context"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/sqlpipe/remix/connectors"
)

// How the reader gathers finished transactions into items and hands them
// over to Next: while catching up, lingering, or while Next is busy.

// handOver hands pending transactions over if they are done gathering
// and Next is free; else they keep gathering.
func (r *reader) handOver() {
	if r.pending != nil && !r.gathering(len(r.pending.changes)) {
		select {
		case r.s.out <- *r.pending:
			r.lastGathered = len(r.pending.changes)
			r.pending = nil
		default:
		}
	}
}

// catchUpBytes is how far behind the server's WAL the reader must be for
// it to gather finished transactions even while Next waits: catching up,
// more is on its way at once, and one item of up to coalesceChanges
// changes costs every stage after it far less than as many items of one
// transaction each. Near the end of the WAL each transaction is handed
// over as it arrives.
const catchUpBytes = 64 << 10

// While catching up, the server sends as fast as it decodes, a few
// messages at a time, and the reader, being faster, woke for every few
// hundred bytes: a read, a poll and a goroutine switch each time, a
// quarter of the ingest's CPU. With a receive low-water mark the kernel
// wakes it once lowWaterBytes wait (what the server sends in one flush of
// its 8 KiB buffer); a read still takes whatever is there, and the read
// deadline, never more than lowWaterWait away while the mark is set, bounds
// how long fewer bytes wait. Near the end of the WAL the mark is the
// system's: every message is read as it comes.
const (
	lowWaterBytes = 8 << 10
	lowWaterWait  = 5 * time.Millisecond
)

// gatherFor bounds how long finished transactions gather while catching
// up (see emit): at a catch-up's pace, thousands of changes.
const gatherFor = 100 * time.Millisecond

// catchingUp reports whether the reader is far enough behind the server's
// WAL, and reading fast enough, to wait for fuller reads, and sets the
// socket's low-water mark to match. The pace matters as well as the
// distance: the server's WAL end counts every database's WAL, so a reader
// of a quiet table on a busy server is always behind it, with a message
// now and then that should not wait.
func (r *reader) catchingUp() bool {
	end := r.s.walEnd.Load()
	want := 0
	if end > uint64(r.received) && end-uint64(r.received) >= catchUpBytes && r.rate >= lowWaterBytes/lowWaterWait.Seconds() {
		want = lowWaterBytes
	}
	if want != r.lowWater && r.lowWater >= 0 {
		if err := setLowWater(r.conn.Conn(), max(want, 1)); err != nil {
			r.s.log.Debug("setting the replication socket's low-water mark failed: reading as messages come", "error", err)
			want = -1 // not tried again
		}
		if want > 0 {
			r.s.stats.CatchUps.Add(1)
		}
		r.lowWater = want
	}
	return r.lowWater > 0
}

// gathering reports whether finished transactions, n changes so far, are
// kept back to gather more: the reader is catching up, or they have not
// lingered their time yet.
func (r *reader) gathering(n int) bool {
	if n >= coalesceChanges {
		return false
	}
	if r.linger > 0 && (time.Now().Before(r.drainUntil) || time.Since(r.pendingAt) < r.linger) {
		return true
	}
	end := r.s.walEnd.Load()
	return end > uint64(r.received) && end-uint64(r.received) >= catchUpBytes
}

// nearEnd reports whether the reader is close to the server's WAL end and
// not catching up: a lingering reader may then sleep through its linger.
// While catching up it reads on and gathers by the catch-up's rules.
func (r *reader) nearEnd() bool {
	end := r.s.walEnd.Load()
	return r.lowWater <= 0 && (end <= uint64(r.received) || end-uint64(r.received) < catchUpBytes)
}

// lingerDrain is how long a reader that lingered reads what came
// meanwhile (already in the socket: one or two reads) into the same batch;
// what comes later starts the next one. A change waits at most the linger
// and this.
const lingerDrain = time.Millisecond

// pendingDeadline is how long the reader waits for more messages while
// finished transactions are pending: until they have lingered their time,
// else 2 ms (a quiet stream's pending transactions go on at once, while
// one read more can still join them to a catch-up's).
func (r *reader) pendingDeadline() time.Time {
	if r.linger > 0 {
		if d := r.pendingAt.Add(r.linger); d.After(time.Now()) {
			return d
		}
	}
	return time.Now().Add(2 * time.Millisecond)
}

// coalesceChanges is how many changes of finished transactions the reader
// gathers into one item while Next is not taking items.
const coalesceChanges = 5000

// emit hands an item over. When Next is busy, finished transactions gather
// into one pending item (their positions are cumulative, so the last one
// stands for all), up to coalesceChanges; only then does the reader wait,
// sending status updates every half second so the server does not time the
// connection out.
func (r *reader) emit(ctx context.Context, it item, pos pglogrepl.LSN) error {
	// Handing over a large committed transaction is one message long: keep
	// the status updates going meanwhile (what they confirm stays safe).
	now := time.Now()
	if !now.Before(r.next) {
		if err := r.status(ctx, false); err != nil {
			return err
		}
	}
	if pos != 0 {
		r.s.lastEmitted.Store(uint64(pos))
	}
	if r.pending == nil {
		r.pendingAt = now // if it becomes pending now
	} else {
		r.pending.changes = append(r.pending.changes, it.changes...)
		if it.pos != "" {
			r.pending.pos = it.pos
		}
		if !it.commit.IsZero() {
			r.pending.commit = it.commit
		}
		it = *r.pending
		r.pending = nil
	}
	if r.gathering(len(it.changes)) && ctx.Err() == nil {
		r.hold(it)
		return nil
	}
	select {
	case r.s.out <- it:
		r.lastGathered = len(it.changes)
		return nil
	default:
	}
	if len(it.changes) < coalesceChanges && ctx.Err() == nil {
		r.hold(it)
		return nil
	}
	r.lastGathered = len(it.changes)
	return r.send(ctx, it)
}

// hold keeps it pending to gather more, in room for as many changes as
// the last gathered item had (up to coalesceChanges): a catch-up's items
// then fill without growing, a trickle's stay small.
func (r *reader) hold(it item) {
	if want := min(r.lastGathered, coalesceChanges); cap(it.changes) < want {
		changes := make([]connectors.Change, len(it.changes), want)
		copy(changes, it.changes)
		it.changes = changes
	}
	r.pending = &it
}

// flush hands over a pending item, waiting as long as it takes.
func (r *reader) flush(ctx context.Context) error {
	if r.pending == nil {
		return nil
	}
	it := *r.pending
	r.pending = nil
	r.lastGathered = len(it.changes)
	return r.send(ctx, it)
}

func (r *reader) send(ctx context.Context, it item) error {
	for {
		wait := time.Until(r.next)
		if wait <= 0 {
			if err := r.status(ctx, false); err != nil {
				return err
			}
			continue
		}
		t := time.NewTimer(min(wait, 500*time.Millisecond))
		select {
		case r.s.out <- it:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			if err := r.status(ctx, false); err != nil {
				return err
			}
		}
	}
}
