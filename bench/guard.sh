#!/bin/sh
# guard.sh - the gatekeeping benchmark: what a rate limit costs in moat,
# nginx and HAProxy, and what the WAF costs moat; same machine, same
# backend, same run. Entry point of `make bench-guard`.
#
# What it does, in order (docs/benchmark.md, "Gatekeeping", explains why):
#   1. builds bench/*.c into build/bench/, starts the backend (CPU 1) and,
#      all at once, one worker each (CPU 0) of:
#        moat, nginx, haproxy              plain proxying
#        moat_rl, nginx_rl, haproxy_rl     the same plus a rate limit keyed
#                                          by the X-Client header, set high
#                                          enough that nothing is refused
#        moat_waf                          moat with `waf: on` (ModSecurity
#                                          v3 + OWASP CRS, paranoia 1)
#      and checks each answers /1k;
#   2. sanity: the same limits set low (moat_low, nginx_low, haproxy_low,
#      started for this and stopped) must refuse one client sending 30
#      requests in a row; moat_waf must answer 403 to an XSS probe;
#   3. load: each limit first gets every key once (client run ... KEYS);
#      then BENCH_ROUNDS rounds; in each round every cell gets one wrk run
#      of BENCH_SECONDS, interleaved (get: moat moat_rl nginx nginx_rl
#      haproxy haproxy_rl moat_waf, then post: moat moat_waf); bench/guard.lua
#      sends X-Client: client-NNNNN over BENCH_KEYS (10000) values, GET /1k
#      or a 2 KiB urlencoded POST /1k; records req/s, p50, p99, refusals
#      (non-2xx) and the proxy's CPU time per request;
#   4. BENCH_DEEP=1: instructions per request (callgrind) of each proxy
#      without and with the limit, on fixed request counts, once every key
#      is known (steady state);
#   5. prints the table of medians and writes it to bench/results/guard.md
#      (bench/guard.awk).
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]  BENCH_SECONDS [5]  BENCH_WARMUP [1]  BENCH_CONNS [50]
#   BENCH_KEYS [10000]  BENCH_POST_BYTES [2048]
#   BENCH_RATE [1] and BENCH_BURST [1000]: the "high" limit, per key (moat
#   rate: N/s + burst, nginx rate=Nr/s burst= nodelay, HAProxy
#   http_req_rate(10s) gt 10*N+burst)
#   BENCH_PORT [28180] (backend +0, instances +1..+7, sanity +11..+13,
#   callgrind +21..+26)  BENCH_DEEP [0]  BENCH_DEEP_REQS [20000]
#   BENCH_PROXIES ["moat nginx haproxy"]  BENCH_PROXY_CPU [0]
#   BENCH_LOAD_CPU [1]  MOAT_BIN [build/moat]
#
# Every process it starts is stopped by PID on exit; every load is bounded
# in time (and the sanity requests in count); everything listens on
# 127.0.0.1 only.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
BIN=$ROOT/build/bench
MOAT=${MOAT_BIN:-$ROOT/build/moat}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-50}
KEYS=${BENCH_KEYS:-10000}
POST_BYTES=${BENCH_POST_BYTES:-2048}
RATE=${BENCH_RATE:-1}
BURST=${BENCH_BURST:-1000}
BASE=${BENCH_PORT:-28180}
DEEP=${BENCH_DEEP:-0}
DEEP_REQS=${BENCH_DEEP_REQS:-20000}
WANT=${BENCH_PROXIES:-moat nginx haproxy}
PCPU=${BENCH_PROXY_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
RES=$BENCH/results
RUN=$RES/guard          # configs, logs and raw numbers of the latest run
OUT=$RES/guard.md
LUA=$BENCH/guard.lua
# the sanity limit: 1 request/s, burst 5, one client sending SANITY_N in a row
LOW_RATE=1
LOW_BURST=5
SANITY_N=30

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for t in wrk awk taskset timeout getconf; do
	command -v $t >/dev/null 2>&1 || die "$t not found (sh scripts/deps.sh bench)"
done
case "$ROUNDS$SECS$WARMUP$CONNS$KEYS$POST_BYTES$RATE$BURST$BASE$DEEP$DEEP_REQS" in
*[!0-9]*) die "BENCH_* must be integers" ;;
esac
if [ "$ROUNDS" -lt 1 ] || [ "$SECS" -lt 1 ] || [ "$KEYS" -lt 1 ] || [ "$RATE" -lt 1 ]; then
	die "BENCH_ROUNDS, BENCH_SECONDS, BENCH_KEYS and BENCH_RATE must be at least 1"
fi

rm -rf "$RUN"
mkdir -p "$RUN"
: > "$RUN/notes.txt"
: > "$RUN/sanity.txt"
note() { log "$*"; echo "$*" >> "$RUN/notes.txt"; }

make -s -C "$BENCH" OUT="$BIN" >&2 || die "cannot build bench/*.c"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true


# --- process bookkeeping (bench/lib.sh) --------------------------------------
# (stop_pid uses the global variable i: no loop here names its variable i)

. "$BENCH/lib.sh"
pin_cpus "backend, wrk and client on CPU $LCPU"

# --- instances and ports -------------------------------------------------------

port_of() {
	case $1 in
	backend) echo "$BASE" ;;
	moat) echo $((BASE + 1)) ;;
	nginx) echo $((BASE + 2)) ;;
	haproxy) echo $((BASE + 3)) ;;
	moat_rl) echo $((BASE + 4)) ;;
	nginx_rl) echo $((BASE + 5)) ;;
	haproxy_rl) echo $((BASE + 6)) ;;
	moat_waf) echo $((BASE + 7)) ;;
	moat_low) echo $((BASE + 11)) ;;
	nginx_low) echo $((BASE + 12)) ;;
	haproxy_low) echo $((BASE + 13)) ;;
	moat_cg) echo $((BASE + 21)) ;;
	moat_rl_cg) echo $((BASE + 22)) ;;
	nginx_cg) echo $((BASE + 23)) ;;
	nginx_rl_cg) echo $((BASE + 24)) ;;
	haproxy_cg) echo $((BASE + 25)) ;;
	haproxy_rl_cg) echo $((BASE + 26)) ;;
	esac
}

if command -v ss >/dev/null 2>&1; then
	busy=$(ss -Hltn 2>/dev/null | awk -v lo="$BASE" -v hi="$((BASE + 26))" '
		{ n = split($4, a, ":"); p = a[n] + 0; if (p >= lo && p <= hi) printf "%d ", p }')
	[ -z "$busy" ] || die "ports already in use: $busy(set BENCH_PORT)"
fi

# --- configurations ---------------------------------------------------------------

# moat_conf PORT FILE MODE (plain | rl | low | waf)
moat_conf() {
	{
		echo "workers: 1"
		echo "log: {level: warn, access: off}"
		echo "listeners: [{listen: 127.0.0.1:$1}]"
		echo "upstreams: {b: {servers: [127.0.0.1:$BASE], keepalive: 64}}"
		case $3 in
		plain) echo "routes: [{upstream: b}]" ;;
		rl | low)
			r=$RATE b=$BURST
			[ "$3" = low ] && r=$LOW_RATE b=$LOW_BURST
			echo "rate_limits:"
			echo "  per_client: {key: \"header:x-client\", rate: $r/s, burst: $b}"
			echo "routes: [{upstream: b, rate_limit: per_client}]" ;;
		waf) echo "routes: [{upstream: b, waf: on}]" ;;
		esac
	} > "$2"
}

# nginx_conf PORT DIR MODE (plain | rl | low) [MASTER]: run.sh's settings (upstream
# keep-alive, keepalive_requests raised, no temp files), plus for rl/low a
# limit_req zone keyed by the header (10 MiB: about 80,000 keys), refusals
# answered 429 (nginx's default is 503).
nginx_conf() {
	mkdir -p "$2"
	zone=""
	lim=""
	case $3 in
	rl | low)
		r=$RATE b=$BURST
		[ "$3" = low ] && r=$LOW_RATE b=$LOW_BURST
		zone="limit_req_zone \$http_x_client zone=z:10m rate=${r}r/s;
    limit_req_status 429;"
		lim="limit_req zone=z burst=$b nodelay;" ;;
	esac
	cat > "$2/nginx.conf" <<EOF
daemon off;
master_process ${4:-on};
worker_processes 1;
pid $2/nginx.pid;
error_log $2/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $2/tmp-body;
    proxy_temp_path $2/tmp-proxy;
    fastcgi_temp_path $2/tmp-fastcgi;
    uwsgi_temp_path $2/tmp-uwsgi;
    scgi_temp_path $2/tmp-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    $zone
    upstream b {
        server 127.0.0.1:$BASE;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
            $lim
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
}

# haproxy_conf PORT FILE MODE (plain | rl | low): run.sh's settings (one
# thread, http-reuse always), plus for rl/low a stick table keyed by the
# header storing its request rate over 10 s; past 10 s x rate + burst
# requests in the window, 429.
haproxy_conf() {
	rules=""
	case $3 in
	rl | low)
		r=$RATE b=$BURST
		[ "$3" = low ] && r=$LOW_RATE b=$LOW_BURST
		rules="stick-table type string len 32 size 100k expire 60s store http_req_rate(10s)
    http-request track-sc0 req.hdr(x-client)
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt $((10 * r + b)) }" ;;
	esac
	cat > "$2" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 75s
    timeout server 60s
    timeout http-keep-alive 75s
    maxconn 4096
frontend fe
    bind 127.0.0.1:$1
    $rules
    default_backend be
backend be
    server b 127.0.0.1:$BASE
EOF
}

# proxy_cmd INSTANCE: its command line (writes its configuration). An
# instance named NAME_cg is NAME for callgrind (nginx without its master).
proxy_cmd() {
	port=$(port_of "$1")
	name=${1%_cg}
	mode=${name#*_}
	[ "$mode" = "$name" ] && mode=plain
	case $1 in
	moat*)
		moat_conf "$port" "$RUN/$1.yaml" "$mode"
		echo "$MOAT -c $RUN/$1.yaml" ;;
	nginx*)
		master=on
		[ "$name" != "$1" ] && master=off
		nginx_conf "$port" "$RUN/$1" "$mode" $master
		echo "nginx -p $RUN/$1/ -c $RUN/$1/nginx.conf -e $RUN/$1/error.log" ;;
	haproxy*)
		haproxy_conf "$port" "$RUN/$1.cfg" "$mode"
		echo "haproxy -db -f $RUN/$1.cfg" ;;
	esac
}

# start INSTANCE: starts it, waits for a correct /1k (60 s: loading the CRS
# takes a few seconds on a busy machine); sets pids_INSTANCE and returns 0,
# or stops it and returns 1.
start() {
	cmd=$(proxy_cmd "$1")
	port=$(port_of "$1")
	# shellcheck disable=SC2086
	$PIN_P $cmd > "$RUN/$1.log" 2>&1 &
	pid=$!
	STARTED="$STARTED $pid"
	eval "main_$1=$pid"
	if "$BIN/client" probe "$port" /1k 60; then
		sleep 0.5 # let nginx's worker settle before listing the processes
		eval "pids_$1=\"$(descendants $pid)\""
		log "$1 ready on port $port (pids $(eval echo \$pids_$1))"
		return 0
	fi
	note "$1: not ready or wrong answer on port $port: left out (see results/guard/$1.log)"
	tail -5 "$RUN/$1.log" >&2 || true
	stop_pid $pid
	return 1
}

# --- start --------------------------------------------------------------------------

PROXIES=""
for p in $WANT; do
	case $p in
	moat) [ -x "$MOAT" ] || { note "moat: $MOAT not found (run make): moat left out"; continue; } ;;
	nginx | haproxy) command -v $p >/dev/null 2>&1 || { note "$p: not installed: left out"; continue; } ;;
	*) die "unknown proxy '$p' in BENCH_PROXIES (moat, nginx, haproxy)" ;;
	esac
	PROXIES="$PROXIES $p"
done
[ -n "$PROXIES" ] || die "nothing to benchmark"

$PIN_L "$BIN/backend" "127.0.0.1:$BASE" 2> "$RUN/backend.log" &
STARTED="$STARTED $!"
"$BIN/client" probe "$BASE" /1k 10 || die "backend did not start (see $RUN/backend.log)"

INSTANCES=""
for p in $PROXIES; do
	list="$p ${p}_rl"
	[ $p = moat ] && list="$list moat_waf"
	for inst in $list; do
		if start $inst; then INSTANCES="$INSTANCES $inst"; fi
	done
done
[ -n "$INSTANCES" ] || die "no proxy started"
has() { case " $INSTANCES " in *" $1 "*) return 0 ;; esac; return 1; }

# --- sanity: does each limit refuse, does the WAF block? -------------------------

# sanity_line NAME WHAT: runs `client statuses`, prints "NAME WHAT: 200 x6, 429 x24"
sanity_line() {
	name=$1 what=$2
	shift 2
	s=$("$BIN/client" statuses "$@" 2>&1 | awk '
		$1 == "failed" { if ($2 > 0) f = $2; next }
		{ t = t (t == "" ? "" : ", ") $1 " x" $2 }
		END { print (t == "" ? "no answer" : t) (f ? ", no answer x" f : "") }')
	echo "$name | $what | $s" >> "$RUN/sanity.txt"
	log "sanity: $name: $what: $s"
}

for p in $PROXIES; do
	if start ${p}_low; then
		if [ $p = haproxy ]; then
			lim="http_req_rate(10s) gt $((10 * LOW_RATE + LOW_BURST)): expect $((10 * LOW_RATE + LOW_BURST)) x 200"
		else
			lim="rate $LOW_RATE/s, burst $LOW_BURST: expect about $((LOW_BURST + 1)) x 200"
		fi
		sanity_line "$p" "low limit ($lim), $SANITY_N requests in a row with one X-Client" \
			"$(port_of ${p}_low)" $SANITY_N /1k "X-Client: sanity-1" 30
		sanity_line "$p" "same instance, then 5 requests with another X-Client: expect 5 x 200" \
			"$(port_of ${p}_low)" 5 /1k "X-Client: sanity-2" 30
		stop_pid "$(eval echo \$main_${p}_low)"
	fi
	if has ${p}_rl; then
		sanity_line "$p" "high limit (the measured one), $SANITY_N requests with one X-Client: expect all 200" \
			"$(port_of ${p}_rl)" $SANITY_N /1k "X-Client: sanity-1" 30
	fi
done
if has moat_waf; then
	sanity_line moat "\`waf: on\`, 5 x \`GET /1k?q=<script>alert(1)</script>\` (URL-encoded): expect 403" \
		"$(port_of moat_waf)" 5 "/1k?q=%3Cscript%3Ealert(1)%3C/script%3E" "X-Client: sanity-1" 30
	sanity_line moat "\`waf: on\`, 5 x plain \`GET /1k\`: expect 200" \
		"$(port_of moat_waf)" 5 /1k "X-Client: sanity-1" 30
fi

# --- every key in every limit's table before the load ------------------------------

# KEYS requests, each key once (count-bounded, whatever the machine's speed),
# so that the rounds measure a table holding every key, not its filling.
for p in $PROXIES; do
	if has ${p}_rl; then
		$PIN_L timeout 120 "$BIN/client" run "$(port_of ${p}_rl)" "$KEYS" 10 /1k "$KEYS" > /dev/null ||
			note "${p}_rl: could not send each of the $KEYS keys before the load: round 1 still adds keys"
	fi
done

# --- cells ----------------------------------------------------------------------------

CELLS=""
for inst in moat moat_rl nginx nginx_rl haproxy haproxy_rl moat_waf; do
	if has $inst; then CELLS="$CELLS get:$inst"; fi
done
for inst in moat moat_waf; do
	if has $inst; then CELLS="$CELLS post:$inst"; fi
done

NC=$(echo $CELLS | wc -w)
EST=$((NC * (WARMUP + ROUNDS * SECS) * 105 / 100))
log "$NC cells, rounds $ROUNDS x ${SECS}s, $KEYS keys; about $((EST / 60)) min $((EST % 60)) s"

moat_rev=""
if [ -x "$MOAT" ]; then
	moat_rev=$("$MOAT" --version 2>/dev/null | head -1 || true)
fi
{
	echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
	dirty=""
	if [ -z "${MOAT_BIN:-}" ] && ! git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null; then
		dirty=" (src/ modified in the working tree)"
	fi
	echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
	echo "moat ${MOAT#$ROOT/}${moat_rev:+ ($moat_rev)}"
	echo "cpu $NCPU x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel $(uname -r)"
	echo "load_start $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "nginx $(nginx -v 2>&1 | sed 's/.*version: //')"
	echo "haproxy $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
	echo "modsecurity $(dpkg-query -W -f='${Version}' libmodsecurity3 2>/dev/null || echo '?'), CRS $(dpkg-query -W -f='${Version}' modsecurity-crs 2>/dev/null || echo '?')"
	echo "pin $PIN_TEXT"
	echo "wrk wrk -t1 -c$CONNS -d${SECS}s --latency -s bench/guard.lua ($KEYS X-Client values)"
	echo "rounds $ROUNDS"
	echo "seconds $SECS"
	echo "keys $KEYS"
	echo "post_bytes $POST_BYTES"
	echo "rate $RATE"
	echo "burst $BURST"
	echo "haproxy_limit $((10 * RATE + BURST))"
	echo "instances $INSTANCES"
} > "$RUN/meta.txt"

# --- load: interleaved rounds ---------------------------------------------------------

# Prints "REQUESTS SECONDS RPS P50_MS P99_MS SOCKET_ERRORS NON_2XX" from wrk's output.
parse_wrk() {
	awk '
	function ms(v,  n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		return u == "us" ? n / 1000 : u == "ms" ? n : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n }
	/ requests in / { reqs = $1; d = $4; sub(/,$/, "", d); dur = ms(d) / 1000 }
	/^Requests\/sec:/ { rps = $2 }
	/^ +50%/ { p50 = ms($2) }
	/^ +99%/ { p99 = ms($2) }
	/Socket errors:/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) errs += $i + 0 }
	/Non-2xx or 3xx/ { non2xx += $NF }
	END { if (reqs == "") print "0 0 - - - 0 0"; else printf "%d %.3f %s %s %s %d %d\n", reqs, dur, rps, p50, p99, errs, non2xx }
	' "$1"
}

# settle PIDS: waits (at most 5 s) until the processes stop using CPU, so
# that work left over from a run (the WAF still checking the requests that
# were in flight when wrk stopped: up to 50 x several ms) does not fall
# into the next cell's run.
settle() {
	sn=0
	t0=$(cpu_ticks "$1")
	while [ $sn -lt 25 ]; do
		sleep 0.2
		t1=$(cpu_ticks "$1")
		[ "${t1% *}" = "${t0% *}" ] && return 0
		t0=$t1
		sn=$((sn + 1))
	done
}

# one_run SCENARIO INSTANCE ROUND (ROUND 0 = warm-up, not recorded)
one_run() {
	port=$(port_of $2)
	secs=$SECS
	[ "$3" = 0 ] && secs=$WARMUP
	f=$RUN/wrk-$1-$2-r$3.txt
	pids=$(eval echo \$pids_$2)
	c0=$(cpu_ticks "$pids")
	$PIN_L timeout $((secs + 20)) wrk -t1 -c"$CONNS" -d"${secs}s" --latency -s "$LUA" \
		"http://127.0.0.1:$port/" -- "$KEYS" "$1" "$POST_BYTES" > "$f" 2>&1 || true
	c1=$(cpu_ticks "$pids")
	settle "$pids"
	set -- "$1" "$2" "$3" $(parse_wrk "$f") $((${c1% *} - ${c0% *})) $((${c1#* } - ${c0#* }))
	# scenario instance round requests seconds rps p50 p99 sock_errors non2xx ticks user_ticks
	if [ "$3" = 0 ]; then
		echo "$*" >> "$RUN/warmup.tsv"
		return 0
	fi
	echo "$*" >> "$RUN/rounds.tsv"
	awk -v tck="$TCK" -v r="$*" 'BEGIN { split(r, f, " ")
		cpu = f[4] > 0 ? f[11] / tck * 1e6 / f[4] : 0
		busy = f[5] > 0 ? f[11] / tck / f[5] * 100 : 0
		printf "bench: [%-4s r%s] %-10s %8.0f req/s  %7.2f us/req  cpu %3.0f%%  p99 %s ms%s%s\n",
			f[1], f[3], f[2], f[6], cpu, busy, f[8], (f[9] > 0 ? "  SOCKET ERRORS " f[9] : ""),
			(f[10] > 0 ? "  NON-2XX " f[10] : "") }' >&2
}

: > "$RUN/rounds.tsv"
: > "$RUN/warmup.tsv"
if [ "$WARMUP" -gt 0 ]; then
	for c in $CELLS; do one_run ${c%:*} ${c#*:} 0; done
fi
r=1
while [ $r -le "$ROUNDS" ]; do
	for c in $CELLS; do one_run ${c%:*} ${c#*:} $r; done
	r=$((r + 1))
done

# --- deep: instructions per request, without and with the limit ---------------

# Each proxy is started under callgrind (a fresh process each time), sent
# N1 = KEYS + 2000 requests on one connection (request i with X-Client key
# i mod KEYS, as guard.lua), stopped; then again with N2 = N1 + DEEP_REQS.
# (Ir(N2) - Ir(N1)) / DEEP_REQS is the cost of a request once every key is
# in the table (start-up, shut-down and the keys' first insertion cancel).
: > "$RUN/deep.tsv"
if [ "$DEEP" = 1 ]; then
	if command -v valgrind >/dev/null 2>&1; then
		N1=$((KEYS + 2000))
		N2=$((N1 + DEEP_REQS))
		for p in $PROXIES; do
			for inst in $p ${p}_rl; do
				has $inst || continue
				port=$(port_of ${inst}_cg)
				ir=""
				for n in $N1 $N2; do
					rm -f "$RUN/callgrind-$inst-$n".*
					cmd=$(proxy_cmd ${inst}_cg)
					# shellcheck disable=SC2086
					$PIN_P valgrind --tool=callgrind --trace-children=yes \
						--callgrind-out-file="$RUN/callgrind-$inst-$n.%p" $cmd > "$RUN/callgrind-$inst-$n.log" 2>&1 &
					vp=$!
					STARTED="$STARTED $vp"
					if "$BIN/client" probe $port /1k 120; then
						$PIN_L timeout 600 "$BIN/client" run $port $n 1 /1k "$KEYS" > /dev/null ||
							note "$inst: callgrind run of $n requests failed"
					else
						note "$inst: did not start under valgrind (see results/guard/callgrind-$inst-$n.log)"
						stop_pid $vp
						ir=" - -"
						break
					fi
					stop_pid $vp
					t=$(cat "$RUN/callgrind-$inst-$n".* 2>/dev/null | awk '/^summary:/ { s += $2; f = 1 } END { if (f) print s }')
					ir="$ir ${t:--}"
				done
				echo "$inst $N1 $N2$ir" >> "$RUN/deep.tsv"
				log "$inst: callgrind instructions for $N1 / $N2 requests:$ir"
			done
		done
	else
		note "valgrind not installed: no instruction counts"
	fi
fi

echo "load_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.txt"
cleanup

# --- report ---------------------------------------------------------------------

awk -v tck="$TCK" -f "$BENCH/guard.awk" "$RUN/meta.txt" "$RUN/rounds.tsv" "$RUN/sanity.txt" \
	"$RUN/deep.tsv" "$RUN/notes.txt" > "$OUT"
cat "$OUT"
log "table saved to ${OUT#$ROOT/}; raw data in ${RUN#$ROOT/}/"
