-- Record the check of an agent's well-known card (worker/card_check.py fetched and compared it).
-- Arguments (named in store/scripts.py, VERIFY): common.lua's, then agent_id, sdigest (the
-- state digest the check was made for) and verified (1 matched, 0 not).
-- Returns REPLY{recorded, changed, events, epoch}, then the agents whose events began to be
-- damped.
--
-- Recorded only while the agent still has that state and is available: a registration with
-- another card (or endpoints, or labels) since then reset `verified` (apply.lua) and is checked
-- on its own; an agent gone offline meanwhile is checked again when it registers. `verified`
-- is kept as an index term too (VERIFIED_TERMS, in the agent's `terms`), so the discovery
-- filter `verified=` is one more index set, and apply.lua's reindex on a card change, and the
-- deletion at the end of retention, take it out with the others. A changed value is a change
-- of what discovery shows: a revision and an agent.updated event, as apply.lua writes them.
local a = agent_id
local k = K_AGENT(a)
local h = redis.call('HMGET', k, 'sdigest', 'status', 'verified', 'terms')
if h[1] ~= sdigest or (h[2] ~= 'live' and h[2] ~= 'idle') then
  return REPLY({recorded = 0, changed = 0, events = events, epoch = epoch}, damped)
end
local value = verified == 1 and '1' or '0'
local changed = h[3] ~= value
redis.call('HSET', k, 'verified', value, 'vdigest', sdigest)
if changed then
  local term = verified == 1 and VERIFIED_TERMS[1] or VERIFIED_TERMS[2]
  local kept = {}
  for t in string.gmatch(h[4] or '', '[^\n]+') do
    if t ~= VERIFIED_TERMS[1] and t ~= VERIFIED_TERMS[2] then kept[#kept + 1] = t end
  end
  kept[#kept + 1] = term
  for _, t in ipairs(VERIFIED_TERMS) do redis.call('ZREM', K_INDEX(t), a) end
  redis.call('ZADD', K_INDEX(term), 0, a)
  redis.call('HSET', k, 'terms', table.concat(kept, '\n'))
  emit(a, 'updated', h[2], 'verified', true)
end
return REPLY({recorded = 1, changed = changed and 1 or 0, events = events, epoch = epoch}, damped)
