# report.awk - turns the raw numbers of one bench/run.sh run into the
# markdown report (bench/results/latest.md).
#
# Usage: awk -v tck=CLK_TCK -f report.awk meta.txt rounds.tsv mem.tsv deep.tsv notes.txt
#   meta.txt    "key value..." lines about the run
#   rounds.tsv  scenario proxy round requests seconds rps p50_ms p99_ms errors cpu_ticks user_ticks
#   mem.tsv     proxy pss_before rss_before pss_after rss_after held alive   (kB)
#   deep.tsv    "proxy syscalls COUNT REQUESTS" and "proxy instr IR_1000 IR_5000"
#   notes.txt   free text, one note a line
# Figures are medians over rounds; awk sorts with a plain insertion sort.

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

# One table row: label, which way is better, the per-proxy values in fig[].
function row(scen, metric, better, f,    line, i, p) {
	line = "| " scen " | " metric " | " better
	for (i = 1; i <= ncols; i++) {
		p = cols[i]
		line = line " | " (p in present ? fmt(fig[p], f) : "not run")
	}
	if (better == "(info)")
		line = line " | – | – |"
	else
		line = line " | " ratio(fig["moat"], fig["nginx"]) " | " ratio(fig["moat"], fig["haproxy"]) " |"
	print line
	delete fig
}

FILENAME ~ /meta\.txt$/ {
	k = $1
	$1 = ""
	sub(/^ /, "")
	meta[k] = $0
	if (k == "proxies")
		for (i = 1; i <= NF; i++)
			present[$i] = 1
	next
}
FILENAME ~ /rounds\.tsv$/ {
	s = $1; p = $2
	reqs = $4; secs = $5; ticks = $10
	if (reqs > 0) {
		add(s SUBSEP p SUBSEP "cpu", ticks / tck * 1e6 / reqs)
		add(s SUBSEP p SUBSEP "user", $11 / tck * 1e6 / reqs)
		add(s SUBSEP p SUBSEP "rps", $6)
		add(s SUBSEP p SUBSEP "busy", ticks / tck / secs * 100)
		if ($7 != "-") add(s SUBSEP p SUBSEP "p50", $7)
		if ($8 != "-") add(s SUBSEP p SUBSEP "p99", $8)
	}
	errs[s, p] += $9
	if (reqs == 0) failed[s, p]++
	next
}
FILENAME ~ /mem\.tsv$/ {
	p = $1
	idle_mib[p] = $2 / 1024
	if ($6 > 0)
		per_conn[p] = ($4 - $2) * 1024 / $6
	held[p] = $6
	alive[p] = $7
	next
}
FILENAME ~ /deep\.tsv$/ {
	if ($2 == "syscalls" && $4 > 0)
		sys_per_req[$1] = $3 / $4
	if ($2 == "instr" && $3 != "-" && $4 != "-")
		ir_per_req[$1] = ($4 - $3) / 4000
	next
}
FILENAME ~ /notes\.txt$/ {
	notes[++nnotes] = $0
	next
}

END {
	ncols = split("moat nginx haproxy forwarder", cols, " ")
	nscen = split("ka1k ka64k close1k", scens, " ")
	title["ka1k"] = "keep-alive 1 KiB"
	title["ka64k"] = "keep-alive 64 KiB"
	title["close1k"] = "`Connection: close` 1 KiB"

	print "# moat benchmark"
	print ""
	print "- " meta["date"] ", commit " meta["commit"] ", " meta["cpu"] ", Linux " meta["kernel"]
	print "- nginx " meta["nginx"] ", HAProxy " meta["haproxy"] "; each proxy one worker, " meta["pin"]
	print "- load: `" meta["wrk"] "`, " meta["rounds"] " interleaved rounds per scenario; figures are medians over rounds"
	print "- load average at start " meta["load_start"] ", at end " meta["load_end"]
	print ""
	print "CPU µs per request is the headline (proxy utime+stime over the round / requests served): lower is better."
	print "Memory: lower is better. Requests/s: higher is better. Ratios are moat ÷ other: below 1.00 means moat used less (or, for requests/s, served less)."
	print ""
	print "| scenario | metric | better | moat | nginx | haproxy | forwarder | moat/nginx | moat/haproxy |"
	print "|---|---|---|---:|---:|---:|---:|---:|---:|"
	for (si = 1; si <= nscen; si++) {
		s = scens[si]
		t = title[s]
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(s SUBSEP cols[i] SUBSEP "cpu")
		row(t, "**CPU µs / request**", "lower", "%.2f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(s SUBSEP cols[i] SUBSEP "user")
		row(t, "of which user space µs", "lower", "%.2f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(s SUBSEP cols[i] SUBSEP "rps")
		row(t, "requests/s", "higher", "%.0f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(s SUBSEP cols[i] SUBSEP "p50")
		row(t, "p50 latency ms", "lower", "%.3f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(s SUBSEP cols[i] SUBSEP "p99")
		row(t, "p99 latency ms", "lower", "%.3f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(s SUBSEP cols[i] SUBSEP "busy")
		row(t, "proxy CPU busy %", "(info)", "%.0f")
	}
	m = meta["idle"] + 0
	for (i = 1; i <= ncols; i++) if (cols[i] in idle_mib) fig[cols[i]] = idle_mib[cols[i]]
	row("idle", "PSS MiB, fresh process", "lower", "%.1f")
	for (i = 1; i <= ncols; i++) if (cols[i] in per_conn) fig[cols[i]] = per_conn[cols[i]]
	row(m " idle keep-alive conns", "PSS bytes / connection", "lower", "%.0f")
	if (length(sys_per_req) + length(ir_per_req) > 0) {
		for (i = 1; i <= ncols; i++) if (cols[i] in ir_per_req) fig[cols[i]] = ir_per_req[cols[i]]
		row("deep: 1 KiB, 1 conn", "instructions / request (callgrind)", "lower", "%.0f")
		for (i = 1; i <= ncols; i++) if (cols[i] in sys_per_req) fig[cols[i]] = sys_per_req[cols[i]]
		row("deep: 1 KiB, 1 conn", "syscalls / request (strace)", "lower", "%.2f")
	}

	print ""
	print "## Spread over rounds"
	print ""
	print "| scenario | proxy | rounds | CPU µs/request min – median – max | requests/s min – max | wrk errors |"
	print "|---|---|---:|---|---|---:|"
	for (si = 1; si <= nscen; si++) {
		s = scens[si]
		for (i = 1; i <= ncols; i++) {
			p = cols[i]
			if (!(p in present))
				continue
			k = s SUBSEP p SUBSEP "cpu"
			med = median(k)
			if (med == "") {
				printf "| %s | %s | 0 | n/a | n/a | %d |\n", title[s], p, errs[s, p]
				continue
			}
			kr = s SUBSEP p SUBSEP "rps"
			median(kr)
			printf "| %s | %s | %d | %.2f – %.2f – %.2f | %.0f – %.0f | %d |\n", title[s], p, cnt[k],
				lo[k], med, hi[k], lo[kr], hi[kr], errs[s, p]
		}
	}

	print ""
	print "## Idle connections"
	print ""
	print "| proxy | held | still open at the end | PSS before MiB | PSS after MiB |"
	print "|---|---:|---:|---:|---:|"
	for (i = 1; i <= ncols; i++) {
		p = cols[i]
		if (p in held)
			printf "| %s | %d | %d | %.1f | %.1f |\n", p, held[p], alive[p], idle_mib[p],
				idle_mib[p] + per_conn[p] * held[p] / 1048576
	}

	print ""
	print "## Notes"
	print ""
	for (i = 1; i <= nscen; i++)
		for (j = 1; j <= ncols; j++)
			if (errs[scens[i], cols[j]] > 0)
				notes[++nnotes] = cols[j] ": " errs[scens[i], cols[j]] " wrk errors (socket errors or non-2xx) in " title[scens[i]]
	if (nnotes == 0)
		print "- none"
	for (i = 1; i <= nnotes; i++)
		print "- " notes[i]
}
