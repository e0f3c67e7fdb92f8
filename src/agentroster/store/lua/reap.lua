-- Expire what is due, atomically, so that N replicas sweeping at once claim each expiry once.
-- ARGV: P, limit, retention_ms.
-- Returns {leases expired, idle agents gone offline, offline agents deleted, more due (0/1),
--          events written}.
local limit = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
redis.call('SET', P .. 'reaper', now)

local due = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, limit)
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
return {#due, #idle, #gone, more, events}
