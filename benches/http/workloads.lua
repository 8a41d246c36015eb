-- wrk script for the side-by-side benchmark (driven by bench.py; see README.md).
--
-- One script serves every workload so that Ferrobase and PocketBase get byte-for-byte
-- the same requests. The workload and its parameters come from the environment:
--   BENCH_WORKLOAD  ceiling | get_one | list_filter | list_rule | create | update | auth | mixed
--   BENCH_RECORDS   how many seeded `posts` exist (ids are p%014d, 0-based)
--   BENCH_TOKEN     user token (list_rule only)
--   BENCH_EMAIL, BENCH_PASSWORD   the bench user's credentials (auth)
--   BENCH_OWNER     the bench user's id (owner of created records)
--   BENCH_OUT       file that done() writes its JSON summary to
-- Random choices use a fixed seed per wrk thread, so both servers see the same sequence
-- (up to how many requests each manages to send).

local workload = os.getenv("BENCH_WORKLOAD") or "get_one"
local records = tonumber(os.getenv("BENCH_RECORDS") or "10000")
local token = os.getenv("BENCH_TOKEN") or ""
local email = os.getenv("BENCH_EMAIL") or ""
local password = os.getenv("BENCH_PASSWORD") or ""
local owner = os.getenv("BENCH_OWNER") or ""

local json_headers = { ["Content-Type"] = "application/json" }
local posts = "/api/collections/posts/records"

local function post_id()
  return string.format("p%014d", math.random(0, records - 1))
end

local function get_one()
  return wrk.format("GET", posts .. "/" .. post_id())
end

-- filter: (views >= N && published = true), sorted by -views then id, 50 per page.
local function list_filter()
  local n = math.random(0, 990)
  local path = posts .. "?perPage=50&sort=-views,id&filter="
    .. "(views%3E%3D" .. n .. "%20%26%26%20published%3Dtrue)"
  return wrk.format("GET", path)
end

local function list_rule()
  local page = math.random(1, 10)
  local path = "/api/collections/owned_posts/records?perPage=50&sort=-views,id&page=" .. page
  return wrk.format("GET", path, { ["Authorization"] = token })
end

local counter = 0
local function create()
  counter = counter + 1
  local body = string.format(
    '{"title":"bench %d","body":"created by the benchmark","views":%d,"published":true,"owner":"%s"}',
    counter, math.random(0, 999), owner)
  return wrk.format("POST", posts, json_headers, body)
end

local function update()
  local body = string.format('{"views":%d}', math.random(0, 999))
  return wrk.format("PATCH", posts .. "/" .. post_id(), json_headers, body)
end

local auth_body = string.format('{"identity":"%s","password":"%s"}', email, password)
local function auth()
  return wrk.format("POST", "/api/collections/users/auth-with-password", json_headers, auth_body)
end

local function ceiling()
  return wrk.format("GET", "/api/health")
end

-- 90% reads (60 view, 30 list) / 10% writes (5 create, 5 update).
local function mixed()
  local r = math.random(1, 100)
  if r <= 60 then return get_one()
  elseif r <= 90 then return list_filter()
  elseif r <= 95 then return create()
  else return update() end
end

local builders = {
  ceiling = ceiling, get_one = get_one, list_filter = list_filter, list_rule = list_rule,
  create = create, update = update, auth = auth, mixed = mixed,
}
local build = builders[workload]
if build == nil then error("unknown BENCH_WORKLOAD " .. workload) end

local thread_no = 0
function setup(thread)
  thread_no = thread_no + 1
  thread:set("seed", 1000 + thread_no)
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  return build()
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean)
  local path = os.getenv("BENCH_OUT")
  if path then
    local f = assert(io.open(path, "w"))
    f:write(out, "\n")
    f:close()
  else
    io.write(out, "\n")
  end
end
