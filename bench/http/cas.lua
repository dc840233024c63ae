-- Conditional PUT (If-Match: "<version>"): every request is a compare-and-swap that succeeds.
-- Each wrk thread owns a free list of keys: a request takes a free key with its known version, and the response (whose
-- body names the key and its new version) puts it back. No two in-flight requests touch one key, so none conflicts,
-- however wrk interleaves its connections. A non-2xx response is reported by wrk as an error.
local free, version = {}, {}
local body = '{"owner":"bench","n":1}'
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", tostring(counter))
end
function init(args)
  local keys = tonumber(args[1] or "128")
  for i = 1, keys do
    local key = "cas/" .. tid .. "/" .. i
    free[#free + 1] = key
    version[key] = 0
  end
end
function request()
  local key = table.remove(free)
  local headers = { ["Content-Type"] = "application/json" }
  if version[key] == 0 then headers["If-None-Match"] = "*" else headers["If-Match"] = '"' .. version[key] .. '"' end
  return wrk.format("PUT", "/v1/ns/bench/state/" .. key, headers, body)
end
function response(status, headers, body)
  local key = body:match('"key":"([^"]+)"')
  local v = body:match('"version":(%d+)')
  if key and v then version[key] = tonumber(v) end
  if key then free[#free + 1] = key end
end
