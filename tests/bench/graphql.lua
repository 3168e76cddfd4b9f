-- wrk script for the peer benchmark: POST one GraphQL document with fresh random variables per request.
-- Environment: DOCUMENT (the GraphQL text), VARIABLES (q1 | q2 | q3: which variables to send),
--   PRODUCTS (q2's keys are random in 1..PRODUCTS), AUTH_TOKEN (optional bearer token).
-- A response counts as an error when its status is not 200 or its body has "errors".
-- done() prints one line: WRKJSON {...}, latencies in microseconds.

local document = os.getenv("DOCUMENT") or error("DOCUMENT is not set")
local kind = os.getenv("VARIABLES") or "q2"
local token = os.getenv("AUTH_TOKEN") or ""
local products = tonumber(os.getenv("PRODUCTS") or "100000")
local escaped = document:gsub("\\", "\\\\"):gsub('"', '\\"')

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  ok, errors = 0, 0
  math.randomseed(42 + #threads)
end

local function variables()
  if kind == "q1" then
    local low = math.random(1, 900)
    return string.format('{"min":%d,"max":%d}', low, low + 100)
  elseif kind == "q2" then
    return string.format('{"id":%d}', math.random(1, products))
  end
  return '{"name":"bench insert","price":0.5,"cat":"zz_bench"}'
end

function request()
  return wrk.format(nil, nil, nil, '{"query":"' .. escaped .. '","variables":' .. variables() .. '}')
end

function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("bad response " .. status .. ": " .. body:sub(1, 300) .. "\n") end
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_errors = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + (thread:get("ok") or 0)
    total_errors = total_errors + (thread:get("errors") or 0)
  end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_us":%d,"p99_us":%d,"ok":%d,' ..
    '"bad_responses":%d,"socket_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), total_ok, total_errors,
    e.connect + e.read + e.write, e.timeout))
end
