package coord

import "github.com/redis/go-redis/v9"

// Timestamps inside scripts come from Redis's clock (TIME), so the clocks of
// the fleet's machines never matter. Scripts are replicated by effects (the
// default since Redis 7), which makes TIME safe to use.

// packedPublishScript appends packed entries (see entry.go), fenced by the
// source's reader lock, as long as nothing of the source is parked; when
// something is, it writes nothing and the caller uses publishScript, which
// looks at each object.
//
// KEYS[1] the source's reader lock
// KEYS[2] the source's parked hash of the receive stage
// KEYS[3..] one stream per entry (a stream may come more than once)
// ARGV[1] the caller's lock value; then per entry: its object count, the
// body's field (b, or z when compressed) and the body
//
// Returns the number of entries written, -1 when something is parked, or
// the error "FENCED ..." when the lock holds another value (or none).
var packedPublishScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED reader lock not held')
end
if redis.call('HLEN', KEYS[2]) > 0 then
  return -1
end
for i = 3, #KEYS do
  local a = 3 * (i - 2)
  redis.call('XADD', KEYS[i], '*', 'n', ARGV[a - 1], ARGV[a], ARGV[a + 1])
end
return #KEYS - 2
`)

// trimScript trims a partition stream below what every consumer group has
// acknowledged: for each group, its oldest pending entry, or the entry after
// its last delivered one when nothing is pending. A stream without groups is
// left alone (its readers have not registered yet).
//
// KEYS[1] the stream
//
// Returns the number of entries removed.
var trimScript = redis.NewScript(`
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then
  return 0
end
local floor = nil
for _, g in ipairs(groups) do
  local name, pending, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1]
    elseif g[i] == 'pending' then pending = g[i + 1]
    elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local f
  if pending > 0 then
    f = redis.call('XPENDING', KEYS[1], name)[2]
  else
    local ms, seq = parse(last)
    f = string.format('%d-%d', ms, seq + 1)
  end
  if floor == nil or less(f, floor) then floor = f end
end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
`)

// acquireScript takes a free partition lease and numbers the new tenure.
// The token is the larger of the previous token plus one and Redis's clock
// in milliseconds, so it keeps growing even if the counter is lost (a
// flushed or restored Redis): tenures are at least a lease TTL apart.
//
// KEYS[1] the lease; KEYS[2] its fence counter; ARGV[1] the holder's value;
// ARGV[2] the TTL in ms
//
// Returns the tenure's fencing token, or 0 when the lease is taken.
var acquireScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = math.max((tonumber(redis.call('GET', KEYS[2])) or 0) + 1, now)
redis.call('SET', KEYS[2], string.format('%d', token))
return token
`)

// renewScript extends a lease or lock the caller holds.
//
// KEYS[1] the lease; ARGV[1] the holder's value; ARGV[2] the TTL in ms
//
// Returns 1 when extended, 0 when the key holds another value or none.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes a lease the caller holds.
//
// KEYS[1] the lease; ARGV[1] the holder's value
//
// Returns 1 when deleted, 0 when the key holds another value or none.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// heartbeatScript records a pusher as alive until now+TTL and forgets the
// members whose time ran out.
//
// KEYS[1] the members sorted set; ARGV[1] the member; ARGV[2] the TTL in ms
//
// Returns {live members, this one included; how many of them have a name
// that sorts before this one's; ms until the first other member expires,
// -1 when there is none}. The rank decides which members take one
// partition more when the partitions do not divide evenly; the expiry is
// when a dead member stops counting.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
local rank = 0
local first = -1
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  local m = all[i]
  if m < ARGV[1] then rank = rank + 1 end
  if m ~= ARGV[1] then
    local left = tonumber(all[i + 1]) - now
    if first < 0 or left < first then first = left end
  end
end
return {#all / 2, rank, first}
`)

// saveCheckpointScript writes a checkpoint, fenced by the reader lock.
//
// KEYS[1] the reader lock; KEYS[2] the checkpoint
// ARGV[1] the caller's lock value; ARGV[2] the encoded checkpoint
//
// Returns "OK", or the error "FENCED ..." when the lock is not the caller's.
var saveCheckpointScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED reader lock not held')
end
return redis.call('SET', KEYS[2], ARGV[2])
`)

// barrierScript records an arrival and says what the caller does.
//
// KEYS[1] the set of arrived partitions, KEYS[2] the owner lock, KEYS[3] done,
// KEYS[4] the partition's stream
// ARGV[1] the partition, ARGV[2] the partition count, ARGV[3] the caller,
// ARGV[4] owner lock TTL in ms, ARGV[5] the group (the target), ARGV[6] the
// id of the barrier's entry in the partition
//
// Returns 2 done, 1 apply (the caller owns it), 0 wait.
//
// A partition arrives only when its cursor stands just before the barrier's
// entry: every entry before it is applied and acknowledged, so whoever
// reads the partition next starts at the barrier, never before it.
//
// The owner key expires (ARGV[4]) so a dead owner does not block the barrier;
// barrierDoneScript then refuses a late owner's "done", and that owner tries
// again and finds the barrier applied.
var barrierScript = redis.NewScript(luaIDs + `
if redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
local g = groupinfo(KEYS[4], ARGV[5])
if g then
  local nxt = redis.call('XRANGE', KEYS[4], '(' .. g['last-delivered-id'], '+', 'COUNT', 1)
  if #nxt == 0 or nxt[1][1] ~= ARGV[6] then return 0 end
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], 604800000)
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then return 0 end
local owner = redis.call('GET', KEYS[2])
if owner == false then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  return 1
end
if owner == ARGV[3] then return 1 end
return 0
`)

// barrierDoneScript marks a barrier applied if the caller still owns it.
//
// KEYS[1] the owner lock, KEYS[2] done; ARGV[1] the caller
//
// Returns 1, or 0 when someone else owns the barrier now (the caller's
// write was applied after the owner changed: it must try again).
var barrierDoneScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], '1', 'EX', 604800)
return 1
`)
