package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sqlpipe/remix/connectors/builtin"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/ingest"
	"github.com/sqlpipe/remix/internal/cli"
)

// ListOptions says what ListDeadLetters prints.
type ListOptions struct {
	Limit int  // most dead letters listed per system
	JSON  bool // JSON lines instead of a table
	// Superseded lists the dead letters that a newer complete version of
	// their key set aside (kept for inspection) instead of the queue.
	Superseded bool
}

// ListDeadLetters prints the dead letters of the given systems (all when
// none), as a table or as JSON lines; the table ends with each queue's
// figures and the Redis and namespace it was read from.
func ListDeadLetters(ctx context.Context, env *Env, systems []string, o ListOptions, w io.Writer) error {
	if len(systems) == 0 {
		for _, s := range env.Config.Systems {
			systems = append(systems, s.Name)
		}
	}
	read := env.Coord.DeadLetters
	if o.Superseded {
		read = env.Coord.SupersededDeadLetters
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if !o.JSON {
		head := "SYSTEM\tID\tSTAGE\tKIND\tMODEL\tKEY\tATTEMPTS\tTIME\tREASON"
		if o.Superseded {
			head += "\tSUPERSEDED BY"
		}
		fmt.Fprintln(tw, head)
	}
	for _, sys := range systems {
		after := ""
		shown := 0
		for shown < o.Limit {
			dls, err := read(ctx, sys, after, min(200, o.Limit-shown))
			if err != nil {
				return err
			}
			if len(dls) == 0 {
				break
			}
			for _, d := range dls {
				after = d.ID
				shown++
				if o.JSON {
					m := map[string]any{"system": d.System, "id": d.ID, "stage": d.Stage, "kind": d.Kind, "model": d.Model,
						"key": d.Key, "location": d.Location, "partition": d.Partition, "origin": d.Origin, "attempts": d.Attempts,
						"time": d.Time.Format(time.RFC3339), "reason": d.Reason, "payload": json.RawMessage(validJSON(d.Payload))}
					if o.Superseded {
						m["superseded_by"] = d.SupersededBy
					}
					b, _ := json.Marshal(m)
					fmt.Fprintln(w, string(b))
					continue
				}
				line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", d.System, d.ID, d.Stage, d.Kind, d.Model, d.Key, d.Attempts,
					d.Time.Format(time.RFC3339), oneLine(d.Reason, 120))
				if o.Superseded {
					line += "\t" + oneLine(d.SupersededBy, 60)
				}
				fmt.Fprintln(tw, line)
			}
		}
	}
	if err := tw.Flush(); err != nil || o.JSON {
		return err
	}
	for _, sys := range systems {
		st, err := env.Coord.DeadLetterStats(ctx, sys)
		if err != nil {
			return err
		}
		if st.Entries == 0 && st.Dropped == 0 && (!o.Superseded || st.Superseded == 0) {
			continue
		}
		when := "pause"
		if st.Limit.DropOldest {
			when = "drop_oldest"
		}
		fmt.Fprintf(w, "%s: %s, %s; %d dropped to make room; %d superseded; %s, when full: %s\n",
			sys, cli.Plural(int(st.Entries), "dead letter", "dead letters"), bytesText(uint64(st.Bytes)),
			st.Dropped, st.Superseded, limitText(st.Limit.MaxEntries, st.Limit.MaxBytes), when)
	}
	fmt.Fprintf(w, "(read from %s)\n", env.Redis)
	return nil
}

func limitText(entries, bytes int64) string {
	var parts []string
	if entries > 0 {
		parts = append(parts, fmt.Sprintf("%d entries", entries))
	}
	if bytes > 0 {
		parts = append(parts, bytesText(uint64(bytes)))
	}
	if len(parts) == 0 {
		return "no limit"
	}
	return "limit " + strings.Join(parts, " or ")
}

func validJSON(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// DropDeadLetters removes dead letters (all of the system's when ids is
// empty and all is set) and unparks their keys.
func DropDeadLetters(ctx context.Context, env *Env, system string, ids []string, all bool, w io.Writer) error {
	if len(ids) == 0 && !all {
		return fmt.Errorf("name the dead letters to drop with --id, or drop them all with --all")
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	dropped := 0
	err := env.Coord.EachDeadLetter(ctx, system, func(d *coord.DeadLetter) error {
		if !all && !want[d.ID] {
			return nil
		}
		n, err := env.Coord.Resolve(ctx, d)
		if n >= 0 && err == nil {
			dropped++
		}
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "dropped %s\n", cli.Plural(dropped, "dead letter", "dead letters"))
	return nil
}

// Reset drops a source's replication slot and checkpoint so its next start
// takes a fresh snapshot. It takes the source's reader lock first: no
// ingest may be reading.
func Reset(ctx context.Context, env *Env, system string, w io.Writer) error {
	sys := env.Config.System(system)
	if sys == nil || sys.Receive == nil {
		return fmt.Errorf("%s is not a source in this configuration", system)
	}
	conn := builtin.Connectors()[sys.Type]
	if conn.Reset == nil {
		return fmt.Errorf("%s sources keep nothing to reset", sys.Type)
	}
	lctx, cancel := context.WithTimeout(ctx, 3*env.Coord.Config().LockTTL)
	defer cancel()
	lock, err := env.Coord.AcquireReader(lctx, system)
	if err != nil {
		return fmt.Errorf("an ingest is reading %s: stop it before a reset (%w)", system, err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	if err := conn.Reset(ctx, sys, ingest.FencedCheckpoints(env.Coord, system, lock)); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s reset: its next ingest creates a new slot and copies the tables again\n", system)
	fmt.Fprintf(w, "rows deleted at %s while its slot was gone stay in the targets: `remix reconcile %s` shows them, `remix reconcile %s --apply` deletes them\n", system, system, system)
	return nil
}
