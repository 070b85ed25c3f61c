#!/bin/sh
# cache.sh - the caching benchmark: cache hits served by moat, nginx and
# Varnish, same machine, same origin, same run. Entry point of
# `make bench-cache`; docs/benchmark.md, "Caching", explains why.
#
# What it does, in order:
#   1. builds bench/*.c into build/bench/ (for `client probe`); writes two
#      objects of 1 KiB and 64 KiB and starts the origin: an nginx serving
#      them as files with `Cache-Control: max-age=3600` (CPU 1), whose access
#      log is the count of requests that reached the origin;
#   2. starts, each with one worker on CPU 0: moat (route `cache: true`,
#      `cache: {memory: 256MiB}`), nginx (proxy_cache, a proxy_cache_path in
#      the run directory) and Varnish (-s malloc,256m, thread_pools=1);
#   3. warms each: GET of every URL of the set (/1k?n=0 .. /1k?n=URLS-1,
#      the same for /64k), one after the other; then checks that each proxy
#      serves hits: in a second pass over every URL each answer must be a
#      200 with the whole body and the proxy's hit marker (moat
#      `Cache-Status: moat; hit`, nginx `X-Cache-Status: HIT`, Varnish two
#      transaction ids in `X-Varnish`), and the pass must not reach the
#      origin. A proxy that fails this stops the benchmark;
#   4. load: for each size, BENCH_ROUNDS rounds; in each round every proxy
#      gets one wrk run of BENCH_SECONDS (interleaved: moat nginx varnish
#      moat nginx varnish ...) cycling over the URL set (bench/cache.lua);
#      records req/s, p50, p99, the proxy's CPU time per request and the
#      requests that reached the origin during the run (must be 0);
#   5. prints the table of medians and the ratios moat/nginx and
#      moat/varnish (bench/cache.awk) and writes it to bench/results/cache.md.
#      Exits 1 if any measured run reached the origin or had errors.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]  BENCH_SECONDS [5]  BENCH_WARMUP [1]  BENCH_CONNS [50]
#   BENCH_URLS [100]  BENCH_PORT [38280] (origin +0, moat +1, nginx +2,
#   varnish +3)  BENCH_PROXIES ["moat nginx varnish"]  BENCH_PROXY_CPU [0]
#   BENCH_LOAD_CPU [1]  MOAT_BIN [build/moat]  VARNISHD [varnishd in PATH,
#   else /usr/sbin/varnishd]
#
# Every process it starts is stopped by PID on exit (bench/lib.sh); every
# load is bounded in time, every check in count; everything listens on
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
URLS=${BENCH_URLS:-100}
BASE=${BENCH_PORT:-38280}
WANT=${BENCH_PROXIES:-moat nginx varnish}
PCPU=${BENCH_PROXY_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
VARNISHD=${VARNISHD:-$(command -v varnishd 2>/dev/null || echo /usr/sbin/varnishd)}
SCENARIOS="hit1k hit64k"
RES=$BENCH/results
RUN=$RES/cache          # configurations, logs and raw numbers of the latest run
OUT=$RES/cache.md
LUA=$BENCH/cache.lua
ORIGIN=$RUN/origin

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for t in wrk curl nginx awk taskset timeout getconf; do
	command -v $t >/dev/null 2>&1 || die "$t not found (sh scripts/deps.sh bench)"
done
case "$ROUNDS$SECS$WARMUP$CONNS$URLS$BASE$PCPU$LCPU" in
*[!0-9]*) die "BENCH_* must be integers" ;;
esac
if [ "$ROUNDS" -lt 1 ] || [ "$SECS" -lt 1 ] || [ "$URLS" -lt 1 ] || [ "$CONNS" -lt 1 ]; then
	die "BENCH_ROUNDS, BENCH_SECONDS, BENCH_URLS and BENCH_CONNS must be at least 1"
fi

rm -rf "$RUN"
mkdir -p "$RUN"
: > "$RUN/notes.txt"
note() { log "$*"; echo "$*" >> "$RUN/notes.txt"; }

make -s -C "$BENCH" OUT="$BIN" >&2 || die "cannot build bench/*.c"


# --- process bookkeeping (bench/lib.sh: STARTED, stop_pid, cleanup trap,
# descendants, cpu_ticks). stop_pid uses the global i: no loop here uses i.

. "$BENCH/lib.sh"
pin_cpus "origin and wrk on CPU $LCPU"

port_of() {
	case $1 in
	origin) echo "$BASE" ;;
	moat) echo $((BASE + 1)) ;;
	nginx) echo $((BASE + 2)) ;;
	varnish) echo $((BASE + 3)) ;;
	esac
}

# port_busy PORT: true if something listens on it (any address).
port_busy() {
	h=$(printf '%04X' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk -v h="$h" '$4 == "0A" { n = split($2, a, ":"); if (a[n] == h) f = 1 } END { exit !f }'
}

# ticks PIDS: "PID UTIME+STIME UTIME" for each (cpu_ticks of bench/lib.sh;
# "0 0" for a process that is gone).
ticks() {
	for x in $1; do echo "$x $(cpu_ticks $x)"; done
}

# ticks_delta BEFORE AFTER: "TICKS USER_TICKS" used between two ticks
# snapshots, summed over the processes alive at the end. A process that
# exited in between (nginx's cache loader, which exits a minute after the
# start) counts nothing rather than minus what it had used.
ticks_delta() {
	printf '%s\n--\n%s\n' "$1" "$2" | awk '
	$1 == "--" { after = 1; next }
	!after { t[$1] = $2; u[$1] = $3; next }
	$2 > 0 && $2 >= t[$1] { dt += $2 - t[$1]; du += $3 - u[$1] }
	END { print dt + 0, du + 0 }'
}

# origin_count: requests the origin has answered so far (its access log).
origin_count() {
	wc -l < "$ORIGIN/access.log" | tr -d ' '
}

# --- configurations -----------------------------------------------------------

# nginx_common DIR: the top of an nginx configuration (one worker, in the
# foreground with its master, every path inside DIR).
nginx_common() {
	cat <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}

# origin_conf: static files with Cache-Control: max-age=3600 (2xx and 3xx
# only), one access-log line per request, unbuffered.
origin_conf() {
	mkdir -p "$ORIGIN/www"
	head -c 1024 /dev/zero | tr '\0' a > "$ORIGIN/www/1k"
	head -c 65536 /dev/zero | tr '\0' b > "$ORIGIN/www/64k"
	: > "$ORIGIN/access.log"
	{
		nginx_common "$ORIGIN"
		cat <<EOF
http {
    access_log $ORIGIN/access.log;
    client_body_temp_path $ORIGIN/tmp-body;
    proxy_temp_path $ORIGIN/tmp-proxy;
    fastcgi_temp_path $ORIGIN/tmp-fastcgi;
    uwsgi_temp_path $ORIGIN/tmp-uwsgi;
    scgi_temp_path $ORIGIN/tmp-scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$BASE;
        root $ORIGIN/www;
        location / {
            add_header Cache-Control "max-age=3600";
        }
    }
}
EOF
	} > "$ORIGIN/nginx.conf"
}

# moat_conf PORT FILE: one worker, a memory store of 256 MiB, one route
# with the cache on (defaults otherwise).
moat_conf() {
	cat > "$2" <<EOF
workers: 1
log: {level: warn, access: off}
listeners: [{listen: 127.0.0.1:$1}]
upstreams: {b: {servers: [127.0.0.1:$BASE], keepalive: 64}}
cache: {memory: 256MiB}
routes: [{upstream: b, cache: true}]
EOF
}

# nginx_conf PORT DIR: run.sh's proxy settings (upstream keep-alive, no
# request cap per connection, no access log) plus proxy_cache in DIR/cache.
# No proxy_cache_valid: nginx then stores exactly what the origin's
# Cache-Control / Expires allow, for as long as they say, as moat and
# Varnish do. sendfile on, as in Debian's stock nginx.conf: nginx's cache
# is a set of files, sent from the page cache.
nginx_conf() {
	mkdir -p "$2"
	{
		nginx_common "$2"
		cat <<EOF
http {
    access_log off;
    client_body_temp_path $2/tmp-body;
    proxy_temp_path $2/tmp-proxy;
    fastcgi_temp_path $2/tmp-fastcgi;
    uwsgi_temp_path $2/tmp-uwsgi;
    scgi_temp_path $2/tmp-scgi;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    proxy_cache_path $2/cache levels=1:2 keys_zone=c:10m max_size=256m inactive=60m use_temp_path=off;
    upstream b {
        server 127.0.0.1:$BASE;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache c;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
EOF
	} > "$2/nginx.conf"
}

# proxy_cmd NAME: its command line (writes its configuration).
proxy_cmd() {
	port=$(port_of "$1")
	case $1 in
	moat)
		moat_conf "$port" "$RUN/moat.yaml"
		echo "$MOAT_RUN -c $RUN/moat.yaml" ;;
	nginx)
		nginx_conf "$port" "$RUN/nginx"
		echo "nginx -p $RUN/nginx/ -c $RUN/nginx/nginx.conf -e $RUN/nginx/error.log" ;;
	varnish)
		# The builtin VCL with -b; its worker threads (thread_pool_min 100
		# by default) all run on the one CPU taskset gives it.
		echo "$VARNISHD -F -a 127.0.0.1:$port -b 127.0.0.1:$BASE -s malloc,256m -n $RUN/varnish -p thread_pools=1" ;;
	esac
}

# start NAME: starts it, waits for a correct /1k; sets pids_NAME and returns
# 0, or stops it and returns 1.
start() {
	cmd=$(proxy_cmd "$1")
	port=$(port_of "$1")
	# shellcheck disable=SC2086
	$PIN_P $cmd > "$RUN/$1.log" 2>&1 &
	pid=$!
	STARTED="$STARTED $pid"
	if "$BIN/client" probe "$port" /1k 30; then
		sleep 0.5 # let nginx's worker and Varnish's child settle before listing the processes
		eval "pids_$1=\"$(descendants $pid)\""
		log "$1 ready on port $port (pids $(eval echo \$pids_$1))"
		return 0
	fi
	note "$1: not ready or wrong answer on port $port: left out (see results/cache/$1.log)"
	tail -5 "$RUN/$1.log" >&2 || true
	stop_pid $pid
	return 1
}

# --- start ------------------------------------------------------------------------

PROXIES=""
for p in $WANT; do
	case $p in
	moat) [ -x "$MOAT" ] || { note "moat: $MOAT not found (run make): moat left out"; continue; } ;;
	nginx) ;;
	varnish) [ -x "$VARNISHD" ] || { note "varnish: $VARNISHD not found (sh scripts/deps.sh bench): left out"; continue; } ;;
	*) die "unknown proxy '$p' in BENCH_PROXIES (moat, nginx, varnish)" ;;
	esac
	PROXIES="$PROXIES $p"
done
[ -n "$PROXIES" ] || die "nothing to benchmark"
# A copy, so that a `make` in the same tree during the run (build/moat
# relinked, or briefly missing) does not change or break what is measured.
case " $PROXIES " in
*" moat "*)
	cp "$MOAT" "$RUN/moat.bin" || die "cannot copy $MOAT"
	MOAT_RUN=$RUN/moat.bin ;;
esac

for p in origin $PROXIES; do
	port_busy "$(port_of $p)" && die "port $(port_of $p) ($p) is in use: set BENCH_PORT"
done

origin_conf
$PIN_L nginx -p "$ORIGIN/" -c "$ORIGIN/nginx.conf" -e "$ORIGIN/error.log" > "$RUN/origin.log" 2>&1 &
STARTED="$STARTED $!"
"$BIN/client" probe "$BASE" /1k 10 || die "origin did not start (see results/cache/origin.log, origin/error.log)"

READY=""
for p in $PROXIES; do
	if start $p; then READY="$READY $p"; fi
done
PROXIES=$READY
[ -n "$PROXIES" ] || die "no proxy started"

# --- warm, then check that every URL is a hit ------------------------------------

# urls PORT SIZE: curl's glob of the URL set.
urls() {
	echo "http://127.0.0.1:$1/$2?n=[0-$((URLS - 1))]"
}

# hit_check PROXY BYTES: reads curl's -w lines "STATUS|Cache-Status|
# X-Cache-Status|X-Varnish|Age|BODY_BYTES" on stdin; prints "H of N hits"
# (and the first line that was not one); true if every line was a 200 of
# BYTES body bytes with the proxy's hit marker.
hit_check() {
	awk -F'|' -v p="$1" -v bytes="$2" '
	{
		n++
		hit = 0
		if (p == "moat") hit = $2 ~ /^moat; *hit/
		else if (p == "nginx") hit = $3 == "HIT"
		else if (p == "varnish") hit = $4 ~ /^[0-9]+ [0-9]+$/
		if ($1 == 200 && $6 == bytes && hit) ok++
		else if (!bad) bad = $0
	}
	END {
		printf "%d of %d hits", ok, n
		if (bad != "") printf "; first other: %s", bad
		print ""
		exit !(n > 0 && ok == n)
	}'
}

for s in $SCENARIOS; do
	size=${s#hit}
	for p in $PROXIES; do
		port=$(port_of $p)
		timeout 60 curl -s -o /dev/null -w '%{http_code}\n' "$(urls $port $size)" > "$RUN/warm-$p-$size.txt" || true
		w=$(grep -c '^200$' "$RUN/warm-$p-$size.txt" || true)
		[ "$w" = "$URLS" ] || die "$p: warming /$size: $w of $URLS answers were 200 (see results/cache/warm-$p-$size.txt)"
	done
done
sleep 1 # a store written in the background (nginx's cache files) has settled
for s in $SCENARIOS; do
	size=${s#hit}
	for p in $PROXIES; do
		port=$(port_of $p)
		o0=$(origin_count)
		timeout 60 curl -s -o /dev/null \
			-w '%{http_code}|%header{cache-status}|%header{x-cache-status}|%header{x-varnish}|%header{age}|%{size_download}\n' \
			"$(urls $port $size)" > "$RUN/check-$p-$size.txt" || true
		o1=$(origin_count)
		bytes=1024
		[ "$size" = 64k ] && bytes=65536
		if ! r=$(hit_check $p $bytes < "$RUN/check-$p-$size.txt"); then
			die "$p does not serve /$size?n=N from its cache: $r (see results/cache/check-$p-$size.txt)"
		fi
		[ "$o1" = "$o0" ] || die "$p: the second pass over /$size sent $((o1 - o0)) requests to the origin"
		log "$p: /$size x $URLS: $r, origin untouched"
		echo "$p | /$size x $URLS, second pass | $r; origin requests $((o1 - o0))" >> "$RUN/checks.txt"
	done
done

NP=$(echo $PROXIES | wc -w)
EST=$(( 2 * NP * (WARMUP + ROUNDS * SECS) ))
log "proxies:$PROXIES; $URLS URLs per size; rounds $ROUNDS x ${SECS}s; about $((EST / 60)) min $((EST % 60)) s"

moat_rev=""
if [ -n "${MOAT_RUN:-}" ]; then
	moat_rev=$("$MOAT_RUN" --version 2>/dev/null | head -1 || true)
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
	echo "varnish $("$VARNISHD" -V 2>&1 | awk 'NR == 1 { v = $2; sub(/^\(/, "", v); print v }')"
	echo "pin $PIN_TEXT"
	echo "wrk wrk -t1 -c$CONNS -d${SECS}s --latency -s bench/cache.lua ($URLS URLs per size)"
	echo "rounds $ROUNDS"
	echo "seconds $SECS"
	echo "urls $URLS"
	echo "proxies $PROXIES"
} > "$RUN/meta.txt"

# --- load: interleaved rounds -------------------------------------------------------

# one_run SCENARIO PROXY ROUND (ROUND 0 = warm-up, not recorded)
one_run() {
	port=$(port_of $2)
	size=${1#hit}
	secs=$SECS
	[ "$3" = 0 ] && secs=$WARMUP
	f=$RUN/wrk-$1-$2-r$3.txt
	pids=$(eval echo \$pids_$2)
	o0=$(origin_count)
	c0=$(ticks "$pids")
	$PIN_L timeout $((secs + 20)) wrk -t1 -c"$CONNS" -d"${secs}s" --latency -s "$LUA" \
		"http://127.0.0.1:$port/$size" -- "$URLS" > "$f" 2>&1 || true
	c1=$(ticks "$pids")
	o1=$(origin_count)
	d=$(ticks_delta "$c0" "$c1")
	res=$(awk '$1 == "result" { $1 = ""; print; exit }' "$f")
	[ -n "$res" ] || res="0 0 0 - - 0 0"
	set -- "$1" "$2" "$3" $res $d $((o1 - o0))
	# scenario proxy round requests seconds rps p50 p99 sock_errors non2xx ticks user_ticks origin
	if [ "$3" = 0 ]; then
		echo "$*" >> "$RUN/warmup.tsv"
	else
		echo "$*" >> "$RUN/rounds.tsv"
	fi
	awk -v tck="$TCK" -v r="$*" 'BEGIN { split(r, f, " ")
		cpu = f[4] > 0 ? f[11] / tck * 1e6 / f[4] : 0
		busy = f[5] > 0 ? f[11] / tck / f[5] * 100 : 0
		printf "bench: [%s r%s] %-8s %8.0f req/s  %6.2f us/req  cpu %3.0f%%  p99 %s ms%s%s%s\n",
			f[1], f[3], f[2], f[6], cpu, busy, f[8],
			(f[9] > 0 ? "  SOCKET ERRORS " f[9] : ""), (f[10] > 0 ? "  NON-2XX " f[10] : ""),
			(f[13] > 0 ? "  ORIGIN REQUESTS " f[13] : "") }' >&2
}

: > "$RUN/rounds.tsv"
: > "$RUN/warmup.tsv"
for s in $SCENARIOS; do
	if [ "$WARMUP" -gt 0 ]; then
		for p in $PROXIES; do one_run $s $p 0; done
	fi
	r=1
	while [ $r -le "$ROUNDS" ]; do
		for p in $PROXIES; do one_run $s $p $r; done
		r=$((r + 1))
	done
done

echo "load_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.txt"
cleanup

# --- report -------------------------------------------------------------------------

awk -v tck="$TCK" -f "$BENCH/cache.awk" "$RUN/meta.txt" "$RUN/rounds.tsv" "$RUN/checks.txt" \
	"$RUN/notes.txt" > "$OUT"
cat "$OUT"
log "table saved to ${OUT#$ROOT/}; raw data in ${RUN#$ROOT/}/"

# Loud failure: a measured run that reached the origin measured misses, not
# hits; errors mean the figures are not of complete responses.
bad=$(awk '$13 > 0 || $9 > 0 || $10 > 0 || $4 == 0 { printf "%s%s %s r%s (origin %s, socket errors %s, non-2xx %s, requests %s)",
	(n++ ? "; " : ""), $1, $2, $3, $13, $9, $10, $4 }' "$RUN/rounds.tsv")
if [ -n "$bad" ]; then
	log "FAILED: runs that were not all cache hits or had errors: $bad"
	exit 1
fi
