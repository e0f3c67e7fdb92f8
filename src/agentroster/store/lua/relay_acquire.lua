-- Take or keep the relay lock, and say where the relay is (store/outbox.py,
-- Outbox.acquire_relay): one round trip before each read of the outbox.
-- Arguments (named in store/scripts.py, RELAY_ACQUIRE): P, owner, ttl_ms.
-- Returns REPLY{held (1 if this owner holds the lock now, else 0), relayed (the last revision
-- RabbitMQ confirmed)}.
local holder = redis.call('GET', K_RELAY_LOCK)
local held = 0
if holder == owner then
  held = redis.call('PEXPIRE', K_RELAY_LOCK, ttl_ms)
elseif not holder then
  redis.call('SET', K_RELAY_LOCK, owner, 'PX', ttl_ms)
  held = 1
end
return REPLY({held = held, relayed = tonumber(redis.call('GET', K_RELAYED) or '0')})
