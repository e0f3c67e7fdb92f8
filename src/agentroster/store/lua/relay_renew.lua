-- Keep the relay lock if this owner holds it (store/outbox.py, Outbox.acquire_relay).
-- Arguments (named in store/scripts.py, RELAY_RENEW): P, owner, ttl_ms.
-- Returns REPLY{held (1 if renewed, 0 if another owner or nobody holds it)}.
local held = 0
if redis.call('GET', K_RELAY_LOCK) == owner then
  held = redis.call('PEXPIRE', K_RELAY_LOCK, ttl_ms)
end
return REPLY({held = held})
