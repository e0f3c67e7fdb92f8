-- Discovery: one page of agent ids matching every filter, in id order, after a cursor.
-- Read-only. ARGV: P, cursor ('' for the first page), limit, budget (ids examined at most),
--   q (lower-case text, '' for none), then the sorted sets an id must be in (a status set,
--   then one per filter term).
-- Returns {revision, next_cursor ('' at the end), id, id, ...}.
-- The smallest set drives the scan; the others are membership checks, so a filter never scans
-- every card, and liveness is filtered before the page is cut (a page is never short because
-- dead agents were dropped after the cut), and a cursor is returned only when one more match
-- exists beyond the page. A scan that spends its budget returns what it found with a cursor to
-- go on from.
local P = ARGV[1]
local cursor, limit, budget, q = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local sets = {}
for i = 6, #ARGV do sets[#sets + 1] = ARGV[i] end

local drive, drive_size = 1, nil
for i, key in ipairs(sets) do
  local size = redis.call('ZCARD', key)
  if drive_size == nil or size < drive_size then drive, drive_size = i, size end
end
local revision = tonumber(redis.call('GET', P .. 'rev') or '0')
local found = {}
if drive_size == 0 then return {revision, ''} end

local start = cursor == '' and '-' or '(' .. cursor
local chunk = math.max(limit * 2, 100)
local examined = 0
while true do
  local ids = redis.call('ZRANGEBYLEX', sets[drive], start, '+', 'LIMIT', 0, chunk)
  for _, id in ipairs(ids) do
    examined = examined + 1
    local match = true
    for i, key in ipairs(sets) do
      if i ~= drive and not redis.call('ZSCORE', key, id) then match = false break end
    end
    if match and q ~= '' then
      local text = redis.call('HGET', P .. 'agent:' .. id, 'text') or ''
      match = string.find(text, q, 1, true) ~= nil
    end
    if match then
      if #found == limit then
        -- one match beyond a full page: there is a next page, after the page's last id
        return {revision, found[#found], unpack(found)}
      end
      found[#found + 1] = id
    end
    if examined >= budget then
      -- the budget is spent: go on from here (or from the page's end, if the page is full)
      return {revision, #found == limit and found[#found] or id, unpack(found)}
    end
  end
  if #ids < chunk then return {revision, '', unpack(found)} end
  start = '(' .. ids[#ids]
end
