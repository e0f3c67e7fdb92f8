-- Apply a batch of commands atomically.
-- Arguments (named in store/scripts.py, APPLY): common.lua's, then retention (ms), max_agents
-- per identity (0: no limit), max_instances per agent (0: no limit), n, then n records of
-- STRIDE fields at ARGV[o + F_<FIELD>] (the fields of registry.prepare.Prepared: terms are
-- newline-separated index terms, text the lower-case search text, trace the command's W3C trace
-- context that its events carry, '' for none).
-- Returns REPLY{events, epoch}, then one code per command (scripts.Code: APPLIED, DUPLICATE,
-- FORBIDDEN, ...), then the agents whose events began to be damped.
--
-- Ownership (invariant 6): an agent's first registration binds it to the identity it carried
-- (the broker-validated user_id, '' for none) in the agent hash's `owner`; from then on a
-- command from any other identity, '' included, changes nothing. It is checked before the
-- seq, so no one else can move an instance's seq either.
local STUCK_AFTER = 3 -- ignored commands in a row before an instance is reported stuck
local codes = {}
-- after a data loss, agents coming back say so
local join_reason = redis.call('EXISTS', K_RECOVERING) == 1 and 'recovered' or 'registered'
local longest = tonumber(redis.call('GET', K_TTL_MAX) or '0')

-- Renew (or start) an instance's lease; returns the agent status before.
local function renew(a, i, seq, ttl)
  local k = K_AGENT(a)
  local ik = K_INSTANCE(a, i)
  local deadline = now + ttl
  redis.call('HSET', ik, 'seq', seq, 'state', 'live', 'last_seen', now, 'ttl', ttl,
             'deadline', deadline, 'ignored', 0)
  redis.call('HSETNX', ik, 'first_seen', now)
  -- a live instance's record lives as long as its lease, however long the registry is away;
  -- only when the instance ends does it get a TTL, as a tombstone against late messages
  redis.call('PERSIST', ik)
  redis.call('ZADD', K_LEASES, deadline, a .. '|' .. i)
  redis.call('ZADD', K_INSTANCES(a), deadline, i)
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

-- Rolling deploys: an agent's card is the one its newest live instance registered, its
-- "holder"; newest by order of first registration (`born`, from the agent's `births` counter:
-- the order the registry applied them in, not a clock, so no two instances tie). An older
-- instance's registration renews its lease and leaves the card alone, so two versions running
-- side by side cannot flip it back and forth. Once the holder has ended, the next instance to
-- register takes the card (a rollback's older instances bring theirs back within one
-- full-registration period), as does any instance of an agent that was not live.
-- Returns whether instance i holds the card now (recorded when it does).
local function holds_card(a, i, before)
  local k = K_AGENT(a)
  local ik = K_INSTANCE(a, i)
  local born = tonumber(redis.call('HGET', ik, 'born') or '0')
  if born == 0 then
    born = redis.call('HINCRBY', k, 'births', 1)
    redis.call('HSET', ik, 'born', born)
  end
  local holder = redis.call('HMGET', k, 'holder', 'holder_born')
  local h = holder[1]
  local takes = before ~= 'live' or not h or h == i
    or not redis.call('ZSCORE', K_INSTANCES(a), h)
    or born > tonumber(holder[2] or '0')
  if takes and h ~= i then redis.call('HSET', k, 'holder', i, 'holder_born', born) end
  return takes
end

-- A new instance would take the agent past its quota of instances.
local function too_many_instances(a, i)
  return max_instances > 0 and redis.call('ZCARD', K_INSTANCES(a)) >= max_instances
    and not redis.call('ZSCORE', K_INSTANCES(a), i)
end

for c = 0, n - 1 do
  local o = RECORDS + c * STRIDE
  local kind, a, i = ARGV[o + F_KIND], ARGV[o + F_AGENT_ID], ARGV[o + F_INSTANCE_ID]
  local seq = tonumber(ARGV[o + F_SEQ])
  local user = ARGV[o + F_USER_ID]
  trace_context = ARGV[o + F_TRACE]
  local k = K_AGENT(a)
  local owner = redis.call('HGET', k, 'owner')
  local inst = redis.call('HMGET', K_INSTANCE(a, i), 'seq', 'state')
  local last = inst[1]
  if owner and owner ~= user then
    codes[#codes + 1] = FORBIDDEN
  elseif last and tonumber(last) >= seq then
    -- ignored as a duplicate or late; a few in a row (not after a deregistration, where late
    -- messages are expected) mean the instance's client is stuck: said once per episode
    local ignored = redis.call('HINCRBY', K_INSTANCE(a, i), 'ignored', 1)
    codes[#codes + 1] = (ignored == STUCK_AFTER and inst[2] ~= 'deregistered') and STUCK or DUPLICATE
  elseif kind ~= 'deregister' and too_many_instances(a, i) then
    codes[#codes + 1] = INSTANCE_QUOTA
  elseif kind == 'register' and not owner and max_agents > 0
      and redis.call('SCARD', K_OWNED(user)) >= max_agents then
    codes[#codes + 1] = AGENT_QUOTA
  elseif kind == 'register' then
    local ttl = tonumber(ARGV[o + F_TTL_MS])
    if ttl >= longest then
      -- the longest TTL in use sizes the recovery window after a data loss; it lapses when no
      -- agent with that TTL has registered for a while (Beacons re-register once per TTL)
      longest = ttl
      redis.call('SET', K_TTL_MAX, ttl, 'PX', 2 * ttl)
    end
    local sdigest = ARGV[o + F_STATE_DIGEST]
    local differs = redis.call('HGET', k, 'sdigest') ~= sdigest
    local before = renew(a, i, seq, ttl)
    local holds = holds_card(a, i, before)
    local card_changed = differs and holds
    if card_changed then
      -- what was verified was the state before: unknown until checked again (verify.lua);
      -- its index term leaves with the old terms
      redis.call('HDEL', k, 'verified', 'vdigest')
      -- the same for the signature of a signed card (signature.lua); an unsigned card is
      -- `unsigned` at once, index term included
      redis.call('HDEL', k, 'signature', 'gdigest')
      local terms, signature = ARGV[o + F_TERMS], ARGV[o + F_SIGNATURE]
      if signature ~= '' then
        redis.call('HSET', k, 'signature', signature)
        terms = terms .. (terms == '' and '' or '\n') .. 'signature:' .. signature
      end
      reindex(a, redis.call('HGET', k, 'terms'), terms)
      redis.call('HSET', k, 'card', ARGV[o + F_CARD], 'view', ARGV[o + F_VIEW],
                 'digest', ARGV[o + F_DIGEST], 'sdigest', sdigest, 'terms', terms,
                 'text', ARGV[o + F_TEXT])
    end
    redis.call('HSET', k, 'ttl', ttl, 'interval', ARGV[o + F_INTERVAL_MS],
               'idle_ttl', ARGV[o + F_IDLE_TTL_MS])
    redis.call('HSETNX', k, 'first_seen', now)
    if not owner then
      redis.call('HSET', k, 'owner', user)
      redis.call('SADD', K_OWNED(user), a)
    end
    redis.call('ZADD', K_AGENTS, 0, a)
    became_live(a, before, card_changed)
    -- an older instance's other card is kept out, as its heartbeats' digest is: a stale card
    codes[#codes + 1] = (differs and not holds) and STALE_CARD or APPLIED
  elseif kind == 'heartbeat' then
    local digest = redis.call('HGET', k, 'digest')
    if not digest then
      codes[#codes + 1] = UNKNOWN_AGENT
    else
      local before = renew(a, i, seq, tonumber(ARGV[o + F_TTL_MS]))
      became_live(a, before, false)
      -- an empty digest states no card (HTTP heartbeats may omit it): not counted as stale
      local stated = ARGV[o + F_DIGEST]
      codes[#codes + 1] = (stated == '' or digest == stated) and APPLIED or STALE_CARD
    end
  else -- deregister
    local ik = K_INSTANCE(a, i)
    redis.call('HSET', ik, 'seq', seq)
    if end_instance(a, i, 'deregistered') then
      after_instance_ended(a, 'deregistered', retention)
    end
    codes[#codes + 1] = APPLIED
  end
end
return REPLY({events = events, epoch = epoch}, codes, damped)
