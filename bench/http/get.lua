-- GET of one of KEYS pre-created keys (round robin per thread). Usage: wrk -s get.lua URL -- KEYS
local keys, n = 64, 0
function init(args)
  if args[1] then keys = tonumber(args[1]) end
end
function request()
  n = n + 1
  return wrk.format("GET", "/v1/ns/bench/state/k/" .. (n % keys))
end
