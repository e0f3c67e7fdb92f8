-- Advance the relayed revision (never backwards) and trim what the replay window no longer
-- keeps (store/outbox.py, Outbox.mark_relayed).
-- Arguments (named in store/scripts.py, MARK_RELAYED): P, revision, window.
-- Returns REPLY{relayed (the relayed revision after the call), backlog (events written but
-- not yet confirmed)}.
local current = tonumber(redis.call('GET', K_RELAYED) or '0')
if revision > current then
  redis.call('SET', K_RELAYED, revision)
  current = revision
end
local keep_from = current - window + 1
if keep_from > 1 then redis.call('XTRIM', K_OUTBOX, 'MINID', keep_from .. '-0') end
local written = tonumber(redis.call('GET', K_REVISION) or '0')
return REPLY({relayed = current, backlog = written - current})
