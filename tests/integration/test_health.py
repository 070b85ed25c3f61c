"""Active health checks: a server whose checks fail is marked down (logged
once, no more requests), comes back after `rise` passes; status range, body
substring, timeout, refused connections; the exact probe bytes; state kept
across a reload."""

import threading
import time

from harness import encode_chunked, free_port, get, info, make_config, t, wait_for

INTERVAL = 0.2   # seconds; the configs below say "200ms"
FALL = 3
RISE = 2


def health_config(servers, **hc):
    check = {"path": "/healthz", "interval": "200ms", "timeout": "150ms", "rise": RISE, "fall": FALL}
    check.update(hc)
    return {"upstreams": {"app": {"servers": servers, "health_check": check}},
            "routes": [{"upstream": "app"}]}


class Health:
    """A handler: /healthz answers what .status / .body / .chunked / .delay
    say (changeable while running); anything else gets info()."""

    def __init__(self, status=200, body=b"ok", chunked=False, delay=0.0):
        self.lock = threading.Lock()
        self.status, self.body, self.chunked, self.delay = status, body, chunked, delay
        self.app = info()

    def set(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, v)

    def __call__(self, req, conn):
        if req.target != "/healthz":
            self.app(req, conn)
            return
        req.read_body()
        with self.lock:
            status, body, chunked, delay = self.status, self.body, self.chunked, self.delay
        if delay:
            req.backend.sleep(delay)
        if chunked:
            conn.send(f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                      + encode_chunked(body, sizes=(3,)))
        else:
            conn.send_response(status, body, req=req)
        conn.close_after = True


def probes(backend):
    return [r for r in list(backend.requests) if r.target == "/healthz"]


def app_requests(backend):
    return [r for r in list(backend.requests) if r.target != "/healthz"]


def wait_log(m, needle, timeout):
    return wait_for(lambda: needle in m.errlog, timeout, interval=0.02,
                    what=f"{needle!r} in the error log:\n{m.errlog[-2000:]}")


def spread(m, n):
    """n requests; the bodies' first words (backend names)."""
    return [get(m.port, f"/r{i}").body.split(b" ")[0].decode() for i in range(n)]


def test_failing_check_marks_down_stops_traffic_and_rise_brings_back(make_backend, make_moat):
    ha = Health()
    a, b = make_backend(ha, name="a"), make_backend(Health(), name="b")
    m = make_moat(config=health_config([a.addr, b.addr]))
    wait_for(lambda: len(probes(a)) >= 2 and len(probes(b)) >= 2, t(5), what="first probes")
    assert set(spread(m, 10)) == {"a", "b"}

    t0 = time.monotonic()
    ha.set(status=503)
    down = f"upstream app: server {a.addr} is down ({FALL} failed checks: status 503)"
    wait_log(m, down, t(INTERVAL * FALL + 2))
    elapsed = time.monotonic() - t0
    # fall consecutive failures, one interval apart, at least
    assert elapsed >= INTERVAL * (FALL - 1) - 0.1, f"down after {elapsed:.2f}s only"

    before = len(app_requests(a))
    assert spread(m, 12) == ["b"] * 12
    assert len(app_requests(a)) == before, "requests still reached the server marked down"

    t1 = time.monotonic()
    ha.set(status=200)
    wait_log(m, f"upstream app: server {a.addr} is up ({RISE} passed checks)", t(INTERVAL * RISE + 2))
    assert time.monotonic() - t1 >= INTERVAL * (RISE - 1) - 0.1
    assert "a" in spread(m, 10)
    # each change logged once, and b never changed
    assert m.count(f"server {a.addr} is down") == 1
    assert m.count(f"server {a.addr} is up") == 1
    assert m.count(f"server {b.addr} is") == 0


def test_status_range(make_backend, make_moat):
    ha = Health(status=204, body=b"")
    a = make_backend(ha, name="a")
    m = make_moat(config=health_config([a.addr], status="204"))
    wait_for(lambda: len(probes(a)) >= FALL + 1, t(5), what="probes")
    assert m.count("is down") == 0
    ha.set(status=200, body=b"ok")      # healthy by default, not for "204"
    wait_log(m, f"server {a.addr} is down ({FALL} failed checks: status 200)", t(INTERVAL * FALL + 2))
    # the only server is down: nothing to send the request to
    assert get(m.port, "/x").status in (502, 503)


def test_body_substring(make_backend, make_moat):
    ha = Health(body=b'{"db": "up", "status": "ok"}')
    a, b = make_backend(ha, name="a"), make_backend(Health(body=b"status: ok"), name="b")
    cfg = health_config([a.addr, b.addr], body='"status": "ok"')
    m = make_moat(config=cfg)
    # b's body lacks the quotes: down from the start (it starts up)
    wait_log(m, f"server {b.addr} is down ({FALL} failed checks: body does not contain",
             t(INTERVAL * FALL + 2))
    wait_for(lambda: len(probes(a)) >= FALL + 1, t(5), what="probes of a")
    assert m.count(f"server {a.addr} is") == 0
    assert spread(m, 6) == ["a"] * 6

    # the text must be in the body, not somewhere near it; chunked bodies are decoded
    ha.set(body=b'{"status": "degraded"}', chunked=True)
    wait_log(m, f"server {a.addr} is down", t(INTERVAL * FALL + 2))
    ha.set(body=b'{"db": "up", "status": "ok"}', chunked=True)
    wait_log(m, f"server {a.addr} is up ({RISE} passed checks)", t(INTERVAL * RISE + 2))
    assert spread(m, 4) == ["a"] * 4


def test_refused_connection_marks_down(make_backend, make_moat):
    a = make_backend(Health(), name="a")
    dead = f"127.0.0.1:{free_port()}"
    m = make_moat(config=health_config([a.addr, dead]))
    wait_log(m, f"upstream app: server {dead} is down ({FALL} failed checks: connection refused)",
             t(INTERVAL * FALL + 2))
    assert spread(m, 8) == ["a"] * 8
    assert m.count(f"server {dead} is down") == 1


def test_timeout_counts_as_failure(make_backend, make_moat):
    ha = Health()
    a, b = make_backend(ha, name="a"), make_backend(Health(), name="b")
    m = make_moat(config=health_config([a.addr, b.addr]))
    wait_for(lambda: len(probes(a)) >= 1, t(5), what="first probe")
    ha.set(delay=1.0)       # the timeout is 150ms
    wait_log(m, f"server {a.addr} is down ({FALL} failed checks: timed out after 150 ms)",
             t(INTERVAL * FALL + 3))
    ha.set(delay=0.0)
    wait_log(m, f"server {a.addr} is up", t(INTERVAL * RISE + 3))


def test_probe_bytes(make_backend, make_moat):
    a = make_backend(Health(), name="a")
    b = make_backend(Health(), name="b")
    cfg = health_config([a.addr])
    cfg["upstreams"]["other"] = {"servers": [b.addr],
                                 "health_check": {"path": "/healthz?full=1", "method": "HEAD",
                                                  "host": "status.internal", "interval": "200ms",
                                                  "timeout": "150ms"}}
    m = make_moat(config=cfg)
    wait_for(lambda: len(a.requests) >= 1 and len(b.requests) >= 1, t(5), what="probes")
    assert bytes(a.requests[0].raw) == (
        f"GET /healthz HTTP/1.1\r\nHost: {a.addr}\r\nUser-Agent: moat-health\r\n"
        "Connection: close\r\n\r\n").encode()
    assert bytes(b.requests[0].raw) == (
        b"HEAD /healthz?full=1 HTTP/1.1\r\nHost: status.internal\r\nUser-Agent: moat-health\r\n"
        b"Connection: close\r\n\r\n")
    # one connection per probe, closed by us or by the server
    wait_for(lambda: a.connections >= 3, t(5), what="three probes")
    assert all(r.seq == 1 for r in probes(a))
    assert m.count("is down") == 0


def test_state_kept_across_reload_and_reset_when_checks_removed(make_backend, make_moat):
    ha = Health(status=500)
    a, b = make_backend(ha, name="a"), make_backend(Health(), name="b")
    cfg = health_config([a.addr, b.addr])
    m = make_moat(config=cfg)
    wait_log(m, f"server {a.addr} is down", t(INTERVAL * FALL + 2))

    # same servers, other settings: a stays down, no new state change logged
    cfg2 = health_config([a.addr, b.addr], rise=5)
    m.reload(make_config(config=cfg2, port=m.port))
    n = len(probes(a))
    wait_for(lambda: len(probes(a)) >= n + 3, t(5), what="probes after the reload")
    assert spread(m, 6) == ["b"] * 6
    assert m.count(f"server {a.addr} is down") == 1
    assert m.count(f"server {a.addr} is up") == 0

    # checks removed: nobody would ever bring it back, so it is up again
    cfg3 = {"upstreams": {"app": {"servers": [a.addr, b.addr]}}, "routes": [{"upstream": "app"}]}
    m.reload(make_config(config=cfg3, port=m.port))
    wait_log(m, f"server {a.addr} is up (health checks are off)", t(5))
    n = len(probes(a))
    assert "a" in spread(m, 6)
    time.sleep(INTERVAL * 2)
    assert len(probes(a)) == n, "probes went on after health_check was removed"
