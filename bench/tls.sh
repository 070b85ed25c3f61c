#!/bin/sh
# tls.sh - the TLS and HTTP/2 benchmark: moat, nginx and HAProxy terminating
# TLS in front of the same backend, same machine, same certificate, same
# run. Entry point of `make bench-tls`; docs/tls.md ("Benchmark") explains
# why and quotes the figures.
#
# What it does, in order:
#   1. builds bench/*.c into build/bench/, writes one ECDSA P-256
#      certificate (openssl, valid two days, names localhost and 127.0.0.1)
#      and starts the backend (bench/backend.c, CPU 1);
#   2. starts, each with one worker on CPU 0 and the same certificate, TLS
#      1.2 + 1.3 and ALPN h2,http/1.1: moat (listeners[].tls), nginx
#      (listen ssl http2) and HAProxy (bind ssl alpn h2,http/1.1). Session
#      resumption is off in all three (moat session_tickets: false, nginx
#      ssl_session_tickets off + ssl_session_cache off, HAProxy
#      no-tls-tickets + tune.ssl.cachesize 0): the client of the handshake
#      test (h2load) would otherwise resume every session after its first,
#      and the test is of full handshakes. Keep-alive and HTTP/2 figures do
#      not depend on it (one handshake per connection for the whole run);
#   3. checks each, before any load: GET /1k over HTTP/1.1 and over h2
#      (ALPN) with the certificate verified (curl --cacert), a 200 with
#      1024 bytes; TLS 1.3 negotiated; a second connection offering the
#      first one's session is not resumed (openssl s_client -sess_out /
#      -sess_in). A proxy that fails the first check is left out; one that
#      fails the h2 check is left out of the h2 scenario; one that resumes
#      is left out of the handshake scenario (each said in the notes);
#   4. load, three scenarios; for each, BENCH_WARMUP of unrecorded load per
#      proxy, then BENCH_ROUNDS rounds in which every proxy runs once
#      (interleaved: moat nginx haproxy moat ...):
#        hs  new TLS 1.3 full handshakes: `h2load --h1 -c BENCH_HS_CONNS
#            -n N -H 'Connection: close'` GET /1k, one request per
#            connection, so one full handshake per request (h2load runs
#            until N requests are done: its -D mode does not stop when
#            connections are closed by the server). N is BENCH_HANDSHAKES,
#            or by default the warm-up's mean rate x BENCH_SECONDS, the
#            same N for every proxy;
#        ka  HTTPS keep-alive, HTTP/1.1: `wrk -t1 -c BENCH_CONNS -d
#            BENCH_SECONDS --latency` GET /1k over https:// (wrk offers no
#            ALPN: HTTP/1.1);
#        h2  HTTP/2 over TLS: `h2load -c BENCH_H2_CONNS -m BENCH_H2_STREAMS
#            -D BENCH_SECONDS` GET /1k;
#      each run records requests/s, latency (wrk: p50 / p99; h2load: mean
#      time for request), errors and the proxy's CPU time from
#      /proc/PID/stat (all its processes) per request;
#   5. BENCH_DEEP=1: instructions per request under valgrind --tool=
#      callgrind, which do not depend on the machine's load. For each
#      scenario and proxy, a fresh instance (same configuration, ports +11
#      .. +13, nginx with master_process off, every process counted with
#      --trace-children=yes) serves one checked GET and then a fixed load
#      of N1 requests, and is stopped; then again with N2. (Ir(N2) -
#      Ir(N1)) / (N2 - N1) is the cost of one request: start-up, the
#      check, the connections' handshakes (ka, h2) and shut-down cancel.
#        hs  `h2load --h1 -c BENCH_DEEP_CONNS -n N -H 'Connection: close'`,
#            N1 = 100, N2 = N1 + BENCH_DEEP_HANDSHAKES: per full handshake
#            (+ its GET);
#      (h2load offering the TLS 1.3 suite BENCH_DEEP_CIPHER only: nginx
#      picks the client's first choice, moat and HAProxy their own)
#        ka  `h2load --h1 -c BENCH_DEEP_CONNS -n N` over https:// (HTTP/1.1
#            keep-alive), N1 = 2000, N2 = N1 + BENCH_DEEP_REQS;
#        h2  `h2load -c BENCH_DEEP_CONNS -m BENCH_H2_STREAMS -n N`, the same
#            N1 and N2;
#   6. prints the table of medians and the ratios moat/nginx and
#      moat/HAProxy (bench/tls.awk) and writes it to bench/results/tls.md.
#      Exits 1 if a measured run (timed or callgrind) had errors or non-2xx
#      answers.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]  BENCH_SECONDS [5]  BENCH_WARMUP [1]  BENCH_CONNS [50]
#   BENCH_HS_CONNS [10]  BENCH_HANDSHAKES [auto]  BENCH_H2_CONNS [10]
#   BENCH_H2_STREAMS [10]  BENCH_PORT [28480] (backend +0, moat +1, nginx
#   +2, haproxy +3, under callgrind +11..+13; below Linux's ephemeral
#   ports, which the proxies' own connections may hold)  BENCH_PROXIES ["moat nginx haproxy"]
#   BENCH_SCENARIOS ["hs ka h2"]  BENCH_PROXY_CPU [0]  BENCH_LOAD_CPU [1]
#   BENCH_DEEP [0]  BENCH_DEEP_REQS [10000]  BENCH_DEEP_HANDSHAKES [500]
#   BENCH_DEEP_CONNS [4]  BENCH_DEEP_CIPHER [TLS_AES_128_GCM_SHA256] (the
#   only TLS 1.3 suite h2load offers in the callgrind runs, so that all
#   three encrypt alike; empty: h2load's list, each server's choice)
#   BENCH_TIMED [1] (0: no timed rounds, the checks and, with BENCH_DEEP=1,
#   the callgrind counts only)  MOAT_BIN [build/moat]
#
# Every process it starts is stopped by PID on exit (bench/lib.sh); every
# load is bounded in time (the handshake runs in count and by a timeout);
# everything listens on 127.0.0.1 only.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
BIN=$ROOT/build/bench
MOAT=${MOAT_BIN:-$ROOT/build/moat}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-50}
HSC=${BENCH_HS_CONNS:-10}
HSN=${BENCH_HANDSHAKES:-auto}
H2C=${BENCH_H2_CONNS:-10}
H2M=${BENCH_H2_STREAMS:-10}
BASE=${BENCH_PORT:-28480}
WANT=${BENCH_PROXIES:-moat nginx haproxy}
SCENARIOS=${BENCH_SCENARIOS:-hs ka h2}
DEEP=${BENCH_DEEP:-0}
DEEP_REQS=${BENCH_DEEP_REQS:-10000}
DEEP_HS=${BENCH_DEEP_HANDSHAKES:-500}
DEEP_CONNS=${BENCH_DEEP_CONNS:-4}
DEEP_CIPHER=${BENCH_DEEP_CIPHER-TLS_AES_128_GCM_SHA256}
TIMED=${BENCH_TIMED:-1}
PCPU=${BENCH_PROXY_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
RES=$BENCH/results
RUN=$RES/tls            # certificate, configurations, logs and raw numbers of the latest run
OUT=$RES/tls.md
LUA=$BENCH/tls.lua

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for t in wrk h2load curl openssl awk taskset timeout getconf; do
	command -v $t >/dev/null 2>&1 || die "$t not found (sh scripts/deps.sh bench)"
done
case "$ROUNDS$SECS$WARMUP$CONNS$HSC$H2C$H2M$BASE$PCPU$LCPU$DEEP_REQS$DEEP_HS$DEEP_CONNS" in
*[!0-9]*) die "BENCH_* must be integers" ;;
esac
case "$DEEP$TIMED" in [01][01]) ;; *) die "BENCH_DEEP and BENCH_TIMED must be 0 or 1" ;; esac
if [ "$DEEP" = 1 ]; then
	if [ "$DEEP_REQS" -lt 1 ] || [ "$DEEP_HS" -lt 1 ] || [ "$DEEP_CONNS" -lt 1 ]; then
		die "BENCH_DEEP_REQS, BENCH_DEEP_HANDSHAKES and BENCH_DEEP_CONNS must be at least 1"
	fi
	[ "$DEEP_CONNS" -le 100 ] || die "BENCH_DEEP_CONNS must be at most 100 (the smaller callgrind run has 100 handshakes)"
fi
case "$HSN" in auto) ;; '' | *[!0-9]*) die "BENCH_HANDSHAKES must be an integer or auto" ;; esac
if [ "$ROUNDS" -lt 1 ] || [ "$SECS" -lt 1 ] || [ "$CONNS" -lt 1 ] || [ "$HSC" -lt 1 ] ||
	[ "$H2C" -lt 1 ] || [ "$H2M" -lt 1 ]; then
	die "BENCH_ROUNDS, BENCH_SECONDS and the connection and stream counts must be at least 1"
fi
for s in $SCENARIOS; do
	case $s in hs | ka | h2) ;; *) die "unknown scenario '$s' in BENCH_SCENARIOS (hs, ka, h2)" ;; esac
done

rm -rf "$RUN"
mkdir -p "$RUN"
: > "$RUN/notes.txt"
: > "$RUN/checks.txt"
note() { log "$*"; echo "$*" >> "$RUN/notes.txt"; }

make -s -C "$BENCH" OUT="$BIN" >&2 || die "cannot build bench/*.c"

# --- process bookkeeping (bench/lib.sh: STARTED, stop_pid, cleanup trap,
# descendants, cpu_ticks). stop_pid uses the global i: no loop here uses i.

. "$BENCH/lib.sh"
pin_cpus "backend, wrk and h2load on CPU $LCPU"

# port_of NAME: its port; NAME_cg, the instance under callgrind: +10.
port_of() {
	case $1 in
	backend) echo "$BASE" ;;
	moat) echo $((BASE + 1)) ;;
	nginx) echo $((BASE + 2)) ;;
	haproxy) echo $((BASE + 3)) ;;
	*_cg) echo $(($(port_of "${1%_cg}") + 10)) ;;
	esac
}

# port_busy PORT: true if something listens on it (any address).
port_busy() {
	h=$(printf '%04X' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk -v h="$h" '$4 == "0A" { n = split($2, a, ":"); if (a[n] == h) f = 1 } END { exit !f }'
}

# --- the certificate ------------------------------------------------------------

CERT=$RUN/cert.pem
KEY=$RUN/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$KEY" -out "$CERT" -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$RUN/openssl.log" 2>&1 ||
	die "cannot make the certificate (see results/tls/openssl.log)"
cat "$CERT" "$KEY" > "$RUN/haproxy.pem" # HAProxy's crt: chain and key in one file

# --- configurations -----------------------------------------------------------

# moat_conf PORT FILE: one worker, the certificate, resumption off (see the
# top), h2 on (its default), upstream keep-alive, no access log.
moat_conf() {
	cat > "$2" <<EOF
workers: 1
log: {level: warn, access: off}
listeners:
  - listen: 127.0.0.1:$1
    tls: {cert: $CERT, key: $KEY, session_tickets: false}
upstreams: {b: {servers: [127.0.0.1:$BASE], keepalive: 64}}
routes: [{upstream: b}]
EOF
}

# nginx_conf PORT DIR MASTER: run.sh's proxy settings (one worker, upstream
# keep-alive, no request cap per connection, no access log) on a TLS
# listener with h2; TLS 1.2 and 1.3 (nginx 1.22's default also has 1.0 and
# 1.1), nginx's default ciphers and curves (X25519 first). MASTER is on,
# or off under callgrind (the worker's work in one process).
nginx_conf() {
	mkdir -p "$2"
	cat > "$2/nginx.conf" <<EOF
daemon off;
master_process $3;
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
    upstream b {
        server 127.0.0.1:$BASE;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$1 ssl http2;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;
        location / {
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
}

# haproxy_conf PORT FILE: run.sh's settings (one thread, mode http,
# http-reuse always) on a TLS bind with ALPN h2,http/1.1; HAProxy 2.6's
# default minimum is TLS 1.2; its default ciphers and curves.
haproxy_conf() {
	cat > "$2" <<EOF
global
    nbthread 1
    maxconn 4096
    tune.ssl.cachesize 0
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 75s
    timeout server 60s
    timeout http-keep-alive 75s
frontend fe
    bind 127.0.0.1:$1 ssl crt $RUN/haproxy.pem alpn h2,http/1.1 no-tls-tickets
    default_backend be
backend be
    server b 127.0.0.1:$BASE
EOF
}

# proxy_cmd NAME: its command line (writes its configuration). NAME_cg is
# NAME for callgrind: its own port and files, nginx without a master.
proxy_cmd() {
	port=$(port_of "$1")
	case $1 in
	moat*)
		moat_conf "$port" "$RUN/$1.yaml"
		echo "$MOAT_RUN -c $RUN/$1.yaml" ;;
	nginx*)
		master=on
		[ "$1" = nginx_cg ] && master=off
		nginx_conf "$port" "$RUN/$1" $master
		echo "nginx -p $RUN/$1/ -c $RUN/$1/nginx.conf -e $RUN/$1/error.log" ;;
	haproxy*)
		haproxy_conf "$port" "$RUN/$1.cfg"
		echo "haproxy -db -f $RUN/$1.cfg" ;;
	esac
}

# fetch PORT [CURL OPTIONS...]: GET https://127.0.0.1:PORT/1k with the
# certificate verified, FETCH_SECS (5) at most; prints "STATUS
# HTTP_VERSION BYTES".
FETCH_SECS=5
fetch() {
	fp=$1
	shift
	fr=$(timeout $((FETCH_SECS + 5)) curl -s -o /dev/null --cacert "$CERT" --max-time "$FETCH_SECS" "$@" \
		-w '%{http_code} %{http_version} %{size_download}' "https://127.0.0.1:$fp/1k" 2>/dev/null) || true
	echo "${fr:-000 0 0}"
}

# start NAME: starts it, waits (20 s at most) for a correct /1k over TLS;
# sets pids_NAME and returns 0, or stops it and returns 1.
start() {
	cmd=$(proxy_cmd "$1")
	port=$(port_of "$1")
	# shellcheck disable=SC2086
	$PIN_P $cmd > "$RUN/$1.log" 2>&1 &
	pid=$!
	STARTED="$STARTED $pid"
	n=0
	while [ $n -lt 100 ]; do
		case $(fetch "$port" --http1.1) in
		"200 1.1 1024") break ;;
		esac
		kill -0 $pid 2>/dev/null || break
		sleep 0.2
		n=$((n + 1))
	done
	r=$(fetch "$port" --http1.1)
	if [ "$r" = "200 1.1 1024" ]; then
		sleep 0.5 # let nginx's worker settle before listing the processes
		eval "root_$1=$pid"
		eval "pids_$1=\"$(descendants $pid)\""
		log "$1 ready on port $port (pids $(eval echo \$pids_$1))"
		return 0
	fi
	note "$1: no correct answer over TLS on port $port ($r): left out (see results/tls/$1.log)"
	tail -5 "$RUN/$1.log" >&2 || true
	stop_pid $pid
	return 1
}

# s_client PORT OPTIONS...: one TLS 1.3 connection, a GET, its answer read;
# prints openssl s_client's output.
s_client() {
	sp=$1
	shift
	printf 'GET /1k HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
		timeout 10 openssl s_client -connect "127.0.0.1:$sp" -servername localhost \
			-CAfile "$CERT" -tls1_3 -ign_eof "$@" 2>&1 || true
}

# check NAME: the checks before the load (see the top); sets ok_NAME_SCENARIO.
check() {
	port=$(port_of "$1")
	eval "ok_$1_ka=1 ok_$1_hs=1 ok_$1_h2=1"
	echo "$1 | GET /1k, HTTP/1.1 over TLS, certificate verified | $(fetch "$port" --http1.1)" >> "$RUN/checks.txt"
	r=$(fetch "$port" --http2)
	echo "$1 | GET /1k, ALPN h2 | $r" >> "$RUN/checks.txt"
	if [ "$r" != "200 2 1024" ]; then
		eval "ok_$1_h2=0"
		note "$1: no HTTP/2 over ALPN ($r): left out of the h2 scenario"
	fi
	s_client "$port" -sess_out "$RUN/session-$1.pem" > "$RUN/sclient-$1-1.txt"
	first=$(awk '/^(New|Reused),/ { sub(/,$/, "", $1); sub(/,$/, "", $2); print $1, $2; exit }' "$RUN/sclient-$1-1.txt")
	group=$(awk -F': ' '/^Server Temp Key/ { print $2; exit }' "$RUN/sclient-$1-1.txt")
	echo "$1 | TLS 1.3 connection | ${first:-failed}; key exchange ${group:-?}" >> "$RUN/checks.txt"
	if [ "$first" != "New TLSv1.3" ]; then
		eval "ok_$1_hs=0"
		note "$1: no TLS 1.3 handshake (${first:-failed}; see results/tls/sclient-$1-1.txt): left out of the handshake scenario"
		return 0
	fi
	if [ -s "$RUN/session-$1.pem" ]; then
		s_client "$port" -sess_in "$RUN/session-$1.pem" > "$RUN/sclient-$1-2.txt"
		second=$(awk '/^(New|Reused),/ { sub(/,$/, "", $1); print $1; exit }' "$RUN/sclient-$1-2.txt")
	else
		second="New (no session to offer)"
	fi
	echo "$1 | the first session offered again | ${second:-failed}" >> "$RUN/checks.txt"
	if [ "$second" = Reused ]; then
		eval "ok_$1_hs=0"
		note "$1: resumed a session although resumption is off in its configuration: left out of the handshake scenario (its figures would not be of full handshakes)"
	fi
}

# --- start ------------------------------------------------------------------------

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
# A copy, so that a `make` in the same tree during the run does not change
# or break what is measured.
case " $PROXIES " in
*" moat "*)
	cp "$MOAT" "$RUN/moat.bin" || die "cannot copy $MOAT"
	MOAT_RUN=$RUN/moat.bin ;;
esac

for p in backend $PROXIES; do
	port_busy "$(port_of $p)" && die "port $(port_of $p) ($p) is in use: set BENCH_PORT"
	if [ "$DEEP" = 1 ] && [ $p != backend ]; then
		port_busy "$(port_of ${p}_cg)" && die "port $(port_of ${p}_cg) (${p} under callgrind) is in use: set BENCH_PORT"
	fi
done
if [ "$DEEP" = 1 ] && ! command -v valgrind >/dev/null 2>&1; then
	note "valgrind not installed (sh scripts/deps.sh bench): no instruction counts"
	DEEP=0
fi

$PIN_L "$BIN/backend" "127.0.0.1:$BASE" 2> "$RUN/backend.log" &
STARTED="$STARTED $!"
"$BIN/client" probe "$BASE" /1k 10 || die "backend did not start (see results/tls/backend.log)"

READY=""
for p in $PROXIES; do
	if start $p; then READY="$READY $p"; fi
done
PROXIES=$READY
[ -n "$PROXIES" ] || die "no proxy started"
for p in $PROXIES; do check $p; done

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
	echo "haproxy $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
	echo "openssl $(openssl version | awk '{ print $2 }')"
	echo "h2load $(h2load --version 2>/dev/null | awk '{ print $2 }')"
	echo "pin $PIN_TEXT"
	echo "timed $TIMED"
	echo "rounds $ROUNDS"
	echo "seconds $SECS"
	echo "proxies $PROXIES"
	echo "hs h2load --h1 -c$HSC -n N -H 'Connection: close' (one full handshake per request)"
	echo "ka wrk -t1 -c$CONNS -d${SECS}s --latency -s bench/tls.lua (HTTP/1.1 keep-alive)"
	echo "h2 h2load -c$H2C -m$H2M -D $SECS (ALPN h2)"
	if [ "$DEEP" = 1 ]; then
		echo "valgrind $(valgrind --version 2>/dev/null)"
		echo "deep_cipher ${DEEP_CIPHER:-the TLS 1.3 suites h2load offers by default}"
		echo "deep_hs h2load --h1 -c$DEEP_CONNS -n N -H 'Connection: close'; N = 100 and $((100 + DEEP_HS))"
		echo "deep_ka h2load --h1 -c$DEEP_CONNS -n N; N = 2000 and $((2000 + DEEP_REQS))"
		echo "deep_h2 h2load -c$DEEP_CONNS -m$H2M -n N; N = 2000 and $((2000 + DEEP_REQS))"
	fi
} > "$RUN/meta.txt"

# --- load -------------------------------------------------------------------------

# passive_opens: TCP connections accepted so far in this network namespace
# (/proc/net/snmp, Tcp: PassiveOpens), by every process: the check that the
# handshake runs open one connection per request.
passive_opens() {
	awk '$1 == "Tcp:" { if (h) { print $7; exit } h = 1 }' /proc/net/snmp 2>/dev/null || echo 0
}

# parse_h2load FILE: "REQUESTS SECONDS RPS MEAN_MS MAX_MS ERRORS NON_2XX"
# (REQUESTS: those that succeeded; ERRORS: failed, errored, timed out).
parse_h2load() {
	awk '
	function ms(v,  n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u); sub(/,$/, "", u)
		return u == "us" ? n / 1000 : u == "ms" ? n : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n }
	/^finished in / { dur = ms($3) / 1000; rps = $4 }
	/^requests: / { ok = $8; err = $10 + $12 + $14 }
	/^status codes: / { non = $5 + $7 + $9 }
	/^time for request: / { mean = ms($6); max = ms($5) }
	END { if (ok == "") print "0 0 0 - - 0 0"; else printf "%d %.3f %s %.3f %.3f %d %d\n", ok, dur, rps, mean, max, err, non }
	' "$1"
}

# one_run SCENARIO PROXY ROUND (ROUND 0 = warm-up, not recorded)
one_run() {
	port=$(port_of $2)
	url="https://127.0.0.1:$port/1k"
	secs=$SECS
	[ "$3" = 0 ] && secs=$WARMUP
	f=$RUN/$1-$2-r$3.txt
	pids=$(eval echo \$pids_$2)
	o0=$(passive_opens)
	c0=$(cpu_ticks "$pids")
	case $1 in
	hs)
		n=$HS_N
		[ "$3" = 0 ] && n=$HS_WARM_N
		$PIN_L timeout $((secs * 10 + 60)) h2load --h1 -c "$HSC" -n "$n" -H 'Connection: close' \
			"$url" > "$f" 2>&1 || true
		res=$(parse_h2load "$f") ;;
	ka)
		$PIN_L timeout $((secs + 20)) wrk -t1 -c"$CONNS" -d"${secs}s" --latency -s "$LUA" \
			"$url" > "$f" 2>&1 || true
		res=$(awk '$1 == "result" { $1 = ""; print; exit }' "$f")
		[ -n "$res" ] || res="0 0 0 - - 0 0" ;;
	h2)
		$PIN_L timeout $((secs + 20)) h2load -c "$H2C" -m "$H2M" -D "$secs" \
			"$url" > "$f" 2>&1 || true
		res=$(parse_h2load "$f") ;;
	esac
	c1=$(cpu_ticks "$pids")
	o1=$(passive_opens)
	set -- "$1" "$2" "$3" $res $((${c1% *} - ${c0% *})) $((${c1#* } - ${c0#* })) $((o1 - o0))
	# scenario proxy round requests seconds rps lat_a lat_b errors non2xx ticks user_ticks accepted
	# (lat_a lat_b: wrk p50 p99; h2load mean and max time for request, ms;
	# accepted: TCP connections accepted on the machine during the run)
	if [ "$3" = 0 ]; then
		echo "$*" >> "$RUN/warmup.tsv"
	else
		echo "$*" >> "$RUN/rounds.tsv"
	fi
	awk -v tck="$TCK" -v r="$*" 'BEGIN { split(r, f, " ")
		cpu = f[4] > 0 ? f[11] / tck * 1e6 / f[4] : 0
		busy = f[5] > 0 ? f[11] / tck / f[5] * 100 : 0
		printf "bench: [%s r%s] %-8s %8.0f req/s  %7.2f us/req  cpu %3.0f%%  %s %s ms%s%s\n",
			f[1], f[3], f[2], f[6], cpu, busy, (f[1] == "ka" ? "p99" : "mean"), (f[1] == "ka" ? f[8] : f[7]),
			(f[9] > 0 ? "  ERRORS " f[9] : ""), (f[10] > 0 ? "  NON-2XX " f[10] : "") }' >&2
}

# in_scenario SCENARIO: the proxies that passed its check.
in_scenario() {
	for p in $PROXIES; do
		if [ "$(eval echo \$ok_${p}_$1)" = 1 ]; then printf '%s ' $p; fi
	done
}

: > "$RUN/rounds.tsv"
: > "$RUN/warmup.tsv"
HS_WARM_N=$((HSC * 100))
HS_N=$HSN
TIMED_SCENARIOS=$SCENARIOS
[ "$TIMED" = 1 ] || TIMED_SCENARIOS=""
for s in $TIMED_SCENARIOS; do
	ps=$(in_scenario $s)
	[ -n "$ps" ] || { note "scenario $s: no proxy passed its check"; continue; }
	# The handshake count always gets a warm-up: it calibrates N.
	if [ "$WARMUP" -gt 0 ] || [ "$s" = hs ]; then
		for p in $ps; do one_run $s $p 0; done
	fi
	if [ "$s" = hs ] && [ "$HSN" = auto ]; then
		HS_N=$(awk -v s="$SECS" -v c="$HSC" '$1 == "hs" && $6 > 0 { t += $6; k++ }
			END { n = k ? t / k * s : 0; n = int(n / c) * c; if (n < 10 * c) n = 10 * c; print n }' "$RUN/warmup.tsv")
		log "handshake runs: $HS_N requests (one full handshake each) per proxy and round"
		echo "hs_n $HS_N" >> "$RUN/meta.txt"
	elif [ "$s" = hs ]; then
		echo "hs_n $HS_N" >> "$RUN/meta.txt"
	fi
	r=1
	while [ $r -le "$ROUNDS" ]; do
		for p in $ps; do one_run $s $p $r; done
		r=$((r + 1))
	done
	# What was negotiated, as h2load saw it (the first measured run of each).
	for p in $ps; do
		f=$RUN/$s-$p-r1.txt
		case $s in hs | h2)
			neg=$(awk -F': ' '/^TLS Protocol:/ { t = $2 } /^Cipher:/ { c = $2 } /^Server Temp Key:/ { k = $2 }
				/^Application protocol:/ { a = $2 } END { printf "%s, %s, %s, ALPN %s", t, c, k, a }' "$f")
			echo "$p | $s: negotiated (h2load) | $neg" >> "$RUN/checks.txt" ;;
		esac
	done
done

# --- deep: instructions per request (callgrind) -----------------------------------

# cg_stop PID: SIGTERM, then up to 60 s for the processes under valgrind to
# write their counts before stop_pid's SIGKILL (which would lose them).
cg_stop() {
	kill -TERM "$1" 2>/dev/null || true
	k=0
	while kill -0 "$1" 2>/dev/null && [ $k -lt 600 ]; do
		sleep 0.1
		k=$((k + 1))
	done
	stop_pid "$1"
}

# cg_run SCENARIO PROXY N: a fresh PROXY_cg under callgrind, one checked
# GET, the scenario's load of N requests, stopped; sets CG_IR to the
# instructions of all its processes, or "-" (said in the notes) if a step
# failed. (Not run in $(...): the valgrind PID must stay in STARTED.)
cg_run() {
	inst=${2}_cg
	cport=$(port_of $inst)
	f=$RUN/callgrind-$1-$2-$3
	rm -f "$f".*
	cmd=$(proxy_cmd $inst)
	# shellcheck disable=SC2086
	$PIN_P valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$f.%p" $cmd > "$f.log" 2>&1 &
	vp=$!
	STARTED="$STARTED $vp"
	# Waits for the listening socket, not for an answer: one GET only,
	# the same in every run, so that it cancels.
	k=0
	while ! port_busy "$cport" && kill -0 $vp 2>/dev/null && [ $k -lt 600 ]; do
		sleep 0.2
		k=$((k + 1))
	done
	FETCH_SECS=120
	r=$(fetch "$cport" --http1.1)
	FETCH_SECS=5
	if [ "$r" != "200 1.1 1024" ]; then
		note "$2: no correct answer under callgrind ($r; see results/tls/${f##*/}.log): no $1 count"
		cg_stop $vp
		CG_IR=-
		return 0
	fi
	url="https://127.0.0.1:$cport/1k"
	suite=""
	[ -n "$DEEP_CIPHER" ] && suite="--tls13-ciphers=$DEEP_CIPHER"
	# shellcheck disable=SC2086
	case $1 in
	hs) $PIN_L timeout 1200 h2load $suite --h1 -c "$DEEP_CONNS" -n "$3" -H 'Connection: close' "$url" ;;
	ka) $PIN_L timeout 1200 h2load $suite --h1 -c "$DEEP_CONNS" -n "$3" "$url" ;;
	h2) $PIN_L timeout 1200 h2load $suite -c "$DEEP_CONNS" -m "$H2M" -n "$3" "$url" ;;
	esac > "$f.h2load" 2>&1 || true
	cg_stop $vp
	# shellcheck disable=SC2046
	set -- "$1" "$2" "$3" $(parse_h2load "$f.h2load")
	if [ "$4" != "$3" ] || [ "$9" != 0 ] || [ "${10}" != 0 ]; then
		note "$2: callgrind $1 run of $3 requests: $4 succeeded, $9 errors, ${10} non-2xx (see results/tls/${f##*/}.h2load): no $1 count"
		CG_IR=-
		return 0
	fi
	# "summary:" (or "totals:") holds the count of each process, one file each.
	t=$(cat "$f".[0-9]* 2>/dev/null | awk '/^summary:/ { s += $2; f = 1 } END { if (f) print s }')
	[ -n "$t" ] || note "$2: callgrind wrote no counts for the $1 run of $3 requests (see results/tls/${f##*/}.log)"
	CG_IR=${t:--}
}

# deep.tsv: "scenario proxy N1 N2 IR1 IR2" (IR "-": the run failed).
: > "$RUN/deep.tsv"
if [ "$DEEP" = 1 ]; then
	# The timed instances are done: stopped, so that they and their
	# upstream connections are out of the way (CPU 0, ports).
	for p in $PROXIES; do
		stop_pid "$(eval echo \$root_$p)"
	done
	for s in $SCENARIOS; do
		ps=$(in_scenario $s)
		[ -n "$ps" ] || continue
		n1=2000
		n2=$((n1 + DEEP_REQS))
		if [ $s = hs ]; then
			n1=100
			n2=$((n1 + DEEP_HS))
		fi
		for p in $ps; do
			cg_run $s $p $n1
			a=$CG_IR
			cg_run $s $p $n2
			b=$CG_IR
			neg=$(awk -F': ' '/^TLS Protocol:/ { t = $2 } /^Cipher:/ { c = $2 } /^Server Temp Key:/ { k = $2 }
				/^Application protocol:/ { a = $2 } END { printf "%s, %s, %s, ALPN %s", t, c, k, a }' \
				"$RUN/callgrind-$s-$p-$n2.h2load" 2>/dev/null)
			echo "$p | $s under callgrind: negotiated (h2load) | $neg" >> "$RUN/checks.txt"
			echo "$s $p $n1 $n2 $a $b" >> "$RUN/deep.tsv"
			log "[deep $s] $p: $a instructions for $n1 requests, $b for $n2$(awk -v a="$a" -v b="$b" -v d=$((n2 - n1)) \
				'BEGIN { if (a != "-" && b != "-") printf ": %.0f per request", (b - a) / d }')"
		done
	done
fi

echo "load_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.txt"
cleanup

# --- report -------------------------------------------------------------------------

awk -v tck="$TCK" -f "$BENCH/tls.awk" "$RUN/meta.txt" "$RUN/rounds.tsv" "$RUN/checks.txt" \
	"$RUN/notes.txt" "$RUN/deep.tsv" > "$OUT"
cat "$OUT"
log "table saved to ${OUT#$ROOT/}; raw data in ${RUN#$ROOT/}/"

bad=$(awk '$9 > 0 || $10 > 0 || $4 == 0 { printf "%s%s %s r%s (errors %s, non-2xx %s, requests %s)",
	(n++ ? "; " : ""), $1, $2, $3, $9, $10, $4 }' "$RUN/rounds.tsv")
deep_bad=$(awk '$5 == "-" || $6 == "-" { printf "%s%s %s", (n++ ? "; " : ""), $1, $2 }' "$RUN/deep.tsv")
if [ -n "$deep_bad" ]; then
	bad="${bad:+$bad; }callgrind runs failed: $deep_bad (see the notes)"
fi
if [ -n "$bad" ]; then
	log "FAILED: runs with errors or no requests: $bad"
	exit 1
fi
