package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
)

// StatusView is what `remix status` shows, as its JSON form has it. Ages
// and rates are computed at Time, Redis's clock; a rate needs two readings
// and is null in the first.
type StatusView struct {
	Time        time.Time        `json:"time"`
	Redis       string           `json:"redis"`
	Members     []MemberView     `json:"members"`
	Sources     []SourceView     `json:"sources"`
	Targets     []TargetView     `json:"targets"`
	DeadLetters []DeadLetterView `json:"dead_letters"`
}

// MemberView is one process of the fleet: an ingest (with its role per
// source) or a pusher (with the partitions it holds per target).
type MemberView struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // ingest or pusher
	// Sources maps each source an ingest serves to its role there: leader
	// (with the source's state), standby, or the state of an attempt to
	// lead that failed (failing, stopped, starting).
	Sources map[string]string `json:"sources,omitempty"`
	// Partitions maps each target a pusher serves to the partitions it
	// holds, over all models.
	Partitions map[string]int `json:"partitions,omitempty"`
	Version    string         `json:"version,omitempty"`
}

// SourceView is who reads a source and how far it got.
type SourceView struct {
	Name string `json:"name"`
	// Holder is the ingest that holds the reader lock ("" when nobody does,
	// or the holder has not reported yet); LockToken numbers the holders.
	Holder    string `json:"holder"`
	LockToken int64  `json:"lock_token"`
	State     string `json:"state"` // the leader's: streaming, snapshot, degraded...; "unread" when nobody holds the lock
	Detail    string `json:"detail,omitempty"`
	// Positions read and confirmed, as the source writes them, and the
	// unconfirmed backlog in the source's own unit (PostgreSQL: WAL bytes
	// read but not yet confirmed).
	ReadPosition      string `json:"read_position,omitempty"`
	ConfirmedPosition string `json:"confirmed_position,omitempty"`
	Unconfirmed       uint64 `json:"unconfirmed"`
	// Retained is what the source system keeps for Remix, in bytes
	// (PostgreSQL: the WAL its slot holds on the server); null when unknown.
	Retained *uint64 `json:"retained"`
	// Snapshot progress, while the first copy runs.
	Snapshotting     bool  `json:"snapshotting"`
	SnapshotRows     int64 `json:"snapshot_rows,omitempty"`
	SnapshotEstimate int64 `json:"snapshot_estimate,omitempty"`
}

// TargetView is a target's pushers and its backlog per model.
type TargetView struct {
	Name    string      `json:"name"`
	Pushers []string    `json:"pushers"`
	Models  []ModelView `json:"models"`
}

// ModelView is a target's backlog of one model.
type ModelView struct {
	Model      string `json:"model"`
	Partitions int    `json:"partitions"`
	// Backlog counts the stream entries not applied yet (at least that
	// many when BacklogAtLeast); OldestAgeSeconds is how long the oldest has
	// waited.
	Backlog          int64   `json:"backlog"`
	BacklogAtLeast   bool    `json:"backlog_at_least,omitempty"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// AppliedPerSecond is the rate the target's cursors moved since the
	// previous reading; null when unknown.
	AppliedPerSecond *float64       `json:"applied_per_second"`
	Owners           map[string]int `json:"owners"` // pusher → partitions it holds
	Unowned          int            `json:"unowned"`
	NoGroup          int            `json:"no_group,omitempty"` // partitions where nothing was published for the target yet
}

// DeadLetterView is a system's dead-letter queue.
type DeadLetterView struct {
	System  string `json:"system"`
	Entries int64  `json:"entries"`
	Bytes   int64  `json:"bytes"`
	Dropped int64  `json:"dropped"`
	// Superseded counts dead letters a newer complete version of their key
	// set aside (kept in the superseded list: remix dlq list --superseded).
	Superseded int64  `json:"superseded"`
	Limit      string `json:"limit"`
	WhenFull   string `json:"when_full"`
}

// statusReading is one reading of the fleet.
type statusReading struct {
	st   *coord.Status
	dead []DeadLetterView
}

// readStatus reads the fleet's state for the env's configuration.
func readStatus(ctx context.Context, env *Env) (*statusReading, error) {
	q := coord.StatusQuery{Targets: map[string][]string{}}
	for _, s := range env.Config.Systems {
		if s.Receive != nil {
			q.Sources = append(q.Sources, s.Name)
		}
		if s.Push != nil {
			q.Targets[s.Name] = s.Push.Models()
		}
	}
	sort.Strings(q.Sources)
	st, err := env.Coord.Status(ctx, q)
	if err != nil {
		return nil, err
	}
	r := &statusReading{st: st}
	for _, s := range env.Config.Systems {
		ds, err := env.Coord.DeadLetterStats(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		when := "pause"
		if ds.Limit.DropOldest {
			when = "drop_oldest"
		}
		r.dead = append(r.dead, DeadLetterView{System: s.Name, Entries: ds.Entries, Bytes: ds.Bytes, Dropped: ds.Dropped,
			Superseded: ds.Superseded, Limit: limitShort(ds.Limit.MaxEntries, ds.Limit.MaxBytes), WhenFull: when})
	}
	return r, nil
}

// limitShort is a queue's limit: "100000 entries or 256.0 MiB".
func limitShort(entries, bytes int64) string {
	var parts []string
	if entries > 0 {
		parts = append(parts, plural(int(entries), "entry"))
	}
	if bytes > 0 {
		parts = append(parts, bytesText(uint64(bytes)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " or ")
}

// view builds what is shown from a reading and, for rates, the one before
// it (nil: none).
func (r *statusReading) view(redis string, prev *statusReading) StatusView {
	st := r.st
	v := StatusView{Time: st.Time, Redis: redis, DeadLetters: r.dead}
	leaders := map[string]string{} // source → holder
	for _, s := range st.Sources {
		sv := SourceView{Name: s.Name, Holder: s.Holder(), LockToken: s.LockToken, State: "unread"}
		if s.LockToken != 0 {
			sv.State = "locked" // held, but its holder has not reported yet
		}
		if rep := s.Report; rep != nil && rep.Token == s.LockToken && s.LockToken != 0 {
			sv.State, sv.Detail = rep.State, rep.Detail
			sv.ReadPosition, sv.ConfirmedPosition = rep.ReadPosition, rep.ConfirmedPosition
			if rep.ReadOffset > rep.ConfirmedOffset && rep.ConfirmedOffset > 0 {
				sv.Unconfirmed = rep.ReadOffset - rep.ConfirmedOffset
			}
			sv.Snapshotting, sv.SnapshotRows, sv.SnapshotEstimate = rep.Snapshotting, rep.SnapshotRows, rep.SnapshotEstimate
			sv.Retained = rep.Retained
		}
		leaders[s.Name] = sv.Holder
		v.Sources = append(v.Sources, sv)
	}
	for _, m := range st.Ingests {
		mv := MemberView{ID: m.ID, Kind: "ingest", Sources: map[string]string{}, Version: m.Version}
		for src, state := range m.Sources {
			switch {
			case leaders[src] == m.ID:
				mv.Sources[src] = "leader (" + state + ")"
			default:
				mv.Sources[src] = state
			}
		}
		v.Members = append(v.Members, mv)
	}
	pushers := map[string]*MemberView{}
	var prevTargets map[string]map[string]coord.ModelBacklog
	if prev != nil {
		prevTargets = map[string]map[string]coord.ModelBacklog{}
		for _, t := range prev.st.Targets {
			prevTargets[t.Name] = map[string]coord.ModelBacklog{}
			for _, m := range t.Models {
				prevTargets[t.Name][m.Model] = m
			}
		}
	}
	for _, t := range st.Targets {
		tv := TargetView{Name: t.Name, Pushers: []string{}}
		member := func(id string) *MemberView {
			if pushers[id] == nil {
				pushers[id] = &MemberView{ID: id, Kind: "pusher", Partitions: map[string]int{}}
			}
			return pushers[id]
		}
		for _, p := range t.Pushers {
			tv.Pushers = append(tv.Pushers, p.ID)
			member(p.ID).Partitions[t.Name] += 0
		}
		for _, m := range t.Models {
			mv := ModelView{Model: m.Model, Partitions: m.Partitions, Backlog: m.Entries, BacklogAtLeast: m.AtLeast,
				OldestAgeSeconds: m.Age(st.Time).Seconds(), Owners: m.Owners, Unowned: m.Unowned, NoGroup: m.NoGroup}
			if mv.Owners == nil {
				mv.Owners = map[string]int{}
			}
			for id, n := range m.Owners {
				member(id).Partitions[t.Name] += n
			}
			if p, ok := prevTargets[t.Name][m.Model]; ok && m.Applied >= 0 && p.Applied >= 0 && m.Applied >= p.Applied {
				if dt := st.Time.Sub(prev.st.Time).Seconds(); dt > 0 {
					rate := float64(m.Applied-p.Applied) / dt
					mv.AppliedPerSecond = &rate
				}
			}
			tv.Models = append(tv.Models, mv)
		}
		v.Targets = append(v.Targets, tv)
	}
	ids := make([]string, 0, len(pushers))
	for id := range pushers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v.Members = append(v.Members, *pushers[id])
	}
	return v
}

// Status prints the fleet's state: once (two readings a second apart, for
// the rates), or with watch every interval until ctx ends, each reading's
// rates from the one before. format is text or json (with watch, one JSON
// object per line).
func Status(ctx context.Context, env *Env, format string, watch bool, interval time.Duration, w io.Writer) error {
	prev, err := readStatus(ctx, env)
	if err != nil {
		return err
	}
	if !watch {
		if connectors.Sleep(ctx, min(interval, time.Second)) != nil {
			return ctx.Err()
		}
	}
	for {
		cur, err := readStatus(ctx, env)
		if err != nil {
			return err
		}
		v := cur.view(env.Redis, prev)
		if format == "json" {
			enc := json.NewEncoder(w)
			if !watch {
				enc.SetIndent("", "  ")
			}
			if err := enc.Encode(v); err != nil {
				return err
			}
		} else {
			var b strings.Builder
			if watch {
				b.WriteString("\033[H\033[2J") // home, clear: one screen per reading
			}
			renderStatus(&b, v)
			if _, err := io.WriteString(w, b.String()); err != nil {
				return err
			}
		}
		if !watch {
			return nil
		}
		prev = cur
		if connectors.Sleep(ctx, interval) != nil {
			return nil
		}
	}
}

// Problems lists what an operator should look at in a view: sources nobody
// reads or that cannot move, partitions no pusher holds, targets without
// pushers, dead letters.
func (v StatusView) Problems() []string {
	var out []string
	for _, s := range v.Sources {
		switch s.State {
		case "streaming", "snapshot":
		default:
			out = append(out, fmt.Sprintf("source %s is %s", s.Name, s.State))
		}
	}
	for _, t := range v.Targets {
		if len(t.Pushers) == 0 {
			out = append(out, fmt.Sprintf("target %s has no pusher", t.Name))
			continue
		}
		for _, m := range t.Models {
			if m.Unowned > 0 {
				out = append(out, fmt.Sprintf("%s/%s: %s held by no pusher", t.Name, m.Model, plural(m.Unowned, "partition")))
			}
		}
	}
	for _, d := range v.DeadLetters {
		if d.Entries > 0 {
			out = append(out, fmt.Sprintf("%s holds %s (remix dlq list --system %s)", d.System, plural(int(d.Entries), "dead letter"), d.System))
		}
	}
	return out
}
