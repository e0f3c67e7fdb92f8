-- Discovery: one page of agent ids matching every filter, in id order, after a cursor.
-- Read-only. Arguments (named in store/scripts.py, QUERY): P, cursor ('' for the first page),
--   limit, budget (ids examined at most), q (lower-case text, '' for none), text_budget (what
--   q may read: each search text checked costs 1, plus 1 per full KiB of it), then `sets`, the
--   sorted sets an id must be in (a status set, then one per filter term).
-- Returns REPLY{revision, next_cursor ('' at the end)}, then a ROW per agent: its id, its
-- SUMMARY_FIELDS (HMGET) and its live instance count.
-- The smallest set drives the scan; the others are membership checks, so a filter never scans
-- every card, and liveness is filtered before the page is cut (a page is never short because
-- dead agents were dropped after the cut), and a cursor is returned only when one more match
-- exists beyond the page. A scan that spends either budget returns what it found with a cursor
-- to go on from (the last id it examined): so one call costs a bounded time whatever the data,
-- and a page shorter than the limit, even empty, with a cursor means "not done yet".
text_budget = math.max(text_budget, 1)

local function page(revision, next_cursor, ids)
  local rows = {}
  for _, id in ipairs(ids) do
    rows[#rows + 1] = id
    rows[#rows + 1] = redis.call('HMGET', K_AGENT(id), unpack(SUMMARY_FIELDS))
    rows[#rows + 1] = redis.call('ZCARD', K_INSTANCES(id))
  end
  return REPLY({revision = revision, next_cursor = next_cursor}, rows)
end

local drive, drive_size, sizes = 1, nil, {}
for i, key in ipairs(sets) do
  local size = redis.call('ZCARD', key)
  sizes[key] = size
  if drive_size == nil or size < drive_size then drive, drive_size = i, size end
end
local revision = tonumber(redis.call('GET', K_REVISION) or '0')
local found = {}
if drive_size == 0 then return page(revision, '', {}) end

-- the other sets, smallest first: each one narrows a chunk before the next is asked
local others = {}
for i, key in ipairs(sets) do
  if i ~= drive then others[#others + 1] = key end
end
table.sort(others, function(a, b) return sizes[a] < sizes[b] end)

local start = cursor == '' and '-' or '(' .. cursor
local chunk = math.max(limit * 2, 100)
local examined = 0
local text_spent = 0
local last = cursor -- the last id examined: where a call that spent its budget goes on from
while true do
  local want = math.min(chunk, budget - examined)
  local ids = redis.call('ZRANGEBYLEX', sets[drive], start, '+', 'LIMIT', 0, want)
  examined = examined + #ids
  local matches = ids
  for _, key in ipairs(others) do
    if #matches == 0 then break end
    local scores = redis.call('ZMSCORE', key, unpack(matches))
    local kept = {}
    for j, id in ipairs(matches) do
      if scores[j] then kept[#kept + 1] = id end
    end
    matches = kept
  end
  for _, id in ipairs(matches) do
    local match = true
    if q ~= '' then
      if text_spent >= text_budget then
        -- the text budget is spent (never before the first check: each call makes progress)
        return page(revision, #found == limit and found[#found] or last, found)
      end
      local text = redis.call('HGET', K_AGENT(id), 'text') or ''
      text_spent = text_spent + 1 + math.floor(#text / 1024)
      match = string.find(text, q, 1, true) ~= nil
      last = id
    end
    if match then
      if #found == limit then
        -- one match beyond a full page: there is a next page, after the page's last id
        return page(revision, found[#found], found)
      end
      found[#found + 1] = id
    end
  end
  if #ids < want then return page(revision, '', found) end
  if examined >= budget then
    -- the budget is spent: go on from here (or from the page's end, if the page is full)
    return page(revision, #found == limit and found[#found] or ids[#ids], found)
  end
  start = '(' .. ids[#ids]
end
