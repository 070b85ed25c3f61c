"""Failover (docs/balancing.md): a dead backend costs the clients nothing,
refused connects retried for any method, passive ejection on 5xx with
doubling times and readmission, retries of idempotent requests only and
never to the same server, per-try timeout, the retry budget, max_connections
with and without a queue, nothing available.

Backends answer info() unless said otherwise: X-Backend names the one that
served."""

import re
import socket
import struct
import threading
import time

from harness import Client, echo, fixed, free_port, get, info, slow, t, wait_for


def upstream(servers, **keys):
    return {"upstreams": {"app": dict({"servers": servers}, **keys)},
            "routes": [{"upstream": "app"}]}


def reset_after_request(delay=0.0, before=None):
    """Reads the request, then resets the connection (SO_LINGER 0) without
    a byte of response. `before(req)` runs first (a barrier, a clock)."""
    def handler(req, conn):
        req.read_body()
        if before:
            before(req)
        if delay:
            req.backend.sleep(delay)
        try:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        conn.closed = True
        conn.sock.close()
    return handler


def timed(handler, log):
    """Appends time.monotonic() to log when a request arrives."""
    def wrapped(req, conn):
        log.append(time.monotonic())
        handler(req, conn)
    return wrapped


def post(port, target, body=b"payload", headers=()):
    with Client(port) as c:
        return c.request("POST", target, list(headers) + [("Connection", "close")], body=body)


def ejected_ms(m, addr_or_port, reason=None):
    """The N of every "server ... ADDR... ejected for N ms (reason)" line."""
    out = []
    for line in m.errlog.splitlines():
        mm = re.search(r"server (\S+) ejected for (\d+) ms \(([^)]*)\)", line)
        if mm and str(addr_or_port) in mm.group(1) and (reason is None or reason in mm.group(3)):
            out.append(int(mm.group(2)))
    return out


def assert_moat_page(r, hidden=()):
    ctype = (r.header("Content-Type") or "").lower()
    assert ctype.startswith("text/html"), r
    assert len(r.body) < 1024, r
    blob = r.raw_head + r.body
    for secret in hidden:
        assert secret.encode() not in blob, f"{r.status} page reveals {secret!r}: {blob!r}"


# --------------------------------------------------------------------------
# a backend dies under load


def test_one_line_mode_backend_killed_under_load_no_client_error(make_backend, make_moat):
    bs = [make_backend(name=n) for n in ("x", "y", "z")]
    port = free_port()
    argv = ["proxy", "--from", f"127.0.0.1:{port}", "--workers", "2"]
    for b in bs:
        argv += ["--to", f"http://{b.addr}"]
    m = make_moat(argv=argv, listens=[("127.0.0.1", port)])
    victim = bs[1]
    per_thread = 300
    done = [0, 0]
    failures = []

    def run(n):
        try:
            with Client(m.port) as c:
                for i in range(per_thread):
                    r = c.request("GET", f"/t{n}/{i}")
                    if r.status != 200 or not r.body.endswith(f" GET /t{n}/{i}\n".encode()):
                        failures.append((n, i, r.status, r.body[:100]))
                    done[n] += 1
                    time.sleep(0.002)
        except Exception as e:
            failures.append((n, done[n], repr(e)))

    ths = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for th in ths:
        th.start()
    wait_for(lambda: sum(done) >= 200 or failures, t(20), what="200 requests")
    victim.stop()          # listener closed, its connections shut down
    killed_at = len(victim.requests)
    for th in ths:
        th.join(t(60))
    assert not any(th.is_alive() for th in ths)
    assert not failures, failures[:5]
    assert done == [per_thread, per_thread]
    assert len(victim.requests) == killed_at
    # the survivors took the rest
    assert sum(len(b.requests) for b in bs) >= 2 * per_thread
    assert len(bs[0].requests) > 100 and len(bs[2].requests) > 100
    # the dead one was ejected
    wait_for(lambda: ejected_ms(m, victim.port), t(2),
             what=f"an ejection of {victim.addr} in the log:\n{m.errlog[-2000:]}")


def test_refused_connect_retried_for_post(make_backend, make_moat):
    good = make_backend(echo(), name="good")
    dead = free_port()
    m = make_moat(config=upstream([f"127.0.0.1:{dead}", good.addr]))
    for i in range(6):
        body = f"body-{i}".encode()
        r = post(m.port, f"/p{i}", body)
        assert (r.status, r.body) == (200, body), (i, r)
    # each POST reached the good one exactly once
    assert [bytes(r.body) for r in good.requests] == [f"body-{i}".encode() for i in range(6)]
    assert [r.method for r in good.requests] == ["POST"] * 6
    # the refused connect ejected the dead one at once, for at most 1 s
    times = ejected_ms(m, dead, "connection failed")
    assert times, f"no ejection of port {dead} logged:\n{m.errlog[-2000:]}"
    assert times[0] <= 1000, times
    # back after its ejection, refused again: ejected for longer
    time.sleep(times[0] / 1000 + 0.1)
    for i in range(6, 10):
        body = f"body-{i}".encode()
        r = post(m.port, f"/p{i}", body)
        assert (r.status, r.body) == (200, body), (i, r)
    times = ejected_ms(m, dead, "connection failed")
    assert len(times) == 2 and times[1] > times[0], times
    assert len(good.requests) == 10


# --------------------------------------------------------------------------
# passive ejection on 5xx


def test_5xx_ejects_then_readmits_then_doubles(make_backend, make_moat):
    arrivals = []
    bad = make_backend(timed(fixed(500, b"boom"), arrivals), name="bad")
    good = make_backend(name="good")
    m = make_moat(config=upstream([bad.addr, good.addr],
                                  outlier={"consecutive_failures": 3, "base_ejection": "1s"}))
    statuses = []
    deadline = time.monotonic() + t(8)
    with Client(m.port) as c:
        # until the 4th request reaches bad (readmitted) and three more
        # failures have ejected it again
        while len(arrivals) < 6 and time.monotonic() < deadline:
            r = c.request("GET", "/")
            statuses.append((r.status, r.header("X-Backend")))
            time.sleep(0.01)
    assert len(arrivals) >= 6, f"bad got {len(arrivals)} requests; log:\n{m.errlog[-2000:]}"
    assert statuses.count((500, None)) == len(arrivals), statuses
    assert all(s == (200, "good") for s in statuses if s[0] != 500), statuses
    # three in a row ejected it for base_ejection: nothing reached it for 1 s
    gap = arrivals[3] - arrivals[2]
    assert gap >= 0.95, f"bad got a request {gap:.3f}s after its 3rd failure (ejected for 1 s)"
    # then readmitted, without delay beyond the ejection
    assert gap <= 1.0 + t(0.5), f"bad readmitted only after {gap:.3f}s"
    # the requests in between all went to good
    wait_for(lambda: len(ejected_ms(m, bad.addr)) >= 2, t(2),
             what=f"two ejections logged:\n{m.errlog[-2000:]}")
    assert ejected_ms(m, bad.addr, "consecutive failures")[:2] == [1000, 2000], m.errlog[-2000:]
    assert m.count(f"server {good.addr} ejected") == 0


def test_max_ejected_percent_keeps_half_the_group(make_backend, make_moat):
    # both servers fail every request: only one of two may be ejected (50%)
    a, b = make_backend(fixed(500, b"boom"), name="a"), make_backend(fixed(500, b"boom"), name="b")
    m = make_moat(config=upstream([a.addr, b.addr],
                                  outlier={"consecutive_failures": 2, "base_ejection": "10s"}))
    with Client(m.port) as c:
        for i in range(20):
            assert c.request("GET", f"/{i}").status == 500
    ejections = ejected_ms(m, a.addr) + ejected_ms(m, b.addr)
    assert ejections == [10000], m.errlog[-2000:]
    # the one left in takes everything
    ejected, kept = (a, b) if ejected_ms(m, a.addr) else (b, a)
    n = len(ejected.requests)
    with Client(m.port) as c:
        for i in range(6):
            assert c.request("GET", f"/more/{i}").status == 500
    assert len(ejected.requests) == n
    assert len(kept.requests) >= 6 + 2


# --------------------------------------------------------------------------
# which failures are retried


def test_reset_retries_get_on_other_server_not_post(make_backend, make_moat):
    resetter = make_backend(reset_after_request(), name="reset")
    good = make_backend(name="good")
    # consecutive_failures 0: resets never eject, the resetter stays in rotation
    m = make_moat(config=upstream([resetter.addr, good.addr],
                                  outlier={"consecutive_failures": 0}))
    for i in range(8):
        r = get(m.port, f"/g{i}")
        assert (r.status, r.body) == (200, f"good GET /g{i}\n".encode()), (i, r)
    reset_gets = [r.target for r in resetter.requests]
    assert reset_gets, "no GET reached the resetting server; the test proves nothing"
    good_targets = [r.target for r in good.requests]
    for target in reset_gets:
        assert good_targets.count(target) == 1, f"GET {target} reset, not retried exactly once"

    n_reset = len(resetter.requests)
    results = {}
    for i in range(8):
        results[f"/p{i}"] = post(m.port, f"/p{i}", f"body-{i}".encode())
    reset_posts = [r.target for r in resetter.requests[n_reset:]]
    assert reset_posts, "no POST reached the resetting server; the test proves nothing"
    good_posts = [r.target for r in good.requests if r.method == "POST"]
    for target, r in results.items():
        if target in reset_posts:
            assert r.status == 502, f"POST {target} reset by the backend: expected 502, got {r!r}"
            assert_moat_page(r, hidden=(resetter.addr, str(resetter.port)))
            assert target not in good_posts, f"POST {target} was sent twice"
        else:
            assert (r.status, r.body) == (200, f"good POST {target}\n".encode()), r


def test_per_try_timeout_moves_on_to_fast_server(make_backend, make_moat):
    slow_b = make_backend(slow(3.0, info()), name="slow")
    fast = make_backend(name="fast")
    m = make_moat(config=upstream([slow_b.addr, fast.addr],
                                  retry={"attempts": 2, "per_try_timeout": "300ms"},
                                  outlier={"consecutive_failures": 0}))
    for i in range(4):
        t0 = time.monotonic()
        r = get(m.port, f"/{i}")
        elapsed = time.monotonic() - t0
        assert (r.status, r.header("X-Backend")) == (200, "fast"), r
        assert elapsed < max(1.0, t(0.6)), f"request {i} took {elapsed:.2f}s"
    assert len(slow_b.requests) >= 1, "no request tried the slow server; the test proves nothing"


def test_timeout_on_every_server_504_never_same_server_twice(make_backend, make_moat):
    a, b = make_backend(slow(3.0, info()), name="a"), make_backend(slow(3.0, info()), name="b")
    m = make_moat(config=upstream([a.addr, b.addr],
                                  retry={"attempts": 5, "per_try_timeout": "300ms"},
                                  outlier={"consecutive_failures": 0}))
    t0 = time.monotonic()
    r = get(m.port, "/x")
    elapsed = time.monotonic() - t0
    assert r.status == 504, r
    assert_moat_page(r, hidden=(a.addr, b.addr, str(a.port), str(b.port)))
    # two tries of 300 ms, one per server, although attempts allows 5
    assert elapsed < t(1.5), f"504 after {elapsed:.2f}s"
    assert (len(a.requests), len(b.requests)) == (1, 1), (len(a.requests), len(b.requests))


def test_retry_budget_caps_concurrent_retries(make_backend, make_moat):
    # Both servers reset every request; each try takes 0.3 s after all 20
    # first tries have arrived. budget_percent 0, budget_min 1: one retry
    # at a time for the upstream. The 20 first tries fail together; one of
    # them gets the budget and is retried on the other server (attempts 5
    # but only two servers: never the same one twice); the others can't
    # retry while that retry is in flight (0.3 s). So 21 tries (22 allowing
    # for one failure handled late); without a budget: 40.
    n_clients = 20
    lock = threading.Lock()
    arrived = [0]
    all_in = threading.Event()

    def barrier(req):
        with lock:
            arrived[0] += 1
            if arrived[0] >= n_clients:
                all_in.set()
        all_in.wait(t(3))

    a = make_backend(reset_after_request(0.3, barrier), name="a")
    b = make_backend(reset_after_request(0.3, barrier), name="b")
    m = make_moat(config=upstream([a.addr, b.addr],
                                  retry={"attempts": 5, "budget_percent": 0, "budget_min": 1}))
    results = [None] * n_clients
    go = threading.Barrier(n_clients)

    def client(n):
        try:
            go.wait(t(5))
            t0 = time.monotonic()
            r = get(m.port, f"/c{n}")
            results[n] = (r.status, time.monotonic() - t0)
        except Exception as e:
            results[n] = (repr(e), None)

    ths = [threading.Thread(target=client, args=(n,)) for n in range(n_clients)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(t(15))
    assert all_in.is_set(), f"only {arrived[0]} first tries arrived together"
    assert [s for s, _ in results] == [502] * n_clients, results
    assert max(e for _, e in results) < t(2.0), results
    tries = len(a.requests) + len(b.requests)
    assert n_clients <= tries <= n_clients + 2, (
        f"{tries} tries for {n_clients} requests with budget_min 1 "
        f"(a {len(a.requests)}, b {len(b.requests)})")


# --------------------------------------------------------------------------
# max_connections, max_pending


def start_request(port, target, results):
    def run():
        t0 = time.monotonic()
        try:
            r = get(port, target)
            results[target] = (r.status, r.header("X-Backend"), time.monotonic() - t0, r)
        except Exception as e:
            results[target] = (repr(e), None, time.monotonic() - t0, None)
    th = threading.Thread(target=run)
    th.start()
    return th


class Concurrency:
    """A handler wrapper that tracks the most requests in flight at once."""

    def __init__(self, handler):
        self.handler = handler
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def __call__(self, req, conn):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            self.handler(req, conn)
        finally:
            with self.lock:
                self.now -= 1


def two_full_servers(make_backend, make_moat, **keys):
    ca, cb = Concurrency(slow(1.0, info())), Concurrency(slow(1.0, info()))
    a, b = make_backend(ca, name="a"), make_backend(cb, name="b")
    m = make_moat(config=upstream([{"address": a.addr, "max_connections": 1},
                                   {"address": b.addr, "max_connections": 1}], **keys))
    results = {}
    ths = [start_request(m.port, "/1", results)]
    wait_for(lambda: len(a.requests) + len(b.requests) == 1, t(5), what="the first request")
    ths.append(start_request(m.port, "/2", results))
    wait_for(lambda: len(a.requests) == 1 and len(b.requests) == 1, t(5),
             what="one request at each server")
    return a, b, ca, cb, m, results, ths


def test_max_connections_full_503_at_once(make_backend, make_moat):
    a, b, ca, cb, m, results, ths = two_full_servers(make_backend, make_moat, max_pending=0)
    more = [start_request(m.port, "/3", results), start_request(m.port, "/4", results)]
    for th in more:
        th.join(t(5))
    for target in ("/3", "/4"):
        status, _, elapsed, r = results[target]
        assert status == 503, results[target]
        assert elapsed < t(0.5), f"{target}: 503 after {elapsed:.2f}s"
        assert_moat_page(r, hidden=(a.addr, b.addr))
    for th in ths:
        th.join(t(5))
    assert {results["/1"][:2], results["/2"][:2]} == {(200, "a"), (200, "b")}, results
    assert (len(a.requests), len(b.requests)) == (1, 1)
    assert (ca.peak, cb.peak) == (1, 1)


def test_max_pending_waits_for_a_slot(make_backend, make_moat):
    a, b, ca, cb, m, results, ths = two_full_servers(make_backend, make_moat, max_pending=2,
                                                     pending_timeout="2s")
    t_full = time.monotonic()
    waiting = [start_request(m.port, "/3", results), start_request(m.port, "/4", results)]
    time.sleep(0.2)
    # two wait already: the next one is refused at once
    extra = start_request(m.port, "/5", results)
    extra.join(t(5))
    status, _, elapsed, r = results["/5"]
    assert status == 503 and elapsed < t(0.5), results["/5"]
    for th in ths + waiting:
        th.join(t(8))
    for target in ("/1", "/2", "/3", "/4"):
        assert results[target][0] == 200, results[target]
    for target in ("/3", "/4"):
        # served after a first request finished (1 s in), then 1 s of service
        done_after = results[target][2]
        assert done_after >= 1.5, f"{target} done after {done_after:.2f}s: it did not wait"
        assert done_after < 2.0 + t(1.0), f"{target} done after {done_after:.2f}s"
    assert time.monotonic() - t_full < 2.0 + t(1.5)
    assert (len(a.requests), len(b.requests)) == (2, 2), "/5 must not reach a server"
    assert (ca.peak, cb.peak) == (1, 1), "max_connections 1 exceeded"


# --------------------------------------------------------------------------
# nothing available


def test_all_servers_down_fast_error_hiding_addresses(make_moat):
    dead = [free_port(), free_port()]
    m = make_moat(config=upstream([f"127.0.0.1:{p}" for p in dead]))
    for i in range(4):
        t0 = time.monotonic()
        r = get(m.port, f"/{i}")
        elapsed = time.monotonic() - t0
        assert r.status in (502, 503), r
        assert elapsed < t(1.0), f"request {i}: {r.status} after {elapsed:.2f}s"
        assert_moat_page(r, hidden=["127.0.0.1"] + [str(p) for p in dead])
