#!/bin/sh
# balance.sh - the balancing benchmark: moat, nginx and HAProxy in front of
# 8 backends, one cell per (algorithm, proxy), same machine, same run.
#
# What it does, in order (docs/benchmark.md, "Balancing", explains why):
#   1. builds bench/*.c into build/bench/, starts 8 backends on ports
#      P..P+7 (CPU 1, with wrk) and, for every algorithm, one instance of
#      each proxy that has it (one worker, CPU 0), all at once on their own
#      ports; checks each answers /1k and /1k?k=1;
#   2. load: BENCH_ROUNDS rounds; in each round every cell gets one wrk run
#      of BENCH_SECONDS (interleaved: rr-moat rr-nginx rr-haproxy lc-moat
#      ...), with bench/balance.lua cycling through BENCH_KEYS keys (URI
#      /1k?k=N and header X-Key: N); records req/s, the proxy's CPU time per
#      request and how the requests spread over the 8 backends;
#   3. prints the table of medians and writes it to bench/results/balance.md
#      (bench/balance.awk).
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [5]  BENCH_SECONDS [3]  BENCH_WARMUP [1]  BENCH_CONNS [50]
#   BENCH_KEYS [1000]  BENCH_BALANCE_PORT [18180] (backends +0..+7, moat
#   +10.., nginx +20.., haproxy +30.., one port per algorithm)
#   BENCH_ALGORITHMS ["round_robin least_connections random_two ewma
#   hash_uri hash_header"]  BENCH_PROXIES ["moat nginx haproxy"]
#   BENCH_PROXY_CPU [0]  BENCH_LOAD_CPU [1]  MOAT_BIN [build/moat]
#
# Every process it starts is stopped by PID on exit; every load is bounded
# in time; everything listens on 127.0.0.1 only.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
BIN=$ROOT/build/bench
MOAT=${MOAT_BIN:-$ROOT/build/moat}
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECONDS:-3}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-50}
KEYS=${BENCH_KEYS:-1000}
BASE=${BENCH_BALANCE_PORT:-18180}
ALGS=${BENCH_ALGORITHMS:-round_robin least_connections random_two ewma hash_uri hash_header}
WANT=${BENCH_PROXIES:-moat nginx haproxy}
PCPU=${BENCH_PROXY_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
NBACK=8
RES=$BENCH/results
RUN=$RES/balance        # configs, logs and raw numbers of the latest run
OUT=$RES/balance.md
LUA=$BENCH/balance.lua

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for t in wrk awk taskset timeout getconf; do
	command -v $t >/dev/null 2>&1 || die "$t not found (sh scripts/deps.sh bench)"
done
case "$ROUNDS$SECS$WARMUP$CONNS$KEYS$BASE" in *[!0-9]*) die "BENCH_* must be integers" ;; esac
if [ "$ROUNDS" -lt 1 ] || [ "$SECS" -lt 1 ] || [ "$KEYS" -lt 1 ]; then
	die "BENCH_ROUNDS, BENCH_SECONDS and BENCH_KEYS must be at least 1"
fi

rm -rf "$RUN"
mkdir -p "$RUN"
: > "$RUN/notes.txt"
note() { log "$*"; echo "$*" >> "$RUN/notes.txt"; }

make -s -C "$BENCH" OUT="$BIN" >&2 || die "cannot build bench/*.c"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true


# --- process bookkeeping (bench/lib.sh) --------------------------------------

. "$BENCH/lib.sh"
pin_cpus "the 8 backends and wrk on CPU $LCPU"

# Bytes each backend has written so far (wchar of /proc/PID/io counts what
# write/writev/send passed to the kernel, sockets included), one number per
# backend in port order. Every response is the same prebuilt 1 KiB answer,
# so the differences over a run give each backend's exact share of requests.
backend_bytes() {
	for p in $BPIDS; do
		awk '/^wchar:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$p/io" 2>/dev/null || echo 0
	done | tr '\n' ' '
}

# --- ports ------------------------------------------------------------------------

NALG=0
for a in $ALGS; do
	case $a in
	round_robin | least_connections | random_two | ewma | hash_uri | hash_header) ;;
	*) die "unknown algorithm '$a' in BENCH_ALGORITHMS" ;;
	esac
	NALG=$((NALG + 1))
done
[ "$NALG" -le 10 ] || die "at most 10 algorithms"

alg_index() {
	i=0
	for x in $ALGS; do
		[ "$x" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
}

# port_of PROXY ALGORITHM
port_of() {
	case $1 in
	moat) echo $((BASE + 10 + $(alg_index "$2"))) ;;
	nginx) echo $((BASE + 20 + $(alg_index "$2"))) ;;
	haproxy) echo $((BASE + 30 + $(alg_index "$2"))) ;;
	esac
}

if command -v ss >/dev/null 2>&1; then
	busy=$(ss -Hltn 2>/dev/null | awk -v lo="$BASE" -v hi="$((BASE + 39))" '
		{ n = split($4, a, ":"); p = a[n] + 0; if (p >= lo && p <= hi) printf "%d ", p }')
	[ -z "$busy" ] || die "ports already in use: $busy(set BENCH_BALANCE_PORT)"
fi

# --- configurations ---------------------------------------------------------------

# Prints nothing when PROXY has no equivalent of ALGORITHM (exit 1).
moat_alg() {
	case $1 in
	hash_uri) printf 'algorithm: hash\n    hash: {key: uri}' ;;
	hash_header) printf 'algorithm: hash\n    hash: {key: header, name: X-Key}' ;;
	*) printf 'algorithm: %s' "$1" ;;
	esac
}
nginx_alg() {
	case $1 in
	round_robin) echo "" ;;
	least_connections) echo "least_conn;" ;;
	random_two) echo "random two least_conn;" ;;
	hash_uri) echo 'hash $request_uri consistent;' ;;
	hash_header) echo 'hash $http_x_key consistent;' ;;
	*) return 1 ;;
	esac
}
haproxy_alg() {
	case $1 in
	round_robin) echo "balance roundrobin" ;;
	least_connections) echo "balance leastconn" ;;
	random_two) echo "balance random(2)" ;;
	# "uri" alone hashes only the path, before the '?': "whole" takes the
	# query too, as moat's uri key and nginx's $request_uri do.
	hash_uri) printf 'balance uri whole\n    hash-type consistent' ;;
	hash_header) printf 'balance hdr(X-Key)\n    hash-type consistent' ;;
	*) return 1 ;;
	esac
}

moat_conf() { # PORT ALGORITHM FILE
	{
		echo "workers: 1"
		echo "log: {level: warn, access: off}"
		echo "listeners: [{listen: 127.0.0.1:$1}]"
		echo "upstreams:"
		echo "  b:"
		echo "    $(moat_alg "$2")"
		echo "    keepalive: 64"
		echo "    servers:"
		for i in $(seq 0 $((NBACK - 1))); do echo "      - 127.0.0.1:$((BASE + i))"; done
		echo "routes: [{upstream: b}]"
	} > "$3"
}

# Same settings as run.sh's nginx (keepalive_requests raised, no temp files);
# the balancing directive must come before "keepalive" in the upstream.
nginx_conf() { # PORT ALGORITHM DIR
	mkdir -p "$3"
	{
		cat <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $3/nginx.pid;
error_log $3/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $3/tmp-body;
    proxy_temp_path $3/tmp-proxy;
    fastcgi_temp_path $3/tmp-fastcgi;
    uwsgi_temp_path $3/tmp-uwsgi;
    scgi_temp_path $3/tmp-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream b {
        $(nginx_alg "$2")
EOF
		for i in $(seq 0 $((NBACK - 1))); do echo "        server 127.0.0.1:$((BASE + i));"; done
		cat <<EOF
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
	} > "$3/nginx.conf"
}

# Same settings as run.sh's HAProxy (one thread, http-reuse always).
haproxy_conf() { # PORT ALGORITHM FILE
	{
		cat <<EOF
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
    default_backend be
backend be
    $(haproxy_alg "$2")
EOF
		for i in $(seq 0 $((NBACK - 1))); do echo "    server s$i 127.0.0.1:$((BASE + i))"; done
	} > "$3"
}

# proxy_cmd PROXY ALGORITHM: the command line, or exit 1 when the proxy has
# no such algorithm.
proxy_cmd() {
	port=$(port_of "$1" "$2")
	case $1 in
	moat)
		moat_conf "$port" "$2" "$RUN/moat-$2.yaml"
		echo "$MOAT -c $RUN/moat-$2.yaml" ;;
	nginx)
		nginx_alg "$2" > /dev/null || return 1
		nginx_conf "$port" "$2" "$RUN/nginx-$2"
		echo "nginx -p $RUN/nginx-$2/ -c $RUN/nginx-$2/nginx.conf -e $RUN/nginx-$2/error.log" ;;
	haproxy)
		haproxy_alg "$2" > /dev/null || return 1
		haproxy_conf "$port" "$2" "$RUN/haproxy-$2.cfg"
		echo "haproxy -db -f $RUN/haproxy-$2.cfg" ;;
	esac
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

BPIDS=""
for i in $(seq 0 $((NBACK - 1))); do
	$PIN_L "$BIN/backend" "127.0.0.1:$((BASE + i))" 2> "$RUN/backend$i.log" &
	STARTED="$STARTED $!"
	BPIDS="$BPIDS $!"
done
for i in $(seq 0 $((NBACK - 1))); do
	"$BIN/client" probe $((BASE + i)) "/1k?k=1" 10 ||
		die "backend on port $((BASE + i)) did not start or does not answer /1k?k=1 (see $RUN/backend$i.log)"
done
[ "$(backend_bytes | awk '{ for (i = 1; i <= NF; i++) if ($i == 0) z = 1; print z ? "no" : "yes" }')" = yes ] ||
	note "cannot read the backends' /proc/PID/io: the spread over backends is missing"

CELLS=""
for a in $ALGS; do
	for p in $PROXIES; do
		if ! cmd=$(proxy_cmd $p $a); then
			echo "$a $p" >> "$RUN/na.txt"
			continue
		fi
		port=$(port_of $p $a)
		# shellcheck disable=SC2086
		$PIN_P $cmd > "$RUN/$p-$a.log" 2>&1 &
		pid=$!
		STARTED="$STARTED $pid"
		if "$BIN/client" probe "$port" /1k 20 && "$BIN/client" probe "$port" "/1k?k=1" 5; then
			sleep 0.5 # let nginx's worker settle before listing the processes
			eval "pids_${p}_$a=\"$(descendants $pid)\""
			CELLS="$CELLS $a:$p"
			log "$p $a ready on port $port (pids $(eval echo \$pids_${p}_$a))"
		else
			note "$p $a: not ready or wrong answer on port $port: left out (see results/balance/$p-$a.log)"
			tail -5 "$RUN/$p-$a.log" >&2 || true
			stop_pid $pid
		fi
	done
done
[ -n "$CELLS" ] || die "no proxy started"

NC=$(echo $CELLS | wc -w)
EST=$((NC * (WARMUP + ROUNDS * SECS) * 105 / 100))
log "$NC cells, rounds $ROUNDS x ${SECS}s, $KEYS keys; about $((EST / 60)) min $((EST % 60)) s"

{
	echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "cpu $NCPU x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel $(uname -r)"
	echo "load_start $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "nginx $(nginx -v 2>&1 | sed 's/.*version: //')"
	echo "haproxy $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
	echo "pin $PIN_TEXT"
	echo "wrk wrk -t1 -c$CONNS -d${SECS}s --latency -s bench/balance.lua ($KEYS keys)"
	echo "rounds $ROUNDS"
	echo "seconds $SECS"
	echo "keys $KEYS"
	echo "backends $NBACK"
	echo "algorithms $ALGS"
	echo "proxies $PROXIES"
} > "$RUN/meta.txt"

# --- load: interleaved rounds ---------------------------------------------------------

# Prints "REQUESTS SECONDS RPS P50_MS P99_MS ERRORS" from wrk's output.
parse_wrk() {
	awk '
	function ms(v,  n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		return u == "us" ? n / 1000 : u == "ms" ? n : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n }
	/ requests in / { reqs = $1; d = $4; sub(/,$/, "", d); dur = ms(d) / 1000 }
	/^Requests\/sec:/ { rps = $2 }
	/^ +50%/ { p50 = ms($2) }
	/^ +99%/ { p99 = ms($2) }
	/Socket errors:/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) errs += $i + 0 }
	/Non-2xx or 3xx/ { errs += $NF }
	END { if (reqs == "") print "0 0 - - - 0"; else printf "%d %.3f %s %s %s %d\n", reqs, dur, rps, p50, p99, errs }
	' "$1"
}

# one_run ALGORITHM PROXY ROUND (ROUND 0 = warm-up, not recorded)
one_run() {
	port=$(port_of $2 $1)
	secs=$SECS
	[ "$3" = 0 ] && secs=$WARMUP
	f=$RUN/wrk-$1-$2-r$3.txt
	pids=$(eval echo \$pids_${2}_$1)
	b0=$(backend_bytes)
	c0=$(cpu_ticks "$pids")
	$PIN_L timeout $((secs + 20)) wrk -t1 -c"$CONNS" -d"${secs}s" --latency -s "$LUA" \
		"http://127.0.0.1:$port/" -- "$KEYS" > "$f" 2>&1 || true
	c1=$(cpu_ticks "$pids")
	b1=$(backend_bytes)
	[ "$3" = 0 ] && return 0
	# Backend spread: busiest and idlest backend's share of the bytes written
	# during the run, times the number of backends (1.00 = a fair share).
	spread=$(echo "$b0 / $b1" | awk '{
		n = 0; for (i = 1; $i != "/"; i++) a[++n] = $i
		t = 0; for (j = 1; j <= n; j++) { d[j] = $(i + j) - a[j]; t += d[j] }
		if (t <= 0) { print "- -"; exit }
		mx = 0; mn = -1
		for (j = 1; j <= n; j++) { s = d[j] * n / t; if (s > mx) mx = s; if (mn < 0 || s < mn) mn = s }
		printf "%.3f %.3f\n", mx, mn }')
	set -- "$1" "$2" "$3" $(parse_wrk "$f") $((${c1% *} - ${c0% *})) $((${c1#* } - ${c0#* })) $spread
	# algorithm proxy round requests seconds rps p50 p99 errors ticks user_ticks share_max share_min
	echo "$*" >> "$RUN/rounds.tsv"
	echo "$1 $2 $3 $b0 / $b1" >> "$RUN/backends.tsv"
	awk -v tck="$TCK" -v r="$*" 'BEGIN { split(r, f, " ")
		cpu = f[4] > 0 ? f[10] / tck * 1e6 / f[4] : 0
		busy = f[5] > 0 ? f[10] / tck / f[5] * 100 : 0
		printf "bench: [%-17s r%s] %-7s %8.0f req/s  %6.2f us/req  cpu %3.0f%%  backends max %s min %s%s\n",
			f[1], f[3], f[2], f[6], cpu, busy, f[12], f[13], (f[9] > 0 ? "  ERRORS " f[9] : "") }' >&2
}

: > "$RUN/rounds.tsv"
: > "$RUN/backends.tsv"
if [ "$WARMUP" -gt 0 ]; then
	for c in $CELLS; do one_run ${c%:*} ${c#*:} 0; done
fi
r=1
while [ $r -le "$ROUNDS" ]; do
	for c in $CELLS; do one_run ${c%:*} ${c#*:} $r; done
	r=$((r + 1))
done

echo "load_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.txt"
cleanup
[ -f "$RUN/na.txt" ] || : > "$RUN/na.txt"

# --- report ---------------------------------------------------------------------------

awk -v tck="$TCK" -f "$BENCH/balance.awk" "$RUN/meta.txt" "$RUN/rounds.tsv" "$RUN/na.txt" \
	"$RUN/notes.txt" > "$OUT"
cat "$OUT"
log "table saved to ${OUT#$ROOT/}; raw data in ${RUN#$ROOT/}/"
