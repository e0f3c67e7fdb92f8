-- Give the relay lock up if this owner holds it (store/outbox.py, Outbox.release_relay).
-- Arguments (named in store/scripts.py, RELAY_RELEASE): P, owner.
-- Returns REPLY{released (1 if it was this owner's and is deleted, else 0)}.
local released = 0
if redis.call('GET', K_RELAY_LOCK) == owner then released = redis.call('DEL', K_RELAY_LOCK) end
return REPLY({released = released})
