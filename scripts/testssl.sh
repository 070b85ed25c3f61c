#!/bin/sh
# testssl.sh - moat's TLS listener under testssl.sh (Debian's package
# testssl.sh, command `testssl`). Entry point of `make testssl`; not part of
# `make test` (it takes about a minute). docs/tls.md quotes its result.
#
# What it does:
#   1. makes a throw-away CA and, signed by it, an ECDSA P-256 and an RSA
#      2048 certificate for localhost and 127.0.0.1 (openssl; TESTSSL_CERTS
#      picks ecdsa, rsa or both on one listener, the default);
#   2. starts bench/backend.c and moat with one TLS listener on
#      127.0.0.1:TESTSSL_PORT and nothing else set: what is tested is
#      moat's defaults;
#   3. runs testssl with TESTSSL_CHECKS (default: -p protocols, -P the
#      server's preferences, -E ciphers per protocol, -S server defaults,
#      -U vulnerabilities), the CA added (--add-ca), no DNS (--nodns none),
#      bounded by TESTSSL_SECONDS;
#   4. prints testssl's report, then reads its JSON findings and fails
#      (exit 1) when any of these is found:
#        - SSLv2, SSLv3, TLS 1.0 or TLS 1.1 offered;
#        - a cipher offered without forward secrecy (no ECDHE/DHE key
#          exchange; TLS 1.3's suites always have it) or without AEAD
#          (not GCM, CCM or ChaCha20-Poly1305);
#        - a NULL, anonymous, export, low or 3DES/IDEA cipher class
#          offered (-s);
#        - a vulnerability test whose finding says VULNERABLE (not "not
#          vulnerable"), or rates it MEDIUM, HIGH or CRITICAL;
#        - a scan that did not finish (FATAL, scanProblem, no cipher list).
#      Findings on the certificate itself (a private CA, a short validity,
#      no OCSP or CRL URI) are listed but expected of a test certificate.
#
# Environment (defaults in brackets):
#   TESTSSL_PORT [38543] (backend: +1)  TESTSSL_CERTS [both]
#   TESTSSL_CHECKS ["-p -P -E -S -U"]  TESTSSL_SECONDS [240]
#   MOAT_BIN [build/moat]  TESTSSL [testssl in PATH]
#
# Output files go to build/testssl/ (moat.yaml, the certificates,
# testssl.txt, testssl.json, moat.log). Every process it starts is stopped
# by PID on exit; everything listens on 127.0.0.1 only.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOAT=${MOAT_BIN:-$ROOT/build/moat}
PORT=${TESTSSL_PORT:-38543}
BPORT=$((PORT + 1))
CERTS=${TESTSSL_CERTS:-both}
CHECKS=${TESTSSL_CHECKS:--p -P -E -S -U}
LIMIT=${TESTSSL_SECONDS:-240}
TESTSSL=${TESTSSL:-$(command -v testssl 2>/dev/null || command -v testssl.sh 2>/dev/null || echo testssl)}
PY=${PYTHON:-/usr/bin/python3}
DIR=$ROOT/build/testssl

log() { echo "testssl: $*" >&2; }
die() { log "$*"; exit 2; }

command -v "$TESTSSL" >/dev/null 2>&1 || die "testssl not found (apt-get install testssl.sh)"
for t in openssl curl timeout "$PY"; do
	command -v "$t" >/dev/null 2>&1 || die "$t not found"
done
[ -x "$MOAT" ] || die "$MOAT not found (run make)"
case "$PORT$LIMIT" in *[!0-9]*) die "TESTSSL_PORT and TESTSSL_SECONDS must be integers" ;; esac
case "$CERTS" in ecdsa | rsa | both) ;; *) die "TESTSSL_CERTS: ecdsa, rsa or both" ;; esac

rm -rf "$DIR"
mkdir -p "$DIR"

STARTED=""
cleanup() {
	for p in $STARTED; do
		kill -TERM "$p" 2>/dev/null || continue
		n=0
		while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do
			sleep 0.1
			n=$((n + 1))
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	STARTED=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- certificates -----------------------------------------------------------

# leaf NAME KEYOPTS...: a key and a certificate for localhost / 127.0.0.1
# signed by the CA.
leaf() {
	name=$1
	shift
	openssl req -new -nodes "$@" -keyout "$DIR/$name.key" -out "$DIR/$name.csr" -subj /CN=localhost
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature%s\n' \
		"$([ "$name" = rsa ] && echo ',keyEncipherment')" > "$DIR/$name.ext"
	openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
		-days 7 -sha256 -extfile "$DIR/$name.ext" -out "$DIR/$name.pem"
}

{
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 7 \
		-keyout "$DIR/ca.key" -out "$DIR/ca.pem" -subj "/CN=moat testssl CA"
	leaf ecdsa -newkey ec -pkeyopt ec_paramgen_curve:P-256
	leaf rsa -newkey rsa:2048
} > "$DIR/openssl.log" 2>&1 || die "cannot make the certificates (see build/testssl/openssl.log)"

case $CERTS in
ecdsa) certs="[{cert: $DIR/ecdsa.pem, key: $DIR/ecdsa.key}]" ;;
rsa) certs="[{cert: $DIR/rsa.pem, key: $DIR/rsa.key}]" ;;
both) certs="[{cert: $DIR/ecdsa.pem, key: $DIR/ecdsa.key}, {cert: $DIR/rsa.pem, key: $DIR/rsa.key}]" ;;
esac
cat > "$DIR/moat.yaml" <<EOF
workers: 1
log: {level: warn, access: off}
listeners:
  - listen: 127.0.0.1:$PORT
    tls: {certs: $certs}
upstreams: {b: {servers: [127.0.0.1:$BPORT]}}
routes: [{upstream: b}]
EOF

# --- start ---------------------------------------------------------------------

make -s -C "$ROOT/bench" OUT="$ROOT/build/bench" >&2 || die "cannot build bench/*.c"
"$ROOT/build/bench/backend" "127.0.0.1:$BPORT" 2> "$DIR/backend.log" &
STARTED="$STARTED $!"
"$MOAT" -c "$DIR/moat.yaml" > "$DIR/moat.log" 2>&1 &
MPID=$!
STARTED="$STARTED $MPID"
n=0
code=000
while [ $n -lt 100 ]; do
	code=$(curl -s -o /dev/null --max-time 2 --cacert "$DIR/ca.pem" -w '%{http_code}' \
		"https://localhost:$PORT/1k" --resolve "localhost:$PORT:127.0.0.1" 2>/dev/null || true)
	[ "$code" = 200 ] && break
	kill -0 $MPID 2>/dev/null || break
	sleep 0.2
	n=$((n + 1))
done
if [ "$code" != 200 ]; then
	tail -5 "$DIR/moat.log" >&2 || true
	die "moat does not answer over TLS on 127.0.0.1:$PORT (last status $code; see build/testssl/moat.log)"
fi
log "moat ($($MOAT --version 2>/dev/null | head -1)) on 127.0.0.1:$PORT, certificates: $CERTS; running testssl $CHECKS (at most ${LIMIT}s)"

# --- testssl ---------------------------------------------------------------------

rc=0
# shellcheck disable=SC2086
timeout "$LIMIT" "$TESTSSL" --quiet --color 0 --warnings off --nodns none --ip 127.0.0.1 \
	--connect-timeout 5 --openssl-timeout 5 --add-ca "$DIR/ca.pem" \
	--jsonfile "$DIR/testssl.json" $CHECKS "localhost:$PORT" > "$DIR/testssl.txt" 2>&1 || rc=$?
cat "$DIR/testssl.txt"
if [ "$rc" = 124 ]; then
	log "testssl ran past ${LIMIT}s and was stopped"
fi
kill -0 $MPID 2>/dev/null || log "moat is no longer running (see build/testssl/moat.log)"
cleanup

# --- verdict -------------------------------------------------------------------------

"$PY" - "$DIR/testssl.json" "$rc" "$CHECKS" <<'EOF'
import json, re, sys

path, rc, checks = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    with open(path) as f:
        findings = json.load(f)
except (OSError, ValueError) as e:
    print(f"testssl: no JSON findings ({e}); testssl exit status {rc}")
    sys.exit(1)

OLD = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLS 1.0", "TLS1_1": "TLS 1.1"}
VULNS = {"heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego",
         "CRIME_TLS", "BREACH", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN",
         "LOGJAM", "LOGJAM-common_primes", "BEAST", "BEAST_CBC_TLS1", "LUCKY13", "RC4",
         "winshock", "GREASE", "opossum"}
WEAK_CLASSES = {"cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                "cipherlist_3DES_IDEA"}
BAD_SEV = {"MEDIUM", "HIGH", "CRITICAL"}

fail, cert_notes, protocols, ciphers, vulns = [], [], [], [], []
for x in findings:
    i, sev, fin = x.get("id", ""), x.get("severity", ""), x.get("finding", "")
    if sev == "FATAL" or i.startswith("scanProblem"):
        fail.append(f"the scan did not finish: {i}: {fin}")
    elif i in OLD:
        protocols.append(f"{OLD[i]}: {fin}")
        if fin.startswith("offered"):
            fail.append(f"{OLD[i]} is offered")
    elif i in ("TLS1_2", "TLS1_3", "ALPN_HTTP2", "ALPN"):
        protocols.append(f"{i}: {fin}")
    elif i.startswith("cipher-"):
        words = fin.split()
        proto = " ".join(words[:2])
        iana = words[-1] if words else "?"
        ciphers.append(f"{proto} {iana}")
        tls13 = proto == "TLS 1.3"
        fs = tls13 or iana.startswith(("TLS_ECDHE_", "TLS_DHE_"))
        aead = tls13 or bool(re.search(r"_GCM_|_CCM|_CHACHA20_POLY1305", iana))
        if not fs:
            fail.append(f"{proto} {iana}: no forward secrecy")
        if not aead:
            fail.append(f"{proto} {iana}: not AEAD")
    elif i in WEAK_CLASSES:
        if fin.startswith("offered") or sev in BAD_SEV:
            fail.append(f"{i}: {fin}")
    elif i in VULNS:
        vulns.append(f"{i}: {sev}: {fin}")
        low = fin.lower()
        if ("vulnerable" in low and "not vulnerable" not in low) or sev in BAD_SEV:
            fail.append(f"{i}: {sev}: {fin}")
    elif (i.startswith("cert") or i in ("OCSP_stapling", "DNS_CAArecord")) and sev in BAD_SEV | {"LOW", "WARN"}:
        cert_notes.append(f"{i}: {sev}: {fin}")

listing = any(w in ("-E", "-e", "--cipher-per-proto", "--each-cipher") for w in checks.split())
if listing and not ciphers:
    fail.append("no cipher listed: the cipher test (-E) did not run to its end")
if rc == 124:
    fail.append("testssl was stopped by the time limit (TESTSSL_SECONDS)")

print()
print("== testssl verdict ==")
for title, items in (("protocols", protocols), ("ciphers offered", ciphers),
                     ("vulnerability tests", vulns),
                     ("certificate findings (expected of a test certificate)", cert_notes)):
    if items:
        print(f"{title}:")
        for s in items:
            print(f"  {s}")
if fail:
    print("FAILED:")
    for s in fail:
        print(f"  {s}")
    sys.exit(1)
print(f"OK: {len(ciphers)} ciphers, all forward-secret AEAD; no protocol below TLS 1.2; "
      f"no vulnerability found ({len(vulns)} tests)")
EOF
