-- wrk script: POST one small chat completion request per call, then print the figures as one
-- parseable line:  WRK_RESULT {"requests": ..., "duration_us": ..., "p50_us": ..., ...}
-- Environment: BENCH_API_KEY (Authorization bearer key), BENCH_MODEL (default "bench-model").

local key = os.getenv("BENCH_API_KEY") or "sk-bench"
local model = os.getenv("BENCH_MODEL") or "bench-model"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"max_us":%d,"errors_status":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
