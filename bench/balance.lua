-- balance.lua - wrk script of bench/balance.sh: varied keys for the
-- balancing benchmark.
--
--   wrk -t1 -c50 -d3s -s bench/balance.lua http://127.0.0.1:PORT/ -- KEYS
--
-- Request i (counted over the wrk thread, all its connections together) is
--   GET /1k?k=N HTTP/1.1   with   X-Key: N,   N = i mod KEYS (default 1000)
-- so a proxy hashing the URI (path and query) or the X-Key header sees KEYS
-- distinct keys, each equally often. Every algorithm gets the same requests,
-- so the load side costs the same in every cell. The requests are formatted
-- once in init(); request() only hands the next one out.

local reqs = {}
local n = 0

function init(args)
	local keys = tonumber(args[1]) or 1000
	for k = 0, keys - 1 do
		reqs[k + 1] = wrk.format("GET", "/1k?k=" .. k, { ["X-Key"] = tostring(k) })
	end
end

function request()
	n = n % #reqs + 1
	return reqs[n]
end
