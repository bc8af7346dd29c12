-- wrk script of the load benchmark (benchmarks/loadgen.py runs it; not meant to be edited).
-- Arguments after "--": POOL_DATA POOL_INDEX START_INDEX CONTENT_TYPE THREADS
-- POST bodies are cycled from a pool of distinct pre-built requests: thread t sends records
-- START+t, START+t+THREADS, ... so threads never send the same record in one pass.
-- done() prints "WRK key value" lines, quantiles on the grid given in env WRK_QUANTILES.

local next_thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  threads[#threads + 1] = thread
end

-- Responses by exact status, per thread, when WRK_STATUS_DETAIL=1. Off by default: a Lua
-- callback per response costs wrk CPU that the servers share; wrk itself still counts every
-- response with status > 399 and every socket error.
statuses = {}

if os.getenv("WRK_STATUS_DETAIL") == "1" then
  function response(status, _, _)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

local requests = {}
local position = 1

function init(args)
  local data = assert(io.open(args[1], "rb")):read("*a")
  local lengths = {}
  for line in assert(io.open(args[2], "r")):lines() do
    lengths[#lengths + 1] = tonumber(line)
  end
  local start, content_type, threads = tonumber(args[3]), args[4], tonumber(args[5])
  local offsets, offset = {}, 1
  for i, length in ipairs(lengths) do
    offsets[i] = offset
    offset = offset + length
  end
  local headers = { ["Content-Type"] = content_type }
  local count = #lengths
  -- This thread's share of the pool, starting after the records earlier phases used.
  for k = 0, math.ceil(count / threads) - 1 do
    local i = (start + thread_id + k * threads) % count + 1
    local body = string.sub(data, offsets[i], offsets[i] + lengths[i] - 1)
    requests[#requests + 1] = wrk.format("POST", nil, headers, body)
  end
end

function request()
  local r = requests[position]
  position = position % #requests + 1
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format("WRK requests %d\nWRK duration_us %d\n", summary.requests, summary.duration))
  io.write(string.format("WRK connect %d\nWRK read %d\nWRK write %d\nWRK wrk_status_errors %d\nWRK timeout %d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("WRK status_%d %d\n", status, count))
    end
  end
  for q in string.gmatch(os.getenv("WRK_QUANTILES") or "50 90 99 99.9", "%S+") do
    io.write(string.format("WRK q%s %d\n", q, latency:percentile(tonumber(q))))
  end
end
