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

-- IDS=sdk (default) gives every event a time-ordered event_id, a request's ids in the one millisecond its batch
-- was cut, as rum-sdk.js does; IDS=event stamps each when its event happened (rum-sdk.js before 2026-12-04); IDS=v7 stamps all of a request's ids at send time (the friendliest order for an index on
-- the id alone); IDS=v4 random ones (what other senders may use); IDS=none leaves the id to the server.
local ids = os.getenv("IDS") or "sdk"
math.randomseed(os.time())
-- Ids are assembled from pieces pushed straight into the body's table: every intermediate string LuaJIT
-- makes is hashed and interned, and building each id with format/sub/concat cost wrk ~5 us per event, a
-- sixth of the machine's time per event (bench/README.md, ingest-perf7). The random part after the
-- timestamp is one of 2^32 pairs from two pools (a repeat within one millisecond is vanishingly rare).
local POOL = 65536
local mid, tail = {}, {} -- "-7xxx-bxxx-xxxx", "xxxxxxxx"; version 7, RFC variant
for k = 1, POOL do
  mid[k] = string.format("-7%03x-b%03x-%04x", math.random(0, 4095), math.random(0, 4095), math.random(0, 65535))
  tail[k] = string.format("%04x%04x", math.random(0, 65535), math.random(0, 65535))
end
local random = math.random
local floor = math.floor
-- "xxxxxxxx-xxxx": the 48-bit millisecond timestamp of a UUIDv7.
local function v7_time(ms) return string.format("%08x-%04x", floor(ms / 65536), ms % 65536) end
local seq = 0
local function id_head(now, k, base, cut)
  if ids == "sdk" then
    -- As rum-sdk.js makes them since 2026-12-04: when the batch is cut, shortly before it is sent, a batch's
    -- ids in one millisecond (`cut`).
    return v7_time(cut)
  end
  if ids == "event" then
    -- As rum-sdk.js made them before: stamped when each event happened, over the ~5 s a browser buffers a
    -- batch, so a commit's ids interleave with other browsers' all over the last seconds of an index on the id.
    return v7_time(base + (k - 1) * 250 + random(0, 249))
  end
  if ids == "v4" then
    -- Random: the time part too (the version nibble stays 7; the server only needs a UUID).
    return string.format("%08x-%04x", random(0, 0x7fffffff), random(0, 65535))
  end
  -- v7: all of a request's ids stamped at send time (spread over the second by a counter).
  seq = seq + 1
  return v7_time(now + seq % 1000)
end

-- Each request's events get a session of their own (the corpus line's session plus the round), as
-- thousands of browsers each sending a batch every few seconds would: a session's ids then never interleave
-- with its earlier batches' (the corpus's 500 sessions would otherwise each send several batches a second).
local sent = 0
request = function()
  i = i % #batches + 1
  local round = "-" .. floor(sent / #batches)
  sent = sent + 1
  local b, out, n = batches[i], {}, 0
  local now = os.time() * 1000
  local base = now - 5000 + random(0, 999)
  local cut = now - random(0, 199)
  for k = 1, #b.parts do
    n = n + 1; out[n] = b.parts[k]
    if b.sessions[k] then
      n = n + 1; out[n] = round
      n = n + 1; out[n] = b.sessions[k]
    end
    if ids ~= "none" then
      n = n + 1; out[n] = '"event_id":"'
      n = n + 1; out[n] = id_head(now, k, base, cut)
      n = n + 1; out[n] = mid[random(1, POOL)]
      n = n + 1; out[n] = tail[random(1, POOL)]
      n = n + 1; out[n] = '",'
    end
    n = n + 1; out[n] = '"timestamp":'
    n = n + 1; out[n] = now + b.offsets[k]
  end
  n = n + 1; out[n] = b.tail
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
