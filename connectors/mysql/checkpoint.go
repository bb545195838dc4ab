package mysql

import (
	"context"
	"sync"
	"time"
)

// checkpointEvery is how often, at most, a confirmed position is saved to
// the source's checkpoint while batches keep coming. Each save is a fenced
// round trip to Redis: saved for every batch, a trickle of single-row
// transactions paid one per transaction. Saving less often only means that
// after a crash the source reads again (and delivers twice) what was
// confirmed since the last save; a confirmed position waits at most this
// long (saveLoop), and a graceful stop saves the last one.
const checkpointEvery = 200 * time.Millisecond

// saver keeps the last confirmed state until it is saved.
type saver struct {
	mu      sync.Mutex
	unsaved *state // confirmed, not saved yet
	seq     uint64 // the sequence number of unsaved, or of the last saved
	savedAt time.Time
}

// confirmState records st, the state of a confirmed position with sequence
// number seq, and saves it when the last save is checkpointEvery old.
func (s *Source) confirmState(ctx context.Context, st *state, seq uint64) error {
	sv := &s.saver
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if seq > 0 && seq <= sv.seq {
		return nil // a later position is already kept
	}
	sv.unsaved = st
	if seq > 0 {
		sv.seq = seq
	}
	if time.Since(sv.savedAt) < checkpointEvery {
		return nil
	}
	return s.saveUnsaved(ctx)
}

// saveLoop saves, every checkpointEvery, a confirmed state that no later
// Confirm saved, until ctx is done.
func (s *Source) saveLoop(ctx context.Context) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.flushCheckpoint(ctx, false)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.Warn("saving the confirmed position; retrying", "error", err)
			failing = true
		case err == nil && failing:
			s.log.Info("saving the confirmed position works again")
			failing = false
		}
	}
}

// flushCheckpoint saves a confirmed state not saved yet: every
// checkpointEvery (when the last save is that old), and at Close (now).
func (s *Source) flushCheckpoint(ctx context.Context, now bool) error {
	s.saver.mu.Lock()
	defer s.saver.mu.Unlock()
	if !now && time.Since(s.saver.savedAt) < checkpointEvery {
		return nil
	}
	return s.saveUnsaved(ctx)
}

// saveUnsaved saves the kept state; saver.mu is held.
func (s *Source) saveUnsaved(ctx context.Context) error {
	sv := &s.saver
	if sv.unsaved == nil {
		return nil
	}
	if err := s.saveState(ctx, sv.unsaved); err != nil {
		return err
	}
	sv.unsaved, sv.savedAt = nil, time.Now()
	return nil
}
