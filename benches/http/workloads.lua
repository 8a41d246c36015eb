-- wrk script for the side-by-side benchmark (driven by bench.py; see README.md).
--
-- One script serves every workload so that Ferrobase and PocketBase get byte-for-byte
-- the same requests. The workload and its parameters come from the environment:
--   BENCH_WORKLOAD  ceiling | get_one | list_filter | list_skiptotal | list_rule | expand |
--                   full_list | file | thumb | create | batch_create | update | delete | auth | mixed
--   BENCH_RECORDS   how many seeded `posts` exist (ids are p%014d, 0-based)
--   BENCH_TOKEN     user token (list_rule only)
--   BENCH_EMAIL, BENCH_PASSWORD   the bench user's credentials (auth)
--   BENCH_OWNER     the bench user's id (owner of created records)
--   BENCH_OUT       file that done() writes its JSON summary to
--   BENCH_FILE      path of the seeded 1 MiB file, /api/files/media/{id}/{name} (file, thumb)
--   BENCH_DELETE_FROM, BENCH_DELETE_TO   `trash` ids d%014d in [from, to) that delete may
--                   remove, in order; the thread stops before they run out
--   BENCH_CONNECTIONS  wrk's -c (delete: requests that may be in flight)
--   BENCH_BATCH     creates per /api/batch request (batch_create)
-- Random choices use a fixed seed per wrk thread, so both servers see the same sequence
-- (up to how many requests each manages to send).

local workload = os.getenv("BENCH_WORKLOAD") or "get_one"
local records = tonumber(os.getenv("BENCH_RECORDS") or "10000")
local token = os.getenv("BENCH_TOKEN") or ""
local email = os.getenv("BENCH_EMAIL") or ""
local password = os.getenv("BENCH_PASSWORD") or ""
local owner = os.getenv("BENCH_OWNER") or ""
local file_path = os.getenv("BENCH_FILE") or ""
local delete_from = tonumber(os.getenv("BENCH_DELETE_FROM") or "0")
local delete_to = tonumber(os.getenv("BENCH_DELETE_TO") or "0")
local batch_size = tonumber(os.getenv("BENCH_BATCH") or "50")

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

-- the same with skipTotal=1: no COUNT(*) over the matching rows.
local function list_skiptotal()
  local n = math.random(0, 990)
  local path = posts .. "?perPage=50&sort=-views,id&skipTotal=1&filter="
    .. "(views%3E%3D" .. n .. "%20%26%26%20published%3Dtrue)"
  return wrk.format("GET", path)
end

-- a page of posts with each owner (users) and the owner's team (teams) expanded.
local function expand()
  local page = math.random(1, 10)
  local path = posts .. "?perPage=50&sort=-views,id&expand=owner.team&page=" .. page
  return wrk.format("GET", path)
end

-- one page of the JS SDK's getFullList(): perPage=500&skipTotal=1, any page of the collection.
local full_pages = math.max(1, math.ceil(records / 500))
local function full_list()
  local page = math.random(1, full_pages)
  return wrk.format("GET", posts .. "?perPage=500&skipTotal=1&page=" .. page)
end

local function file()
  return wrk.format("GET", file_path)
end

local function thumb()
  return wrk.format("GET", file_path .. "?thumb=100x100")
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

-- BENCH_BATCH creates in one POST /api/batch (one transaction on both servers).
local function batch_create()
  local parts = {}
  for i = 1, batch_size do
    counter = counter + 1
    parts[i] = string.format(
      '{"method":"POST","url":"/api/collections/posts/records","body":' ..
      '{"title":"batch %d","body":"created by the benchmark","views":%d,"published":true,"owner":"%s"}}',
      counter, math.random(0, 999), owner)
  end
  return wrk.format("POST", "/api/batch", json_headers,
    '{"requests":[' .. table.concat(parts, ",") .. ']}')
end

-- deletes the pre-seeded `trash` records in id order, each once.
local next_delete = delete_from
local function delete()
  local id = string.format("d%014d", next_delete)
  next_delete = next_delete + 1
  return wrk.format("DELETE", "/api/collections/trash/records/" .. id)
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
  ceiling = ceiling, get_one = get_one, list_filter = list_filter,
  list_skiptotal = list_skiptotal, list_rule = list_rule, expand = expand,
  full_list = full_list, file = file, thumb = thumb, create = create,
  batch_create = batch_create, update = update, delete = delete, auth = auth, mixed = mixed,
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

if workload == "delete" then
  -- Stop while every request sent still has an id of its own: at most
  -- BENCH_CONNECTIONS requests are in flight beyond those answered.
  local answered = 0
  local in_flight = tonumber(os.getenv("BENCH_CONNECTIONS") or "64")
  function response(status, headers, body)
    answered = answered + 1
    if delete_from + answered + in_flight >= delete_to then wrk.thread:stop() end
  end
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
