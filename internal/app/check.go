package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/cli"
)

// RedisKey is the key of the problems about Redis, which no file holds.
const RedisKey = "redis"

// CheckOnline checks a loaded configuration against what it names: Redis
// answers (with AOF, with the partition counts this configuration uses),
// and every source and sink whose connector can check (connectors.Checker)
// looks at its system without changing anything. Problems of a system are
// placed in the configuration; those of Redis have no position and the key
// "redis".
func CheckOnline(ctx context.Context, cfg *config.Config, c cli.Common, f cli.Fleet) (errs, warnings config.Errors) {
	quiet := slog.New(slog.DiscardHandler)
	redisProblem := func(list *config.Errors, format string, args ...any) {
		*list = append(*list, &config.Error{Key: RedisKey, Msg: fmt.Sprintf(format, args...)})
	}
	var cc *coord.Client
	opts, err := c.RedisOptions()
	if err != nil {
		redisProblem(&errs, "%v", err)
	} else if cc, err = c.Coord(ctx, f, cfg, quiet); err != nil {
		redisProblem(&errs, "%v", err)
	}
	if cc != nil {
		defer cc.Redis().Close()
		where := fmt.Sprintf("the Redis at %s", opts.Addr)
		if d, err := cc.CheckDurability(ctx); err != nil {
			redisProblem(&errs, "reading the persistence settings of %s: %v", where, err)
		} else if !d.AOF {
			redisProblem(&warnings, "%s keeps no AOF: a restart can lose changes already confirmed to the sources; the ingest refuses it unless started with --accept-redis-data-loss", where)
		}
		if topo, err := cc.Topology(ctx); err != nil {
			redisProblem(&errs, "%v", err)
		} else {
			models := make([]string, 0, len(cfg.Models))
			for m := range cfg.Models {
				models = append(models, m)
			}
			sort.Strings(models)
			for _, m := range models {
				if n, ok := topo[m]; ok && n != f.Partitions {
					redisProblem(&errs, "model %s has %d partitions in namespace %s of %s, but this check runs with %d (--partitions, REMIX_PARTITIONS): every process must use the recorded count",
						m, n, cc.Config().Namespace, where, f.Partitions)
				}
			}
		}
	}
	registry := builtin.Connectors()
	for _, sys := range cfg.Systems {
		conn, ok := registry[sys.Type]
		if !ok {
			continue
		}
		var checks []connectors.Checker
		var skipped []string
		if sys.Receive != nil {
			deps := connectors.SourceDeps{Logger: quiet}
			if cc != nil {
				deps.Checkpoints = readOnlyCheckpoints{c: cc, source: sys.Name}
			}
			if ch, why := checkerOf(conn.NewSource, sys, deps, "read"); ch != nil {
				checks = append(checks, ch)
			} else {
				skipped = append(skipped, why)
			}
		}
		if sys.Push != nil {
			if ch, why := checkerOf(conn.NewSink, sys, connectors.SinkDeps{Logger: quiet}, "written"); ch != nil {
				checks = append(checks, ch)
			} else {
				skipped = append(skipped, why)
			}
		}
		for _, why := range skipped {
			warnings = append(warnings, &config.Error{Pos: sys.Pos, Key: config.KeyPath(sys.Name), Msg: why})
		}
		for _, ch := range checks {
			e, w := ch.Check(ctx, cfg.Models)
			errs, warnings = append(errs, e...), append(warnings, w...)
		}
	}
	return errs, warnings
}

// checkerOf builds a system's source or sink and returns it when it can
// check; otherwise why it is not checked.
func checkerOf[D any, T any](build func(*config.System, D) (T, error), sys *config.System, deps D, verb string) (connectors.Checker, string) {
	if build == nil {
		return nil, fmt.Sprintf("not checked online: %s systems cannot be %s by this build", sys.Type, verb)
	}
	v, err := build(sys, deps)
	if err != nil {
		return nil, fmt.Sprintf("not checked online: %v", err)
	}
	if ch, ok := any(v).(connectors.Checker); ok {
		return ch, ""
	}
	return nil, fmt.Sprintf("not checked online: the %s connector cannot check its systems yet", sys.Type)
}

// readOnlyCheckpoints let a check read a source's checkpoint, never write.
type readOnlyCheckpoints struct {
	c      *coord.Client
	source string
}

func (r readOnlyCheckpoints) Load(ctx context.Context, name string) (string, bool, error) {
	cp, ok, err := r.c.LoadCheckpoint(ctx, r.source, name)
	return cp.Position, ok, err
}

func (r readOnlyCheckpoints) Save(context.Context, string, string) error {
	return errors.New("a check writes no checkpoint")
}
