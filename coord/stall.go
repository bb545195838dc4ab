package coord

import (
	"fmt"
	"sort"
	"time"
)

// stalled is why an owned partition cannot move, and since when.
type stalled struct {
	reason string
	since  time.Time
}

// stall records why the partitions of b cannot move; it reports whether
// that is news (a partition was not stalled for this reason yet).
func (cs *Consumer) stall(b []Delivery, reason string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.stalls == nil {
		cs.stalls = map[string]stalled{}
	}
	news := false
	for _, d := range b {
		if s, ok := cs.stalls[d.stream]; !ok || s.reason != reason {
			cs.stalls[d.stream] = stalled{reason: reason, since: time.Now()}
			news = true
		}
	}
	return news
}

// unstall clears the partitions of b: a write of theirs went through.
func (cs *Consumer) unstall(b []Delivery) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.stalls) == 0 {
		return
	}
	for _, d := range b {
		delete(cs.stalls, d.stream)
	}
}

// Stalled describes the owned partitions that cannot move (a target that
// keeps failing in a way it does not classify, a full dead-letter queue),
// one line each, for readiness and status; nil when all move.
func (cs *Consumer) Stalled() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []string
	for stream, s := range cs.stalls {
		p := cs.owned[stream]
		if p == nil {
			delete(cs.stalls, stream)
			continue
		}
		out = append(out, fmt.Sprintf("%s partition %d waits for %s: %s", p.model, p.index, time.Since(s.since).Round(time.Second), s.reason))
	}
	sort.Strings(out)
	return out
}
