-- Shared by apply.lua and reap.lua (put before each at load time, after the prelude that
-- store/scripts.py generates: the arguments P, new_epoch, seen_epoch, recovery_ms,
-- flap_window and flap_max by name, and the key builders K_*).
-- now is Redis server time in ms: one clock for every replica.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local events = 0
local damped = {} -- agents whose events this call began to damp
-- the W3C trace context of the command being applied ('' for none): its events carry it
local trace_context = ''

-- The epoch names this keyspace. Missing while the caller knew one: Redis lost its data
-- (restarted without persistence, flushed). Agents come back by their periodic full
-- registration; until 2 x the longest TTL has passed no lease expires and joins say
-- "recovered". Revisions go on from the clock, above every revision written before, so a
-- follower's position from before the loss is never reused.
local epoch = redis.call('GET', K_EPOCH)
if not epoch then
  epoch = new_epoch
  redis.call('SET', K_EPOCH, epoch)
  if seen_epoch ~= '' then
    redis.call('SET', K_REVISION, now)
    redis.call('SET', K_RELAYED, now)
    redis.call('SET', K_RECOVERING, epoch, 'PX', recovery_ms)
  end
end

-- Append one event to the outbox, in the same script as the change it reports. Its stream id
-- is "<revision>-0", so "the events after revision R" is XRANGE from "(R-0".
-- Flap damping: past flap_max events in one flap window, an agent's events are held back
-- (its status still changes) and reap.lua delivers its final state when the window ends.
local function emit(a, kind, status, reason, with_card, final)
  local k = K_AGENT(a)
  if flap_max > 0 and not final then
    local fk = K_FLAP(a)
    local count = redis.call('INCR', fk)
    if count == 1 then redis.call('PEXPIRE', fk, flap_window) end
    if count > flap_max then
      redis.call('HSET', k, 'why', reason)
      local left = redis.call('PTTL', fk)
      if left < 0 then left = flap_window end
      if redis.call('ZADD', K_DAMPED, 'NX', now + left, a) == 1 then
        damped[#damped + 1] = a
      end
      return
    end
  end
  local rev = redis.call('INCR', K_REVISION)
  local live = redis.call('ZCARD', K_INSTANCES(a))
  -- the summary's other fields ride along (internal: not in the event body) so that an API's
  -- in-memory read model can show the agent as Redis does, from the events alone
  local h = redis.call('HMGET', k, 'view', 'digest', 'first_seen', 'last_seen', 'ttl',
                       'interval', 'idle_ttl', 'verified', 'signature')
  local fields = {'rev', rev, 'kind', kind, 'agent', a, 'status', status, 'live', live,
                  'reason', reason, 'time', now, 'view', h[1] or '{}', 'epoch', epoch,
                  'digest', h[2] or '', 'first', h[3] or '', 'seen', h[4] or '',
                  'ttl', h[5] or '', 'ivl', h[6] or '', 'ittl', h[7] or '',
                  'ver', h[8] or '', 'sig', h[9] or ''}
  if with_card then
    fields[#fields + 1] = 'card'
    fields[#fields + 1] = redis.call('HGET', k, 'card') or 'null'
  end
  if trace_context ~= '' then
    fields[#fields + 1] = 'tc'
    fields[#fields + 1] = trace_context
  end
  redis.call('XADD', K_OUTBOX, rev .. '-0', unpack(fields))
  -- what the world was last told: the damped final state is measured against it
  redis.call('HSET', k, 'rev', rev, 'est', status, 'esd', redis.call('HGET', k, 'sdigest') or '',
             'esv', h[8] or '', 'esg', h[9] or '')
  events = events + 1
end

-- Set an agent's status and keep the status indexes in step with it.
local function set_status(a, status, retention_ms)
  redis.call('HSET', K_AGENT(a), 'status', status)
  for _, s in ipairs({'live', 'idle', 'offline'}) do
    if s == status then
      redis.call('ZADD', K_STATUS(s), 0, a)
    else
      redis.call('ZREM', K_STATUS(s), a)
    end
  end
  if status == 'offline' then
    redis.call('ZREM', K_IDLE, a)
    redis.call('ZADD', K_RETAIN, now + retention_ms, a)
  else
    redis.call('ZREM', K_RETAIN, a)
    if status == 'live' then redis.call('ZREM', K_IDLE, a) end
  end
end

-- Move an agent between the secondary indexes: old terms out, new terms in.
-- Terms are newline-separated ("skill:forecast", "tag:weather", "label:team=geo", ...).
local function reindex(a, old_terms, new_terms)
  if old_terms and old_terms ~= '' then
    for term in string.gmatch(old_terms, '[^\n]+') do
      redis.call('ZREM', K_INDEX(term), a)
    end
  end
  if new_terms and new_terms ~= '' then
    for term in string.gmatch(new_terms, '[^\n]+') do
      redis.call('ZADD', K_INDEX(term), 0, a)
    end
  end
end

-- End one live instance's lease (deregistered or expired), leaving its tombstone.
-- Returns true when it was live.
local function end_instance(a, i, state)
  local removed = redis.call('ZREM', K_INSTANCES(a), i)
  redis.call('ZREM', K_LEASES, a .. '|' .. i)
  local ik = K_INSTANCE(a, i)
  redis.call('HSET', ik, 'state', state)
  local ttl = tonumber(redis.call('HGET', ik, 'ttl') or '60000')
  redis.call('PEXPIRE', ik, ttl)
  return removed == 1
end

-- After an instance ended: if it was the last, the agent goes idle or offline.
local function after_instance_ended(a, reason, retention_ms)
  if redis.call('ZCARD', K_INSTANCES(a)) > 0 then return end
  local k = K_AGENT(a)
  if redis.call('HGET', k, 'status') ~= 'live' then return end
  local idle_ttl = tonumber(redis.call('HGET', k, 'idle_ttl') or '0')
  if idle_ttl > 0 then
    set_status(a, 'idle', retention_ms)
    redis.call('ZADD', K_IDLE, now + idle_ttl, a)
    emit(a, 'updated', 'idle', 'scaled-to-zero', false)
  else
    set_status(a, 'offline', retention_ms)
    emit(a, 'left', 'offline', reason, false)
  end
end
