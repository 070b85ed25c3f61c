#!/usr/bin/python3
"""fuzz_backend.py - the other side: a backend that answers mutated
responses, written in pieces split at random points with pauses, and
sometimes closes after them. Bounded (--cases, --seconds).

    /usr/bin/python3 tests/adversarial/fuzz_backend.py [--cases N] [--seconds S] [--bin PATH]

For each case the client asks GET (or HEAD) /c/<n>; refparse.parse_response
says what it must get:
    ok        the same status and decoded body (and 1xx forwarded), well framed
    bad-head  a 502 from moat, nothing of the backend's head
    bad-body  the backend's status, then a close before a complete body
and it must get it within a bound (no stall on a head split across reads).
After each case a fresh request /clean/<n> must get exactly "clean <n>":
bytes a backend sent past its response must never become the response to
another request (a poisoned pooled connection).
"""

import argparse
import json
import os
import random
import re
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

import refparse  # noqa: E402
from fuzz_socket import INTERESTING, NUMBERS, parse_responses  # noqa: E402

RESP_SEEDS = [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;e=1\r\nhello\r\n6\r\n world\r\n"
    b"0\r\nX-T: 1\r\nContent-Length: 9\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nclose delimited body",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\nServer: secret/1.0\r\nX-Powered-By: php\r\n\r\nhello",
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nSet-Cookie: a=b\r\n\r\nerror",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nEVIL!!",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"
    b"Content-Length: 6\r\n\r\nEVIL!!",
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 3000 + b"\r\nContent-Length: 2\r\n\r\nok",
]


def mutate_once(d, rnd):
    n = len(d)
    if n == 0:
        return rnd.choice(RESP_SEEDS)
    op = rnd.randrange(12)
    p = rnd.randrange(n + 1)
    if op == 0:
        q = rnd.randrange(n)
        return d[:q] + rnd.choice(INTERESTING) + d[q + 1:]
    if op == 1:
        return d[:p] + rnd.choice(INTERESTING) + d[p:]
    if op == 2:
        return d[:p] + d[min(n, p + rnd.randrange(1, 6)):]
    if op == 3:
        idx = [m.start() for m in re.finditer(b"\r\n", d)]
        if idx:
            q = rnd.choice(idx)
            return d[:q] + d[q + 1:]
    if op == 4:
        ms = list(re.finditer(rb"[0-9a-fA-F]+", d))
        if ms:
            m = rnd.choice(ms)
            return d[:m.start()] + rnd.choice(NUMBERS) + d[m.end():]
    if op == 5:
        ls = d.split(b"\r\n")
        if len(ls) > 2:
            k = rnd.randrange(1, len(ls) - 1)
            ls.insert(k, rnd.choice([b"Transfer-Encoding: chunked", b"Content-Length: 3", b"Content-Length: 0",
                                     b"Connection: close", b"Connection: content-length", b"Transfer-Encoding: gzip",
                                     b"X: y\nZ: w", b" folded", b"Set-Cookie: s=1", b"Upgrade: websocket"]))
            return b"\r\n".join(ls)
    if op == 6:
        return d[:p]
    if op == 7:
        ms = list(re.finditer(rb"HTTP/1\.[01] [0-9]{3}", d))
        if ms:
            m = rnd.choice(ms)
            return d[:m.start()] + rnd.choice([b"HTTP/1.1 101", b"HTTP/1.1 100", b"HTTP/1.1 102", b"HTTP/1.1 099",
                                               b"HTTP/1.1 1000", b"HTTP/1.0 204", b"HTTP/1.1 304", b"HTTP/2.0 200",
                                               b"HTTP/1.1 200", b"HTTP/1.1 999", b"http/1.1 200"]) + d[m.end():]
    if op == 8:
        ls = d.split(b"\r\n")
        if len(ls) > 2:
            k = rnd.randrange(1, len(ls) - 1)
            ls.insert(k, ls[k])
            return b"\r\n".join(ls)
    if op == 9:
        return d + rnd.choice(RESP_SEEDS)
    if op == 10:
        return rnd.choice([b"HTTP/1.1 102 Processing\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\n"]) * \
            rnd.choice([1, 3, 40]) + d
    if op == 11:
        q = rnd.randrange(n)
        return d[:q] + d[q:q + 1].swapcase() + d[q + 1:]
    return d


def head_end(data, is_head):
    """Offset just past the final response head (1xx heads included), or
    len(data) when there is none."""
    pos = 0
    while True:
        try:
            h = refparse.parse_response_head(data, pos, is_head)
        except refparse.Bad:
            return len(data)
        if h is refparse.AGAIN:
            return len(data)
        r, i = h
        if 100 <= r.status < 200 and r.status != 101:
            pos = i
            continue
        return i


class BackendFuzzer:
    def __init__(self, args):
        import common
        import harness
        self.args = args
        self.plan = {}
        self.lock = threading.Lock()
        self.findings = []
        self.stats = {"cases": 0, "ok": 0, "bad-head": 0, "bad-body": 0, "again": 0}
        self.harness = harness
        self.rig = common.Rig(config={"workers": 2, "timeouts": {"backend_first_byte": "3s",
                                                                 "backend_idle": "3s"}},
                              handler=self.handler)
        self.port = self.rig.port
        self.bport = self.rig.backend.port

    def handler(self, req, conn):
        req.read_body()
        m = re.fullmatch(r"/(c|clean)/(\d+)", req.target)
        if not m or m.group(1) == "clean":
            n = m.group(2) if m else "?"
            conn.send_response(200, f"clean {n}".encode(), [("Content-Type", "text/plain")], req=req)
            return
        data, cuts, close = self.plan[int(m.group(2))]
        parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        try:
            for k, part in enumerate(parts):
                conn.send(part)
                if k + 1 < len(parts):
                    time.sleep(0.02)
        except OSError:
            pass
        if close:
            conn.close()
        # else: keep-alive, the connection serves the next request moat sends on it

    def finding(self, kind, msg, extra=None):
        rec = {"kind": kind, "msg": msg}
        rec.update(extra or {})
        with self.lock:
            self.findings.append(rec)
            with open(Path(self.args.out) / "findings.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        print(f"FINDING [{kind}] {msg}", flush=True)

    def case(self, i):
        rnd = random.Random(self.args.seed * 7919 + i)
        data = rnd.choice(RESP_SEEDS)
        if rnd.random() > 0.1:
            for _ in range(rnd.choice([1, 1, 2, 3])):
                data = mutate_once(data, rnd)
        if not data:
            data = b"x"
        cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.choice([0, 1, 1, 2, 3])))) \
            if len(data) > 1 else []
        close = rnd.random() < 0.5
        is_head = rnd.random() < 0.15
        if self.args.whole_heads:
            # mask finding 1 (a head split across reads stalls): cut only after the heads
            end = head_end(data, is_head)
            cuts = [c for c in cuts if c >= end]
        self.plan[i] = (data, cuts, close)
        method = b"HEAD" if is_head else b"GET"
        want = refparse.parse_response(data, is_head, eof=close)
        extra = {"backend_sent": data.decode("latin-1"), "cuts": cuts, "close": close, "method": method.decode()}
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(method + b" /c/%d HTTP/1.1\r\nHost: example.test\r\n\r\n" % i)
        s.settimeout(0.3)
        got = bytearray()
        t0 = time.monotonic()
        closed = False
        limit = 2.0 + 0.02 * len(cuts)
        while time.monotonic() - t0 < 6:
            try:
                d = s.recv(65536)
            except socket.timeout:
                if time.monotonic() - t0 > limit and want[0] != "again":
                    break
                continue
            except OSError:
                closed = True
                break
            if not d:
                closed = True
                break
            got += d
            # one complete final response is enough when the model expects one
            if want[0] == "ok":
                resps, prob = parse_responses(bytes(got), [method], False)
                if not prob and any(r[0] >= 200 or r[0] == 101 for r in resps):
                    break
        dt = time.monotonic() - t0
        s.close()
        got = bytes(got)
        extra["got"] = got[:800].decode("latin-1")
        with self.lock:
            self.stats["cases"] += 1
            self.stats[want[0]] += 1
        resps, prob = parse_responses(got, [method], closed)
        final = [r for r in resps if r[0] >= 200 or r[0] == 101]
        interim = [r[0] for r in resps if 100 <= r[0] < 200 and r[0] != 101]
        for st, hs, body in resps:
            blob = b"".join(n + v for n, v in hs) + body
            if st in (502, 504) and (b"%d" % self.bport) in blob:
                self.finding("leak", f"{st} page holds the backend port", extra)
            for n, _ in hs:
                if n in (b"server", b"x-powered-by"):
                    self.finding("leak", f"{n!r} forwarded", extra)
        if want[0] == "ok":
            r = want[1]
            if prob and not final:
                self.finding("response", f"{prob} ({dt:.1f}s), expected {r.status}", extra)
            elif not final:
                self.finding("stall", f"no response within {dt:.1f}s, expected {r.status}", extra)
            elif final[0][0] != r.status:
                self.finding("status", f"got {final[0][0]} after {dt:.1f}s, backend sent a valid {r.status}", extra)
            elif final[0][2] != r.body:
                self.finding("body", f"body {final[0][2][:60]!r} != {r.body[:60]!r}", extra)
            elif interim != [s for s in r.interim if s != 100]:
                self.finding("interim", f"1xx {interim} != {r.interim}", extra)
        elif want[0] == "bad-head":
            if final and final[0][0] != 502:
                self.finding("lenient-head", f"got {final[0][0]} for an invalid backend head", extra)
            if prob and not prob.startswith("truncated"):
                self.finding("response", prob, extra)
        elif want[0] == "bad-body":
            if final and final[0][0] == want[1].status and not prob and not closed:
                self.finding("bad-body", "a complete response for a malformed / short backend body", extra)
        # poisoning check
        try:
            c = self.harness.Client(self.port, timeout=5)
            c.send(b"GET /clean/%d HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n" % i)
            r2 = c.read_response()
            c.close()
            if r2.body != b"clean %d" % i:
                self.finding("poison", f"request /clean/{i} got {r2.status} {r2.body[:80]!r}", extra)
        except Exception as e:
            self.finding("poison", f"request /clean/{i} failed: {e!r}", extra)

    def run(self):
        Path(self.args.out).mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        it = iter(range(self.args.cases))

        def worker():
            while time.monotonic() - t0 < self.args.seconds:
                with self.lock:
                    i = next(it, None)
                if i is None:
                    return
                self.case(i)
                if i % 200 == 0:
                    probs = self.rig.problems()
                    if probs:
                        self.finding("crash", "\n".join(probs)[:4000])
                        return
                    print(f"{self.stats['cases']} cases {time.monotonic() - t0:.0f}s "
                          f"rss {self.rig.moat.rss_kib()} KiB findings {len(self.findings)}", flush=True)
        ths = [threading.Thread(target=worker, daemon=True) for _ in range(self.args.threads)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        probs = self.rig.stop()
        if probs:
            self.finding("teardown", "\n".join(probs)[:4000])
        print(json.dumps(self.stats))
        print(f"{len(self.findings)} findings")
        return 1 if self.findings else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--whole-heads", action="store_true",
                    help="never split a response head (masks the stall of finding 1)")
    ap.add_argument("--out", default="/tmp/moat-fuzz-backend")
    args = ap.parse_args()
    if args.bin:
        os.environ["MOAT_BIN"] = os.path.abspath(args.bin)
    sys.exit(BackendFuzzer(args).run())


if __name__ == "__main__":
    main()
