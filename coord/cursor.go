package coord

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A target's consumer group on a partition stream is used as a cursor, not
// as a pending list: the group's last-delivered id is the last entry the
// target has applied (or dead-lettered), and only the holder of the
// partition's lease moves it, forward, in a script that checks the lease.
// Reading is plain XREAD after the owner's own position, which changes
// nothing in Redis. So a read that arrives late — from a pusher that froze
// between deciding to read and sending the command, or whose packets were
// held up past its lease — can never take entries away from the new owner,
// and a pusher that dropped what it read (its tenure lapsed) simply reads
// again from the cursor. See docs/decisions/2026-12-05-stream-cursors.md.

// luaIDs compares stream ids exactly (numbers in Lua are doubles, so the
// parts are compared as digit strings) and finds the group of a stream.
const luaIDs = `
local function cmpnum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function idless(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local c = cmpnum(am, bm)
  if c ~= 0 then return c < 0 end
  return cmpnum(as, bs) < 0
end
local function groupinfo(stream, group)
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
  if not ok then return nil end
  for _, g in ipairs(groups) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group then return info end
  end
  return nil
end
local function advance(stream, group, id, n)
  local g = groupinfo(stream, group)
  if g == nil then
    redis.call('XGROUP', 'CREATE', stream, group, id, 'MKSTREAM')
    return 1
  end
  if not idless(g['last-delivered-id'], id) then return 1 end
  if g['entries-read'] then
    redis.call('XGROUP', 'SETID', stream, group, id, 'ENTRIESREAD', g['entries-read'] + n)
  else
    redis.call('XGROUP', 'SETID', stream, group, id)
  end
  return 1
end
`

// openScript starts a tenure of a partition lease: it returns where the
// group's cursor stands and how many tenures in a row started there.
//
// KEYS[1] the lease, KEYS[2] the stream, KEYS[3] the tenure counter
// ARGV[1] the holder's value, ARGV[2] the group (the target)
//
// Returns {cursor, tenures}, or the error "FENCED ..." when the lease is
// not the caller's.
//
// Tenures in a row at one cursor count how often the entry after it was
// being handled when its owner died: a graceful release clears the counter
// (releasePartitionScript). A group written by an earlier version of Remix,
// which acknowledged entry by entry, still has a pending list: the cursor
// goes back to just before its oldest pending entry, the list is emptied
// and its consumers removed.
var openScript = redis.NewScript(luaIDs + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED lease not held')
end
local g = groupinfo(KEYS[2], ARGV[2])
if g == nil then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[2], '0', 'MKSTREAM')
  g = groupinfo(KEYS[2], ARGV[2])
end
local cursor = g['last-delivered-id']
if g['pending'] > 0 then
  local first = redis.call('XPENDING', KEYS[2], ARGV[2])[2]
  local ms, seq = string.match(first, '^(%d+)-(%d+)$')
  if seq ~= '0' then
    cursor = ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
  elseif ms ~= '0' then
    cursor = string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
  else
    cursor = '0-0'
  end
  while true do
    local rows = redis.call('XPENDING', KEYS[2], ARGV[2], '-', '+', 500)
    if #rows == 0 then break end
    local ids = {}
    for i, r in ipairs(rows) do ids[i] = r[1] end
    redis.call('XACK', KEYS[2], ARGV[2], unpack(ids))
  end
  redis.call('XGROUP', 'SETID', KEYS[2], ARGV[2], cursor)
end
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[2], ARGV[2])) do
  redis.call('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[2], c[2])
end
local n = 1
local prev = redis.call('GET', KEYS[3])
if prev then
  local at, count = string.match(prev, '^(%S+) (%d+)$')
  if at == cursor then n = tonumber(count) + 1 end
end
redis.call('SET', KEYS[3], cursor .. ' ' .. n, 'PX', 604800000)
return {cursor, n}
`)

// advanceScript moves a group's cursor forward to an entry the caller
// applied, if the caller still holds the partition's lease.
//
// KEYS[1] the lease, KEYS[2] the stream
// ARGV[1] the holder's value, ARGV[2] the group, ARGV[3] the entry id,
// ARGV[4] how many entries the cursor passes
//
// Returns 1 when the cursor stands at or after the entry, 0 when the lease
// is not the caller's (nothing changes).
var advanceScript = redis.NewScript(luaIDs + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
return advance(KEYS[2], ARGV[2], ARGV[3], tonumber(ARGV[4]))
`)

// releasePartitionScript gives up a partition lease the caller holds and
// clears its tenure counter: the partition was handed over cleanly.
//
// KEYS[1] the lease, KEYS[2] the tenure counter; ARGV[1] the holder's value
//
// Returns 1 when released, 0 when the lease holds another value or none.
var releasePartitionScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// open starts the tenure of a partition just acquired: where to read from,
// and how many tenures in a row started there.
func (cs *Consumer) open(ctx context.Context, p *partition) (cursor string, tenures int, err error) {
	res, err := openScript.Run(ctx, cs.c.rdb, []string{p.lease, p.stream, p.tenureKey}, cs.id, cs.target).Slice()
	if err != nil {
		return "", 0, fmt.Errorf("opening partition %d of %s: %w", p.index, p.model, err)
	}
	if len(res) != 2 {
		return "", 0, fmt.Errorf("opening partition %d of %s: unexpected reply %v", p.index, p.model, res)
	}
	cursor, _ = res[0].(string)
	n, _ := res[1].(int64)
	return cursor, int(n), nil
}

// cursor reads where a partition's cursor stands for this target.
func (cs *Consumer) cursor(ctx context.Context, p *partition) (string, error) {
	groups, err := cs.c.rdb.XInfoGroups(ctx, p.stream).Result()
	if err != nil {
		return "", fmt.Errorf("reading the cursor of partition %d of %s: %w", p.index, p.model, err)
	}
	for _, g := range groups {
		if g.Name == cs.target {
			return g.LastDeliveredID, nil
		}
	}
	return "0-0", nil
}

// advanceArgs are the arguments of advanceScript.
func (cs *Consumer) advanceArgs(to string, n int) []any {
	return []any{cs.id, cs.target, to, strconv.Itoa(n)}
}

// cursorMove moves a partition's cursor past n entries, to entry to.
type cursorMove struct {
	p  *partition
	to string
	n  int
}

// moveCursors moves cursors in one round trip, trying again a while when
// Redis fails (entries not acknowledged are read and written again later,
// which targets absorb). A cursor another pusher owns now is left alone.
func (cs *Consumer) moveCursors(ctx context.Context, moves []cursorMove) error {
	if len(moves) == 0 {
		return nil
	}
	var bo backoff
	for {
		pipe := cs.c.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(moves))
		for i, m := range moves {
			cmds[i] = advanceScript.Eval(ctx, pipe, []string{m.p.lease, m.p.stream}, cs.advanceArgs(m.to, m.n)...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			for i, m := range moves {
				if n, _ := cmds[i].Int64(); n != 1 {
					cs.log.Warn("the cursor of a partition was not moved: another pusher owns it now", "target", cs.target,
						"model", m.p.model, "partition", m.p.index)
				}
			}
			return nil
		}
		cs.log.Warn("moving cursors failed; retrying", "partitions", len(moves), "error", err)
		if bo.n >= 8 || !bo.wait(ctx, cs.c.cfg) {
			return err
		}
	}
}
