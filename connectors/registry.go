package connectors

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	"github.com/sqlpipe/remix/config"
)

// Connector is one connector type: its configuration keys and what it can
// be. A nil constructor means the type cannot play that role.
type Connector struct {
	// Spec is what the configuration loader checks of a system of this type.
	Spec *config.Spec
	// NewSource reads a system with a receive mixer. It runs only in the
	// ingest that holds the system's reader lock.
	NewSource func(*config.System, SourceDeps) (Source, error)
	// NewSink writes to a system with a push mixer. Every pusher of the
	// target builds its own.
	NewSink func(*config.System, SinkDeps) (Sink, error)
	// NewReceiver accepts changes a system with a receive mixer pushes to
	// Remix over HTTP (webhooks). Every ingest replica runs one, whether or
	// not it holds the system's reader lock (see Receiver).
	NewReceiver func(*config.System, ReceiverDeps) (Receiver, error)
	// Reset forgets a source's replication state so that it starts over
	// with a snapshot (`remix reset`); nil when there is nothing to forget.
	Reset func(context.Context, *config.System, Checkpoints) error
}

// Registry maps a connector type name to its implementation. The registry
// a process uses is filled in one place (connectors/builtin); the fleet
// (ingest, pusher, reconcile) takes it as a value and knows no connector.
type Registry map[string]Connector

// Specs returns what the configuration loader needs to know of each type.
func (r Registry) Specs() config.Specs {
	out := config.Specs{}
	for t, c := range r {
		out[t] = c.Spec
	}
	return out
}

// Role is what a process does with systems.
type Role int

// Roles.
const (
	Read  Role = iota // ingest: systems with a receive_mixer, through a Source or a Receiver
	Write             // pusher: systems with a push_mixer, through a Sink
)

// Select returns the systems a process serves in a role, sorted by name:
// the named ones (each must have the role's mixer and a connector that can
// play the role), or when none are named, every system with the role's
// mixer whose connector can (the others are logged and left out).
func (r Registry) Select(cfg *config.Config, names []string, role Role, log *slog.Logger) ([]*config.System, error) {
	mixer, verb := "receive_mixer", "read"
	has := func(s *config.System) bool { return s.Receive != nil }
	can := func(c Connector) bool { return c.NewSource != nil || c.NewReceiver != nil }
	if role == Write {
		mixer, verb = "push_mixer", "written"
		has = func(s *config.System) bool { return s.Push != nil }
		can = func(c Connector) bool { return c.NewSink != nil }
	}
	var out []*config.System
	if len(names) > 0 {
		for _, n := range names {
			s := cfg.System(n)
			switch {
			case s == nil:
				return nil, fmt.Errorf("no system %q in the configuration", n)
			case !has(s):
				return nil, fmt.Errorf("system %q has no %s", n, mixer)
			case !can(r[s.Type]):
				return nil, fmt.Errorf("%s systems cannot be %s by this build", s.Type, verb)
			}
			out = append(out, s)
		}
	} else {
		for _, s := range cfg.Systems {
			if !has(s) {
				continue
			}
			if !can(r[s.Type]) {
				log.Warn("this build cannot use this system's connector type here; leaving it out", "system", s.Name, "type", s.Type, "role", mixer)
				continue
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no system to serve: none has a %s this build can use", mixer)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
