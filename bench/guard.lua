-- guard.lua - wrk script of bench/guard.sh: the load of the gatekeeping
-- benchmark, one X-Client value per client.
--
--   wrk -t1 -c50 -d5s -s bench/guard.lua http://127.0.0.1:PORT/ -- KEYS [get|post] [BODY_BYTES]
--
-- Request i (counted over the wrk thread, all its connections together)
-- carries   X-Client: client-NNNNN,   NNNNN = i mod KEYS (default 10000),
-- so a limit keyed by that header sees KEYS distinct clients, each equally
-- often (one request per key every KEYS requests). Every request also has
-- Host: bench.example (the CRS scores a numeric Host, 920350).
--   get   GET /1k
--   post  POST /1k with an application/x-www-form-urlencoded body of
--         BODY_BYTES (default 2048) bytes: fields f00=..&f01=.. of letters
--         and digits, nothing the CRS should score.
-- Every proxy and configuration gets the same requests. They are formatted
-- once in init(); request() only hands the next one out.

local reqs = {}
local n = 0

local function form_body(size)
	local chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	local parts, len, i = {}, 0, 0
	while len < size do
		local name = string.format("f%02d=", i)
		local v = {}
		for j = 1, 56 do
			local k = (i * 7 + j) % #chars + 1
			v[j] = chars:sub(k, k)
		end
		local field = (i > 0 and "&" or "") .. name .. table.concat(v)
		parts[#parts + 1] = field
		len = len + #field
		i = i + 1
	end
	local body = table.concat(parts)
	return body:sub(1, size) -- the cut falls inside the last value
end

function init(args)
	local keys = tonumber(args[1]) or 10000
	local method = (args[2] or "get"):upper()
	local body = nil
	if method == "POST" then
		body = form_body(tonumber(args[3]) or 2048)
	end
	for k = 0, keys - 1 do
		local h = { ["Host"] = "bench.example", ["X-Client"] = string.format("client-%05d", k) }
		if body then
			h["Content-Type"] = "application/x-www-form-urlencoded"
		end
		reqs[k + 1] = wrk.format(method, "/1k", h, body)
	end
end

function request()
	n = n % #reqs + 1
	return reqs[n]
end
