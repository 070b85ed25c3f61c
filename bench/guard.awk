# guard.awk - turns the raw numbers of one bench/guard.sh run into the
# markdown report (bench/results/guard.md).
#
# Usage: awk -v tck=CLK_TCK -f guard.awk meta.txt rounds.tsv sanity.txt deep.tsv notes.txt
#   meta.txt    "key value..." lines about the run
#   rounds.tsv  scenario instance round requests seconds rps p50_ms p99_ms
#               socket_errors non2xx cpu_ticks user_ticks
#               (scenario get | post; instance moat, moat_rl, moat_waf, nginx,
#               nginx_rl, haproxy, haproxy_rl)
#   sanity.txt  "proxy | check | statuses" lines
#   deep.tsv    "instance N1 N2 IR_N1 IR_N2" (callgrind, BENCH_DEEP=1)
#   notes.txt   free text, one note a line
# Figures are medians over rounds; a "÷" row is the ratio of two medians.

function median(key,    n, i, j, v, a) {
	n = cnt[key]
	if (n == 0)
		return ""
	for (i = 1; i <= n; i++) {
		v = val[key, i]
		for (j = i - 1; j >= 1 && a[j] > v; j--)
			a[j + 1] = a[j]
		a[j + 1] = v
	}
	lo[key] = a[1]
	hi[key] = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

function add(key, v) {
	cnt[key]++
	val[key, cnt[key]] = v + 0
}

function fmt(v, f) {
	return v == "" ? "n/a" : sprintf(f, v)
}

function ratio(a, b) {
	return (a == "" || b == "" || b + 0 == 0) ? "–" : sprintf("%.2f", a / b)
}

function div(a, b) {
	return (a == "" || b == "" || b + 0 == 0) ? "" : a / b
}

function sub_(a, b) {
	return (a == "" || b == "") ? "" : a - b
}

# m(SCENARIO, INSTANCE, METRIC): the median, "" when not run.
function m(s, i, k) {
	return median(s SUBSEP i SUBSEP k)
}

# A row of the rate-limit table from fig["moat"], fig["nginx"], fig["haproxy"].
function row3(label, better, f, ratios,    line, i, p) {
	line = "| " label " | " better
	for (i = 1; i <= 3; i++) {
		p = px[i]
		line = line " | " fmt(fig[p], f)
	}
	if (ratios)
		line = line " | " ratio(fig["moat"], fig["nginx"]) " | " ratio(fig["moat"], fig["haproxy"]) " |"
	else
		line = line " | – | – |"
	print line
	delete fig
}

FILENAME ~ /meta\.txt$/ {
	k = $1
	$1 = ""
	sub(/^ /, "")
	meta[k] = $0
	next
}
FILENAME ~ /rounds\.tsv$/ {
	s = $1; i = $2
	reqs = $4; secs = $5; ticks = $11
	if (reqs > 0) {
		add(s SUBSEP i SUBSEP "cpu", ticks / tck * 1e6 / reqs)
		add(s SUBSEP i SUBSEP "user", $12 / tck * 1e6 / reqs)
		add(s SUBSEP i SUBSEP "rps", $6)
		add(s SUBSEP i SUBSEP "busy", ticks / tck / secs * 100)
		if ($7 != "-") add(s SUBSEP i SUBSEP "p50", $7)
		if ($8 != "-") add(s SUBSEP i SUBSEP "p99", $8)
	}
	sockerr[s, i] += $9
	non2xx[s, i] += $10
	allreq[s, i] += reqs
	ran[s, i] = 1
	next
}
FILENAME ~ /sanity\.txt$/ {
	san[++nsan] = $0
	next
}
FILENAME ~ /deep\.tsv$/ {
	if ($4 != "-" && $5 != "-" && $3 > $2)
		irq[$1] = ($5 - $4) / ($3 - $2)
	deep_n1 = $2; deep_n2 = $3
	next
}
FILENAME ~ /notes\.txt$/ {
	notes[++nnotes] = $0
	next
}

END {
	split("moat nginx haproxy", px, " ")
	print "# moat gatekeeping benchmark"
	print ""
	print "- " meta["date"] ", commit " meta["commit"] ", " meta["cpu"] ", Linux " meta["kernel"]
	print "- moat binary " meta["moat"] "; nginx " meta["nginx"] ", HAProxy " meta["haproxy"] ", ModSecurity " meta["modsecurity"] "; each proxy one worker, " meta["pin"]
	print "- load: `" meta["wrk"] "`, " meta["rounds"] " interleaved rounds; figures are medians over rounds"
	print "- load average at start " meta["load_start"] ", at end " meta["load_end"]
	print "- the measured limit, per X-Client value: moat `rate: " meta["rate"] "/s, burst: " meta["burst"] "` (`key: \"header:x-client\"`); nginx `limit_req_zone $http_x_client ... rate=" meta["rate"] "r/s` + `limit_req burst=" meta["burst"] " nodelay`; HAProxy stick table on `req.hdr(x-client)`, `http_req_rate(10s)`, 429 if `sc_http_req_rate(0) gt " meta["haproxy_limit"] "`. High enough that no request is refused (see \"refused\"): what is measured is the bookkeeping."
	print ""
	print "CPU µs per request is the headline (proxy utime+stime over the round / requests served): lower is better."
	print "Ratios moat ÷ other: below 1.00 means moat used less (or, for requests/s, served less)."
	print ""
	print "## Rate limiting: `GET /1k`, " meta["keys"] " distinct `X-Client` values"
	print ""
	print "| metric | better | moat | nginx | haproxy | moat/nginx | moat/haproxy |"
	print "|---|---|---:|---:|---:|---:|---:|"
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j], "cpu")
	row3("**CPU µs / request**, no limit", "lower", "%.2f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j] "_rl", "cpu")
	row3("**CPU µs / request**, limit by X-Client", "lower", "%.2f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = div(m("get", px[j] "_rl", "cpu"), m("get", px[j], "cpu"))
	row3("**limit ÷ no limit, CPU / request**", "lower", "%.2f", 0)
	for (j = 1; j <= 3; j++) fig[px[j]] = sub_(m("get", px[j] "_rl", "cpu"), m("get", px[j], "cpu"))
	row3("CPU µs / request added by the limit", "lower", "%+.2f", 0)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j], "user")
	row3("of which user space µs, no limit", "lower", "%.2f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j] "_rl", "user")
	row3("of which user space µs, limit", "lower", "%.2f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j], "rps")
	row3("requests/s, no limit", "higher", "%.0f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j] "_rl", "rps")
	row3("requests/s, limit", "higher", "%.0f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = div(m("get", px[j] "_rl", "rps"), m("get", px[j], "rps"))
	row3("limit ÷ no limit, requests/s", "higher", "%.2f", 0)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j], "p99")
	row3("p99 latency ms, no limit", "lower", "%.3f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j] "_rl", "p99")
	row3("p99 latency ms, limit", "lower", "%.3f", 1)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j], "busy")
	row3("proxy CPU busy %, no limit", "(info)", "%.0f", 0)
	for (j = 1; j <= 3; j++) fig[px[j]] = m("get", px[j] "_rl", "busy")
	row3("proxy CPU busy %, limit", "(info)", "%.0f", 0)
	for (j = 1; j <= 3; j++) if (("get", px[j] "_rl") in ran) fig[px[j]] = non2xx["get", px[j] "_rl"]
	row3("refused (non-2xx), limit, all rounds", "0", "%d", 0)
	if (length(irq) > 0) {
		for (j = 1; j <= 3; j++) if (px[j] in irq) fig[px[j]] = irq[px[j]]
		row3("instructions / request, no limit (callgrind)", "lower", "%.0f", 1)
		for (j = 1; j <= 3; j++) if ((px[j] "_rl") in irq) fig[px[j]] = irq[px[j] "_rl"]
		row3("instructions / request, limit (callgrind)", "lower", "%.0f", 1)
		for (j = 1; j <= 3; j++) if ((px[j] in irq) && ((px[j] "_rl") in irq)) fig[px[j]] = irq[px[j] "_rl"] - irq[px[j]]
		row3("**instructions / request added by the limit**", "lower", "%+.0f", 1)
		for (j = 1; j <= 3; j++) if ((px[j] in irq) && ((px[j] "_rl") in irq)) fig[px[j]] = irq[px[j] "_rl"] / irq[px[j]]
		row3("limit ÷ no limit, instructions / request", "lower", "%.3f", 0)
		print ""
		print "Instructions: user space, under callgrind, one connection, one request at a time; (Ir of " deep_n2 " requests − Ir of " deep_n1 ") ÷ " (deep_n2 - deep_n1) ", so every key is already in the table (steady state) and start-up cancels."
	}

	print ""
	print "## WAF: moat `waf: on` (ModSecurity v3 + OWASP CRS, paranoia 1) against moat without"
	print ""
	print "moat against itself only. HAProxy has no ModSecurity in Debian 12 (its SPOE agent, modsecurity-spoa, is not packaged). nginx has one in Debian 12 main (libnginx-mod-http-modsecurity, the ModSecurity-nginx connector, over the same libmodsecurity3), but it is not in the bench profile of `scripts/deps.sh` and is not measured here."
	print ""
	print "| request | metric | better | moat | moat `waf: on` | waf ÷ plain |"
	print "|---|---|---|---:|---:|---:|"
	nsc = split("get post", sc, " ")
	title["get"] = "`GET /1k`"
	title["post"] = "`POST /1k`, " meta["post_bytes"] " B urlencoded form"
	nmet = split("cpu user rps p50 p99 busy", mk, " ")
	split("**CPU µs / request**|of which user space µs|requests/s|p50 latency ms|p99 latency ms|proxy CPU busy %", ml, "|")
	split("lower lower higher lower lower (info)", mb, " ")
	split("%.2f %.2f %.0f %.3f %.3f %.0f", mf, " ")
	for (a = 1; a <= nsc; a++) {
		for (b = 1; b <= nmet; b++) {
			x = m(sc[a], "moat", mk[b])
			y = m(sc[a], "moat_waf", mk[b])
			printf "| %s | %s | %s | %s | %s | %s |\n", title[sc[a]], ml[b], mb[b], fmt(x, mf[b]), fmt(y, mf[b]),
				mb[b] == "(info)" ? "–" : ratio(y, x)
		}
		if ((sc[a], "moat_waf") in ran)
			printf "| %s | refused (non-2xx), all rounds | 0 | %d | %d | – |\n", title[sc[a]], non2xx[sc[a], "moat"], non2xx[sc[a], "moat_waf"]
	}

	print ""
	print "## Sanity checks"
	print ""
	print "Each proxy with the same limit set low (separate instances, stopped before the load), and the measured instances; `STATUS xN` counts answers."
	print ""
	print "| proxy | check | answers |"
	print "|---|---|---|"
	if (nsan == 0)
		print "| – | none run | – |"
	for (i = 1; i <= nsan; i++) {
		n = split(san[i], f, " \\| ")
		printf "| %s | %s | %s |\n", f[1], f[2], f[3]
	}

	print ""
	print "## Spread over rounds"
	print ""
	print "| scenario | instance | rounds | CPU µs/request min – median – max | requests/s min – max | non-2xx | socket errors |"
	print "|---|---|---:|---|---|---:|---:|"
	ni = split("moat moat_rl nginx nginx_rl haproxy haproxy_rl moat_waf", inst, " ")
	for (a = 1; a <= nsc; a++) {
		for (b = 1; b <= ni; b++) {
			s = sc[a]; i = inst[b]
			if (!((s, i) in ran))
				continue
			k = s SUBSEP i SUBSEP "cpu"
			med = median(k)
			if (med == "") {
				printf "| %s | %s | 0 | n/a | n/a | %d | %d |\n", s, i, non2xx[s, i], sockerr[s, i]
				continue
			}
			kr = s SUBSEP i SUBSEP "rps"
			median(kr)
			printf "| %s | %s | %d | %.2f – %.2f – %.2f | %.0f – %.0f | %d | %d |\n", s, i, cnt[k],
				lo[k], med, hi[k], lo[kr], hi[kr], non2xx[s, i], sockerr[s, i]
		}
	}

	print ""
	print "## Notes"
	print ""
	for (a = 1; a <= nsc; a++)
		for (b = 1; b <= ni; b++) {
			s = sc[a]; i = inst[b]
			if (non2xx[s, i] > 0)
				notes[++nnotes] = i ": " non2xx[s, i] " non-2xx answers in " s " (of " allreq[s, i] ")"
			if (sockerr[s, i] > 0)
				notes[++nnotes] = i ": " sockerr[s, i] " wrk socket errors in " s
		}
	if (nnotes == 0)
		print "- none"
	for (i = 1; i <= nnotes; i++)
		print "- " notes[i]
}
