-- cache.lua - wrk script of bench/cache.sh: cache hits over a fixed set of
-- URLs.
--
--   wrk -t1 -c50 -d3s --latency -s bench/cache.lua http://127.0.0.1:PORT/1k -- URLS
--
-- Request i (counted over the wrk thread, all its connections together) is
--   GET <path of the URL given>?n=N HTTP/1.1,   N = i mod URLS (default 100)
-- so a cache sees URLS distinct keys (path + query), each equally often;
-- bench/cache.sh has stored every one of them before the load. Every proxy
-- gets the same requests. They are formatted once in init(); request() only
-- hands the next one out.
--
-- At the end it prints one line for bench/cache.sh, so that the script does
-- not have to read wrk's human-readable report:
--   result REQUESTS SECONDS REQ_PER_S P50_MS P99_MS SOCKET_ERRORS NON_2XX_3XX

local reqs = {}
local n = 0

function init(args)
	local urls = tonumber(args[1]) or 100
	for k = 0, urls - 1 do
		reqs[k + 1] = wrk.format("GET", wrk.path .. "?n=" .. k)
	end
end

function request()
	n = n % #reqs + 1
	return reqs[n]
end

function done(summary, latency, requests)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format("result %d %.3f %.1f %.3f %.3f %d %d\n",
		summary.requests, secs, secs > 0 and summary.requests / secs or 0,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		e.connect + e.read + e.write + e.timeout, e.status))
end
