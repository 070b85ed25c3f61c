#!/usr/bin/python3
"""fuzz_socket.py - a bounded socket-level mutation fuzzer for moat.

    /usr/bin/python3 tests/adversarial/fuzz_socket.py [--cases N] [--seconds S]
        [--seed X] [--bin PATH] [--out DIR]

Starts MOAT_BIN (default build/asan/moat) in front of a recording backend
(harness.Backend, handler info()), then for each case: takes a valid seed
(GET, POST with Content-Length, chunked with extensions and trailers,
pipelined pairs, Expect: 100-continue, Upgrade: websocket, HTTP/1.0
keep-alive, absolute-form, HEAD, bodies that hold a whole request), applies
1-4 mutations (byte flips, CR/LF games, NUL / 0x80-0xff / DEL / VT, header
duplication and deletion, huge / signed / hex numbers, smuggling headers,
truncation, a pipelined tail), sends it from its own loopback source
address (127.x.y.z, so that X-Forwarded-For tells which case a backend
request belongs to) in 1-5 writes split at random points, half-closes or
not, and reads what comes back.

Checks, per case: moat alive, no sanitizer report; every byte received is a
sequence of valid HTTP/1.1 responses; moat's own responses never carry the
backend's address or port. At the end, per case: every request the backend
received is, in order, one that refparse.py says the client sent in full
(same method, target, Host, body, trailers; header lines all from the
client or moat's own), or a truncated copy of the one moat refused in the
middle of its body; never an extra one (a smuggled request).

Findings go to stdout and, with their bytes, to DIR/findings.jsonl.
Exit status 1 when anything was found.
"""

import argparse
import json
import os
import random
import re
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import refparse  # noqa: E402

# ---------------------------------------------------------------- seeds

H = b"Host: example.test\r\n"
SMUG = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"


def seeds():
    s = []
    s.append(b"GET /a?x=1 HTTP/1.1\r\n" + H + b"User-Agent: fuzz\r\nAccept: */*\r\n\r\n")
    s.append(b"POST /p HTTP/1.1\r\n" + H + b"Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world")
    s.append(b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTE: trailers\r\n\r\n"
             b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n")
    s.append(b"GET /one HTTP/1.1\r\n" + H + b"\r\n" + b"POST /two HTTP/1.1\r\n" + H +
             b"Content-Length: 3\r\n\r\nabc")
    s.append(b"POST /e HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
    s.append(b"GET /ws HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    s.append(b"GET /k1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /k2 HTTP/1.0\r\n" + H +
             b"Connection: keep-alive\r\n\r\n")
    s.append(b"GET http://example.test/abs?q HTTP/1.1\r\nHost: other.test\r\n\r\n")
    s.append(b"HEAD /h HTTP/1.1\r\n" + H + b"\r\nGET /after-head HTTP/1.1\r\n" + H + b"\r\n")
    s.append(b"POST /smug-cl HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(SMUG) + SMUG)
    body = b"%x\r\n" % len(SMUG) + SMUG + b"\r\n0\r\n\r\n"
    s.append(b"POST /smug-te HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    s.append(b"POST /smug-te2 HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUG)
    s.append(b"GET /conn HTTP/1.1\r\n" + H + b"Connection: close, X-Drop\r\nX-Drop: 1\r\nX_Under: 2\r\n"
             b"Keep-Alive: 5\r\n\r\n")
    s.append(b"\r\n\r\nOPTIONS * HTTP/1.1\r\n" + H + b"\r\n")
    s.append(b"PUT /big HTTP/1.1\r\n" + H + b"Content-Length: 300\r\n\r\n" + bytes(range(256)) + b"x" * 44)
    return s


# ---------------------------------------------------------------- mutations

INTERESTING = [b"\x00", b"\x0b", b"\x0c", b"\r", b"\n", b"\t", b" ", b"\x7f", b"\x80", b"\xff", b":",
               b",", b";", b'"', b"\\", b"\r\n", b"\n\r", b"\r\r\n", b"=", b"0", b"-", b"+", b"\x85",
               b"\xa0", b"\xc0\x80"]
NUMBERS = [b"0", b"1", b"-1", b"+5", b"0x5", b"00000000000000000005", b"18446744073709551616",
           b"4611686018427387904", b"4611686018427387903", b"99999999999999999999999999", b"5 ", b" 5",
           b"5,5", b"5, 6", b"", b"1e3", b"5.0", b"\t5", b"ffffffffffffffff", b"FFFFFFFFFFFFFFFFF",
           b"0000000000000000000000001", b"7fffffffffffffff"]
SMUGGLE_HEADERS = [
    b"Transfer-Encoding: chunked", b"Transfer-Encoding : chunked", b"Transfer-Encoding:\tchunked",
    b"Transfer-Encoding: chunked\x0b", b"Transfer-Encoding: \x0bchunked", b"Transfer-encoding: xchunked",
    b"Transfer-Encoding: chunked, chunked", b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, identity", b"Transfer-Encoding: identity", b"Transfer-Encoding:",
    b"Transfer-Encoding: CHUNKED", b"Transfer_Encoding: chunked", b" Transfer-Encoding: chunked",
    b"Transfer-Encoding: \"chunked\"", b"Transfer-Encoding: chunked;q=1", b"X: x\nTransfer-Encoding: chunked",
    b"Content-Length: 0", b"Content-Length: 5", b"Content-Length: 1000", b"Content-Length : 5",
    b"Content-Length: +5", b"Content-Length: 5\x00", b"Content_Length: 5", b"Content-Length:\t5\t",
    b"Content-Length: 05", b"Host: evil.test", b"Host: a@b", b"Host:", b"Connection: close",
    b"Connection: keep-alive", b"Connection: upgrade", b"Upgrade: h2c", b"Upgrade: websocket",
    b"Connection: content-length", b"Connection: transfer-encoding", b"Connection: host",
    b"Expect: 100-continue", b"TE: trailers", b"Trailer: Content-Length", b"X-Forwarded-For: 6.6.6.6",
    b"Forwarded: for=6.6.6.6", b"Proxy-Connection: keep-alive", b"Keep-Alive: timeout=5",
]


def lines_of(d):
    return d.split(b"\r\n")


def mutate_once(d, rnd):
    op = rnd.randrange(22)
    n = len(d)
    if n == 0:
        return rnd.choice(seeds())
    p = rnd.randrange(n + 1)
    if op == 0:  # replace a byte with an interesting one
        q = rnd.randrange(n)
        return d[:q] + rnd.choice(INTERESTING) + d[q + 1:]
    if op == 1:  # insert
        return d[:p] + rnd.choice(INTERESTING) + d[p:]
    if op == 2:  # random byte
        q = rnd.randrange(n)
        return d[:q] + bytes([rnd.randrange(256)]) + d[q + 1:]
    if op == 3:  # delete a range
        q = min(n, p + rnd.randrange(1, 8))
        return d[:p] + d[q:]
    if op == 4:  # CRLF -> LF
        idx = [m.start() for m in re.finditer(b"\r\n", d)]
        if idx:
            q = rnd.choice(idx)
            return d[:q] + d[q + 1:]
    if op == 5:  # CRLF -> CR
        idx = [m.start() for m in re.finditer(b"\r\n", d)]
        if idx:
            q = rnd.choice(idx)
            return d[:q + 1] + d[q + 2:]
    if op == 6:  # LF -> CRLF or stray LF
        return d[:p] + rnd.choice([b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n"]) + d[p:]
    if op == 7:  # duplicate a line
        ls = lines_of(d)
        if len(ls) > 2:
            k = rnd.randrange(1, len(ls) - 1)
            ls.insert(k + rnd.choice([0, 1]), ls[k])
            return b"\r\n".join(ls)
    if op == 8:  # delete a line
        ls = lines_of(d)
        if len(ls) > 2:
            del ls[rnd.randrange(1, len(ls) - 1)]
            return b"\r\n".join(ls)
    if op == 9:  # numbers
        ms = list(re.finditer(rb"[0-9a-fA-F]+", d))
        if ms:
            m = rnd.choice(ms)
            return d[:m.start()] + rnd.choice(NUMBERS) + d[m.end():]
    if op == 10:  # smuggling header
        ls = lines_of(d)
        if len(ls) > 2:
            k = rnd.randrange(1, min(len(ls), 8))
            ls.insert(k, rnd.choice(SMUGGLE_HEADERS))
            return b"\r\n".join(ls)
    if op == 11:  # truncate
        return d[:p]
    if op == 12:  # append a pipelined request
        return d + rnd.choice(seeds() + [SMUG])
    if op == 13:  # case flip
        q = rnd.randrange(n)
        return d[:q] + d[q:q + 1].swapcase() + d[q + 1:]
    if op == 14:  # whitespace around colon
        ms = [m.start() for m in re.finditer(b":", d)]
        if ms:
            q = rnd.choice(ms)
            return d[:q] + rnd.choice([b" :", b"\t:", b": ", b":\t", b"::", b": \x0b"]) + d[q + 1:]
    if op == 15:  # version
        ms = list(re.finditer(rb"HTTP/1\.[01]", d))
        if ms:
            m = rnd.choice(ms)
            return d[:m.start()] + rnd.choice([b"HTTP/1.0", b"HTTP/1.1", b"HTTP/0.9", b"HTTP/2.0",
                                               b"HTTP/1.2", b"http/1.1", b"HTTP/1.10", b"HTTP/1",
                                               b"HTTP/1.1 ", b"HTTP/9.9", b"HTTP/01.1"]) + d[m.end():]
    if op == 16:  # request line target games
        ms = list(re.finditer(rb" (/[^ ]*) ", d))
        if ms:
            m = rnd.choice(ms)
            return d[:m.start(1)] + rnd.choice([
                b"http://evil.test/x", b"http://a@b/", b"https://example.test", b"*", b"//x", b"/a#frag",
                b"http://h?q", b"http://[::1]:80/", b"x", b"/%00", b"/" + b"A" * rnd.choice([100, 9000]),
                b"http:///p", b"HTTP://EXAMPLE.TEST/u", b"/a b"]) + d[m.end(1):]
    if op == 17:  # method games
        ms = list(re.finditer(rb"(^|\r\n)([A-Z]+) ", d))
        if ms:
            m = rnd.choice(ms)
            return d[:m.start(2)] + rnd.choice([b"CONNECT", b"HEAD", b"OPTIONS", b"GET", b"POST", b"G\x00T",
                                                b"TRACE", b"PRI", b"", b"get", b"X" * 50]) + d[m.end(2):]
    if op == 18:  # chunk-size games
        ms = list(re.finditer(rb"\r\n([0-9a-fA-F]+)(;[^\r]*)?\r\n", d))
        if ms:
            m = rnd.choice(ms)
            rep = rnd.choice([b"+5", b"0x5", b"5 ", b" 5", b"5;", b"5;a=", b"5;a=\"x", b"5\t;x", b"-1",
                              b"00000000000000005", b"fffffffffffffffff", b"5;a=b=c", b"5\n", b"0",
                              b"5;\x00", b"5;a=\"\\\x01\""])
            return d[:m.start(1)] + rep + d[m.end(1) + (len(m.group(2)) if m.group(2) else 0):]
    if op == 19:  # long header value / many headers
        ls = lines_of(d)
        if len(ls) > 2:
            k = rnd.randrange(1, len(ls) - 1)
            if rnd.random() < 0.5:
                ls.insert(k, b"X-Long: " + b"v" * rnd.choice([100, 4000, 33000]))
            else:
                for j in range(rnd.choice([50, 99, 100, 101])):
                    ls.insert(k, b"X-M%d: %d" % (j, j))
            return b"\r\n".join(ls)
    if op == 20:  # leading empty lines
        return rnd.choice([b"\r\n", b"\r\n" * 4, b"\r\n" * 5, b"\n", b" "]) + d
    if op == 21:  # splice two seeds
        o = rnd.choice(seeds())
        return d[:p] + o[rnd.randrange(len(o)):]
    return d


def mutate(d, rnd):
    for _ in range(rnd.choice([1, 1, 1, 2, 2, 3, 4])):
        d = mutate_once(d, rnd)
    return d


# ---------------------------------------------------------------- responses

STATUS_RE = re.compile(rb"HTTP/1\.1 ([1-9][0-9][0-9]) [^\r\n\x00-\x08\x0a-\x1f\x7f]*\r\n")
FIELD_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n\x00-\x08\x0a-\x1f\x7f]*\r\n")


def parse_responses(data, methods, closed):
    """Parses data as back-to-back responses. Returns (list of (status,
    headers, body), problem or None)."""
    out = []
    i = 0
    k = 0
    while i < len(data):
        m = STATUS_RE.match(data, i)
        if not m:
            return out, f"bad status line at {i}: {data[i:i + 80]!r}"
        status = int(m.group(1))
        j = m.end()
        headers = []
        while True:
            if data.startswith(b"\r\n", j):
                j += 2
                break
            f = FIELD_RE.match(data, j)
            if not f:
                if j >= len(data) - 1:
                    return out, f"truncated head: {data[i:i + 200]!r}"
                return out, f"bad field line at {j}: {data[j:j + 80]!r}"
            name, _, value = f.group(0)[:-2].partition(b": ")
            headers.append((name.lower(), value))
            j = f.end()
        cl = [v for n, v in headers if n == b"content-length"]
        te = [v for n, v in headers if n == b"transfer-encoding"]
        if len(cl) > 1 or (cl and te):
            return out, f"ambiguous response framing {headers!r}"
        method = methods[k] if k < len(methods) else b"GET"
        body = b""
        if 100 <= status < 200:
            if status == 101:
                return out + [(status, headers, b"")], None
            out.append((status, headers, b""))
            i = j
            continue
        if method == b"HEAD" or status in (204, 304):
            pass
        elif te:
            if te != [b"chunked"]:
                return out, f"response TE {te!r}"
            body = bytearray()
            while True:
                e = data.find(b"\r\n", j)
                if e < 0:
                    return out, "truncated chunked response"
                size = int(data[j:e], 16)
                j = e + 2
                if size == 0:
                    break
                body += data[j:j + size]
                if data[j + size:j + size + 2] != b"\r\n":
                    return out, "truncated chunk"
                j += size + 2
            while True:
                e = data.find(b"\r\n", j)
                if e < 0:
                    return out, "truncated trailers"
                if e == j:
                    j += 2
                    break
                j = e + 2
        elif cl:
            n = int(cl[0])
            if len(data) - j < n:
                return out, f"truncated body ({len(data) - j} of {n}): head {data[i:j]!r}"
            body = data[j:j + n]
            j += n
        else:
            body = data[j:]
            if not closed:
                return out, "close-delimited response on an open connection"
            j = len(data)
        out.append((status, headers, bytes(body)))
        i = j
        k += 1
    return out, None


# ---------------------------------------------------------------- driver

def source_for(i):
    """A distinct loopback address per case (up to 254^2 * 250)."""
    return f"127.{1 + i // 64516}.{(i // 254) % 254 + 1}.{i % 254 + 1}"


MOAT_ADDED = {b"host", b"content-length", b"transfer-encoding", b"x-forwarded-for", b"x-forwarded-proto",
              b"x-forwarded-host", b"forwarded", b"connection", b"te"}


class Fuzzer:
    def __init__(self, args):
        import common
        self.common = common
        self.args = args
        import threading
        self.lock = threading.Lock()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.findings = []
        self.cases = {}        # source ip -> (data, shut)
        self.stats = {"cases": 0, "responses": 0, "forwarded": 0, "stricter": 0}
        self.rig = common.Rig(config={"workers": 2, "log": {"level": "info"},
                                      "timeouts": {"client_header": "3s", "client_body": "3s",
                                                   "keepalive": "3s"}})
        self.port = self.rig.port
        self.bport = self.rig.backend.port
        self.leak_needles = [b"127.0.0.1:%d" % self.bport, b"%d" % self.bport]

    def finding(self, kind, msg, data=None, extra=None):
        with self.lock:
            self._finding(kind, msg, data, extra)

    def _finding(self, kind, msg, data=None, extra=None):
        rec = {"kind": kind, "msg": msg}
        if data is not None:
            rec["sent"] = data.decode("latin-1")
        if extra:
            rec.update(extra)
        self.findings.append(rec)
        with open(self.out / "findings.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"FINDING [{kind}] {msg}" + (f"\n  sent={data[:300]!r}" if data is not None else ""),
              flush=True)

    def run_case(self, i, data, shut, rnd, mode="random"):
        src = source_for(i)
        with self.lock:
            self.cases[src] = (data, shut)
        reqs, end = refparse.parse_stream(data)
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect(("127.0.0.1", self.port))
        except OSError as e:
            self.finding("connect", f"connect failed: {e}", data)
            s.close()
            return
        if mode == "whole":
            cuts = []
        elif mode == "bytes":
            cuts = list(range(1, len(data)))
        else:
            cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randrange(0, 5)))) \
                if len(data) > 1 else []
        parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        got = bytearray()
        closed = False
        try:
            for k, part in enumerate(parts):
                s.sendall(part)
                if mode == "bytes" and len(parts) < 400:
                    time.sleep(0.0005)
                elif mode != "bytes" and k + 1 < len(parts) and rnd.random() < 0.5:
                    time.sleep(rnd.random() * 0.003)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # moat may close early on a refused head
        # Without a FIN: wait for a close when the model expects one, else
        # for as many responses as complete requests, then a short quiet.
        complete = len([r for r in reqs if not r.partial])
        expect_close = shut or end[0] in ("close", "error")
        deadline = time.monotonic() + (8 if expect_close else 2.5)
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except socket.timeout:
                if expect_close:
                    continue
                if end[0] == "done" and got.count(b"HTTP/1.1 ") - got.count(b"HTTP/1.1 100 ") < complete:
                    continue
                break
            except OSError:
                closed = True
                break
            if not d:
                closed = True
                break
            got += d
        else:
            if expect_close:
                self.finding("hang", f"no close within 8s (shut={shut}, ref end {end})", data,
                             {"got": bytes(got[:400]).decode("latin-1")})
        s.close()
        self.check_responses(src, data, bytes(got), closed)

    def check_responses(self, src, data, got, closed):
        reqs, end = refparse.parse_stream(data)
        methods = [r.method for r in reqs]
        if end[0] == "error" and end[2]:
            methods.append(end[2])
        resps, prob = parse_responses(got, methods, closed)
        if prob and not (prob.startswith("truncated") and not closed):
            self.finding("response", prob, data, {"got": got[:600].decode("latin-1")})
        final = [r for r in resps if not (100 <= r[0] < 200)]
        self.stats["responses"] += len(final)
        complete = [r for r in reqs if not r.partial]
        if len(final) > len(complete) + 1:
            self.finding("response-count", f"{len(final)} responses for {len(complete)} complete requests "
                         f"(ref end {end})", data, {"got": got[:600].decode("latin-1")})
        for k, (status, headers, body) in enumerate(final):
            own = not any(n == b"x-backend" for n, _ in headers)
            if own:
                blob = b"\r\n".join(n + b": " + v for n, v in headers) + body
                for needle in self.leak_needles:
                    if needle in blob:
                        self.finding("leak", f"moat response {status} holds {needle!r}", data,
                                     {"got": got[:600].decode("latin-1")})
                if k < len(complete) and status not in (408,):
                    self.stats["stricter"] += 1
                    if self.stats["stricter"] <= 20 or self.args.verbose:
                        print(f"note: moat answered {status} to a request refparse accepts: "
                              f"{data[:200]!r}", flush=True)

    def check_backend(self):
        be = self.rig.backend
        time.sleep(0.5)
        with be.cond:
            reqs = list(be.requests)
        groups = {}
        for r in reqs:
            xff = r.header_all("X-Forwarded-For")
            if len(xff) != 1:
                self.finding("backend-head", f"X-Forwarded-For {xff!r} in {bytes(r.raw[:300])!r}")
                continue
            groups.setdefault(xff[0], []).append(r)
        self.stats["forwarded"] = len(reqs)
        for src, got in groups.items():
            if src not in self.cases:
                self.finding("backend-unknown", f"request from unknown source {src}: {bytes(got[0].raw[:300])!r}")
                continue
            data, shut = self.cases[src]
            ref, end = refparse.parse_stream(data)
            for k, b in enumerate(got):
                raw = bytes(b.raw[:2000]).decode("latin-1")
                if k >= len(ref):
                    self.finding("smuggling", f"backend got request #{k + 1} ({b.method} {b.target}) but the "
                                 f"client sent only {len(ref)} (ref end {end})", data, {"backend": raw})
                    continue
                r = ref[k]
                want_t = r.fwd_target.decode("latin-1")
                if b.method.encode("latin-1") != r.method or b.target != want_t:
                    self.finding("mismatch", f"backend #{k + 1} {b.method} {b.target}, client sent "
                                 f"{r.method!r} {want_t!r}", data, {"backend": raw})
                    continue
                hosts = b.header_all("Host")
                if r.fwd_host is not None and hosts != [r.fwd_host.decode("latin-1")]:
                    self.finding("host", f"backend Host {hosts!r}, expected {r.fwd_host!r}", data,
                                 {"backend": raw})
                self.check_head_lines(b, r, data)
                if b.done and r.partial:
                    self.finding("smuggling-partial", f"backend got a complete request #{k + 1} that the "
                                 f"client never completed (ref end {end})", data, {"backend": raw})
                if b.done and not r.partial:
                    if bytes(b.body) != r.body:
                        self.finding("body", f"backend body {bytes(b.body)[:100]!r} != {r.body[:100]!r}",
                                     data, {"backend": raw})
                    want_tr = [(ln.split(b":", 1)[0].decode("latin-1"),
                                ln.split(b":", 1)[1].strip(b" \t").decode("latin-1")) for ln in r.trailers]
                    if r.framing == "chunked" and b.trailers != want_tr:
                        self.finding("trailers", f"backend trailers {b.trailers!r} != {want_tr!r}", data,
                                     {"backend": raw})
                if not b.done and not r.partial:
                    body_so_far = bytes(b.body)
                    if not r.body.startswith(body_so_far):
                        self.finding("body", "truncated backend body is no prefix of the client's", data,
                                     {"backend": raw})

    def check_head_lines(self, b, r, data):
        head = bytes(b.head)
        lines = head[:-4].split(b"\r\n")
        if not re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+ HTTP/1\.1", lines[0]):
            self.finding("backend-head", f"request line {lines[0]!r}", data)
        client = {(n.lower(), v) for n, v in r.headers}
        names = []
        for ln in lines[1:]:
            m = re.fullmatch(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ([^\r\n\x00-\x08\x0a-\x1f\x7f]*)", ln)
            if not m:
                self.finding("backend-head", f"bad field line {ln!r}", data, {"backend": head.decode("latin-1")})
                continue
            n, v = m.group(1).lower(), m.group(2)
            names.append(n)
            if n in MOAT_ADDED or n == b"upgrade":
                continue
            if (n, v) not in client:
                self.finding("backend-head", f"field {ln!r} not sent by the client", data,
                             {"backend": head.decode("latin-1")})
            if b"_" in n:
                self.finding("backend-head", f"field with '_' forwarded: {ln!r}", data)
        for n in (b"host", b"content-length", b"transfer-encoding", b"x-forwarded-for", b"forwarded"):
            if names.count(n) > 1:
                self.finding("backend-head", f"{n!r} twice in the forwarded head", data,
                             {"backend": head.decode("latin-1")})
        if b"content-length" in names and b"transfer-encoding" in names:
            self.finding("backend-head", "CL and TE both forwarded", data, {"backend": head.decode("latin-1")})

    def health(self, data):
        probs = self.rig.problems()
        if probs:
            self.finding("crash", "\n".join(probs)[:4000], data)
            return False
        return True

    def run(self):
        import threading
        base = seeds()
        t0 = time.monotonic()
        counter = iter(range(self.args.cases))
        stop = threading.Event()

        def worker():
            while not stop.is_set():
                with self.lock:
                    i = next(counter, None)
                if i is None or time.monotonic() - t0 > self.args.seconds:
                    return
                rnd = random.Random(self.args.seed * 1000003 + i)
                if self.vectors:
                    data, shut, mode = self.vectors[i]
                else:
                    seed = rnd.choice(base)
                    data = seed if rnd.random() < 0.03 else mutate(seed, rnd)
                    shut, mode = rnd.random() < 0.6, "random"
                self.run_case(i, data, shut, rnd, mode)
                with self.lock:
                    self.stats["cases"] += 1
                    n = self.stats["cases"]
                    self.last = data
                if n % 500 == 0:
                    if not self.health(data):
                        stop.set()
                        return
                    el = time.monotonic() - t0
                    print(f"{n} cases, {el:.0f}s, {n / el:.0f}/s, rss {self.rig.moat.rss_kib()} KiB, "
                          f"findings {len(self.findings)}", flush=True)

        self.last = None
        self.vectors = None
        if self.args.vectors:
            import vectors
            self.vectors = [(v, shut, mode) for v in vectors.vectors() for shut in (True, False)
                            for mode in ("whole", "bytes", "random", "random")]
            counter = iter(range(len(self.vectors)))
            print(f"{len(self.vectors)} vector cases", flush=True)
        ths = [threading.Thread(target=worker, daemon=True) for _ in range(self.args.threads)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        self.health(self.last)
        self.check_backend()
        be_errors = [e for e in self.rig.backend.errors if "AssertionError" in e]
        for e in be_errors[:20]:
            self.finding("backend-parse", e)
        probs = self.rig.stop()
        if probs:
            self.finding("teardown", "\n".join(probs)[:4000])
        print(json.dumps(self.stats), flush=True)
        print(f"{len(self.findings)} findings", flush=True)
        return 1 if self.findings else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--vectors", action="store_true", help="run vectors.py instead of mutations")
    ap.add_argument("--bin", default=None)
    ap.add_argument("--out", default="/tmp/moat-fuzz")
    args = ap.parse_args()
    if args.bin:
        os.environ["MOAT_BIN"] = os.path.abspath(args.bin)
    sys.exit(Fuzzer(args).run())


if __name__ == "__main__":
    main()
