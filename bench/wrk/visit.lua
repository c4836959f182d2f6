-- wrk script for bench/run.sh: each request GETs the URL's path, with no
-- cookie (a new visitor each time), or with a Cookie header taken in turn
-- from a file of "sessionid=..." lines (returning visitors):
--   wrk -s visit.lua URL [-- COOKIE_FILE]
-- At the end it prints one line for run.sh to read:
--   ops= seconds= p50_ms= p99_ms= non2xx= errors=
local cookies = {}
local next_cookie = 1

function init(args)
  if args[1] then
    for line in io.lines(args[1]) do
      if line ~= "" then cookies[#cookies + 1] = line end
    end
    -- each thread starts at another place in the list
    next_cookie = math.random(#cookies)
  end
end

function request()
  if #cookies == 0 then
    return wrk.format("GET", wrk.path)
  end
  local c = cookies[next_cookie]
  next_cookie = next_cookie % #cookies + 1
  return wrk.format("GET", wrk.path, { Cookie = c })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "ops=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, e.status,
    e.connect + e.read + e.write + e.timeout))
end
