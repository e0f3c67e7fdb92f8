-- Record the check of a signed card's signatures (worker/signature_check.py verified them).
-- Arguments (named in store/scripts.py, SIGN): common.lua's, then agent_id, sdigest (the state
-- digest the check was made for) and signature (`valid` or `invalid`).
-- Returns REPLY{recorded, changed, events, epoch}, then the agents whose events began to be
-- damped.
--
-- As verify.lua does for `verified`: recorded only while the agent still has that state and is
-- available (a registration with another card since reset `signature`, apply.lua, and is
-- checked on its own); the value is an index term too (SIGNATURE_TERMS, in the agent's
-- `terms`), so the filter `signature=` is one more index set; a changed value is a revision
-- and an agent.updated event with reason `signature`.
local a = agent_id
local k = K_AGENT(a)
local h = redis.call('HMGET', k, 'sdigest', 'status', 'signature', 'terms')
if h[1] ~= sdigest or (h[2] ~= 'live' and h[2] ~= 'idle') then
  return REPLY({recorded = 0, changed = 0, events = events, epoch = epoch}, damped)
end
local changed = h[3] ~= signature
redis.call('HSET', k, 'signature', signature, 'gdigest', sdigest)
if changed then
  local term = 'signature:' .. signature
  local kept = {}
  for t in string.gmatch(h[4] or '', '[^\n]+') do
    local known = false
    for _, s in ipairs(SIGNATURE_TERMS) do if t == s then known = true end end
    if not known then kept[#kept + 1] = t end
  end
  kept[#kept + 1] = term
  for _, t in ipairs(SIGNATURE_TERMS) do redis.call('ZREM', K_INDEX(t), a) end
  redis.call('ZADD', K_INDEX(term), 0, a)
  redis.call('HSET', k, 'terms', table.concat(kept, '\n'))
  emit(a, 'updated', h[2], 'signature', true)
end
return REPLY({recorded = 1, changed = changed and 1 or 0, events = events, epoch = epoch}, damped)
