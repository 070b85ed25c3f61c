"""
cache_util.py - helpers shared by the cache and compression tests
(test_cache.py, test_cache_disk.py, test_compress.py; issue 6).

    Origin        a backend handler whose answer is a function of the
                  request and of how many times its path was asked for;
                  counts the hits of each path.
    cache_config  a config dict with the store on and one catch-all route
                  with `cache:` (and optionally `compress:`).
    req           one request on a fresh connection (Connection: close).
    cstatus       the parsed Cache-Status member of a response.
"""

import re
import threading

from harness import Client, t


class Origin:
    """handler(req, conn) for make_backend. `answer(req, n)` returns
    (status, headers, body) where n is 1 for the first request of
    req.target (path and query), 2 for the second... A HEAD gets the
    head only. `delay` (seconds, or a function of (req, n)) is waited
    before answering."""

    def __init__(self, answer, delay=0.0):
        self.answer = answer
        self.delay = delay
        self.lock = threading.Lock()
        self.counts = {}
        self.seen = []          # (target, headers) in arrival order

    def hits(self, target=None):
        with self.lock:
            if target is None:
                return sum(self.counts.values())
            return self.counts.get(target, 0)

    def __call__(self, req, conn):
        req.read_body()
        with self.lock:
            n = self.counts.get(req.target, 0) + 1
            self.counts[req.target] = n
            self.seen.append((req.target, list(req.headers)))
        d = self.delay(req, n) if callable(self.delay) else self.delay
        if d:
            req.backend.sleep(d)
        status, headers, body = self.answer(req, n)
        conn.send_response(status, body, list(headers), req=req)


def counted(body=b"hello", cc="max-age=60", ctype="text/plain", extra=()):
    """An Origin answering 200 with `body` + " #n" (n = hit count of that
    target) and Cache-Control `cc` (left out when None)."""
    def answer(req, n):
        hs = [("Content-Type", ctype)]
        if cc is not None:
            hs.append(("Cache-Control", cc))
        hs += list(extra)
        return 200, hs, body + b" #%d" % n
    return Origin(answer)


def cache_config(route_cache=True, compress=None, store=None, route_extra=None):
    """The store on (memory 64 MiB, plus `store`) and one catch-all route to
    "app" with `cache: route_cache` (and `compress:` when given)."""
    route = {"upstream": "app"}
    if route_cache is not None:
        route["cache"] = route_cache
    if compress is not None:
        route["compress"] = compress
    route.update(route_extra or {})
    s = {"memory": "64MiB"}
    s.update(store or {})
    return {"cache": s, "routes": [route]}


def req(port, target="/", headers=(), method="GET", body=b"", host="example.test", version="HTTP/1.1",
        source=None):
    """One request on a fresh connection that asks to close."""
    with Client(port, source=source) as c:
        return c.request(method, target, list(headers) + [("Connection", "close")], body=body, host=host,
                         version=version)


class CacheStatus:
    """One Cache-Status member: name, params {key: value or True}."""

    def __init__(self, text):
        self.text = text
        parts = [p.strip() for p in text.split(";")]
        self.name = parts[0]
        self.params = {}
        for p in parts[1:]:
            k, sep, v = p.partition("=")
            if not sep:
                self.params[k] = True
            else:
                v = v.strip()
                if v.startswith('"') and v.endswith('"'):
                    v = v[1:-1]
                self.params[k] = v

    @property
    def hit(self):
        return "hit" in self.params or "collapsed" in self.params

    @property
    def fwd(self):
        return self.params.get("fwd")

    @property
    def stored(self):
        return "stored" in self.params

    @property
    def detail(self):
        return self.params.get("detail")

    @property
    def fwd_status(self):
        v = self.params.get("fwd-status")
        return int(v) if v is not None else None

    @property
    def ttl(self):
        v = self.params.get("ttl")
        return int(v) if v is not None else None

    def __repr__(self):
        return f"<Cache-Status {self.text!r}>"


def cstatus(r):
    """The Cache-Status of response r: exactly one field line with one
    member named moat."""
    values = r.header_all("Cache-Status")
    assert len(values) == 1, f"expected one Cache-Status, got {values!r}: {r!r}"
    cs = CacheStatus(values[0])
    assert cs.name == "moat", f"Cache-Status member {cs.name!r}: {values[0]!r}"
    return cs


def assert_hit(r, body=None):
    cs = cstatus(r)
    assert cs.hit, f"expected a hit, got {cs!r}: {r!r}"
    age = r.header("Age")
    assert age is not None and re.fullmatch(r"\d+", age), f"hit without a valid Age: {r.headers!r}"
    if body is not None:
        assert r.body == body, f"{r.body!r} != {body!r}"
    return cs


def assert_miss(r, stored=True, fwd="uri-miss", detail=None):
    cs = cstatus(r)
    assert not cs.hit, f"expected a miss, got {cs!r}"
    assert cs.fwd == fwd, f"expected fwd={fwd}, got {cs!r}"
    if stored:
        assert cs.stored, f"expected stored, got {cs!r}"
    else:
        assert not cs.stored, f"expected not stored, got {cs!r}"
    if detail is not None:
        assert cs.detail == detail, f"expected detail={detail!r}, got {cs!r}"
    return cs


def concurrent_gets(port, target, n, headers=(), timeout=None):
    """n GETs of target at once, each on its own connection (a barrier lines
    them up). Returns the responses (an exception object for a failure),
    in thread order."""
    timeout = timeout or t(20)
    results = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        try:
            c = Client(port, timeout=timeout)
        except Exception as e:  # noqa: BLE001 -- reported by the caller
            results[i] = e
            return
        try:
            try:
                barrier.wait(timeout)
            except threading.BrokenBarrierError:
                pass
            results[i] = c.request("GET", target, list(headers) + [("Connection", "close")])
        except Exception as e:  # noqa: BLE001
            results[i] = e
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads), f"requests still running after {timeout:.0f}s"
    return results
