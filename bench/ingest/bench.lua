-- wrk script: POST the corpus bodies in turn (one JSON batch per line of $CORPUS) to /v1/events.
local bodies = {}
local i = 0
for line in io.lines(os.getenv("CORPUS")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "bench-key-0123456789"

request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
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
