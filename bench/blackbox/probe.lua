-- wrk script for bench/blackbox/run.sh: counts /probe answers whose body lacks "probe_success 1" and prints one
-- RESULT line (requests, duration, latency percentiles, non-2xx, socket errors, failed probes).
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    failed = 0
end

function response(status, headers, body)
    if status == 200 and not string.find(body, "\nprobe_success 1\n", 1, true) then
        failed = failed + 1
    end
end

function done(summary, latency, requests)
    local failed = 0
    for _, t in ipairs(threads) do
        failed = failed + t:get("failed")
    end
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d timeouts=%d failed=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
        e.connect + e.read + e.write + e.timeout, e.timeout, failed))
end
