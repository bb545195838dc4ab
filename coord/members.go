package coord

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The fleet reports itself in Redis for `remix status`: each ingest process
// beats a heartbeat with the state of each source in it, and the leading
// ingest of a source reports its progress. Pushers are the members of their
// targets' consumer groups (Consumer's heartbeat) and own what the lease
// keys say. Nothing here is read by the pipeline itself: a report that is
// late or missing changes only what status shows.

// IngestMember is one ingest process as it last reported itself.
type IngestMember struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started"`
	// Sources maps each source the process serves to its state there:
	// standby (another ingest reads it), or the state of the leader
	// (streaming, snapshot, degraded, failing, stopped, starting).
	Sources map[string]string `json:"sources"`
	// Expires is when the member is forgotten without a new heartbeat
	// (Redis's clock); set when read.
	Expires time.Time `json:"expires"`
}

// ingestHeartbeatScript records an ingest as alive until now+TTL with what
// it reported, and forgets the ingests whose time ran out.
//
// KEYS[1] the members sorted set, KEYS[2] the info hash
// ARGV[1] the member id, ARGV[2] the TTL in ms, ARGV[3] the member's JSON
//
// Returns the number of live ingests, this one included.
var ingestHeartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 10)
return redis.call('ZCARD', KEYS[1])
`)

// IngestHeartbeat records an ingest process as alive for ttl, with what it
// does.
func (c *Client) IngestHeartbeat(ctx context.Context, m IngestMember, ttl time.Duration) error {
	m.Expires = time.Time{}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding ingest %s: %w", m.ID, err)
	}
	err = ingestHeartbeatScript.Run(ctx, c.rdb, []string{c.keys.ingests(), c.keys.ingestInfo()}, m.ID, ttl.Milliseconds(), string(b)).Err()
	if err != nil {
		return fmt.Errorf("ingest heartbeat: %w", err)
	}
	return nil
}

// IngestLeft forgets an ingest process at once (it stopped cleanly).
func (c *Client) IngestLeft(ctx context.Context, id string) error {
	pipe := c.rdb.TxPipeline()
	pipe.ZRem(ctx, c.keys.ingests(), id)
	pipe.HDel(ctx, c.keys.ingestInfo(), id)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("removing ingest %s: %w", id, err)
	}
	return nil
}

// MemberID names a process of the fleet: host, process id and a random
// suffix, as consumer names are.
func MemberID(host string) string { return consumerName(host) }

// SourceReport is what the leading ingest of a source reports every few
// seconds: its state and how far it got. Offsets are positions as numbers
// where the source's positions have one (PostgreSQL: WAL byte offsets).
type SourceReport struct {
	Holder string `json:"holder"` // the ingest's member id
	Token  int64  `json:"token"`  // the holder number of its reader lock
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`

	Snapshotting      bool   `json:"snapshotting,omitempty"`
	SnapshotRows      int64  `json:"snapshot_rows,omitempty"`
	SnapshotEstimate  int64  `json:"snapshot_estimate,omitempty"`
	ReadPosition      string `json:"read_position,omitempty"`
	ConfirmedPosition string `json:"confirmed_position,omitempty"`
	ReadOffset        uint64 `json:"read_offset,omitempty"`
	ConfirmedOffset   uint64 `json:"confirmed_offset,omitempty"`
	// Retained is what the source system keeps for Remix, in bytes
	// (PostgreSQL: the WAL its slot holds); nil when unknown.
	Retained *uint64 `json:"retained,omitempty"`

	Time time.Time `json:"time"` // when it was made, by the holder's clock
}

// ReportSource keeps a source's report for ttl: a report not renewed in
// time is gone, rather than shown stale.
func (c *Client) ReportSource(ctx context.Context, source string, r SourceReport, ttl time.Duration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the report of %s: %w", source, err)
	}
	if err := c.rdb.Set(ctx, c.keys.sourceReport(source), b, ttl).Err(); err != nil {
		return fmt.Errorf("reporting %s: %w", source, err)
	}
	return nil
}

// parseIngests decodes the members set and info hash; members without
// info (reported by nothing yet) keep their id only.
func parseIngests(members []redis.Z, info map[string]string) []IngestMember {
	out := make([]IngestMember, 0, len(members))
	for _, z := range members {
		id, _ := z.Member.(string)
		m := IngestMember{ID: id}
		if raw, ok := info[id]; ok {
			_ = json.Unmarshal([]byte(raw), &m) // a member that cannot be read is shown by its id
			m.ID = id
		}
		m.Expires = time.UnixMilli(int64(z.Score)).UTC()
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// lockToken reads the holder number of a reader lock's value
// ("<n>-<random>"); 0 when the value is not one.
func lockToken(value string) int64 {
	n, _, ok := strings.Cut(value, "-")
	if !ok {
		return 0
	}
	t, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return 0
	}
	return t
}
