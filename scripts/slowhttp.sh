#!/bin/sh
# slowhttp.sh - moat under slowhttptest: slowloris (-H), slow body (-B) and
# slow read (-X), each with SLOWHTTP_CONNECTIONS connections at once, for
# SLOWHTTP_SECONDS, while an ordinary client on another source address
# (127.0.0.2) keeps sending requests. Passes when at least
# SLOWHTTP_MIN_OK_PCT percent of the ordinary requests succeed (200 within
# 5 s) and moat is still running at the end.
#
#   make slowhttp                        # build/moat, 30 s
#   SLOWHTTP_SECONDS=5 make slowhttp     # CI
#
# Environment:
#   MOAT_BIN                  moat binary (build/moat)
#   SLOWHTTP_SECONDS          length of the attack (30)
#   SLOWHTTP_CONNECTIONS      connections per attack mode (2000)
#   SLOWHTTP_MODES            modes run side by side ("H B X")
#   SLOWHTTP_MIN_OK_PCT       pass mark for the ordinary client (99)
#   SLOWHTTP_PER_IP           limits.connections_per_ip for moat (0: off, so
#                             that the attack connections are held and the
#                             timeouts and rate floors have to cut them)
#   SLOWHTTP_KEEP             1: keep the work directory (logs, config)
#
# Every process is started here and stopped by its PID (bench/lib.sh);
# everything listens on loopback only. Needs python3 and slowhttptest
# (Debian package slowhttptest).

set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOAT_BIN=${MOAT_BIN:-$ROOT/build/moat}
SECONDS_=${SLOWHTTP_SECONDS:-30}
CONNS=${SLOWHTTP_CONNECTIONS:-2000}
MODES=${SLOWHTTP_MODES:-H B X}
MIN_OK=${SLOWHTTP_MIN_OK_PCT:-99}
PER_IP=${SLOWHTTP_PER_IP:-0}
PY=${PYTHON:-/usr/bin/python3}

. "$ROOT/bench/lib.sh"

die() { echo "slowhttp: $*" >&2; exit 1; }

[ -x "$MOAT_BIN" ] || die "no moat binary at $MOAT_BIN (run make)"
command -v slowhttptest >/dev/null || die "slowhttptest is not installed (apt-get install slowhttptest)"
[ -x "$PY" ] || die "no $PY"
case $SECONDS_ in ''|*[!0-9]*) die "SLOWHTTP_SECONDS must be a number of seconds";; esac
case $CONNS in ''|*[!0-9]*) die "SLOWHTTP_CONNECTIONS must be a number";; esac

# Each mode holds CONNS sockets in slowhttptest and as many in moat, plus
# moat's backend side: raise the descriptor limit as far as allowed.
want=$(( CONNS * 8 + 4096 ))
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
	ulimit -n "$want"
else
	ulimit -n "$hard"
fi
echo "slowhttp: descriptor limit $(ulimit -n)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/moat-slowhttp.XXXXXX")
finish() {
	cleanup
	if [ "${SLOWHTTP_KEEP:-0}" = 1 ]; then
		echo "slowhttp: work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap finish EXIT

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {  # port seconds
	"$PY" - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

# ---------------------------------------------------------------- backend
# Threaded HTTP/1.1 origin: / answers "ok", /big 64 KiB (for slow read);
# request bodies are read and thrown away.
cat >"$WORK/backend.py" <<'EOF'
import socketserver, sys
from http.server import BaseHTTPRequestHandler

BIG = b"x" * (64 * 1024)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def log_message(self, *a):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            d = self.rfile.read(min(n, 65536))
            if not d:
                break
            n -= len(d)

    def _send(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._body()
        self._send(BIG if self.path.startswith("/big") else b"ok\n")

    do_HEAD = do_GET

    def do_POST(self):
        self._body()
        self._send(b"ok\n")

class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF

BPORT=$(free_port)
"$PY" "$WORK/backend.py" "$BPORT" >"$WORK/backend.log" 2>&1 &
BPID=$!
STARTED="$STARTED $BPID"
wait_port "$BPORT" 10 || die "the backend did not start"

# ---------------------------------------------------------------- moat
PORT=$(free_port)
cat >"$WORK/moat.yaml" <<EOF
workers: 2
log:
  level: warn
  error: $WORK/moat.err
  access: "off"
  refusal_rate: 5
limits:
  connections_per_ip: $PER_IP
  min_body_rate: 512
  min_send_rate: 512
timeouts:
  client_header: 5s
  client_body: 5s
  client_send: 5s
  keepalive: 10s
listeners:
  - listen: 127.0.0.1:$PORT
upstreams:
  app:
    servers: [127.0.0.1:$BPORT]
routes:
  - upstream: app
EOF
"$MOAT_BIN" -c "$WORK/moat.yaml" >"$WORK/moat.out" 2>&1 &
MPID=$!
STARTED="$STARTED $MPID"
wait_port "$PORT" 10 || { cat "$WORK/moat.out" "$WORK/moat.err" 2>/dev/null >&2; die "moat did not start"; }
echo "slowhttp: moat $MOAT_BIN (pid $MPID) on 127.0.0.1:$PORT, backend on $BPORT"

# ---------------------------------------------------------------- attack
URL="http://127.0.0.1:$PORT/"
for mode in $MODES; do
	case $mode in
	H) args="-H -i 2 -x 24 -u $URL" ;;
	B) args="-B -i 2 -x 10 -s 8192 -u $URL" ;;
	X) args="-X -k 2 -n 1 -w 1 -y 128 -z 32 -u ${URL}big" ;;
	*) die "unknown mode $mode (H, B or X)" ;;
	esac
	# shellcheck disable=SC2086
	slowhttptest $args -c "$CONNS" -r 1000 -l "$SECONDS_" -p 5 -v 1 >"$WORK/slow-$mode.log" 2>&1 &
	pid=$!
	STARTED="$STARTED $pid"
	eval "SPID_$mode=$pid"
	echo "slowhttp: slowhttptest -$mode, $CONNS connections, ${SECONDS_}s (pid $pid)"
done

# ---------------------------------------------------------------- ordinary client
# From 127.0.0.2, one request at a time (GET, a small POST, GET of 64
# KiB in turn), each on a fresh connection, 5 s bound each, ~20 a second.
cat >"$WORK/client.py" <<'EOF'
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
reqs = [b"GET /ok HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
        b"POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 11\r\nConnection: close\r\n\r\nname=alice\n",
        b"GET /big HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"]
ok = failed = 0
lat = []
errors = {}
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    raw = reqs[i % len(reqs)]
    i += 1
    t0 = time.monotonic()
    try:
        s = socket.socket()
        s.settimeout(5)
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(raw)
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
            if time.monotonic() - t0 > 5:
                raise TimeoutError("slow response")
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        want = 64 * 1024 if b"/big" in raw else 3
        if head.startswith(b"HTTP/1.1 200 ") and len(body) == want:
            ok += 1
            lat.append(time.monotonic() - t0)
        else:
            failed += 1
            k = head.split(b"\r\n", 1)[0].decode("latin-1") or "empty answer"
            errors[k] = errors.get(k, 0) + 1
    except Exception as e:
        failed += 1
        k = type(e).__name__
        errors[k] = errors.get(k, 0) + 1
        try:
            s.close()
        except Exception:
            pass
    time.sleep(0.05)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0
print(f"{ok} {failed} {p(0.5):.1f} {p(0.99):.1f} {(lat[-1] * 1000 if lat else 0):.1f} {errors}")
EOF

# let the attack ramp up to its connection count first
sleep 3
CLIENT_SECONDS=$(( SECONDS_ > 4 ? SECONDS_ - 3 : 1 ))
"$PY" "$WORK/client.py" "$PORT" "$CLIENT_SECONDS" >"$WORK/client.out" 2>"$WORK/client.err" &
CPID=$!
STARTED="$STARTED $CPID"

# halfway through: moat's end of the client connections, by TCP state
# (FIN-WAIT: connections moat has closed whose data the kernel still holds
# for a client that reads slowly)
sleep $(( SECONDS_ / 2 ))
SOCKSTATES=""
if command -v ss >/dev/null; then
	SOCKSTATES=$(ss -tanH "( sport = :$PORT )" 2>/dev/null | awk '{ n[$1]++ } END { for (s in n) printf "%s %d  ", s, n[s] }')
fi

# every child has its own bound; wait for them, with a backstop
limit=$(( SECONDS_ + 60 ))
waited=0
for p in $CPID $(for m in $MODES; do eval "echo \$SPID_$m"; done); do
	while kill -0 "$p" 2>/dev/null && [ $waited -lt $limit ]; do
		sleep 1
		waited=$((waited + 1))
	done
	if kill -0 "$p" 2>/dev/null; then
		echo "slowhttp: pid $p still running after ${limit}s: stopped" >&2
		stop_pid "$p"
	else
		wait "$p" 2>/dev/null || true
		forget "$p"
	fi
done

# ---------------------------------------------------------------- report
# slowhttptest's last status block (it prints one every 5 s) and how it
# ended, without its colours
esc=$(printf '\033')
for mode in $MODES; do
	echo "--- slowhttptest -$mode"
	tr '\r' '\n' <"$WORK/slow-$mode.log" | sed "s/${esc}\[[0-9;]*[A-Za-z]//g" |
		grep -v '^[[:space:]]*$' |
		awk '/slow HTTP test status on/ { n = 0 } { block[n++] = $0 } END { for (i = 0; i < n; i++) print block[i] }' |
		grep -E 'status on|connected|pending|error|closed|available|Test ended|Exit status'
done

alive=1
kill -0 "$MPID" 2>/dev/null || alive=0
[ -s "$WORK/client.out" ] || { cat "$WORK/client.err" >&2; die "the ordinary client printed nothing"; }
read -r OK FAILED P50 P99 PMAX ERRS <"$WORK/client.out"
TOTAL=$((OK + FAILED))
echo "--- ordinary client (127.0.0.2)"
echo "requests: $TOTAL  ok: $OK  failed: $FAILED  latency ms p50 $P50 p99 $P99 max $PMAX"
[ "$FAILED" = 0 ] || echo "failures: $ERRS"
echo "moat running at the end: $([ $alive = 1 ] && echo yes || echo NO)"
[ -z "$SOCKSTATES" ] || echo "moat's client sockets halfway through, by state: $SOCKSTATES"
if [ -s "$WORK/moat.err" ]; then
	echo "--- moat error log (last lines)"
	tail -n 5 "$WORK/moat.err"
fi

[ "$TOTAL" -gt 0 ] || die "no ordinary request was sent"
[ $alive = 1 ] || die "moat died under the attack"
if [ $((OK * 100)) -lt $((TOTAL * MIN_OK)) ]; then
	die "only $OK of $TOTAL ordinary requests succeeded (< $MIN_OK%)"
fi
echo "slowhttp: PASS ($OK/$TOTAL ordinary requests succeeded under ${MODES} x $CONNS connections)"
