# tls.awk - turns the raw numbers of one bench/tls.sh run into the markdown
# report (bench/results/tls.md).
#
# Usage: awk -v tck=CLK_TCK -f tls.awk meta.txt rounds.tsv checks.txt notes.txt [deep.tsv]
#   meta.txt    "key value..." lines about the run
#   rounds.tsv  scenario proxy round requests seconds rps lat_a lat_b
#               errors non2xx cpu_ticks user_ticks accepted
#               (scenario hs | ka | h2; proxy moat | nginx | haproxy;
#               lat_a lat_b: wrk's p50 and p99 for ka, h2load's mean and
#               max time for request for hs and h2, in ms; accepted: TCP
#               connections accepted on the machine during the run)
#   checks.txt  "proxy | what | result" lines (the checks before the load)
#   notes.txt   free text, one note a line
#   deep.tsv    "scenario proxy N1 N2 IR1 IR2": callgrind's instructions
#               (all processes) of a run of N1 and one of N2 requests
#               (BENCH_DEEP=1; IR "-": that run failed)
# Figures are medians over rounds; a ratio is moat's median over the other's.
# Instructions per request are (IR2 - IR1) / (N2 - N1).

# median KEY: the median of the values added under KEY ("" if none); sets
# lo[KEY] and hi[KEY].
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

# commas N: the integer N with thousands separators (12,345).
function commas(n,    s, r) {
	s = sprintf("%.0f", n)
	r = ""
	while (length(s) > 3) {
		r = "," substr(s, length(s) - 2) r
		s = substr(s, 1, length(s) - 3)
	}
	return s r
}

function fmt(v, f) {
	return v == "" ? "not run" : sprintf(f, v)
}

function ratio(a, b) {
	return (a == "" || b == "" || b + 0 == 0) ? "–" : sprintf("%.2f", a / b)
}

# row TITLE METRIC FORMAT [NORATIO]: one table line for the current
# scenario `sc`; with NORATIO, "–" in the ratio columns.
function row(title, m, f, noratio,    k, line, v) {
	line = "| " title
	for (k = 1; k <= np; k++) {
		v[k] = median(sc SUBSEP plist[k] SUBSEP m)
		line = line " | " fmt(v[k], f)
	}
	if (noratio)
		line = line " | – | – |"
	else
		line = line " | " ratio(v[1], v[2]) " | " ratio(v[1], v[3]) " |"
	print line
}

# total TITLE METRIC: the sum over rounds, per proxy.
function total(title, m,    k, line, key) {
	line = "| " title
	for (k = 1; k <= np; k++) {
		key = sc SUBSEP plist[k] SUBSEP m
		line = line " | " (cnt[key] ? sum[key] + 0 : "not run")
	}
	print line " | – | – |"
}

FILENAME == ARGV[1] {
	k = $1
	$1 = ""
	sub(/^ /, "")
	meta[k] = $0
	next
}

FILENAME == ARGV[2] && NF >= 12 {
	s = $1; p = $2
	seen[s] = 1
	if ($4 > 0) {
		add(s SUBSEP p SUBSEP "rps", $6)
		if ($7 != "-")
			add(s SUBSEP p SUBSEP "lat_a", $7)
		if ($8 != "-")
			add(s SUBSEP p SUBSEP "lat_b", $8)
		add(s SUBSEP p SUBSEP "cpu", $11 / tck * 1e6 / $4)
		add(s SUBSEP p SUBSEP "user", $12 / tck * 1e6 / $4)
		if ($5 > 0)
			add(s SUBSEP p SUBSEP "busy", $11 / tck / $5 * 100)
		if (NF >= 13)
			add(s SUBSEP p SUBSEP "conn", $13 / $4)
	}
	sum[s SUBSEP p SUBSEP "errors"] += $9 + $10
	cnt[s SUBSEP p SUBSEP "errors"]++
	next
}

FILENAME == ARGV[3] && NF > 0 {
	checks[++nc] = $0
	next
}

FILENAME == ARGV[4] && NF > 0 {
	notes[++nn] = $0
	next
}

FILENAME == ARGV[5] && NF >= 6 {
	dseen[$1] = 1
	draw[$1, $2] = $5 " / " $6
	dn[$1] = commas($3) " and " commas($4)
	if ($5 != "-" && $6 != "-" && $4 > $3)
		dval[$1, $2] = ($6 - $5) / ($4 - $3)
	ndeep++
	next
}

END {
	np = split("moat nginx haproxy", plist, " ")
	print "# TLS and HTTP/2 benchmark: moat, nginx and HAProxy terminating TLS"
	print ""
	print "- date: " meta["date"] "; moat commit " meta["commit"] ", binary " meta["moat"]
	print "- machine: " meta["cpu"] ", kernel " meta["kernel"] "; load average " meta["load_start"] " at the start, " meta["load_end"] " at the end"
	print "- nginx " meta["nginx"] ", HAProxy " meta["haproxy"] ", OpenSSL " meta["openssl"] ", h2load " meta["h2load"] "; each proxy with one worker, " meta["pin"]
	print "- one ECDSA P-256 certificate for all; TLS 1.2 + 1.3, ALPN h2,http/1.1; session resumption off in all three (the handshake test is of full handshakes)"
	if (meta["timed"] == "0")
		print "- timed rounds skipped (BENCH_TIMED=0)"
	else
		print "- " meta["rounds"] " interleaved rounds of " meta["seconds"] " s (handshakes: " meta["hs_n"] " per run); figures are medians over rounds"
	print "- ratios are moat ÷ other: below 1.00 means moat used less, or served less (requests/s, handshakes/s)"
	title["hs"] = "New TLS 1.3 connections (full handshake + one GET /1k each)"
	title["ka"] = "HTTPS keep-alive, HTTP/1.1, GET /1k"
	title["h2"] = "HTTP/2 over TLS, GET /1k"
	ns = split("hs ka h2", slist, " ")
	for (i = 1; i <= ns; i++) {
		sc = slist[i]
		if (!seen[sc])
			continue
		print ""
		print "## " title[sc]
		print ""
		print "`" meta[sc] "`"
		print ""
		print "| metric | moat | nginx | HAProxy | moat/nginx | moat/HAProxy |"
		print "|---|---:|---:|---:|---:|---:|"
		if (sc == "hs") {
			row("**handshakes/s**", "rps", "%.0f")
			row("**CPU µs / handshake**", "cpu", "%.1f")
			row("of which user space µs", "user", "%.1f")
			row("mean time for request ms (h2load)", "lat_a", "%.2f")
			row("TCP connections accepted / handshake (check: about 1; any loopback traffic on the machine counts)", "conn", "%.2f", 1)
		} else if (sc == "ka") {
			row("**requests/s**", "rps", "%.0f")
			row("**CPU µs / request**", "cpu", "%.2f")
			row("of which user space µs", "user", "%.2f")
			row("p50 latency ms", "lat_a", "%.2f")
			row("p99 latency ms", "lat_b", "%.2f")
		} else {
			row("**requests/s**", "rps", "%.0f")
			row("**CPU µs / request**", "cpu", "%.2f")
			row("of which user space µs", "user", "%.2f")
			row("mean time for request ms (h2load)", "lat_a", "%.2f")
		}
		row("proxy CPU busy % (information)", "busy", "%.0f", 1)
		total("errors and non-2xx, all rounds", "errors")
		print ""
		line = "Requests/s over the rounds (min – median – max):"
		for (k = 1; k <= np; k++) {
			key = sc SUBSEP plist[k] SUBSEP "rps"
			if (!cnt[key])
				continue
			m = median(key)
			line = line sprintf(" %s %.0f – %.0f – %.0f;", plist[k], lo[key], m, hi[key])
		}
		sub(/;$/, ".", line)
		print line
	}
	if (ndeep) {
		print ""
		print "## Instructions per request (callgrind)"
		print ""
		print "Each proxy under `valgrind --tool=callgrind --trace-children=yes` (" meta["valgrind"] "; nginx with `master_process off`, HAProxy `-db`: every process counted), a fresh instance per run: one checked GET, then N1 or N2 requests of the load below, stopped; instructions per request = (Ir(N2) − Ir(N1)) / (N2 − N1), so start-up, shut-down and the connections' own handshakes (keep-alive, HTTP/2) cancel. The count does not depend on the machine's load; it leaves out cache misses and the kernel's work."
		print ""
		print "| scenario | load | moat | nginx | HAProxy | moat/nginx | moat/HAProxy |"
		print "|---|---|---:|---:|---:|---:|---:|"
		dtitle["hs"] = "new TLS 1.3 connection (full handshake + GET /1k)"
		dtitle["ka"] = "HTTPS keep-alive, HTTP/1.1, GET /1k"
		dtitle["h2"] = "HTTP/2 over TLS, GET /1k"
		for (i = 1; i <= ns; i++) {
			sc = slist[i]
			if (!dseen[sc])
				continue
			line = "| **" dtitle[sc] "** | `" meta["deep_" sc] "`"
			for (k = 1; k <= np; k++) {
				if ((sc, plist[k]) in dval)
					line = line " | " commas(dval[sc, plist[k]])
				else
					line = line " | " (((sc, plist[k]) in draw) ? "failed" : "not run")
			}
			line = line " | " ratio(dval[sc, "moat"], dval[sc, "nginx"]) " | " ratio(dval[sc, "moat"], dval[sc, "haproxy"]) " |"
			print line
		}
		print ""
		line = "Raw counts, Ir(N1) / Ir(N2):"
		for (i = 1; i <= ns; i++) {
			sc = slist[i]
			if (!dseen[sc])
				continue
			line = line " " sc " (N " dn[sc] ")"
			for (k = 1; k <= np; k++)
				if ((sc, plist[k]) in draw)
					line = line " " plist[k] " " draw[sc, plist[k]] ","
			sub(/,$/, ";", line)
		}
		sub(/;$/, ".", line)
		print line
	}
	if (nc) {
		print ""
		print "## Checks"
		print ""
		print "| proxy | what | result |"
		print "|---|---|---|"
		for (i = 1; i <= nc; i++)
			print "| " checks[i] " |"
	}
	if (nn) {
		print ""
		print "## Notes"
		print ""
		for (i = 1; i <= nn; i++)
			print "- " notes[i]
	}
}
