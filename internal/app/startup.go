package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/cli"
	"github.com/sqlpipe/remix/internal/httpserver"
)

// startup is the readiness of a process before its services run: not
// ready, with the reason, until they take over.
type startup struct {
	mu     sync.Mutex
	reason string
	next   httpserver.Readiness
}

func (s *startup) waiting(reason string) {
	s.mu.Lock()
	s.reason = reason
	s.mu.Unlock()
}

// set hands readiness over to the services.
func (s *startup) set(r httpserver.Readiness) {
	s.mu.Lock()
	s.next = r
	s.mu.Unlock()
}

func (s *startup) ready(ctx context.Context) (bool, []string) {
	s.mu.Lock()
	next, reason := s.next, s.reason
	s.mu.Unlock()
	if next != nil {
		return next(ctx)
	}
	return false, []string{"redis: " + reason}
}

// Pauses between attempts to reach Redis at start.
const (
	firstRetry = time.Second
	maxRetry   = 15 * time.Second
)

// connect reaches Redis, trying again with a growing pause while it does
// not answer; nil, nil when ctx ends first.
func connect(ctx context.Context, o Options, cfg *config.Config, log *slog.Logger, st *startup) (*coord.Client, error) {
	pause := firstRetry
	for {
		cc, err := o.Common.Coord(ctx, o.Fleet, cfg, log)
		if err == nil {
			return cc, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if !errors.Is(err, cli.ErrRedisUnreachable) {
			return nil, err
		}
		st.waiting(err.Error() + "; trying again")
		log.Error("cannot reach Redis; trying again", "error", err, "in", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		pause = min(2*pause, maxRetry)
	}
}
