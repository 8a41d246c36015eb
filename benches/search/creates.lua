-- wrk script of benches/search/bench.py (CREATES_SECONDS): each request creates
-- one record of ~1 KB (170 words w0000…w4999, Zipf-like) in COLLECTION as OWNER,
-- authorised by TOKEN (the superuser's), all from the environment.
local collection = os.getenv("COLLECTION")
local owner = os.getenv("OWNER")
local token = os.getenv("TOKEN")
local path = "/api/collections/" .. collection .. "/records"

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

function request()
  local words = {}
  for i = 1, 170 do
    -- 5000^u - 1 for u uniform in [0, 1): log-uniform ranks, Zipf s = 1.
    words[i] = string.format("w%04d", math.floor(5000 ^ math.random()) - 1)
  end
  local body = '{"owner":"' .. owner .. '","body":"' .. table.concat(words, " ")
    .. '","kind":"news","amount":' .. math.random(0, 999) .. '}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["Authorization"] = token}, body)
end
