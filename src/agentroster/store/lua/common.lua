-- Shared by apply.lua and reap.lua (concatenated before each at load time).
-- P is the key base "{prefix}:"; now is Redis server time in ms: one clock for every replica.
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local events = 0

local function akey(a) return P .. 'agent:' .. a end
local function ikey(a, i) return P .. 'i:' .. a .. ':' .. i end
local function instkey(a) return P .. 'inst:' .. a end

-- Append one event to the outbox, in the same script as the change it reports. Its stream id
-- is "<revision>-0", so "the events after revision R" is XRANGE from "(R-0".
local function emit(a, kind, status, reason, with_card)
  local k = akey(a)
  local rev = redis.call('INCR', P .. 'rev')
  local live = redis.call('ZCARD', instkey(a))
  local fields = {'rev', rev, 'kind', kind, 'agent', a, 'status', status, 'live', live,
                  'reason', reason, 'time', now, 'view', redis.call('HGET', k, 'view') or '{}',
                  'epoch', redis.call('GET', P .. 'epoch') or '0'}
  if with_card then
    fields[#fields + 1] = 'card'
    fields[#fields + 1] = redis.call('HGET', k, 'card') or 'null'
  end
  redis.call('XADD', P .. 'outbox', rev .. '-0', unpack(fields))
  redis.call('HSET', k, 'rev', rev)
  events = events + 1
end

-- Set an agent's status and keep the status indexes in step with it.
local function set_status(a, status, retention_ms)
  redis.call('HSET', akey(a), 'status', status)
  for _, s in ipairs({'live', 'idle', 'offline'}) do
    if s == status then
      redis.call('ZADD', P .. 'status:' .. s, 0, a)
    else
      redis.call('ZREM', P .. 'status:' .. s, a)
    end
  end
  if status == 'offline' then
    redis.call('ZREM', P .. 'available', a)
    redis.call('ZREM', P .. 'idle', a)
    redis.call('ZADD', P .. 'retain', now + retention_ms, a)
  else
    redis.call('ZADD', P .. 'available', 0, a)
    redis.call('ZREM', P .. 'retain', a)
    if status == 'live' then redis.call('ZREM', P .. 'idle', a) end
  end
end

-- Move an agent between the secondary indexes: old terms out, new terms in.
-- Terms are newline-separated ("skill:forecast", "tag:weather", "label:team=geo", ...).
local function reindex(a, old_terms, new_terms)
  if old_terms and old_terms ~= '' then
    for term in string.gmatch(old_terms, '[^\n]+') do
      redis.call('ZREM', P .. 'ix:' .. term, a)
    end
  end
  if new_terms and new_terms ~= '' then
    for term in string.gmatch(new_terms, '[^\n]+') do
      redis.call('ZADD', P .. 'ix:' .. term, 0, a)
    end
  end
end

-- End one live instance's lease (deregistered or expired), leaving its tombstone.
-- Returns true when it was live.
local function end_instance(a, i, state)
  local removed = redis.call('ZREM', instkey(a), i)
  redis.call('ZREM', P .. 'leases', a .. '|' .. i)
  local ik = ikey(a, i)
  redis.call('HSET', ik, 'state', state)
  local ttl = tonumber(redis.call('HGET', ik, 'ttl') or '60000')
  redis.call('PEXPIRE', ik, ttl)
  return removed == 1
end

-- After an instance ended: if it was the last, the agent goes idle or offline.
local function after_instance_ended(a, reason, retention_ms)
  if redis.call('ZCARD', instkey(a)) > 0 then return end
  local k = akey(a)
  if redis.call('HGET', k, 'status') ~= 'live' then return end
  local idle_ttl = tonumber(redis.call('HGET', k, 'idle_ttl') or '0')
  if idle_ttl > 0 then
    set_status(a, 'idle', retention_ms)
    redis.call('ZADD', P .. 'idle', now + idle_ttl, a)
    emit(a, 'updated', 'idle', 'scaled-to-zero', false)
  else
    set_status(a, 'offline', retention_ms)
    emit(a, 'left', 'offline', reason, false)
  end
end
