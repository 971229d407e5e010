-- wrk script: POST the corpus bodies in turn (one JSON batch per line of $CORPUS) to /v1/events.
-- Each request's events are stamped with the current time (their offsets within the batch kept), as real
-- browsers do: replaying the corpus's fixed timestamps would make every insert into the store's time index
-- land mid-index, a write pattern no live site produces.
local batches = {}
local i = 0
for line in io.lines(os.getenv("CORPUS")) do
  local parts, offsets, base = {}, {}, nil
  local pos = 1
  for s, ts, e in line:gmatch('()"timestamp":(%d+)()') do
    ts = tonumber(ts)
    base = base or ts
    parts[#parts + 1] = line:sub(pos, s - 1)
    offsets[#offsets + 1] = ts - base
    pos = e
  end
  -- Each part ends with its event's `"session_id":"...",` (make_corpus.py writes it just before the
  -- timestamp): split off the closing `",` so a request can put the round in between.
  local sessions = {}
  for k = 1, #parts do
    local head = parts[k]:match('^(.*"session_id":"[^"]*)",$')
    if head then parts[k], sessions[k] = head, '",' end
  end
  batches[#batches + 1] = { parts = parts, sessions = sessions, offsets = offsets, tail = line:sub(pos) }
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "bench-key-0123456789"

-- IDS=sdk (default) gives every event a fresh time-ordered event_id stamped when the event happened, as
-- rum-sdk.js does; IDS=v7 stamps all of a request's ids at send time (the friendliest order for an index on
-- the id alone); IDS=v4 random ones (what other senders may use); IDS=none leaves the id to the server.
local ids = os.getenv("IDS") or "sdk"
math.randomseed(os.time())
-- Random hex from a table of all 4-digit strings: string.format per digit cost wrk a third of a core.
local hex4 = {}
for k = 0, 65535 do hex4[k + 1] = string.format("%04x", k) end
local function r4() return hex4[math.random(1, 65536)] end
local seq = 0
local function event_id(now, k, base)
  if ids == "sdk" then
    -- As rum-sdk.js makes them: v7, stamped when each event happened, over the ~5 s a browser buffers a
    -- batch, so a commit's ids interleave with other browsers' all over the last seconds of the id index.
    local ms = string.format("%012x", base + (k - 1) * 250 + math.random(0, 249))
    return ms:sub(1, 8) .. "-" .. ms:sub(9, 12) .. "-7" .. r4():sub(2) .. "-b" .. r4():sub(2) .. "-" .. r4() .. r4() .. r4()
  end
  if ids == "v4" then
    return r4() .. r4() .. "-" .. r4() .. "-4" .. r4():sub(2) .. "-a" .. r4():sub(2) .. "-" .. r4() .. r4() .. r4()
  end
  -- v7: 48-bit milliseconds (spread over the second by a counter), version 7, then random bits.
  seq = seq + 1
  local ms = string.format("%012x", now + seq % 1000)
  return ms:sub(1, 8) .. "-" .. ms:sub(9, 12) .. "-7" .. r4():sub(2) .. "-b" .. r4():sub(2) .. "-" .. r4() .. r4() .. r4()
end

-- Each request's events get a session of their own (the corpus line's session plus the round), as
-- thousands of browsers each sending a batch every few seconds would: a session's ids then never interleave
-- with its earlier batches' (the corpus's 500 sessions would otherwise each send several batches a second).
local sent = 0
request = function()
  i = i % #batches + 1
  local round = math.floor(sent / #batches)
  sent = sent + 1
  local b, out = batches[i], {}
  local now = os.time() * 1000
  local base = now - 5000 + math.random(0, 999)
  for k = 1, #b.parts do
    out[#out + 1] = b.parts[k]
    if b.sessions[k] then out[#out + 1] = "-" .. round .. b.sessions[k] end
    if ids ~= "none" then out[#out + 1] = '"event_id":"' .. event_id(now, k, base) .. '",' end
    out[#out + 1] = '"timestamp":' .. tostring(now + b.offsets[k])
  end
  out[#out + 1] = b.tail
  return wrk.format(nil, nil, nil, table.concat(out))
end

local non202 = 0
response = function(status, headers, body)
  if status ~= 202 and status ~= 200 then non202 = non202 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
