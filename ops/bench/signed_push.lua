-- wrk script for ops/bench/webhooks.sh: POSTs pre-signed push deliveries, each once.
-- Thread i reads $BENCH_BODIES.i (lines of `delivery-id \t sha256=sig \t body`, see gen_pushes.py)
-- front to back; a thread that runs out stops, so no delivery is ever sent twice.
-- done() prints one machine-readable RESULT line (latencies in ms).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  local prefix = os.getenv("BENCH_BODIES") or error("BENCH_BODIES is not set")
  path = os.getenv("BENCH_PATH") or "/github/webhook"
  bodies = assert(io.open(prefix .. "." .. tid, "r"))
  sent, exhausted, last = 0, false, nil
end

function request()
  local line = bodies:read("*l")
  if line == nil then
    -- Out of deliveries: stop this thread (the request below is answered as a duplicate).
    exhausted = true
    wrk.thread:stop()
    line = last
  else
    sent = sent + 1
    last = line
  end
  local id, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = id,
    ["X-GitHub-Hook-ID"] = "1",
    ["X-Hub-Signature-256"] = sig,
  }, body)
end

function done(summary, latency, requests)
  local sent_total, ran_out = 0, 0
  for _, t in ipairs(threads) do
    sent_total = sent_total + (t:get("sent") or 0)
    if t:get("exhausted") then ran_out = ran_out + 1 end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.2f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d sent=%d threads_out_of_bodies=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout, sent_total, ran_out))
end
