package coord

import "github.com/redis/go-redis/v9"

// Every script that adds or removes dead letters keeps a system's queue
// bookkeeping in one place. All of a system's dead-letter keys share the
// hash tag {dlq:system}; scripts get their common prefix ("base") as an
// argument and build the names below from it:
//
//	base:entries               the stream of dead letters
//	base:bytes                 the bytes they hold (sum of their field values)
//	base:dropped               how many were dropped to make room (opt-in)
//	base:parked:STAGE          hash model|key -> dead letters holding the key
//	base:idx:STAGE:MODEL|KEY   list of the key's dead-letter ids, in order
//
// The per-key lists let a replay read just the dead letters of the keys it
// replays, however many others the queue holds.
const luaDLQ = `
local function dlqadd(base, stage, park, fields)
  local size = 0
  for i = 2, #fields, 2 do size = size + #fields[i] end
  table.insert(fields, 'size')
  table.insert(fields, tostring(size))
  local id = redis.call('XADD', base .. ':entries', '*', unpack(fields))
  redis.call('INCRBY', base .. ':bytes', size)
  redis.call('HINCRBY', base .. ':parked:' .. stage, park, 1)
  redis.call('RPUSH', base .. ':idx:' .. stage .. ':' .. park, id)
  return id
end
-- dlqremove deletes one dead letter and unparks its key when it was the
-- key's last; it returns the number still holding the key, or -1 when the
-- entry is gone already.
local function dlqremove(base, id)
  local e = redis.call('XRANGE', base .. ':entries', id, id)
  if #e == 0 then return -1 end
  local f = {}
  for i = 1, #e[1][2], 2 do f[e[1][2][i]] = e[1][2][i + 1] end
  redis.call('XDEL', base .. ':entries', id)
  redis.call('DECRBY', base .. ':bytes', tonumber(f['size'] or '0'))
  local park = (f['model'] or '') .. '|' .. (f['key'] or '')
  local stage = f['stage'] or ''
  redis.call('LREM', base .. ':idx:' .. stage .. ':' .. park, 1, id)
  local left = redis.call('HINCRBY', base .. ':parked:' .. stage, park, -1)
  if left <= 0 then
    redis.call('HDEL', base .. ':parked:' .. stage, park)
    left = 0
  end
  return left
end
-- dlqsupersede sets aside every dead letter of a parked key, because a
-- newer complete version of it (a whole row, a delete) makes them moot:
-- they move to base:superseded (kept, newest 100 000 or so) and the key is
-- unparked. It returns how many moved, or -1 when some of the key's dead
-- letters predate the per-key lists (they cannot be found cheaply: the key
-- stays parked and the newer version waits behind them as before).
local function dlqsupersede(base, stage, park, by, now)
  local held = tonumber(redis.call('HGET', base .. ':parked:' .. stage, park) or '0')
  local idx = base .. ':idx:' .. stage .. ':' .. park
  local ids = redis.call('LRANGE', idx, 0, -1)
  if #ids < held then return -1 end
  local moved = 0
  for _, id in ipairs(ids) do
    local e = redis.call('XRANGE', base .. ':entries', id, id)
    if #e == 1 then
      local f = e[1][2]
      local size = 0
      for i = 1, #f, 2 do if f[i] == 'size' then size = tonumber(f[i + 1]) end end
      table.insert(f, 'dead_letter')
      table.insert(f, id)
      table.insert(f, 'superseded_by')
      table.insert(f, by)
      table.insert(f, 'superseded_at')
      table.insert(f, now)
      redis.call('XADD', base .. ':superseded', 'MAXLEN', '~', '100000', '*', unpack(f))
      redis.call('XDEL', base .. ':entries', id)
      redis.call('DECRBY', base .. ':bytes', size)
      moved = moved + 1
    end
  end
  redis.call('DEL', idx)
  redis.call('HDEL', base .. ':parked:' .. stage, park)
  redis.call('INCRBY', base .. ':superseded_count', moved)
  return moved
end
-- dlqroom makes room for count more dead letters of size bytes: true when
-- they fit, dropping the oldest first when drop is set (and counting
-- them); false when they do not fit and nothing may be dropped.
local function dlqroom(base, maxn, maxb, drop, count, size)
  if count == 0 then return true end
  while true do
    local n = redis.call('XLEN', base .. ':entries')
    local b = tonumber(redis.call('GET', base .. ':bytes') or '0')
    if (maxn <= 0 or n + count <= maxn) and (maxb <= 0 or b + size <= maxb) then return true end
    if not drop or n == 0 then return false end
    local first = redis.call('XRANGE', base .. ':entries', '-', '+', 'COUNT', 1)
    dlqremove(base, first[1][1])
    redis.call('INCR', base .. ':dropped')
  end
end
`

// publishScript appends a batch of items one object per entry. It is the
// path for batches with bad records, while keys are parked, and for
// deliveries pushed to Remix (webhooks), which are deduplicated and ordered
// per object instead of fenced.
//
// KEYS[1] the source's reader lock, or "" for a publish no lock fences
// KEYS[2] the source's parked hash of the receive stage (base:parked:receive)
// KEYS[3..] the partition streams the objects go to
// ARGV[1] the caller's lock value (its fencing token), or ""
// ARGV[2] the source's dead-letter base; ARGV[3] the most dead letters,
// ARGV[4] the most bytes (0: no limit), ARGV[5] "1" to drop the oldest when
// full
// ARGV[6] the number of items n
// ARGV[7] a delivery id ("" for none): a delivery whose id was published in
// the last ARGV[9] seconds is a repeat and publishes nothing
// ARGV[8] the source's prefix for delivery ids and object versions
// (NS:{src:SOURCE}); ARGV[9] how long ids and versions are kept, seconds
// then 8 values per item:
//
//	kind    "o" an object, "c" a complete object (a whole row, a delete),
//	        "r" a bad record
//	index   for an object, the KEYS index of its stream
//	key     the partition key (the change's source identity)
//	model   the model
//	payload
//	extra1  object: its partition; record: its location
//	extra2  object: the entry body (see entry.go); record: why it is bad
//	version "" or the object's version: it is published only when greater
//	        than the last one published for its key (compared as strings,
//	        so a writer pads them); an older one is skipped as stale, an
//	        equal one as a tie
//
// An object whose model|key is parked (an earlier change of that key is
// dead-lettered) is diverted to the dead-letter stream behind it, so per-key
// order survives a replay; a complete object instead supersedes the key's
// dead letters (dlqsupersede) and is published: a fix at the source flows
// through by itself. A bad record is dead-lettered and parks its key.
//
// Returns {published, diverted, dead-lettered, superseded, stale, tied,
// repeat (1 when the delivery id was seen)}; the error "FENCED ..." when
// the lock holds another value (or none), or "DLQFULL ..." when the dead
// letters would not fit: nothing is written then.
var publishScript = redis.NewScript(luaDLQ + `
if KEYS[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED reader lock not held')
end
local base, prefix, keep = ARGV[2], ARGV[8], tonumber(ARGV[9])
if ARGV[7] ~= '' and redis.call('EXISTS', prefix .. ':seen:' .. ARGV[7]) == 1 then
  return {0, 0, 0, 0, 0, 0, 1}
end
local n = tonumber(ARGV[6])
local function at(i) return 10 + i * 8 end
-- While nothing is parked (nearly always), objects go straight to their
-- streams without a lookup each. A first pass decides each item's fate, so
-- the batch is refused whole when its dead letters do not fit.
local anyParked = redis.call('HLEN', KEYS[2]) > 0
local state = {} -- park -> parked at this point of the batch
local function parked(park)
  if state[park] == nil then
    state[park] = anyParked and redis.call('HEXISTS', KEYS[2], park) == 1
  end
  return state[park]
end
local function indexed(park) -- every dead letter of the key is in its list
  local held = tonumber(redis.call('HGET', KEYS[2], park) or '0')
  return redis.call('LLEN', base .. ':idx:receive:' .. park) >= held
end
local fate = {}
local last = {} -- version key -> newest version of the batch so far
local count, size, stale, tied = 0, 0, 0, 0
for i = 0, n - 1 do
  local b = at(i)
  local park = ARGV[b+3] .. '|' .. ARGV[b+2]
  local kind, version = ARGV[b], ARGV[b+7]
  if kind ~= 'r' and version ~= '' then
    local vkey = prefix .. ':v:' .. ARGV[b+3] .. '|' .. ARGV[b+2]
    local prev = last[vkey] or redis.call('GET', vkey)
    if prev and version < prev then
      fate[i], stale = 'skip', stale + 1
    elseif prev and version == prev then
      fate[i], tied = 'skip', tied + 1
    else
      last[vkey] = version
    end
  end
  if fate[i] == nil then
    if kind == 'r' then
      fate[i] = 'dead'
      state[park] = true
    elseif parked(park) then
      if kind == 'c' and indexed(park) then
        fate[i] = 'supersede'
        state[park] = false
      else
        fate[i] = 'dead'
      end
    end
  end
  if fate[i] == 'dead' then
    count = count + 1
    size = size + #ARGV[b+4] + #ARGV[b+6] + 96
  end
end
if not dlqroom(base, tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1', count, size) then
  return redis.error_reply('DLQFULL the dead-letter queue is full')
end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
local pub, div, bad, sup = 0, 0, 0, 0
for i = 0, n - 1 do
  local b = at(i)
  local park = ARGV[b+3] .. '|' .. ARGV[b+2]
  if fate[i] == nil or fate[i] == 'supersede' then
    if fate[i] == 'supersede' then
      local moved = dlqsupersede(base, 'receive', park, 'a newer complete version from the source', now)
      if moved > 0 then sup = sup + moved end
    end
    redis.call('XADD', KEYS[tonumber(ARGV[b+1])], '*', 'n', '1', 'b', ARGV[b+6])
    pub = pub + 1
  elseif fate[i] == 'skip' then
  elseif ARGV[b] == 'r' then
    dlqadd(base, 'receive', park, {'stage', 'receive', 'kind', 'record', 'key', ARGV[b+2], 'model', ARGV[b+3],
      'location', ARGV[b+5], 'reason', ARGV[b+6], 'attempts', '1', 'time', now, 'payload', ARGV[b+4]})
    bad = bad + 1
  else
    dlqadd(base, 'receive', park, {'stage', 'receive', 'kind', 'object', 'key', ARGV[b+2], 'model', ARGV[b+3],
      'partition', ARGV[b+5], 'reason', 'parked behind an earlier dead letter of the same key',
      'attempts', '0', 'time', now, 'payload', ARGV[b+4]})
    div = div + 1
  end
end
for vkey, version in pairs(last) do
  redis.call('SET', vkey, version, 'EX', keep)
end
if ARGV[7] ~= '' then
  redis.call('SET', prefix .. ':seen:' .. ARGV[7], '1', 'EX', keep)
end
return {pub, div, bad, sup, stale, tied, 0}
`)

// supersedeScript sets aside the dead letters of a parked key of a
// target's push stage because the partition's owner holds a newer complete
// version of it, which it then applies (see dlqsupersede). Only the holder
// of the partition's lease may.
//
// KEYS[1] the partition's lease
// ARGV[1] the lease holder's value, ARGV[2] the target's dead-letter base,
// ARGV[3] model|key, ARGV[4] what supersedes them
//
// Returns how many moved; -1 when some predate the per-key lists (nothing
// moves), -2 when the lease is not the caller's.
var supersedeScript = redis.NewScript(luaDLQ + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -2
end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
return dlqsupersede(ARGV[2], 'push', ARGV[3], ARGV[4], now)
`)

// deadLetterScript moves one object of a target's stream entry to the
// target's dead-letter stream and parks its key, if the caller still holds
// the partition's lease; when the object finishes the oldest entry not yet
// acknowledged, the group's cursor passes that entry in the same atomic
// step (so a single-object entry moves atomically with its acknowledgement).
//
// KEYS[1] the target's parked hash of the push stage (base:parked:push)
// KEYS[2] the partition stream
// KEYS[3] the partition's lease
// ARGV[1] partition key, ARGV[2] model, ARGV[3] partition, ARGV[4] origin
// (entry id/object index), ARGV[5] reason, ARGV[6] attempts, ARGV[7]
// payload, ARGV[8] "1" to act only if model|key is already parked,
// ARGV[9] the group (the target), ARGV[10] the entry id to move the cursor
// to, or "" to leave it, ARGV[11] the lease holder's value, ARGV[12] the
// target's dead-letter base, ARGV[13] the most dead letters, ARGV[14] the
// most bytes, ARGV[15] "1" to drop the oldest when full
//
// Returns 1 when moved, 0 when ARGV[8] asked for a parked key that is not,
// -1 when the lease is not the caller's, -2 when the queue is full (nothing
// is written for these).
var deadLetterScript = redis.NewScript(luaIDs + luaDLQ + `
if redis.call('GET', KEYS[3]) ~= ARGV[11] then
  return -1
end
local park = ARGV[2] .. '|' .. ARGV[1]
if ARGV[8] == '1' and redis.call('HEXISTS', KEYS[1], park) == 0 then
  return 0
end
if not dlqroom(ARGV[12], tonumber(ARGV[13]), tonumber(ARGV[14]), ARGV[15] == '1', 1, #ARGV[7] + #ARGV[5] + 96) then
  return -2
end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
dlqadd(ARGV[12], 'push', park, {'stage', 'push', 'kind', 'entry', 'key', ARGV[1], 'model', ARGV[2],
  'partition', ARGV[3], 'origin', ARGV[4], 'reason', ARGV[5], 'attempts', ARGV[6], 'time', now, 'payload', ARGV[7]})
if ARGV[10] ~= '' then
  advance(KEYS[2], ARGV[9], ARGV[10], 1)
end
return 1
`)

// resolveScript removes a dead letter that was replayed or dropped, and
// unparks its key when it was the key's last one.
//
// KEYS[1] the dead-letter stream (base:entries); ARGV[1] the dead-letter
// base, ARGV[2] the dead letter's id
//
// Returns the number of dead letters still holding the key, or -1 when the
// entry was already gone (replayed or dropped by someone else).
var resolveScript = redis.NewScript(luaDLQ + `
return dlqremove(ARGV[1], ARGV[2])
`)

// replayPublishScript republishes a receive-stage dead letter's objects into
// their partition streams and resolves it, atomically, so no publish of the
// same key can come between.
//
// KEYS[1] the dead-letter stream (base:entries), KEYS[2..] the streams, one
// per object
// ARGV[1] the dead-letter base, ARGV[2] the dead letter's id, then one
// entry body (see entry.go) per stream
//
// Returns the number of dead letters still holding the key, or -1 when the
// entry was already gone (nothing is published then).
var replayPublishScript = redis.NewScript(luaDLQ + `
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  return -1
end
for i = 2, #KEYS do
  redis.call('XADD', KEYS[i], '*', 'n', '1', 'b', ARGV[i + 1])
end
return dlqremove(ARGV[1], ARGV[2])
`)
