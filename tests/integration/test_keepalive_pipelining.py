"""Keep-alive on both sides, the backend pool and its retry, pipelining."""

import time

from harness import (Client, build_request, chunked_response, close_after_response, close_on_reuse,
                     echo, fixed, get, info, slow, t)


def test_client_keepalive_and_backend_connection_reused(moat, backend):
    with Client(moat.port) as c:
        for i in range(20):
            r = c.request("GET", f"/k{i}")
            assert (r.status, r.body) == (200, f"app GET /k{i}\n".encode())
    assert len(backend.requests) == 20
    assert backend.connections == 1, f"{backend.connections} backend connections for one client"


def test_backend_pool_shared_by_successive_client_connections(moat, backend):
    for i in range(12):
        assert get(moat.port, f"/c{i}").status == 200
    # pooled per worker: at most one connection per worker (workers: 2)
    assert backend.connections <= 2, f"{backend.connections} backend connections for 12 sequential requests"


def test_client_connection_close_honoured(moat, backend):
    with Client(moat.port) as c:
        r = c.request("GET", "/", [("Connection", "close")])
        assert r.status == 200
        assert c.wait_closed(), "moat kept the connection open after Connection: close"


def test_backend_connection_close_keeps_client_connection(make_backend, make_moat):
    b = make_backend(fixed(200, b"bye", [("Connection", "close")]))
    m = make_moat([b])
    with Client(m.port) as c:
        for _ in range(3):
            r = c.request("GET", "/")
            assert (r.status, r.body) == (200, b"bye")
            assert "close" not in (r.header("Connection") or "").lower()
    assert b.connections == 3


def test_pipelined_requests_answered_in_order(make_backend, make_moat):
    def handler(req, conn):
        if req.target == "/slow":
            req.backend.sleep(0.3)
        info()(req, conn)

    b = make_backend(handler)
    m = make_moat([b])
    targets = ["/slow"] + [f"/p{i}" for i in range(9)]
    with Client(m.port) as c:
        c.send(b"".join(build_request("GET", tg) for tg in targets))
        bodies = [c.read_response().body for _ in targets]
    assert bodies == [f"b1 GET {tg}\n".encode() for tg in targets]


def test_pipelined_posts_with_bodies(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b])
    bodies = [b"body-%d-" % i * (i + 1) for i in range(8)]
    raw = b""
    for i, body in enumerate(bodies):
        if i % 2:
            chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
            raw += build_request("POST", f"/{i}", [("Transfer-Encoding", "chunked")]) + chunked
        else:
            raw += build_request("POST", f"/{i}", body=body)
    with Client(m.port) as c:
        c.send(raw)
        got = [c.read_response().body for _ in bodies]
    assert got == bodies
    assert [r.target for r in b.requests] == [f"/{i}" for i in range(8)]


def test_pipelined_head_get_and_chunked(make_backend, make_moat):
    def handler(req, conn):
        req.read_body()
        if req.target == "/chunked":
            return chunked_response([b"abc", b"def"])(req, conn)
        body = b"12345"
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        conn.send(head if req.method == "HEAD" else head + body)

    b = make_backend(handler)
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(build_request("HEAD", "/h") + build_request("GET", "/chunked") + build_request("GET", "/g"))
        r1 = c.read_response(method="HEAD")
        r2 = c.read_response()
        r3 = c.read_response()
    assert (r1.status, r1.body, r1.header("Content-Length")) == (200, b"", "5")
    assert r2.body == b"abcdef"
    assert r3.body == b"12345"


def test_pipeline_ends_with_close(moat, backend):
    with Client(moat.port) as c:
        c.send(build_request("GET", "/1") + build_request("GET", "/2", [("Connection", "close")]))
        assert c.read_response().body == b"app GET /1\n"
        assert c.read_response().body == b"app GET /2\n"
        assert c.wait_closed()


def test_backend_closing_after_each_response(make_backend, make_moat):
    """The backend closes every connection right after its response
    (without saying Connection: close): every request still succeeds."""
    b = make_backend(close_after_response(b"fine"))
    m = make_moat([b])
    with Client(m.port) as c:
        for i in range(30):
            r = c.request("GET", f"/{i}")
            assert (r.status, r.body) == (200, b"fine"), f"request {i}: {r.status} {r.body!r}"
    for i in range(10):
        r = get(m.port, f"/sep{i}")
        assert (r.status, r.body) == (200, b"fine"), f"request sep{i}: {r.status} {r.body!r}"


def test_backend_closing_idle_connection_shortly_after(make_backend, make_moat):
    """Closed 50 ms after the response: moat holds a dead pooled connection
    when the next request comes."""
    b = make_backend(close_after_response(b"fine", delay=0.05))
    m = make_moat([b], {"workers": 1})
    with Client(m.port) as c:
        for i in range(8):
            r = c.request("GET", f"/{i}")
            assert (r.status, r.body) == (200, b"fine"), f"request {i}: {r.status} {r.body!r}"
            time.sleep(0.12)


def test_pooled_connection_closed_on_reuse_is_retried_once(make_backend, make_moat):
    """A reused pooled connection that closes before any response byte:
    moat retries once on a fresh connection, and the client never knows."""
    b = make_backend(close_on_reuse())
    m = make_moat([b], {"workers": 1})
    with Client(m.port) as c:
        for i in range(20):
            r = c.request("GET", f"/{i}")
            assert (r.status, r.body) == (200, f"b1 GET /{i}\n".encode()), f"request {i}: {r!r}"
    assert b.reuse_refused >= 1, "moat never reused a pooled connection"
    # every request was served on a fresh connection after the first one
    served = [r.target for r in b.requests if r.seq == 1]
    assert served == [f"/{i}" for i in range(20)]


def test_pooled_connection_retry_for_post(make_backend, make_moat):
    b = make_backend(close_on_reuse(echo()))
    m = make_moat([b], {"workers": 1})
    with Client(m.port) as c:
        for i in range(10):
            body = b"payload-%d" % i
            r = c.request("POST", f"/{i}", body=body)
            assert (r.status, r.body) == (200, body), f"request {i}: {r!r}"


def test_keepalive_timeout_closes_idle_client(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"timeouts": {"keepalive": "1s"}})
    with Client(m.port) as c:
        assert c.request("GET", "/").status == 200
        start = time.monotonic()
        assert c.wait_closed(t(4)), "idle keep-alive connection not closed after timeouts.keepalive"
        elapsed = time.monotonic() - start
    assert elapsed > 0.7, f"closed after {elapsed:.2f}s, keepalive is 1s"


def test_keepalive_connection_usable_before_timeout(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"timeouts": {"keepalive": "3s"}})
    with Client(m.port) as c:
        assert c.request("GET", "/1").status == 200
        time.sleep(1)
        assert c.request("GET", "/2").status == 200


def test_slow_backend_does_not_block_other_clients(make_backend, make_moat):
    def handler(req, conn):
        if req.target == "/slow":
            return slow(1.0)(req, conn)
        return info()(req, conn)

    b = make_backend(handler)
    m = make_moat([b], {"workers": 1})
    with Client(m.port) as slow_client:
        slow_client.send(build_request("GET", "/slow"))
        b.wait_requests(1)
        start = time.monotonic()
        for i in range(5):
            assert get(m.port, f"/fast{i}").status == 200
        assert time.monotonic() - start < t(0.8), "one slow request blocked the worker"
        assert slow_client.read_response().body == b"slow done"


def test_deep_pipeline_burst(moat, backend):
    """200 requests in one write (more than one read buffer): all answered,
    in order, none lost or duplicated."""
    n = 200
    raw = b"".join(build_request("GET", f"/deep/{i}", [("X-Pad", "p" * 400)]) for i in range(n))
    assert len(raw) > 64 * 1024
    with Client(moat.port) as c:
        c.send(raw)
        bodies = [c.read_response().body for _ in range(n)]
    assert bodies == [f"app GET /deep/{i}\n".encode() for i in range(n)]
    assert [r.target for r in backend.requests] == [f"/deep/{i}" for i in range(n)]
