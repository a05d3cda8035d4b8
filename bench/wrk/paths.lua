-- Cycle through a file of request paths, one per line, for the reelsearch bench (bench/load.py).
--
-- Why: one fixed URL measures a cache, not a search engine. Every thread loads the whole file
-- and starts at its own offset, so concurrent connections ask different questions.
--
-- usage: wrk -t2 -c16 -d10s --latency -s bench/wrk/paths.lua http://127.0.0.1:8108 \
--          -- PATHS_FILE [THREADS] [CONNECTIONS]
-- Extra headers (e.g. Typesense's X-TYPESENSE-API-KEY) go through wrk's own -H flag: they land
-- in wrk.headers, which wrk.format() sends with every request.
-- done() prints one line "BENCH_RESULT {json}" with latencies in microseconds.

-- Latency percentiles: wrk 4 corrects its histogram for coordinated omission before done()
-- sees it (stats_correct: each response slower than twice the mean interval between one
-- connection's requests adds samples at its latency minus 1, 2, ... intervals, as if requests
-- had kept arriving at the mean rate), so one 100 ms stall in a 4 ms-mean run at c=1 counts
-- about 25 times. The raw latency of each request is also timed here when every thread has
-- one connection (the third argument, connections, equals the thread count: wrk -tN -cN),
-- since a thread's requests are then one at a time: request() to response() is one request.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

-- Each distinct path is formatted once; the file's order is kept as indexes into them. A
-- Zipf stream of 200,000 lines holds ~9,000 distinct searches: one string per line cost
-- each thread ~30 MB that every request walked through (wrk's own CPU per request rose by
-- 3-10 us against a short file, on the cores the server under test shares).
local requests = {}
local order = {}
local n = 0
local i = 0

-- Per thread (globals of its own Lua state, read back by done() through thread:get).
timed = false
raw = {}
local started = 0

-- Defined only when timed (by init): wrk checks after init whether the script has
-- a response() and, if so, copies every response's headers and body into Lua for it, CPU
-- the load generator would spend on every untimed run too.
local function timed_response(_status, _headers, _body)
  raw[#raw + 1] = now_us() - started
end

function init(args)
  local file = args[1]
  if file == nil then
    error("paths.lua: pass the paths file after --")
  end
  local threads = tonumber(args[2] or "1")
  timed = tonumber(args[3] or "0") == threads
  if timed then
    response = timed_response
  end
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
  if timed then
    started = now_us()
  end
  return requests[order[i]]
end


-- The raw latencies of every thread as "raw_*" fields (none if they were not timed).
local function raw_fields()
  local all = {}
  for _, thread in ipairs(threads) do
    local samples = thread:get("raw") or {}
    for k = 1, #samples do
      all[#all + 1] = samples[k]
    end
  end
  if #all == 0 then
    return ""
  end
  table.sort(all)
  local function at(share)
    return all[math.max(1, math.ceil(#all * share))]
  end
  return string.format(', "raw_count": %d, "raw_p50_us": %d, "raw_p90_us": %d, '
    .. '"raw_p99_us": %d, "raw_max_us": %d', #all, at(0.5), at(0.9), at(0.99), all[#all])
end

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d%s}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, raw_fields()))
end
