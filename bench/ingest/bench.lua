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
    parts[#parts + 1] = line:sub(pos, s - 1) .. '"timestamp":'
    offsets[#offsets + 1] = ts - base
    pos = e
  end
  batches[#batches + 1] = { parts = parts, offsets = offsets, tail = line:sub(pos) }
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "bench-key-0123456789"

request = function()
  i = i % #batches + 1
  local b, out = batches[i], {}
  local now = os.time() * 1000
  for k = 1, #b.parts do
    out[#out + 1] = b.parts[k]
    out[#out + 1] = tostring(now + b.offsets[k])
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
