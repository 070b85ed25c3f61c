# balance.awk - turns the raw numbers of one bench/balance.sh run into the
# markdown report (bench/results/balance.md).
#
# Usage: awk -v tck=CLK_TCK -f balance.awk meta.txt rounds.tsv na.txt notes.txt
#   meta.txt    "key value..." lines about the run
#   rounds.tsv  algorithm proxy round requests seconds rps p50_ms p99_ms errors
#               cpu_ticks user_ticks share_max share_min
#   na.txt      "algorithm proxy": the proxy has no equivalent algorithm
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

function ratio(a, b) {
	return (a == "" || b == "" || b + 0 == 0) ? "–" : sprintf("%.2f", a / b)
}

# What a cell shows when it has no figure.
function missing(a, p) {
	if ((a, p) in na)
		return "n/a"
	if (!(p in present))
		return "not run"
	return "failed"
}

# One table row for algorithm a: the per-proxy values in fig[].
function row(a, metric, better, f,    line, i, p) {
	line = "| " label(a) " | " metric " | " better
	for (i = 1; i <= ncols; i++) {
		p = cols[i]
		line = line " | " (fig[p] == "" ? missing(a, p) : sprintf(f, fig[p]))
	}
	if (better == "(info)")
		line = line " | – | – |"
	else
		line = line " | " ratio(fig["moat"], fig["haproxy"]) " | " ratio(fig["moat"], fig["nginx"]) " |"
	print line
	delete fig
}

function label(a) {
	return a == "hash_uri" ? "hash (uri)" : a == "hash_header" ? "hash (header X-Key)" : a
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
	a = $1; p = $2
	reqs = $4; secs = $5; ticks = $10
	if (reqs > 0) {
		add(a SUBSEP p SUBSEP "cpu", ticks / tck * 1e6 / reqs)
		add(a SUBSEP p SUBSEP "user", $11 / tck * 1e6 / reqs)
		add(a SUBSEP p SUBSEP "rps", $6)
		add(a SUBSEP p SUBSEP "busy", ticks / tck / secs * 100)
		if ($12 != "-") add(a SUBSEP p SUBSEP "smax", $12)
		if ($13 != "-") add(a SUBSEP p SUBSEP "smin", $13)
	}
	errs[a, p] += $9
	next
}
FILENAME ~ /na\.txt$/ {
	na[$1, $2] = 1
	next
}
FILENAME ~ /notes\.txt$/ {
	notes[++nnotes] = $0
	next
}

END {
	ncols = split("moat haproxy nginx", cols, " ")
	nalg = split(meta["algorithms"], algs, " ")

	print "# moat balancing benchmark"
	print ""
	print "- " meta["date"] ", commit " meta["commit"] ", " meta["cpu"] ", Linux " meta["kernel"]
	print "- nginx " meta["nginx"] ", HAProxy " meta["haproxy"] "; " meta["backends"] " backends; each proxy one worker, " meta["pin"]
	print "- load: `" meta["wrk"] "`, " meta["rounds"] " interleaved rounds of " meta["seconds"] " s per cell; figures are medians over rounds"
	print "- load average at start " meta["load_start"] ", at end " meta["load_end"]
	print ""
	print "CPU µs per request is the headline (proxy utime+stime over the round / requests served): lower is better."
	print "Ratios are moat ÷ other: below 1.00 means moat used less CPU (or, for requests/s, served less)."
	print "\"busiest backend\" is the largest share of the requests one backend got, times the number of backends:"
	print "1.00 is a perfectly even spread. n/a: the proxy has no equivalent algorithm."
	print ""
	print "| algorithm | metric | better | moat | haproxy | nginx | moat/haproxy | moat/nginx |"
	print "|---|---|---|---:|---:|---:|---:|---:|"
	for (ai = 1; ai <= nalg; ai++) {
		a = algs[ai]
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(a SUBSEP cols[i] SUBSEP "cpu")
		row(a, "**CPU µs / request**", "lower", "%.2f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(a SUBSEP cols[i] SUBSEP "user")
		row(a, "of which user space µs", "lower", "%.2f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(a SUBSEP cols[i] SUBSEP "rps")
		row(a, "requests/s", "higher", "%.0f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(a SUBSEP cols[i] SUBSEP "smax")
		row(a, "busiest backend ÷ fair share", "(info)", "%.2f")
		for (i = 1; i <= ncols; i++) fig[cols[i]] = median(a SUBSEP cols[i] SUBSEP "busy")
		row(a, "proxy CPU busy %", "(info)", "%.0f")
	}

	# What each algorithm costs over plain round robin, per proxy.
	base = "round_robin"
	if (cnt[base SUBSEP "moat" SUBSEP "cpu"] + cnt[base SUBSEP "haproxy" SUBSEP "cpu"] + cnt[base SUBSEP "nginx" SUBSEP "cpu"] > 0) {
		print ""
		print "## CPU per request relative to the same proxy's round_robin"
		print ""
		print "| algorithm | moat | haproxy | nginx |"
		print "|---|---:|---:|---:|"
		for (ai = 1; ai <= nalg; ai++) {
			a = algs[ai]
			line = "| " label(a)
			for (i = 1; i <= ncols; i++) {
				p = cols[i]
				v = median(a SUBSEP p SUBSEP "cpu")
				line = line " | " (v == "" ? missing(a, p) : ratio(v, median(base SUBSEP p SUBSEP "cpu")))
			}
			print line " |"
		}
	}

	print ""
	print "## Spread over rounds"
	print ""
	print "| algorithm | proxy | rounds | CPU µs/request min – median – max | requests/s min – max | busiest backend min – max | idlest backend (median) | wrk errors |"
	print "|---|---|---:|---|---|---|---:|---:|"
	for (ai = 1; ai <= nalg; ai++) {
		a = algs[ai]
		for (i = 1; i <= ncols; i++) {
			p = cols[i]
			if (!(p in present) || (a, p) in na)
				continue
			k = a SUBSEP p SUBSEP "cpu"
			med = median(k)
			if (med == "") {
				printf "| %s | %s | 0 | failed | – | – | – | %d |\n", label(a), p, errs[a, p]
				continue
			}
			kr = a SUBSEP p SUBSEP "rps"
			median(kr)
			ks = a SUBSEP p SUBSEP "smax"
			sp = "–"
			if (median(ks) != "")
				sp = sprintf("%.2f – %.2f", lo[ks], hi[ks])
			mn = median(a SUBSEP p SUBSEP "smin")
			printf "| %s | %s | %d | %.2f – %.2f – %.2f | %.0f – %.0f | %s | %s | %d |\n", label(a), p, cnt[k],
				lo[k], med, hi[k], lo[kr], hi[kr], sp, (mn == "" ? "–" : sprintf("%.2f", mn)), errs[a, p]
		}
	}

	print ""
	print "## Notes"
	print ""
	for (ai = 1; ai <= nalg; ai++)
		for (i = 1; i <= ncols; i++)
			if (errs[algs[ai], cols[i]] > 0)
				notes[++nnotes] = cols[i] ": " errs[algs[ai], cols[i]] " wrk errors (socket errors or non-2xx) with " label(algs[ai])
	if (nnotes == 0)
		print "- none"
	for (i = 1; i <= nnotes; i++)
		print "- " notes[i]
}
