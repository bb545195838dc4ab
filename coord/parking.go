package coord

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parkedKeys returns which model|keys of the batch are parked in the
// target's push stage: one HMGET of the batch's distinct keys, or none when
// nothing was parked as the batch was read. (Only the
// owner of a key's partition parks it, and a new owner asks again here, so
// the answer holds for the batch.)
func (cs *Consumer) parkedKeys(ctx context.Context, batch []Delivery) (map[string]bool, error) {
	parked := map[string]bool{}
	none := true
	for i := range batch {
		none = none && batch[i].noneParked
	}
	if none {
		return parked, nil
	}
	seen := make(map[string]bool, len(batch))
	fields := make([]string, 0, len(batch))
	for _, d := range batch {
		f := d.Model + "|" + d.Key
		if !seen[f] {
			seen[f] = true
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return parked, nil
	}
	vals, err := cs.c.rdb.HMGet(ctx, cs.c.keys.parked(cs.target, stagePush), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading parked keys: %w", err)
	}
	for i, v := range vals {
		if v != nil {
			parked[fields[i]] = true
		}
	}
	return parked, nil
}

// divertParked dead-letters the entries whose key is parked behind an
// earlier dead letter, unless the key was unparked meanwhile (a replay just
// finished): then the entry is applied as usual. Entries of a partition
// this consumer no longer holds are dropped (their owner reads them again).
func (cs *Consumer) divertParked(ctx context.Context, b []Delivery, parked map[string]bool) ([]Delivery, error) {
	if len(parked) == 0 {
		return b, nil
	}
	sup, _ := cs.handler.(Superseder)
	out := b[:0:0]
	for _, d := range b {
		park := d.Model + "|" + d.Key
		if !parked[park] {
			out = append(out, d)
			continue
		}
		if sup != nil && sup.Supersedes(d) {
			applied, err := cs.supersede(ctx, d)
			if errors.Is(err, errNotOwned) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if applied {
				delete(parked, park)
				out = append(out, d)
				continue
			}
		}
		moved, err := cs.deadLetterScript(ctx, d, "parked behind an earlier dead letter of the same key", 0, true)
		if errors.Is(err, errNotOwned) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !moved {
			delete(parked, d.Model+"|"+d.Key)
			out = append(out, d)
		}
	}
	return out, nil
}

// errNotOwned means the partition of a delivery is no longer this
// consumer's (its lease moved, or its tenure lapsed): the delivery is left
// to whoever reads it next from the cursor.
var errNotOwned = errors.New("partition not owned")

func (cs *Consumer) deadLetter(ctx context.Context, d Delivery, reason string, attempts int, parked map[string]bool) error {
	for strings.HasPrefix(reason, ErrPermanent.Error()+": ") { // the class is not news in a dead letter
		reason = strings.TrimPrefix(reason, ErrPermanent.Error()+": ")
	}
	_, err := cs.deadLetterScript(ctx, d, reason, attempts, false)
	if errors.Is(err, errNotOwned) {
		return nil
	}
	if err != nil {
		return err
	}
	parked[d.Model+"|"+d.Key] = true
	cs.log.Warn("entry dead-lettered", "model", d.Model, "partition", d.Partition, "id", d.ID, "attempts", attempts, "reason", reason)
	return nil
}

func (cs *Consumer) deadLetterScript(ctx context.Context, d Delivery, reason string, attempts int, onlyIfParked bool) (bool, error) {
	only := "0"
	if onlyIfParked {
		only = "1"
	}
	// Does this object finish the oldest entry not yet acknowledged? Then
	// the cursor passes it in the same step. Only the worker owning the
	// partition touches its entries.
	cs.mu.Lock()
	p := cs.owned[d.stream]
	if p == nil || p.gen != d.gen {
		cs.mu.Unlock()
		return false, errNotOwned
	}
	to := ""
	if p.inflight.pending(d.ID) == 1 && p.inflight.first(d.ID) {
		to = d.ID
	}
	cs.mu.Unlock()
	args := append([]any{d.Key, d.Model, strconv.Itoa(d.Partition), d.ref(), reason, strconv.Itoa(attempts), d.Payload, only,
		cs.target, to, cs.id}, cs.c.dlqArgs(cs.target)...)
	n, err := deadLetterScript.Run(ctx, cs.c.rdb, []string{cs.c.keys.parked(cs.target, stagePush), d.stream, p.lease}, args...).Int64()
	if err != nil {
		return false, fmt.Errorf("dead-lettering %s: %w", d.ref(), err)
	}
	switch n {
	case -2:
		return false, fmt.Errorf("dead-lettering %s of %s: %w", d.ref(), cs.target, ErrDeadLettersFull)
	case -1:
		return false, errNotOwned
	case 0:
		return false, nil
	}
	cs.deadLettered.Add(1)
	cs.mu.Lock()
	var extra string
	var passed int
	if cs.owned[d.stream] == p && p.gen == d.gen && p.inflight.done(d.ID) {
		cs.acked.Add(1)
		if to != "" {
			extra, passed = p.inflight.advance()
		}
	}
	cs.mu.Unlock()
	if passed > 1 { // entries after it were finished already: pass them too
		if err := cs.moveCursors(ctx, []cursorMove{{p, extra, passed - 1}}); err != nil {
			return true, fmt.Errorf("acknowledging after a dead letter: %w", err)
		}
	}
	return true, nil
}

// Superseder is a Handler that can tell a complete version of a key: every
// field the target writes present, or a delete. Such an entry of a parked
// key supersedes the key's dead letters (they are set aside, kept in the
// superseded list) and is applied, instead of waiting behind them: a fix at
// the source flows through by itself.
type Superseder interface {
	Supersedes(d Delivery) bool
}

// supersede sets aside the dead letters of d's parked key; false when some
// of them predate the per-key lists (d then waits behind them as before).
func (cs *Consumer) supersede(ctx context.Context, d Delivery) (bool, error) {
	cs.mu.Lock()
	p := cs.owned[d.stream]
	cs.mu.Unlock()
	if p == nil || p.gen != d.gen {
		return false, errNotOwned
	}
	n, err := supersedeScript.Run(ctx, cs.c.rdb, []string{p.lease}, cs.id, cs.c.keys.dlqBase(cs.target), d.Model+"|"+d.Key,
		"a newer complete version (entry "+d.ref()+")").Int64()
	switch {
	case err != nil:
		return false, fmt.Errorf("superseding the dead letters of %s|%s: %w", d.Model, d.Key, err)
	case n == -2:
		return false, errNotOwned
	case n == -1:
		return false, nil
	}
	cs.superseded.Add(n)
	cs.log.Info("a newer complete version set the dead letters of its key aside", "target", cs.target, "model", d.Model, "key", d.Key, "dead_letters", n)
	return true, nil
}
