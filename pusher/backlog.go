package pusher

import (
	"context"
	"time"

	"github.com/sqlpipe/remix/coord"
)

// backlogEvery is how often a pusher reads its targets' backlog for the
// metrics: one pipelined read per target.
const backlogEvery = 5 * time.Second

// observeBacklog reads what the target has not applied of each model and
// records it (remix_target_backlog_entries, remix_target_backlog_age_seconds).
// A failed read leaves the last figures and is tried again next time.
func (t *target) observeBacklog(ctx context.Context, c *coord.Client, models []string) {
	m := t.svc.cfg.Metrics
	if m == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, backlogEvery)
	defer cancel()
	backlog, now, err := c.Backlog(rctx, t.sys.Name, models)
	if err != nil {
		if ctx.Err() == nil {
			t.log.Debug("reading the backlog failed", "error", err)
		}
		return
	}
	for _, b := range backlog {
		m.ObserveBacklog(t.sys.Name, b.Model, b.Entries, b.Age(now).Seconds())
	}
}
