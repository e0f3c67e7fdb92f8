-- Expire what is due, atomically, so that N replicas sweeping at once claim each expiry once.
-- Arguments (named in store/scripts.py, REAP): common.lua's, then limit, retention (ms),
-- gap_ms, brake_share (0 disables), brake_min (agents), budget (what one call may cost, in
-- bytes as RedisStore.reap counts them; 0: no budget). Past the budget a call stops and says more is due: the caller sweeps again
-- at once, so one call stays short however large the agents (a thousand agents of the largest
-- size took over a second to expire or delete in one call).
-- Returns REPLY{leases_expired, idle_expired (idle agents gone offline), deleted (offline
-- agents), more_due (0/1), events (written), graced (leases given grace after a gap), held
-- (leases held by the brake or the recovery window), epoch, recovery_ms_left and
-- brake_ms_left (or -2), longest_ttl_ms}, then the agents whose events began to be damped.
--
-- No false deaths (invariant 3): a lease may expire only while the registry could hear its
-- renewals. If no sweep ran for longer than gap_ms (every worker down, broker or Redis
-- unreachable, reapers paused by a backlog), renewals may be waiting unapplied in the queue:
-- every lease then gets a full TTL counted from now, instead of expiring. And when more than
-- brake_share of the live agents (at least brake_min_agents) would leave in one sweep, the
-- due leases are held for one more TTL, once: a mass death is more likely the registry's
-- blindness than the agents' (as Eureka's self-preservation).
local spent, spent_out = 0, false
-- Charge `cost` to this call; false (nothing charged) once the budget is spent, so the work is
-- left for the next call. The first piece of work is always afforded: every call progresses.
local function afford(cost)
  if budget > 0 and spent > 0 and spent + cost > budget then
    spent_out = true
    return false
  end
  spent = spent + cost
  return true
end
-- What ending an agent's availability costs: a dozen commands (about what copying 4 KiB
-- costs), and the event carries its view.
local function event_cost(a)
  return 4096 + redis.call('HSTRLEN', K_AGENT(a), 'view')
end
local last = tonumber(redis.call('GET', K_REAPER) or '0')
redis.call('SET', K_REAPER, now)

local function result(expired, idle, deleted, more, graced, held)
  return REPLY({
    leases_expired = expired, idle_expired = idle, deleted = deleted, more_due = more,
    events = events, graced = graced, held = held, epoch = epoch,
    recovery_ms_left = redis.call('PTTL', K_RECOVERING),
    brake_ms_left = redis.call('PTTL', K_BRAKING),
    longest_ttl_ms = tonumber(redis.call('GET', K_TTL_MAX) or '0'),
  }, damped)
end

-- The event that takes the world from what it was last told (status `told`) to `status`, and
-- its reason; `why` is the reason of the last change that was held back.
local function final_event(told, status, why)
  if status == 'offline' then
    return 'left', (why == 'deregistered') and why or 'expired'
  elseif told == 'offline' then
    return 'joined', (why == 'recovered') and why or 'registered'
  elseif status == 'idle' and told ~= 'idle' then
    return 'updated', 'scaled-to-zero'
  elseif told == 'idle' and status ~= 'idle' then
    return 'updated', 'woke'
  end
  return 'updated', (why == 'verified' or why == 'signature') and why or 'card-changed'
end

-- Deliver the final state of agents whose damping window ended, if it differs from what the
-- world was last told (a flap that ended where it began owes nothing).
local function deliver_damped()
  local owed = redis.call('ZRANGEBYSCORE', K_DAMPED, '-inf', now, 'LIMIT', 0, limit)
  for _, a in ipairs(owed) do
    -- the final event may carry the card as well as the view
    if not afford(event_cost(a) + redis.call('HSTRLEN', K_AGENT(a), 'card')) then break end
    redis.call('ZREM', K_DAMPED, a)
    local h = redis.call('HMGET', K_AGENT(a), 'status', 'est', 'sdigest', 'esd', 'why',
                         'verified', 'esv', 'signature', 'esg')
    local status, told = h[1], h[2]
    if status and (status ~= told or h[3] ~= h[4] or (h[6] or '') ~= (h[7] or '')
        or (h[8] or '') ~= (h[9] or '')) then
      local kind, reason = final_event(told, status, h[5])
      emit(a, kind, status, reason, kind ~= 'left', true)
    end
  end
  return #owed
end

-- A lease member "<agent>|<instance>" as its two parts.
local function split(member)
  local sep = string.find(member, '|', 1, true)
  return string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
end

-- Push a lease's deadline to now + its own TTL; returns that TTL.
local function extend(member)
  local a, i = split(member)
  local ik = K_INSTANCE(a, i)
  local ttl = tonumber(redis.call('HGET', ik, 'ttl') or redis.call('HGET', K_AGENT(a), 'ttl') or '0')
  local deadline = now + ttl
  redis.call('ZADD', K_LEASES, deadline, member)
  redis.call('ZADD', K_INSTANCES(a), deadline, i)
  redis.call('HSET', ik, 'deadline', deadline)
  return ttl
end

if last > 0 and now - last > gap_ms then
  local all = redis.call('ZRANGE', K_LEASES, 0, -1)
  for _, member in ipairs(all) do extend(member) end
  return result(0, 0, 0, 0, #all, 0)
end

local owed = deliver_damped()
local due = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', now, 'LIMIT', 0, limit)
-- in the recovery window after a data loss, absence proves nothing: nothing expires
if redis.call('EXISTS', K_RECOVERING) == 1 then
  for _, member in ipairs(due) do extend(member) end
  return result(0, 0, 0, owed == limit and 1 or 0, 0, #due)
end
-- The brake weighs every due lease, not only this call's `limit` of them: a sweep expires in
-- chunks, and each chunk measured against a live count the chunks before it shrank would let
-- a mass expiry through piecemeal. An agent leaves only if one of its leases is due, so while
-- the due leases are no more than the share, nothing needs counting.
if brake_share > 0 and #due > 0 and redis.call('EXISTS', K_BRAKE) == 0 then
  local live = redis.call('ZCARD', K_STATUS('live'))
  local threshold = brake_share * live
  if live >= brake_min and redis.call('ZCOUNT', K_LEASES, '-inf', now) > threshold then
    local all_due = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', now)
    local leaving, seen = 0, {}
    for _, member in ipairs(all_due) do
      local a = split(member)
      -- the agent leaves if none of its instances holds a lease beyond now
      if not seen[a] and redis.call('ZCOUNT', K_INSTANCES(a), '(' .. now, '+inf') == 0 then
        leaving = leaving + 1
      end
      seen[a] = true
    end
    if leaving > threshold then
      local longest = 0
      for _, member in ipairs(all_due) do longest = math.max(longest, extend(member)) end
      -- held once: while this key lives, the same leases expire normally when due again
      redis.call('SET', K_BRAKE, now, 'PX', 3 * longest + gap_ms)
      redis.call('SET', K_BRAKING, #all_due, 'PX', math.max(longest, 1)) -- for /readyz
      return result(0, 0, 0, 0, 0, #all_due)
    end
  end
end

local expired = 0
for _, member in ipairs(due) do
  local a, i = split(member)
  if not afford(event_cost(a)) then break end
  end_instance(a, i, 'expired')
  after_instance_ended(a, 'expired', retention)
  expired = expired + 1
end

local idle = {}
if not spent_out then
  idle = redis.call('ZRANGEBYSCORE', K_IDLE, '-inf', now, 'LIMIT', 0, limit)
end
local idled = 0
for _, a in ipairs(idle) do
  if not afford(event_cost(a)) then break end
  idled = idled + 1
  redis.call('ZREM', K_IDLE, a)
  if redis.call('HGET', K_AGENT(a), 'status') == 'idle' then
    set_status(a, 'offline', retention)
    emit(a, 'left', 'offline', 'expired', false)
  end
end

local gone = {}
if not spent_out then
  gone = redis.call('ZRANGEBYSCORE', K_RETAIN, '-inf', now, 'LIMIT', 0, limit)
end
local deleted = 0
for _, a in ipairs(gone) do
  local k = K_AGENT(a)
  local terms = redis.call('HGET', k, 'terms') or ''
  -- deleting frees what the agent stored; each index term is a key to shrink or delete
  local _, n_terms = string.gsub(terms, '\n', '')
  local cost = 4096 + 256 * (n_terms + 1) + #terms + redis.call('HSTRLEN', k, 'card')
               + redis.call('HSTRLEN', k, 'view') + redis.call('HSTRLEN', k, 'text')
  if not afford(cost) then break end
  deleted = deleted + 1
  -- followers of the outbox (the API's read model, watchers) learn of the deletion; written
  -- before the record goes, as the event carries its last view
  emit(a, 'deleted', 'offline', 'retention', false, true)
  redis.call('ZREM', K_RETAIN, a)
  redis.call('ZREM', K_AGENTS, a)
  redis.call('ZREM', K_STATUS('offline'), a)
  reindex(a, terms, '')
  -- ownership lasts as long as the record: the id is free to be registered anew
  local owner = redis.call('HGET', k, 'owner')
  if owner then redis.call('SREM', K_OWNED(owner), a) end
  redis.call('DEL', k, K_INSTANCES(a))
end

local more = (spent_out or #due == limit or #idle == limit or #gone == limit
              or owed == limit) and 1 or 0
return result(expired, idled, deleted, more, 0, 0)
