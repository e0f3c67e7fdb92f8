-- An operator's change of an agent's owner (`agentroster ownership`), atomically.
-- KEYS[1]: the agent hash. ARGV: P (the key base "{prefix}:"), agent_id, action ('show',
-- 'release' or 'transfer'), the new owner (transfer only; '' means no identity).
-- Returns {found (0/1), had an owner (0/1), the owner before ('' if none)}.
local P, a, action = ARGV[1], ARGV[2], ARGV[3]
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return {0, 0, ''} end
local before = redis.call('HGET', k, 'owner')
if action ~= 'show' then
  if before then redis.call('SREM', P .. 'owned:' .. before, a) end
  if action == 'transfer' then
    redis.call('HSET', k, 'owner', ARGV[4])
    redis.call('SADD', P .. 'owned:' .. ARGV[4], a)
  else
    -- released: the agent's next registration binds it to the identity that one carries
    redis.call('HDEL', k, 'owner')
  end
end
return {1, before and 1 or 0, before or ''}
