-- Expire what is due, atomically, so that N replicas sweeping at once claim each expiry once.
-- ARGV: P, limit, retention_ms, gap_ms, brake_share (0 disables), brake_min_agents.
-- Returns {leases expired, idle agents gone offline, offline agents deleted, more due (0/1),
--          events written, leases given grace after a gap, leases held by the brake}.
--
-- No false deaths (invariant 3): a lease may expire only while the registry could hear its
-- renewals. If no sweep ran for longer than gap_ms (every worker down, broker or Redis
-- unreachable, reapers paused by a backlog), renewals may be waiting unapplied in the queue:
-- every lease then gets a full TTL counted from now, instead of expiring. And when more than
-- brake_share of the live agents (at least brake_min_agents) would leave in one sweep, the
-- due leases are held for one more TTL, once: a mass death is more likely the registry's
-- blindness than the agents' (as Eureka's self-preservation).
local limit = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local gap_ms, brake_share, brake_min = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local last = tonumber(redis.call('GET', P .. 'reaper') or '0')
redis.call('SET', P .. 'reaper', now)

-- Push a lease's deadline to now + its own TTL.
local function extend(member)
  local sep = string.find(member, '|', 1, true)
  local a, i = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  local ik = ikey(a, i)
  local ttl = tonumber(redis.call('HGET', ik, 'ttl') or redis.call('HGET', akey(a), 'ttl') or '0')
  local deadline = now + ttl
  redis.call('ZADD', P .. 'leases', deadline, member)
  redis.call('ZADD', instkey(a), deadline, i)
  redis.call('HSET', ik, 'deadline', deadline)
end

if last > 0 and now - last > gap_ms then
  local all = redis.call('ZRANGE', P .. 'leases', 0, -1)
  for _, member in ipairs(all) do extend(member) end
  return {0, 0, 0, 0, 0, #all, 0}
end

local due = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, limit)
if brake_share > 0 and #due > 0 and redis.call('EXISTS', P .. 'brake') == 0 then
  local live = redis.call('ZCARD', P .. 'status:live')
  local leaving, seen = 0, {}
  for _, member in ipairs(due) do
    local a = string.sub(member, 1, string.find(member, '|', 1, true) - 1)
    if not seen[a] then
      seen[a] = true
      -- the agent leaves if none of its instances holds a lease beyond now
      if redis.call('ZCOUNT', instkey(a), '(' .. now, '+inf') == 0 then leaving = leaving + 1 end
    end
  end
  if live >= brake_min and leaving > brake_share * live then
    local longest = 0
    for _, member in ipairs(due) do
      extend(member)
      local a = string.sub(member, 1, string.find(member, '|', 1, true) - 1)
      local i = string.sub(member, string.find(member, '|', 1, true) + 1)
      longest = math.max(longest, tonumber(redis.call('HGET', ikey(a, i), 'ttl') or '0'))
    end
    -- held once: while this key lives, the same leases expire normally when due again
    redis.call('SET', P .. 'brake', now, 'PX', 3 * longest + gap_ms)
    return {0, 0, 0, 0, 0, 0, #due}
  end
end

for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  local a, i = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  end_instance(a, i, 'expired')
  after_instance_ended(a, 'expired', retention)
end

local idle = redis.call('ZRANGEBYSCORE', P .. 'idle', '-inf', now, 'LIMIT', 0, limit)
for _, a in ipairs(idle) do
  redis.call('ZREM', P .. 'idle', a)
  if redis.call('HGET', akey(a), 'status') == 'idle' then
    set_status(a, 'offline', retention)
    emit(a, 'left', 'offline', 'expired', false)
  end
end

local gone = redis.call('ZRANGEBYSCORE', P .. 'retain', '-inf', now, 'LIMIT', 0, limit)
for _, a in ipairs(gone) do
  redis.call('ZREM', P .. 'retain', a)
  redis.call('ZREM', P .. 'agents', a)
  redis.call('ZREM', P .. 'status:offline', a)
  reindex(a, redis.call('HGET', akey(a), 'terms'), '')
  redis.call('DEL', akey(a), instkey(a))
end

local more = (#due == limit or #idle == limit or #gone == limit) and 1 or 0
return {#due, #idle, #gone, more, events, 0, 0}
