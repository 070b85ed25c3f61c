#!/bin/sh
# run.sh - moat against nginx, HAProxy and a plain TCP forwarder, same
# machine, same backend, same run. Entry point of `make bench`.
#
# What it does, in order (docs/benchmark.md explains why):
#   1. builds bench/*.c into build/bench/, starts the backend (CPU 1) and
#      every proxy with one worker (CPU 0), checks each answers /1k and /64k;
#   2. memory: opens BENCH_IDLE_CONNS idle keep-alive connections to each
#      proxy (one request each) and reads its PSS before and after;
#   3. load: for each scenario, BENCH_ROUNDS rounds; in each round every
#      proxy gets one wrk run of BENCH_SECONDS (interleaved: A B C D A B C D),
#      recording req/s, p50, p99 and the proxy's CPU time per request;
#   4. BENCH_DEEP=1: syscalls per request (strace -c -f) and instructions per
#      request (callgrind) on fixed request counts;
#   5. prints the table of medians and writes it to bench/results/latest.md.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [5]  BENCH_SECONDS [4]  BENCH_WARMUP [1]  BENCH_CONNS [50]
#   BENCH_IDLE_CONNS [10000]  BENCH_DEEP [0]  BENCH_PORT [18080] (uses +0..+4,
#   +11..+14)  BENCH_PROXIES ["moat nginx haproxy forwarder"]
#   BENCH_PROXY_CPU [0]  BENCH_LOAD_CPU [1]  BENCH_DEEP_REQS [10000] (strace)
#   MOAT_BIN [build/moat]
#
# Every process it starts is stopped by PID on exit; every load is bounded
# in time; everything listens on 127.0.0.1 only.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
BIN=$ROOT/build/bench
MOAT=${MOAT_BIN:-$ROOT/build/moat}
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECONDS:-4}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-50}
IDLE=${BENCH_IDLE_CONNS:-10000}
DEEP=${BENCH_DEEP:-0}
BASE=${BENCH_PORT:-18080}
WANT=${BENCH_PROXIES:-moat nginx haproxy forwarder}
PCPU=${BENCH_PROXY_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
SCENARIOS="ka1k ka64k close1k"
RES=$BENCH/results
RUN=$RES/run            # configs, logs and raw numbers of the latest run
OUT=$RES/latest.md
DEEP_REQS=${BENCH_DEEP_REQS:-10000}

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for t in wrk awk taskset timeout getconf; do
	command -v $t >/dev/null 2>&1 || die "$t not found (sh scripts/deps.sh bench)"
done
case "$ROUNDS$SECS$CONNS$IDLE" in *[!0-9]*) die "BENCH_* must be integers" ;; esac

rm -rf "$RUN"
mkdir -p "$RUN"
: > "$RUN/notes.txt"
note() { log "$*"; echo "$*" >> "$RUN/notes.txt"; }

make -s -C "$BENCH" OUT="$BIN" >&2 || die "cannot build bench/*.c"

# --- limits and pinning ------------------------------------------------------

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=65536
if [ "$NOFILE" -lt $((IDLE + 200)) ]; then
	IDLE=$((NOFILE - 200))
	note "open-file limit is $NOFILE: idle connections lowered to $IDLE"
fi
if [ "$((2 * IDLE + 100))" -gt "$NOFILE" ]; then
	note "forwarder needs 2 fds per idle connection: it can hold about $(((NOFILE - 8) / 2)) of $IDLE (open-file limit $NOFILE)"
fi


# --- process bookkeeping (bench/lib.sh) --------------------------------------

. "$BENCH/lib.sh"
pin_cpus "backend, wrk and client on CPU $LCPU"

# "PSS_KB RSS_KB" summed over the PIDs given.
mem_kb() {
	pss=0
	rss=0
	for p in $1; do
		v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		pss=$((pss + ${v:-0}))
		v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
		rss=$((rss + ${v:-0}))
	done
	echo "$pss $rss"
}

port_of() {
	case $1 in
	backend) echo "$BASE" ;;
	moat) echo $((BASE + 1)) ;;
	nginx) echo $((BASE + 2)) ;;
	haproxy) echo $((BASE + 3)) ;;
	forwarder) echo $((BASE + 4)) ;;
	esac
}

# --- configurations -----------------------------------------------------------

# moat_conf PORT FILE
moat_conf() {
	cat > "$2" <<EOF
workers: 1
log: {level: warn, access: off}
listeners: [{listen: 127.0.0.1:$1}]
upstreams: {b: {servers: [127.0.0.1:$BASE], keepalive: 64}}
routes: [{upstream: b}]
EOF
}

# nginx_conf PORT DIR MASTER(on|off): one worker, upstream keep-alive, no
# access log, no request cap per connection (nginx's default closes every
# client and upstream connection after 1000 requests; HAProxy does not),
# never buffer responses to disk. worker_connections is sized for the idle
# test like HAProxy's maxconn: both preallocate tables of that size.
nginx_conf() {
	mkdir -p "$2"
	cat > "$2/nginx.conf" <<EOF
daemon off;
master_process $3;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $2/nginx.pid;
error_log $2/error.log warn;
events { worker_connections $((IDLE + 1024)); }
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
}

# haproxy_conf PORT FILE: one thread, mode http, idle server connections
# reused by any client (http-reuse always), no log section. HAProxy wants
# two fds per maxconn; "no strict-limits" lets it start when the open-file
# limit is lower (idle client connections need one fd each).
haproxy_conf() {
	cat > "$2" <<EOF
global
    nbthread 1
    maxconn $((IDLE + 100))
    no strict-limits
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 75s
    timeout server 60s
    timeout http-keep-alive 75s
    maxconn $((IDLE + 100))
frontend fe
    bind 127.0.0.1:$1
    default_backend be
backend be
    server b 127.0.0.1:$BASE
EOF
}

# proxy_cmd NAME PORT TAG: the command line for one proxy instance.
proxy_cmd() {
	case $1 in
	moat)
		moat_conf "$2" "$RUN/moat$3.yaml"
		echo "$MOAT -c $RUN/moat$3.yaml" ;;
	nginx)
		m=on
		[ -n "$3" ] && m=off
		nginx_conf "$2" "$RUN/nginx$3" $m
		echo "nginx -p $RUN/nginx$3/ -c $RUN/nginx$3/nginx.conf -e $RUN/nginx$3/error.log" ;;
	haproxy)
		haproxy_conf "$2" "$RUN/haproxy$3.cfg"
		echo "haproxy -db -f $RUN/haproxy$3.cfg" ;;
	forwarder)
		echo "$BIN/forwarder $2 $BASE" ;;
	esac
}

# --- start ----------------------------------------------------------------------

PROXIES=""
for p in $WANT; do
	case $p in
	moat) [ -x "$MOAT" ] || { note "moat: $MOAT not found (run make): moat left out"; continue; } ;;
	nginx | haproxy) command -v $p >/dev/null 2>&1 || { note "$p: not installed: left out"; continue; } ;;
	forwarder) ;;
	*) die "unknown proxy '$p' in BENCH_PROXIES" ;;
	esac
	PROXIES="$PROXIES $p"
done
[ -n "$PROXIES" ] || die "nothing to benchmark"

$PIN_L "$BIN/backend" "127.0.0.1:$BASE" 2> "$RUN/backend.log" &
STARTED="$STARTED $!"
"$BIN/client" probe "$BASE" /1k 10 || die "backend did not start (see $RUN/backend.log)"

READY=""
for p in $PROXIES; do
	cmd=$(proxy_cmd $p "$(port_of $p)" "")
	# shellcheck disable=SC2086
	$PIN_P $cmd > "$RUN/$p.log" 2>&1 &
	pid=$!
	STARTED="$STARTED $pid"
	if "$BIN/client" probe "$(port_of $p)" /1k 20 && "$BIN/client" probe "$(port_of $p)" /64k 5; then
		sleep 0.5 # let nginx's worker settle before listing the processes
		eval "pids_$p=\"$(descendants $pid)\""
		READY="$READY $p"
		log "$p ready (pids $(eval echo \$pids_$p))"
	else
		note "$p: not ready or wrong answer on port $(port_of $p): left out (see results/run/$p.log)"
		tail -5 "$RUN/$p.log" >&2 || true
		stop_pid $pid
	fi
done
PROXIES=$READY
[ -n "$PROXIES" ] || die "no proxy started"

NP=$(echo $PROXIES | wc -w)
EST=$(( NP * (IDLE / 2000 + 4) + 3 * NP * (WARMUP + ROUNDS * SECS) ))
log "proxies:$PROXIES; rounds $ROUNDS x ${SECS}s; about $((EST / 60)) min $((EST % 60)) s"

{
	echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "cpu $NCPU x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel $(uname -r)"
	echo "load_start $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "nginx $(nginx -v 2>&1 | sed 's/.*version: //')"
	echo "haproxy $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
	echo "pin $PIN_TEXT"
	echo "wrk wrk -t1 -c$CONNS -d${SECS}s --latency"
	echo "rounds $ROUNDS"
	echo "seconds $SECS"
	echo "idle $IDLE"
	echo "proxies $PROXIES"
} > "$RUN/meta.txt"

# --- memory: idle keep-alive connections ------------------------------------

: > "$RUN/mem.tsv"
for p in $PROXIES; do
	pids=$(eval echo \$pids_$p)
	before=$(mem_kb "$pids")
	f=$RUN/hold-$p.txt
	: > "$f"
	$PIN_L "$BIN/client" hold "$(port_of $p)" "$IDLE" 120 > "$f" 2>&1 &
	hp=$!
	STARTED="$STARTED $hp"
	i=0
	while ! grep -q '^held' "$f" && kill -0 $hp 2>/dev/null && [ $i -lt 1200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 1
	after=$(mem_kb "$pids")
	stop_pid $hp
	held=$(awk '/^held/ { print $2 }' "$f")
	alive=$(awk '/^alive/ { print $2 }' "$f")
	echo "$p $before $after ${held:-0} ${alive:-0}" >> "$RUN/mem.tsv"
	log "$p: $IDLE idle connections: held ${held:-0}, alive at the end ${alive:-0}, PSS kB $before -> $after"
	[ "${held:-0}" = "$IDLE" ] || note "$p: held ${held:-0} of $IDLE idle connections"
	sleep 1
done

# --- load: interleaved rounds -------------------------------------------------

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

# one_run PROXY SCENARIO ROUND (ROUND 0 = warm-up, not recorded)
one_run() {
	port=$(port_of $1)
	case $2 in
	ka1k) path=/1k hdr= ;;
	ka64k) path=/64k hdr= ;;
	close1k) path=/1k hdr="Connection: close" ;;
	esac
	secs=$SECS
	[ "$3" = 0 ] && secs=$WARMUP
	f=$RUN/wrk-$2-$1-r$3.txt
	pids=$(eval echo \$pids_$1)
	c0=$(cpu_ticks "$pids")
	if [ -n "$hdr" ]; then
		$PIN_L timeout $((secs + 20)) wrk -t1 -c"$CONNS" -d"${secs}s" --latency -H "$hdr" \
			"http://127.0.0.1:$port$path" > "$f" 2>&1 || true
	else
		$PIN_L timeout $((secs + 20)) wrk -t1 -c"$CONNS" -d"${secs}s" --latency \
			"http://127.0.0.1:$port$path" > "$f" 2>&1 || true
	fi
	c1=$(cpu_ticks "$pids")
	[ "$3" = 0 ] && return 0
	set -- "$2" "$1" "$3" $(parse_wrk "$f") $((${c1% *} - ${c0% *})) $((${c1#* } - ${c0#* }))
	# scenario proxy round requests seconds rps p50 p99 errors ticks user_ticks
	echo "$*" >> "$RUN/rounds.tsv"
	awk -v tck="$TCK" -v r="$*" 'BEGIN { split(r, f, " ")
		cpu = f[4] > 0 ? f[10] / tck * 1e6 / f[4] : 0
		busy = f[5] > 0 ? f[10] / tck / f[5] * 100 : 0
		printf "bench: [%s r%s] %-9s %8.0f req/s  %6.2f us/req  cpu %3.0f%%  p50 %s ms  p99 %s ms%s\n",
			f[1], f[3], f[2], f[6], cpu, busy, f[7], f[8], (f[9] > 0 ? "  ERRORS " f[9] : "") }' >&2
}

: > "$RUN/rounds.tsv"
for s in $SCENARIOS; do
	if [ "$WARMUP" -gt 0 ]; then
		for p in $PROXIES; do one_run $p $s 0; done
	fi
	r=1
	while [ $r -le "$ROUNDS" ]; do
		for p in $PROXIES; do one_run $p $s $r; done
		r=$((r + 1))
	done
done

# --- deep: syscalls and instructions per request ------------------------------

: > "$RUN/deep.tsv"
if [ "$DEEP" = 1 ]; then
	if command -v strace >/dev/null 2>&1; then
		for p in $PROXIES; do
			pids=$(eval echo \$pids_$p)
			args=""
			for x in $pids; do args="$args -p $x"; done
			# shellcheck disable=SC2086
			strace -c -f -o "$RUN/strace-$p.txt" $args 2> "$RUN/strace-$p.log" &
			sp=$!
			STARTED="$STARTED $sp"
			sleep 1
			$PIN_L timeout 120 "$BIN/client" run "$(port_of $p)" "$DEEP_REQS" 1 /1k > /dev/null || note "$p: strace run failed"
			sleep 0.5
			kill -INT $sp 2>/dev/null || true
			wait $sp 2>/dev/null || true
			forget $sp
			n=$(awk '$NF == "total" { print $4 }' "$RUN/strace-$p.txt" 2>/dev/null)
			echo "$p syscalls ${n:-0} $DEEP_REQS" >> "$RUN/deep.tsv"
			log "$p: strace: ${n:-?} syscalls for $DEEP_REQS requests"
		done
	else
		note "strace not installed: no syscall counts"
	fi
	if command -v valgrind >/dev/null 2>&1; then
		# Two runs per proxy (N1 and N2 requests on one connection); the
		# difference divided by N2 - N1 cancels start-up and shut-down.
		for p in $PROXIES; do
			port=$(( $(port_of $p) + 10 ))
			ir=""
			for n in 1000 5000; do
				rm -f "$RUN/callgrind-$p-$n".*
				cmd=$(proxy_cmd $p $port -cg)
				# shellcheck disable=SC2086
				$PIN_P valgrind --tool=callgrind --trace-children=yes \
					--callgrind-out-file="$RUN/callgrind-$p-$n.%p" $cmd > "$RUN/callgrind-$p-$n.log" 2>&1 &
				vp=$!
				STARTED="$STARTED $vp"
				if "$BIN/client" probe $port /1k 60; then
					$PIN_L timeout 300 "$BIN/client" run $port $n 1 /1k > /dev/null || note "$p: callgrind run failed"
				else
					note "$p: did not start under valgrind"
				fi
				stop_pid $vp
				# "summary:" holds the instruction count of each process (one file each).
				t=$(cat "$RUN/callgrind-$p-$n".* 2>/dev/null | awk '/^summary:/ { s += $2; f = 1 } END { if (f) print s }')
				ir="$ir ${t:--}"
			done
			echo "$p instr $ir" >> "$RUN/deep.tsv"
			log "$p: callgrind instructions for 1000 / 5000 requests:$ir"
		done
	else
		note "valgrind not installed: no instruction counts"
	fi
fi

echo "load_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/meta.txt"
cleanup

# --- report ---------------------------------------------------------------------

awk -v tck="$TCK" -f "$BENCH/report.awk" "$RUN/meta.txt" "$RUN/rounds.tsv" "$RUN/mem.tsv" \
	"$RUN/deep.tsv" "$RUN/notes.txt" > "$OUT"
cat "$OUT"
log "table saved to ${OUT#$ROOT/}; raw data in ${RUN#$ROOT/}/"
