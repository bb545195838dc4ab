package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// backlogScript measures a target's backlog on one partition stream: the
// entries after its group's cursor (Redis's own lag when it knows it, else
// counted up to a cap), and the oldest of them.
//
// KEYS[1] the stream
// ARGV[1] the group (the target), ARGV[2] the most entries counted when
// Redis does not know the lag
//
// Returns {entries, oldest id or "", entries the group passed or -1,
// capped}: entries is -1 when the stream or the group does not exist yet;
// capped is 1 when the entries were counted and reached the cap (what the
// group passed is then unknown). What the group passed is what the stream
// ever received less what waits: the group's own entries-read counter is
// not kept by every cursor move.
var backlogScript = redis.NewScript(`
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return {-1, '', -1, 0} end
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  if info['name'] == ARGV[1] then
    local after = '(' .. info['last-delivered-id']
    local first = redis.call('XRANGE', KEYS[1], after, '+', 'COUNT', 1)
    local oldest = ''
    if #first > 0 then oldest = first[1][1] end
    local added = -1
    local si = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #si, 2 do
      if si[i] == 'entries-added' then added = si[i + 1] end
    end
    local lag = info['lag']
    local capped = 0
    if not lag then
      if oldest == '' then
        lag = 0
      else
        local cap = tonumber(ARGV[2])
        lag = #redis.call('XRANGE', KEYS[1], after, '+', 'COUNT', cap)
        if lag >= cap then capped = 1 end
      end
    end
    local read = -1
    if added >= 0 and capped == 0 then read = added - lag end
    return {lag, oldest, read, capped}
  end
end
return {-1, '', -1, 0}
`)

// backlogCountCap bounds the entries counted one by one on a partition
// whose lag Redis does not know.
const backlogCountCap = 100000

// ModelBacklog is what one target has not applied yet of one model.
type ModelBacklog struct {
	Model      string `json:"model"`
	Partitions int    `json:"partitions"`
	// Entries is how many stream entries wait after the target's cursors,
	// summed over the partitions; AtLeast says some partition was counted
	// only up to a cap.
	Entries int64 `json:"entries"`
	AtLeast bool  `json:"at_least,omitempty"`
	// Oldest is the time (from its id) of the oldest entry waiting; zero
	// when none waits.
	Oldest time.Time `json:"oldest,omitempty"`
	// Applied counts the entries the target's cursors passed, summed (-1
	// when Redis does not know it for some partition): its change over time
	// is the target's throughput.
	Applied int64 `json:"applied"`
	// NoGroup counts partitions where the target has no consumer group yet
	// (no ingest has published the model).
	NoGroup int `json:"no_group,omitempty"`
	// Owners maps each pusher (its member id) to the partitions it holds a
	// lease on; Unowned counts the partitions nobody holds. Only set by
	// Status.
	Owners  map[string]int `json:"owners,omitempty"`
	Unowned int            `json:"unowned"`
}

// Age is how long the oldest waiting entry has waited at now; zero when
// none waits.
func (b ModelBacklog) Age(now time.Time) time.Duration {
	if b.Oldest.IsZero() || now.Before(b.Oldest) {
		return 0
	}
	return now.Sub(b.Oldest)
}

// backlogCmds are the pipelined reads of one model's backlog for a target.
type backlogCmds struct {
	model  string
	parts  int
	cmds   []*redis.Cmd
	leases []*redis.StringCmd // nil unless owners are read
}

func (c *Client) queueBacklog(ctx context.Context, pipe redis.Pipeliner, target, model string, partitions int, owners bool) backlogCmds {
	b := backlogCmds{model: model, parts: partitions}
	for p := 0; p < partitions; p++ {
		b.cmds = append(b.cmds, backlogScript.Eval(ctx, pipe, []string{c.keys.stream(model, p)}, target, backlogCountCap))
		if owners {
			b.leases = append(b.leases, pipe.Get(ctx, c.keys.lease(model, p, target)))
		}
	}
	return b
}

func (b backlogCmds) result() (ModelBacklog, error) {
	out := ModelBacklog{Model: b.model, Partitions: b.parts}
	var oldest string
	for p, cmd := range b.cmds {
		res, err := cmd.Slice()
		if err != nil {
			return out, fmt.Errorf("reading the backlog of %s, partition %d: %w", b.model, p, err)
		}
		if len(res) != 4 {
			return out, fmt.Errorf("reading the backlog of %s, partition %d: unexpected reply %v", b.model, p, res)
		}
		lag, _ := res[0].(int64)
		id, _ := res[1].(string)
		read, _ := res[2].(int64)
		capped, _ := res[3].(int64)
		if lag < 0 {
			out.NoGroup++
			continue
		}
		out.Entries += lag
		out.AtLeast = out.AtLeast || capped == 1
		if id != "" && (oldest == "" || idLess(id, oldest)) {
			oldest = id
		}
		if read < 0 || out.Applied < 0 {
			out.Applied = -1
		} else {
			out.Applied += read
		}
	}
	if oldest != "" {
		out.Oldest = idTime(oldest)
	}
	if b.leases != nil {
		out.Owners = map[string]int{}
		for _, l := range b.leases {
			if owner, err := l.Result(); err == nil && owner != "" {
				out.Owners[owner]++
			} else {
				out.Unowned++
			}
		}
	}
	return out, nil
}

// Backlog reads what a target has not applied yet of each model, in one
// pipelined round trip, with Redis's clock: the figures a pusher exports
// as metrics.
func (c *Client) Backlog(ctx context.Context, target string, models []string) ([]ModelBacklog, time.Time, error) {
	pipe := c.rdb.Pipeline()
	now := pipe.Time(ctx)
	reads := make([]backlogCmds, len(models))
	for i, m := range models {
		reads[i] = c.queueBacklog(ctx, pipe, target, m, c.cfg.Partitions, false)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) && !isScriptReplyErr(err) {
		return nil, time.Time{}, fmt.Errorf("reading the backlog of %s: %w", target, err)
	}
	out := make([]ModelBacklog, len(models))
	for i, r := range reads {
		b, err := r.result()
		if err != nil {
			return nil, time.Time{}, err
		}
		out[i] = b
	}
	return out, now.Val(), nil
}

// isScriptReplyErr: an error of one pipelined command is read from that
// command.
func isScriptReplyErr(err error) bool {
	var re redis.Error
	return err != nil && errors.As(err, &re)
}

// idTime is the time in a stream entry id's millisecond part.
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// idLess compares stream entry ids.
func idLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if am != bm {
		return len(am) < len(bm) || len(am) == len(bm) && am < bm
	}
	return len(as) < len(bs) || len(as) == len(bs) && as < bs
}

// StatusQuery names what Status reads: the systems of a configuration.
type StatusQuery struct {
	Sources []string
	Targets map[string][]string // each target system and the models it pushes
}

// Status is a fleet's state in Redis at one moment.
type Status struct {
	Time     time.Time       `json:"time"` // Redis's clock
	Topology map[string]int  `json:"topology"`
	Ingests  []IngestMember  `json:"ingests"`
	Sources  []SourceStatus  `json:"sources"`
	Targets  []TargetBacklog `json:"targets"`
}

// SourceStatus is who reads a source and how far it got.
type SourceStatus struct {
	Name string `json:"name"`
	// LockToken is the holder number of the source's reader lock; 0 when
	// nobody holds it. LockExpires is when it lapses without a renewal.
	LockToken   int64     `json:"lock_token"`
	LockExpires time.Time `json:"lock_expires,omitempty"`
	// Report is the last report of the leading ingest, when it is in time
	// (nil otherwise); it is the holder's when Report.Token is LockToken.
	Report *SourceReport `json:"report,omitempty"`
}

// Holder is the member id of the lock holder, "" when unknown.
func (s SourceStatus) Holder() string {
	if s.Report != nil && s.LockToken != 0 && s.Report.Token == s.LockToken {
		return s.Report.Holder
	}
	return ""
}

// TargetBacklog is a target's pushers and backlog per model.
type TargetBacklog struct {
	Name    string         `json:"name"`
	Pushers []PusherMember `json:"pushers"`
	Models  []ModelBacklog `json:"models"`
}

// PusherMember is one live pusher of a target.
type PusherMember struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// Status reads everything `remix status` shows from Redis, in two
// pipelined round trips (dead letters aside: DeadLetterStats).
func (c *Client) Status(ctx context.Context, q StatusQuery) (*Status, error) {
	pipe := c.rdb.Pipeline()
	now := pipe.Time(ctx)
	topo := pipe.HGetAll(ctx, c.keys.topology())
	ingests := pipe.ZRangeWithScores(ctx, c.keys.ingests(), 0, -1)
	info := pipe.HGetAll(ctx, c.keys.ingestInfo())
	type srcCmds struct {
		lock   *redis.StringCmd
		ttl    *redis.DurationCmd
		report *redis.StringCmd
	}
	srcs := make([]srcCmds, len(q.Sources))
	for i, s := range q.Sources {
		srcs[i] = srcCmds{pipe.Get(ctx, c.keys.readerLock(s)), pipe.PTTL(ctx, c.keys.readerLock(s)), pipe.Get(ctx, c.keys.sourceReport(s))}
	}
	targets := make([]string, 0, len(q.Targets))
	for t := range q.Targets {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	members := make([]*redis.ZSliceCmd, len(targets))
	for i, t := range targets {
		members[i] = pipe.ZRangeWithScores(ctx, c.keys.members(t), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) {
		return nil, fmt.Errorf("reading the fleet's status: %w", err)
	}
	st := &Status{Time: now.Val().UTC(), Topology: map[string]int{}}
	for m, n := range topo.Val() {
		st.Topology[m], _ = strconv.Atoi(n)
	}
	for _, m := range parseIngests(ingests.Val(), info.Val()) {
		if m.Expires.After(st.Time) {
			st.Ingests = append(st.Ingests, m)
		}
	}
	for i, s := range q.Sources {
		ss := SourceStatus{Name: s, LockToken: lockToken(srcs[i].lock.Val())}
		if ss.LockToken != 0 && srcs[i].ttl.Val() > 0 {
			ss.LockExpires = st.Time.Add(srcs[i].ttl.Val())
		}
		if raw := srcs[i].report.Val(); raw != "" {
			var r SourceReport
			if json.Unmarshal([]byte(raw), &r) == nil {
				ss.Report = &r
			}
		}
		st.Sources = append(st.Sources, ss)
	}

	pipe = c.rdb.Pipeline()
	reads := make([][]backlogCmds, len(targets))
	for i, t := range targets {
		for _, m := range q.Targets[t] {
			parts := st.Topology[m]
			if parts == 0 {
				parts = c.cfg.Partitions // no process recorded it yet
			}
			reads[i] = append(reads[i], c.queueBacklog(ctx, pipe, t, m, parts, true))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisNil(err) && !isScriptReplyErr(err) {
		return nil, fmt.Errorf("reading the backlogs: %w", err)
	}
	for i, t := range targets {
		tb := TargetBacklog{Name: t}
		for _, z := range members[i].Val() {
			id, _ := z.Member.(string)
			exp := time.UnixMilli(int64(z.Score)).UTC()
			if exp.After(st.Time) {
				tb.Pushers = append(tb.Pushers, PusherMember{ID: id, Expires: exp})
			}
		}
		for _, r := range reads[i] {
			b, err := r.result()
			if err != nil {
				return nil, err
			}
			tb.Models = append(tb.Models, b)
		}
		st.Targets = append(st.Targets, tb)
	}
	return st, nil
}

// HasTopology reports whether any Remix process has recorded its models in
// this namespace: false means the Redis or the namespace is not the
// fleet's (or nothing has run yet).
func (c *Client) HasTopology(ctx context.Context) (bool, error) {
	n, err := c.rdb.Exists(ctx, c.keys.topology()).Result()
	if err != nil {
		return false, fmt.Errorf("reading the topology: %w", err)
	}
	return n > 0, nil
}

// Topology reads the partition count each model has in Redis.
func (c *Client) Topology(ctx context.Context) (map[string]int, error) {
	m, err := c.rdb.HGetAll(ctx, c.keys.topology()).Result()
	if err != nil {
		return nil, fmt.Errorf("reading the topology: %w", err)
	}
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k], _ = strconv.Atoi(v)
	}
	return out, nil
}
