-- Apply a batch of commands atomically.
-- ARGV: common.lua's, then retention_ms, n, then n records of STRIDE fields:
--   kind, agent, instance, seq, ttl_ms, interval_ms, idle_ttl_ms, user, digest, sdigest,
--   card, view, reason, terms (newline-separated index terms), text (lower-case search text)
-- Returns one code per command: 0 applied, 1 duplicate or late (seq), 2 forbidden (owner),
-- 3 heartbeat for an agent whose card the registry does not have, 4 applied with a card digest
-- that differs from the registered one; then the number of events written, the registry
-- epoch, then the agents whose events began to be damped.
local STRIDE = 15
local retention = tonumber(ARGV[ARG0 + 1])
local n = tonumber(ARGV[ARG0 + 2])
local codes = {}
-- after a data loss, agents coming back say so
local join_reason = redis.call('EXISTS', P .. 'recovering') == 1 and 'recovered' or 'registered'
local longest = tonumber(redis.call('GET', P .. 'ttlmax') or '0')

-- Renew (or start) an instance's lease; returns the agent status before.
local function renew(a, i, seq, ttl)
  local k = akey(a)
  local ik = ikey(a, i)
  local deadline = now + ttl
  redis.call('HSET', ik, 'seq', seq, 'state', 'live', 'last_seen', now, 'ttl', ttl,
             'deadline', deadline)
  redis.call('HSETNX', ik, 'first_seen', now)
  -- a live instance's record lives as long as its lease, however long the registry is away;
  -- only when the instance ends does it get a TTL, as a tombstone against late messages
  redis.call('PERSIST', ik)
  redis.call('ZADD', P .. 'leases', deadline, a .. '|' .. i)
  redis.call('ZADD', instkey(a), deadline, i)
  redis.call('HSET', k, 'last_seen', now)
  return redis.call('HGET', k, 'status')
end

-- Status after a renewal: joined from nothing/offline, woke from idle.
local function became_live(a, before, card_changed)
  if before == 'live' then
    if card_changed then emit(a, 'updated', 'live', 'card-changed', true) end
    return
  end
  set_status(a, 'live', retention)
  if before == 'idle' then
    emit(a, 'updated', 'live', 'woke', true)
  else
    emit(a, 'joined', 'live', join_reason, true)
  end
end

for c = 0, n - 1 do
  local o = ARG0 + 2 + c * STRIDE
  local kind, a, i = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local seq = tonumber(ARGV[o + 4])
  local user = ARGV[o + 8]
  local k = akey(a)
  local owner = redis.call('HGET', k, 'owner')
  local last = redis.call('HGET', ikey(a, i), 'seq')
  if owner and owner ~= user then
    codes[#codes + 1] = 2
  elseif last and tonumber(last) >= seq then
    codes[#codes + 1] = 1
  elseif kind == 'register' then
    local ttl = tonumber(ARGV[o + 5])
    if ttl >= longest then
      -- the longest TTL in use sizes the recovery window after a data loss; it lapses when no
      -- agent with that TTL has registered for a while (Beacons re-register once per TTL)
      longest = ttl
      redis.call('SET', P .. 'ttlmax', ttl, 'PX', 2 * ttl)
    end
    local sdigest = ARGV[o + 10]
    local card_changed = redis.call('HGET', k, 'sdigest') ~= sdigest
    local before = renew(a, i, seq, ttl)
    if card_changed then
      reindex(a, redis.call('HGET', k, 'terms'), ARGV[o + 14])
      redis.call('HSET', k, 'card', ARGV[o + 11], 'view', ARGV[o + 12], 'digest', ARGV[o + 9],
                 'sdigest', sdigest, 'terms', ARGV[o + 14], 'text', ARGV[o + 15])
    end
    redis.call('HSET', k, 'ttl', ttl, 'interval', ARGV[o + 6], 'idle_ttl', ARGV[o + 7])
    redis.call('HSETNX', k, 'first_seen', now)
    if user ~= '' then redis.call('HSETNX', k, 'owner', user) end
    redis.call('ZADD', P .. 'agents', 0, a)
    became_live(a, before, card_changed)
    codes[#codes + 1] = 0
  elseif kind == 'heartbeat' then
    local digest = redis.call('HGET', k, 'digest')
    if not digest then
      codes[#codes + 1] = 3
    else
      local before = renew(a, i, seq, tonumber(ARGV[o + 5]))
      became_live(a, before, false)
      codes[#codes + 1] = (digest == ARGV[o + 9]) and 0 or 4
    end
  else -- deregister
    local ik = ikey(a, i)
    redis.call('HSET', ik, 'seq', seq)
    if end_instance(a, i, 'deregistered') then
      after_instance_ended(a, 'deregistered', retention)
    end
    codes[#codes + 1] = 0
  end
end
codes[#codes + 1] = events
codes[#codes + 1] = epoch
for _, a in ipairs(damped) do codes[#codes + 1] = a end
return codes
