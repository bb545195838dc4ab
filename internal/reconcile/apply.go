package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/mixer"
)

// publishChunk bounds the items of one publish call.
const publishChunk = 1000

// Run reconciles a source with its targets and prints what it finds to w;
// with Apply it deletes too (see the package documentation for the order
// of steps).
func Run(ctx context.Context, c Config, w io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	cfg := c.withDefaults()
	plans, err := newPlans(ctx, &cfg)
	if err != nil {
		return err
	}
	var locks map[string]*coord.ReaderLock
	if cfg.Apply {
		if locks, err = takeLocks(ctx, &cfg, lockSystems(cfg.Source, plans)); err != nil {
			return err
		}
		defer release(ctx, locks)
		if err := waitApplied(ctx, &cfg, plans); err != nil {
			return fmt.Errorf("before comparing: %w; reconcile compares only once every target has applied what the streams hold (are their pushers running?)", err)
		}
	}
	behind, err := backlog(ctx, &cfg, plans)
	if err != nil {
		return err
	}
	for _, p := range plans {
		if p.skip != "" || len(p.live()) == 0 {
			continue
		}
		set, err := p.readSources(ctx, &cfg)
		if errors.Is(err, errSkip) {
			p.skip = strings.TrimPrefix(err.Error(), errSkip.Error()+": ")
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the sources of %s: %w", p.model.Title, err)
		}
		for _, t := range p.live() {
			if err := p.readTarget(ctx, &cfg, t, set); err != nil {
				return fmt.Errorf("reading %s: %w", t, err)
			}
		}
	}
	report(w, &cfg, plans, behind)
	if !cfg.Apply {
		return nil
	}
	for name, l := range locks {
		select {
		case <-l.Lost():
			return fmt.Errorf("lost the reader lock of %s before publishing: nothing was deleted; run reconcile again", name)
		default:
		}
	}
	res, n, err := publish(ctx, &cfg, plans, locks[cfg.Source])
	if err != nil {
		return fmt.Errorf("publishing the deletes (%d of %d published): %w", res.Published, n, err)
	}
	if n == 0 {
		fmt.Fprintln(w, "nothing to delete")
		return nil
	}
	if res.Diverted > 0 {
		fmt.Fprintf(w, "%s wait behind dead letters of their keys (remix dlq list --system %s)\n", plural(res.Diverted, "delete"), cfg.Source)
	}
	if err := waitApplied(ctx, &cfg, plans); err != nil {
		fmt.Fprintf(w, "published %s; the targets have not applied them all yet (%v): they will, in order, once their pushers run\n", plural(res.Published, "delete"), err)
		return nil
	}
	fmt.Fprintf(w, "published %s; every target has applied them\n", plural(res.Published, "delete"))
	return nil
}

// takeLocks takes the reader lock of each source, in name order, waiting
// up to three lock TTLs for each: an ingest that reads one must be stopped
// first.
func takeLocks(ctx context.Context, cfg *Config, systems []string) (map[string]*coord.ReaderLock, error) {
	locks := map[string]*coord.ReaderLock{}
	for _, s := range systems {
		lctx, cancel := context.WithTimeout(ctx, 3*cfg.Coord.Config().LockTTL)
		l, err := cfg.Coord.AcquireReader(lctx, s)
		cancel()
		if err != nil {
			release(ctx, locks)
			return nil, fmt.Errorf("an ingest is reading %s: stop the ingests of %s before reconcile --apply, which holds the reader lock of every source it compares so that none publishes meanwhile (%w)",
				s, strings.Join(systems, ", "), err)
		}
		locks[s] = l
	}
	return locks, nil
}

func release(ctx context.Context, locks map[string]*coord.ReaderLock) {
	for _, l := range locks {
		_ = l.Release(context.WithoutCancel(ctx))
	}
}

// backlog counts, per target, the entries of the reconciled models' streams
// it has not applied yet.
func backlog(ctx context.Context, cfg *Config, plans []*modelPlan) (map[string]int64, error) {
	rdb := cfg.Coord.Redis()
	out := map[string]int64{}
	for _, p := range plans {
		if p.skip != "" || len(p.live()) == 0 {
			continue
		}
		targets := cfg.Config.TargetsOf(p.model.Title)
		for part := 0; part < cfg.Coord.Config().Partitions; part++ {
			stream := cfg.Coord.StreamKey(p.model.Title, part)
			groups, err := rdb.XInfoGroups(ctx, stream).Result()
			if err != nil && strings.Contains(err.Error(), "no such key") {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading the groups of %s: %w", stream, err)
			}
			for _, t := range targets {
				n, err := groupBacklog(ctx, cfg, stream, groups, t.Name)
				if err != nil {
					return nil, err
				}
				if n > 0 {
					out[t.Name] += n
				}
			}
		}
	}
	return out, nil
}

// groupBacklog is how many entries of a stream a target's group has not
// applied: pending ones, and any after its last-delivered id.
func groupBacklog(ctx context.Context, cfg *Config, stream string, groups []redis.XInfoGroup, target string) (int64, error) {
	rdb := cfg.Coord.Redis()
	for _, g := range groups {
		if g.Name != target {
			continue
		}
		after, err := rdb.XRangeN(ctx, stream, "("+g.LastDeliveredID, "+", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("reading %s after %s: %w", stream, g.LastDeliveredID, err)
		}
		return g.Pending + int64(len(after)), nil
	}
	n, err := rdb.XLen(ctx, stream).Result() // no group yet: it has read nothing
	if err != nil {
		return 0, fmt.Errorf("reading the length of %s: %w", stream, err)
	}
	return n, nil
}

// waitApplied waits until no target has entries of the reconciled models
// left to apply, or Wait passed.
func waitApplied(ctx context.Context, cfg *Config, plans []*modelPlan) error {
	deadline := time.Now().Add(cfg.Wait)
	for {
		behind, err := backlog(ctx, cfg, plans)
		if err != nil {
			return err
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v, %s", cfg.Wait, describeBacklog(behind))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describeBacklog(behind map[string]int64) string {
	names := make([]string, 0, len(behind))
	for t := range behind {
		names = append(names, t)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, t := range names {
		parts[i] = fmt.Sprintf("%s has %d entries to apply", t, behind[t])
	}
	return strings.Join(parts, ", ")
}

// publish sends the delete objects of every plan through the fenced
// publish path, in the partitions of the source rows' own changes.
func publish(ctx context.Context, cfg *Config, plans []*modelPlan, lock *coord.ReaderLock) (coord.PublishResult, int, error) {
	var total coord.PublishResult
	var items []coord.Item
	position := "reconcile:" + time.Now().UTC().Format(time.RFC3339Nano)
	var models []string
	for _, p := range plans {
		if p.skip != "" || len(p.deletes) == 0 {
			continue
		}
		models = append(models, p.model.Title)
		keys := make([]string, 0, len(p.deletes))
		for k := range p.deletes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env := mixer.Envelope{Object: mixer.Object{Model: p.model.Title, Op: mixer.OpDelete, Fields: p.deletes[k].fields},
				Source: cfg.Source, Location: p.own.loc, Position: position}
			b, err := mixer.AppendEnvelope(nil, &env)
			if err != nil {
				return total, 0, fmt.Errorf("encoding the delete of %s: %w", k, err)
			}
			items = append(items, coord.Item{Key: k, Model: p.model.Title, Payload: b})
		}
	}
	if len(items) == 0 {
		return total, 0, nil
	}
	if err := cfg.Coord.EnsureTopology(ctx, models); err != nil {
		return total, len(items), err
	}
	for _, m := range models {
		var names []string
		for _, t := range cfg.Config.TargetsOf(m) {
			names = append(names, t.Name)
		}
		if err := cfg.Coord.EnsureGroups(ctx, m, names); err != nil {
			return total, len(items), err
		}
	}
	for start := 0; start < len(items); start += publishChunk {
		res, err := cfg.Coord.Publish(ctx, cfg.Source, lock, items[start:min(start+publishChunk, len(items))])
		total.Published += res.Published
		total.Diverted += res.Diverted
		if err != nil {
			return total, len(items), err
		}
	}
	return total, len(items), nil
}
