package ingest

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
)

// reportEvery is how often an ingest reports itself and its leading
// sources to Redis for `remix status`; a report lives three times as long.
const reportEvery = 2 * time.Second

// startReporting keeps this process's heartbeat (with the state of each of
// its sources) and the progress of the sources it leads in Redis until the
// returned stop is called, which also removes the heartbeat: a process that
// stops cleanly leaves the status at once.
func (s *Service) startReporting(ctx context.Context) (stop func()) {
	host, _ := os.Hostname()
	me := coord.IngestMember{ID: coord.MemberID(host), Host: host, PID: os.Getpid(), Version: buildVersion(), Started: time.Now().UTC()}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(reportEvery)
		defer t.Stop()
		for {
			s.report(ctx, me)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer lcancel()
		_ = s.cfg.Coord.IngestLeft(lctx, me.ID) // else it expires
	}
}

// report writes one heartbeat and the reports of the sources this process
// leads. Failures are left to the next round: status only shows them late.
func (s *Service) report(ctx context.Context, me coord.IngestMember) {
	c := s.cfg.Coord
	ttl := 3 * reportEvery
	me.Sources = make(map[string]string, len(s.sources))
	for _, r := range s.sources {
		st, detail := r.status()
		me.Sources[r.sys.Name] = st
		token := r.token.Load()
		if token == 0 {
			continue
		}
		rep := coord.SourceReport{Holder: me.ID, Token: token, State: st, Detail: detail, Time: time.Now().UTC()}
		r.mu.Lock()
		src := r.leading
		r.mu.Unlock()
		if p, ok := progressOf(src); ok && src != nil {
			rep.Snapshotting, rep.SnapshotRows, rep.SnapshotEstimate = p.Snapshotting, p.SnapshotRows, p.SnapshotEstimate
			rep.ReadPosition, rep.ConfirmedPosition = p.ReadPosition, p.ConfirmedPosition
			rep.ReadOffset, rep.ConfirmedOffset = p.ReadOffset, p.ConfirmedOffset
		}
		if rr, ok := src.(connectors.RetentionReporter); ok {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			n, err := rr.Retained(qctx)
			cancel()
			if err == nil {
				rep.Retained = &n
				if m := s.cfg.Metrics; m != nil {
					m.SourceRetained.WithLabelValues(r.sys.Name).Set(float64(n))
				}
			}
		}
		if err := c.ReportSource(ctx, r.sys.Name, rep, ttl); err != nil && ctx.Err() == nil {
			s.log.Debug("status report failed", "source", r.sys.Name, "error", err)
		}
	}
	if err := c.IngestHeartbeat(ctx, me, ttl); err != nil && ctx.Err() == nil {
		s.log.Debug("status heartbeat failed", "error", err)
	}
}

// buildVersion is the module version and commit of this build, for status.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := info.Main.Version
	for _, st := range info.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 12 {
			v += " " + st.Value[:12]
		}
	}
	return v
}
