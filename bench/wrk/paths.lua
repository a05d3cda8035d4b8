-- Cycle through a file of request paths, one per line, for the reelsearch bench (bench/load.py).
--
-- Why: one fixed URL measures a cache, not a search engine. Every thread loads the whole file
-- and starts at its own offset, so concurrent connections ask different questions.
--
-- usage: wrk -t2 -c16 -d10s --latency -s bench/wrk/paths.lua http://127.0.0.1:8108 \
--          -- PATHS_FILE [THREADS]
-- Extra headers (e.g. Typesense's X-TYPESENSE-API-KEY) go through wrk's own -H flag: they land
-- in wrk.headers, which wrk.format() sends with every request.
-- done() prints one line "BENCH_RESULT {json}" with latencies in microseconds.

local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
end

-- Each distinct path is formatted once; the file's order is kept as indexes into them. A
-- Zipf stream of 200,000 lines holds ~9,000 distinct searches: one string per line cost
-- each thread ~30 MB that every request walked through (wrk's own CPU per request rose by
-- 3-10 us against a short file, on the cores the server under test shares).
local requests = {}
local order = {}
local n = 0
local i = 0

function init(args)
  local file = args[1]
  if file == nil then
    error("paths.lua: pass the paths file after --")
  end
  local threads = tonumber(args[2] or "1")
  local index = {}
  for line in io.lines(file) do
    if line ~= "" then
      local k = index[line]
      if k == nil then
        k = #requests + 1
        requests[k] = wrk.format("GET", line)  -- headers from -H are merged in here
        index[line] = k
      end
      n = n + 1
      order[n] = k
    end
  end
  if n == 0 then
    error("paths.lua: no paths in " .. file)
  end
  i = math.floor(n * (id or 0) / threads) % n
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  return requests[order[i]]
end

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
