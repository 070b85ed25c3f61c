-- tls.lua - wrk script of bench/tls.sh: the plain GET of the URL given,
-- over https:// keep-alive connections.
--
--   wrk -t1 -c50 -d5s --latency -s bench/tls.lua https://127.0.0.1:PORT/1k
--
-- It changes no request; at the end it prints one line for bench/tls.sh,
-- so that the script does not have to read wrk's human-readable report:
--   result REQUESTS SECONDS REQ_PER_S P50_MS P99_MS SOCKET_ERRORS NON_2XX_3XX

function done(summary, latency, requests)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format("result %d %.3f %.1f %.3f %.3f %d %d\n",
		summary.requests, secs, secs > 0 and summary.requests / secs or 0,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		e.connect + e.read + e.write + e.timeout, e.status))
end
