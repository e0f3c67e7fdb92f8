-- Agents in one round trip, each at one moment: per agent its SUMMARY_FIELDS, its live
-- instance count and its first max_instances instances (soonest lease deadline first) with
-- their records, and the global revision. Read-only (`no-writes`: it may run on a replica).
-- The first agent's hash is the call's key (it routes the call to the registry's slot); the
-- other keys share its hash tag. Concurrent reads of one API process are merged into one call
-- (store/script_batch.py), so a call reads one agent or a few dozen.
-- Arguments (named in store/scripts.py, READ_AGENT): P, max_instances, then agent_ids.
-- Returns one reply per agent id, in order: REPLY{revision, summary, live}, then a ROW per
-- instance: instance_id, deadline, first_seen, last_seen.
local revision = redis.call('GET', K_REVISION) or '0'
local replies = {}
for n, a in ipairs(agent_ids) do
  local summary = redis.call('HMGET', K_AGENT(a), unpack(SUMMARY_FIELDS))
  local live = redis.call('ZCARD', K_INSTANCES(a))
  local members = redis.call('ZRANGE', K_INSTANCES(a), 0, max_instances - 1, 'WITHSCORES')
  local rows = {}
  for j = 1, #members, 2 do
    local i = members[j]
    local record = redis.call('HMGET', K_INSTANCE(a, i), 'first_seen', 'last_seen')
    rows[#rows + 1] = i
    rows[#rows + 1] = members[j + 1]
    rows[#rows + 1] = record[1]
    rows[#rows + 1] = record[2]
  end
  replies[n] = REPLY({revision = revision, summary = summary, live = live}, rows)
end
return replies
