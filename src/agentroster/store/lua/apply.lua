-- Apply a batch of commands atomically.
-- ARGV: common.lua's, then retention_ms, agents per identity (0: no limit), instances per
-- agent (0: no limit), n, then n records of STRIDE fields:
--   kind, agent, instance, seq, ttl_ms, interval_ms, idle_ttl_ms, user, digest, sdigest,
--   card, view, reason, terms (newline-separated index terms), text (lower-case search text)
-- Returns one code per command: 0 applied, 1 duplicate or late (seq), 2 forbidden (another
-- identity owns the agent), 3 heartbeat for an agent whose card the registry does not have,
-- 4 applied with a card digest that differs from the registered one, 5 over the quota of
-- agents per identity, 6 over the quota of instances per agent, 7 duplicate or late again and
-- again (the instance is stuck: its client's seq went backwards, or a replay); then the number
-- of events written, the registry epoch, then the agents whose events began to be damped.
--
-- Ownership (invariant 6): an agent's first registration binds it to the identity it carried
-- (the broker-validated user_id, '' for none) in the agent hash's `owner`; from then on a
-- command from any other identity, '' included, changes nothing. It is checked before the
-- seq, so no one else can move an instance's seq either.
local STRIDE = 15
local STUCK_AFTER = 3 -- ignored commands in a row before an instance is reported stuck
local retention = tonumber(ARGV[ARG0 + 1])
local max_agents, max_instances = tonumber(ARGV[ARG0 + 2]), tonumber(ARGV[ARG0 + 3])
local n = tonumber(ARGV[ARG0 + 4])
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
             'deadline', deadline, 'ignored', 0)
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

-- A new instance would take the agent past its quota of instances.
local function too_many_instances(a, i)
  return max_instances > 0 and redis.call('ZCARD', instkey(a)) >= max_instances
    and not redis.call('ZSCORE', instkey(a), i)
end

for c = 0, n - 1 do
  local o = ARG0 + 4 + c * STRIDE
  local kind, a, i = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local seq = tonumber(ARGV[o + 4])
  local user = ARGV[o + 8]
  local k = akey(a)
  local owner = redis.call('HGET', k, 'owner')
  local inst = redis.call('HMGET', ikey(a, i), 'seq', 'state')
  local last = inst[1]
  if owner and owner ~= user then
    codes[#codes + 1] = 2
  elseif last and tonumber(last) >= seq then
    -- ignored as a duplicate or late; a few in a row (not after a deregistration, where late
    -- messages are expected) mean the instance's client is stuck: said once per episode
    local ignored = redis.call('HINCRBY', ikey(a, i), 'ignored', 1)
    codes[#codes + 1] = (ignored == STUCK_AFTER and inst[2] ~= 'deregistered') and 7 or 1
  elseif kind ~= 'deregister' and too_many_instances(a, i) then
    codes[#codes + 1] = 6
  elseif kind == 'register' and not owner and max_agents > 0
      and redis.call('SCARD', P .. 'owned:' .. user) >= max_agents then
    codes[#codes + 1] = 5
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
    if not owner then
      redis.call('HSET', k, 'owner', user)
      redis.call('SADD', P .. 'owned:' .. user, a)
    end
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
