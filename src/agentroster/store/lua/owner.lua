-- An operator's change of an agent's owner (`agentroster ownership`), atomically.
-- Arguments (named in store/scripts.py, OWNER): P, agent_id, action ('show', 'release' or
-- 'transfer'), to (the new owner, transfer only; '' means no identity).
-- Returns REPLY{found (0/1), bound (had an owner, 0/1), before (the owner before, '' if none)}.
local a = agent_id
local k = K_AGENT(a)
if redis.call('EXISTS', k) == 0 then return REPLY({found = 0, bound = 0, before = ''}) end
local before = redis.call('HGET', k, 'owner')
if action ~= 'show' then
  if before then redis.call('SREM', K_OWNED(before), a) end
  if action == 'transfer' then
    redis.call('HSET', k, 'owner', to)
    redis.call('SADD', K_OWNED(to), a)
  else
    -- released: the agent's next registration binds it to the identity that one carries
    redis.call('HDEL', k, 'owner')
  end
end
return REPLY({found = 1, bound = before and 1 or 0, before = before or ''})
