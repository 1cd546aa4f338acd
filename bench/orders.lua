-- wrk script: POST a fresh order to tierflow's API on each request.
-- BENCH_MODE=known: for a random member of the base (B-0 … B-<BENCH_MEMBERS - 1>);
-- BENCH_MODE=new: for a new member, created by the order itself.
local mode = os.getenv("BENCH_MODE") or "known"
local members = tonumber(os.getenv("BENCH_MEMBERS") or "100000")
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local auth = "Bearer " .. (os.getenv("BENCH_KEY") or "")
local counter = 0
local thread_id = 0

setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

init = function(args)
  math.randomseed(os.time() + tid * 7919)
end

request = function()
  counter = counter + 1
  local id = string.format("%s-%d-%d", run, tid, counter)
  local member
  if mode == "new" then
    member = string.format('{"external_id":"N%s","phone":"139%08d"}', id, math.random(0, 99999999))
  else
    member = string.format('"B-%d"', math.random(0, members - 1))
  end
  local body = string.format(
    '{"external_id":"W%s","member":%s,"amount":"%d.50","currency":"CNY","placed_at":"%s"}',
    id, member, math.random(1, 500), os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("POST", "/api/v1/orders/", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = auth,
  }, body)
end
