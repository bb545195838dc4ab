package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/ingest"
	"github.com/sqlpipe/remix/internal/cli"
)

// ReplayDeadLetters replays a system's dead letters in order with the
// current configuration. Receive-stage ones (bad records of a source, and the
// changes parked behind them) are mapped again and published here, at once.
// Push-stage ones (what a target refused) are replayed by the target's
// pushers: a replay marker goes into each parked key's partition, and the
// pusher owning it replays the key's dead letters when it reaches the marker,
// keeping the key's changes in order; the command waits up to wait for the
// pushers to pass the markers. ids, when given, limits the replay to those
// dead letters (and, for the push stage, to their keys). Every dead letter
// that failed again is printed with the reason; the error is then
// ErrReported.
func ReplayDeadLetters(ctx context.Context, env *Env, system string, ids []string, wait time.Duration, w io.Writer) error {
	sys := env.Config.System(system)
	if sys == nil {
		return fmt.Errorf("no system %q in the configuration", system)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	failed := false
	if sys.Receive != nil {
		bad, err := replayReceive(ctx, env, system, want, w)
		if err != nil {
			return err
		}
		failed = failed || bad
	}
	if sys.Push != nil {
		bad, err := replayPush(ctx, env, system, want, wait, w)
		if err != nil {
			return err
		}
		failed = failed || bad
	}
	if failed {
		return ErrReported
	}
	return nil
}

// replayReceive republishes a source's dead letters and prints each one
// that failed again.
func replayReceive(ctx context.Context, env *Env, system string, want map[string]bool, w io.Writer) (bool, error) {
	apply, err := ingest.ReplayFunc(env.Config, system)
	if err != nil {
		return false, err
	}
	var mu sync.Mutex
	why := map[string]error{}
	var order []*coord.DeadLetter
	res, err := env.Coord.Replay(ctx, system, func(d *coord.DeadLetter) bool {
		return d.Stage == "receive" && (len(want) == 0 || want[d.ID])
	}, func(ctx context.Context, d *coord.DeadLetter) ([]coord.Item, error) {
		items, err := apply(ctx, d)
		if err != nil {
			mu.Lock()
			why[d.ID] = err
			c := *d
			order = append(order, &c)
			mu.Unlock()
		}
		return items, err
	})
	fmt.Fprintf(w, "receive stage: replayed %d, failed %d (kept, with their keys parked), skipped %d\n", res.Replayed, res.Failed, res.Skipped)
	for _, d := range order {
		fmt.Fprintf(w, "  failed %s (model %s, key %s): %v\n", d.ID, d.Model, d.Key, why[d.ID])
	}
	if n := res.Failed - len(order); n > 0 {
		fmt.Fprintf(w, "  %s could not be published again (see the log above)\n", cli.Plural(n, "dead letter", "dead letters"))
	}
	if err != nil {
		return false, err
	}
	return res.Failed > 0, nil
}

// replayPush asks a target's pushers to replay its parked keys, waits up to
// wait for them to pass the replay markers, and prints the keys that are
// still parked with the reason of their first dead letter.
func replayPush(ctx context.Context, env *Env, system string, want map[string]bool, wait time.Duration, w io.Writer) (bool, error) {
	keys := map[string]bool{}
	if len(want) > 0 {
		err := env.Coord.EachDeadLetter(ctx, system, func(d *coord.DeadLetter) error {
			if want[d.ID] {
				keys[d.ParkKey()] = true
			}
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	asked := map[string]bool{}
	n, err := env.Coord.RequestReplay(ctx, system, func(model, key string) bool {
		ok := len(want) == 0 || keys[model+"|"+key]
		if ok {
			asked[model+"|"+key] = true
		}
		return ok
	})
	if err != nil {
		return false, err
	}
	fmt.Fprintf(w, "push stage: replay requested for %s; the pushers of %s replay them in partition order\n", cli.Plural(n, "key", "keys"), system)
	if n == 0 || wait <= 0 {
		return false, nil
	}
	parts := map[coord.PartitionRef]bool{}
	for mk := range asked {
		model, key, _ := strings.Cut(mk, "|")
		parts[coord.PartitionRef{Model: model, Partition: env.Coord.PartitionOf(key)}] = true
	}
	list := make([]coord.PartitionRef, 0, len(parts))
	for p := range parts {
		list = append(list, p)
	}
	ends, err := env.Coord.StreamEnds(ctx, list)
	if err != nil {
		return false, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	behind, err := env.Coord.AwaitCursors(wctx, system, ends, 200*time.Millisecond)
	cancel()
	if err != nil {
		return false, err
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	parked, err := env.Coord.Parked(ctx, system, "push")
	if err != nil {
		return false, err
	}
	var still []string
	for mk := range asked {
		if parked[mk] > 0 {
			still = append(still, mk)
		}
	}
	sort.Strings(still)
	if len(behind) > 0 {
		fmt.Fprintf(w, "  the pushers of %s did not reach the replay in %s of %s within %v: are they running? (remix status)\n",
			system, cli.Plural(len(behind), "partition", "partitions"), cli.Plural(len(still), "parked key", "parked keys"), wait)
		return true, nil
	}
	fmt.Fprintf(w, "  replayed %s, failed %s\n", cli.Plural(n-len(still), "key", "keys"), cli.Plural(len(still), "key", "keys"))
	if len(still) == 0 {
		return false, nil
	}
	stillSet := map[string]bool{}
	for _, mk := range still {
		stillSet[mk] = true
	}
	err = env.Coord.EachDeadLetter(ctx, system, func(d *coord.DeadLetter) error {
		if d.Stage == "push" && stillSet[d.ParkKey()] {
			delete(stillSet, d.ParkKey()) // the first of each key is the one that failed
			fmt.Fprintf(w, "  failed %s (model %s, key %s, %s): %s\n", d.ID, d.Model, d.Key, cli.Plural(d.Attempts, "attempt", "attempts"), d.Reason)
		}
		return nil
	})
	return true, err
}

// ShowDeadLetter prints one dead letter whole: where it came from, every
// reason, its record, and the dead letters of its key behind it. It looks
// in the given systems' queues (all when none).
func ShowDeadLetter(ctx context.Context, env *Env, id string, systems []string, w io.Writer) error {
	if len(systems) == 0 {
		for _, s := range env.Config.Systems {
			systems = append(systems, s.Name)
		}
	}
	var found []coord.DeadLetter
	for _, sys := range systems {
		d, ok, err := env.Coord.DeadLetterByID(ctx, sys, id)
		if err != nil {
			return err
		}
		if ok {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return fmt.Errorf("no dead letter %s in %s (systems %s)", id, env.Redis, strings.Join(systems, ", "))
	}
	for i := range found {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := showOne(ctx, env, &found[i], w); err != nil {
			return err
		}
	}
	return nil
}

func showOne(ctx context.Context, env *Env, d *coord.DeadLetter, w io.Writer) error {
	fmt.Fprintf(w, "dead letter %s of %s (%s stage, %s)\n", d.ID, d.System, d.Stage, d.Kind)
	fmt.Fprintf(w, "  model:     %s\n  key:       %s\n", d.Model, d.Key)
	if d.Location != "" {
		fmt.Fprintf(w, "  location:  %s\n", d.Location)
	}
	fmt.Fprintf(w, "  partition: %d\n", d.Partition)
	if d.Origin != "" {
		fmt.Fprintf(w, "  entry:     %s\n", d.Origin)
	}
	fmt.Fprintf(w, "  attempts:  %d\n  time:      %s\n", d.Attempts, d.Time.Format(time.RFC3339))
	fmt.Fprintln(w, "reasons:")
	for _, r := range reasons(d.Reason) {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	fmt.Fprintln(w, "record:")
	fmt.Fprintln(w, indent(prettyJSON(d.Payload), "  "))
	chain, err := env.Coord.DeadLettersOfKey(ctx, d)
	if err != nil {
		return err
	}
	var behind []coord.DeadLetter
	for _, o := range chain {
		if o.ID != d.ID && !before(o.ID, d.ID) {
			behind = append(behind, o)
		}
	}
	if len(behind) > 0 {
		fmt.Fprintf(w, "waiting behind it (same key): %s\n", cli.Plural(len(behind), "dead letter", "dead letters"))
		for _, o := range behind {
			fmt.Fprintf(w, "  %s  %s\n", o.ID, oneLine(o.Reason, 90))
		}
	}
	return nil
}

// reasons splits a reason that lists several problems ("object does not
// match model customer: email: ...; name: ...") into one line each.
func reasons(reason string) []string {
	head, rest, ok := strings.Cut(reason, ": ")
	if !ok || !strings.Contains(rest, "; ") || strings.Contains(head, ";") {
		return []string{reason}
	}
	parts := strings.Split(rest, "; ")
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = head + ": " + p
	}
	return out
}

// prettyJSON indents a JSON payload, numbers exactly as written; anything
// else is shown as text.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

func indent(s, by string) string {
	return by + strings.ReplaceAll(s, "\n", "\n"+by)
}

// before compares stream ids ("ms-seq").
func before(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if am != bm {
		return len(am) < len(bm) || len(am) == len(bm) && am < bm
	}
	return len(as) < len(bs) || len(as) == len(bs) && as < bs
}
