"""moat's own error responses (short HTML, never the backend's address)
and the timeouts that produce them."""

import time

import pytest

from harness import (Client, build_request, free_port, garbage, no_response, raw_response, slow,
                     stall_mid_body, t, wait_for)


def assert_moat_error_page(r, status, hidden=()):
    assert r.status == status, r
    ctype = (r.header("Content-Type") or "").lower()
    assert ctype.startswith("text/html"), f"{status}: Content-Type {ctype!r}"
    assert b"<" in r.body and len(r.body) < 2048, f"{status}: not a short HTML page: {r.body[:300]!r}"
    blob = r.raw_head + r.body
    for secret in hidden:
        assert secret.encode() not in blob, f"{status} page reveals {secret!r}:\n{blob.decode('latin-1')}"


def dead_upstream_moat(make_moat, config=None):
    dead = free_port()   # nothing listens there
    cfg = {"upstreams": {"app": {"servers": [f"127.0.0.1:{dead}"]}}}
    cfg.update(config or {})
    return make_moat(config=cfg), dead


def test_502_when_backend_refuses_connection(make_moat):
    m, dead = dead_upstream_moat(make_moat)
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert_moat_error_page(r, 502, hidden=("127.0.0.1", str(dead)))


def test_502_when_backend_sends_garbage(make_backend, make_moat):
    b = make_backend(garbage())
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert_moat_error_page(r, 502, hidden=("127.0.0.1", str(b.port), "NOT HTTP"))


def test_502_when_backend_closes_without_response(make_backend, make_moat):
    b = make_backend(no_response())
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert_moat_error_page(r, 502, hidden=("127.0.0.1", str(b.port)))


@pytest.mark.parametrize("raw", [
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 id="cl-and-te"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", id="two-cl"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nabc", id="bad-cl"),
    pytest.param(b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", id="bad-status"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok", id="nul"),
])
def test_502_for_ambiguous_backend_response(make_backend, make_moat, raw):
    b = make_backend(raw_response(raw, close=True))
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert_moat_error_page(r, 502, hidden=("127.0.0.1", str(b.port)))


def test_504_when_backend_first_byte_late(make_backend, make_moat):
    b = make_backend(slow(t(5)))
    m = make_moat([b], {"timeouts": {"backend_first_byte": "1s"}})
    start = time.monotonic()
    with Client(m.port) as c:
        r = c.request("GET", "/")
    elapsed = time.monotonic() - start
    assert_moat_error_page(r, 504, hidden=("127.0.0.1", str(b.port)))
    assert 0.8 < elapsed < t(3), f"504 after {elapsed:.2f}s, backend_first_byte is 1s"


def test_backend_idle_mid_body_closes_client(make_backend, make_moat):
    """Headers already sent: the only honest signal left is a close before
    the announced length."""
    b = make_backend(stall_mid_body(total=1000, sent=100))
    m = make_moat([b], {"timeouts": {"backend_idle": "1s"}})
    with Client(m.port) as c:
        c.send(build_request("GET", "/"))
        head = c.reader.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        got = c.reader.read_to_eof()   # must end by a close, not hang
        elapsed = time.monotonic() - start
    assert len(got) < 1000
    assert elapsed < t(4), f"closed after {elapsed:.1f}s, backend_idle is 1s"


def test_error_pages_never_reveal_backend(make_backend, make_moat):
    """Every error moat generates, with the upstream configured on a dead
    port: no address and no port in head or body."""
    dead = free_port()
    cfg = {"upstreams": {"app": {"servers": [f"127.0.0.1:{dead}"]}},
           "routes": [{"path": "/app/", "upstream": "app"}],
           "limits": {"request_line": "1KiB", "header_size": "4KiB", "body": "100"}}
    m = make_moat(config=cfg)
    hidden = ("127.0.0.1", str(dead))
    cases = [
        (b"GET /app/x HTTP/1.1\r\nHost: a\r\n\r\n", 502),
        (b"GET /none HTTP/1.1\r\nHost: a\r\n\r\n", 404),
        (b"GET /app/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", 400),
        (b"POST /app/x HTTP/1.1\r\nHost: a\r\nContent-Length: 500\r\n\r\n" + b"x" * 500, 413),
        (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET /app/x HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 5000 + b"\r\n\r\n", 431),
        (b"GET /app/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", (400, 501)),
        (b"GET /app/x HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ]
    for raw, status in cases:
        with Client(m.port) as c:
            c.send(raw)
            r = c.read_response()
        want = status if isinstance(status, int) else r.status
        assert r.status in ((status,) if isinstance(status, int) else status), (raw[:60], r)
        assert_moat_error_page(r, want, hidden)


def test_client_header_timeout(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"timeouts": {"client_header": "1s"}})
    with Client(m.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: exa")
        start = time.monotonic()
        assert c.wait_closed(t(4)), "half a head and a stall: not closed after client_header"
        elapsed = time.monotonic() - start
        if c.leftover:
            assert c.leftover.startswith(b"HTTP/1.1 408"), c.leftover
    assert elapsed > 0.7, f"closed after {elapsed:.2f}s, client_header is 1s"
    assert b.bytes_received == 0


def test_client_header_timeout_is_for_the_whole_head(make_backend, make_moat):
    """Slowloris: a byte every 200 ms does not keep the head alive."""
    b = make_backend()
    m = make_moat([b], {"timeouts": {"client_header": "1s"}})
    with Client(m.port) as c:
        start = time.monotonic()
        closed = False
        for ch in b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: " + b"a" * 100:
            try:
                c.send(bytes([ch]))
            except OSError:
                closed = True
                break
            if not c.is_open(0.2):
                closed = True
                break
            if time.monotonic() - start > t(4):
                break
        elapsed = time.monotonic() - start
    assert closed, "a trickling head was never cut off"
    assert elapsed < t(3), f"trickling head cut after {elapsed:.1f}s, client_header is 1s"
    assert b.bytes_received == 0


def test_idle_connection_without_request_closed(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"timeouts": {"client_header": "1s", "keepalive": "1s"}})
    with Client(m.port) as c:
        assert c.wait_closed(t(4)), "a connection that never sends a byte is kept forever"


def test_client_body_timeout(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"timeouts": {"client_body": "1s"}})
    with Client(m.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 100\r\n\r\n0123456789")
        start = time.monotonic()
        assert c.wait_closed(t(4)), "a stalled request body is never cut off"
        elapsed = time.monotonic() - start
    assert elapsed > 0.7
    # whatever reached the backend was aborted, not left hanging
    wait_for(lambda: all(conn.closed for conn in b.conns), t(3),
             what="moat to close the backend connection of the aborted request")
    assert all(len(r.body) < 100 for r in b.requests)


def test_moat_survives_client_vanishing_mid_response(make_backend, make_moat):
    from harness import huge
    b = make_backend(huge(20 * 1024 * 1024))
    m = make_moat([b])
    for _ in range(3):
        c = Client(m.port)
        c.send(build_request("GET", "/"))
        c.reader.read_until(b"\r\n\r\n")
        c.reader.read_exact(100_000)
        c.close()   # unread data: RST
    b.handler = slow(0)
    with Client(m.port) as c:
        assert c.request("GET", "/ok").status == 200


def test_backend_connect_timeout(make_moat):
    """A backend whose accept queue is full never completes the handshake
    (the kernel drops the SYN): moat gives up after backend_connect."""
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):   # fill the accept queue; later SYNs are dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        m = make_moat(config={"upstreams": {"app": {"servers": [f"127.0.0.1:{port}"]}},
                              "timeouts": {"backend_connect": "1s"}})
        start = time.monotonic()
        with Client(m.port) as c:
            r = c.request("GET", "/")
        elapsed = time.monotonic() - start
        assert_moat_error_page(r, 504, hidden=("127.0.0.1", str(port)))
        assert 0.8 < elapsed < t(3), f"answered after {elapsed:.2f}s, backend_connect is 1s"
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_client_send_timeout(make_backend, make_moat):
    """A client that stops reading mid-response is dropped after
    client_send: when it reads again, the response ends early with a close."""
    from harness import huge
    size = 64 * 1024 * 1024   # far more than the socket buffers on the way hold
    b = make_backend(huge(size))
    m = make_moat([b], {"timeouts": {"client_send": "1s"}})
    with Client(m.port, rcvbuf=32 * 1024) as c:
        c.send(build_request("GET", "/"))
        c.reader.read_until(b"\r\n\r\n")
        time.sleep(1 + t(1))   # not reading: moat's writes stall for longer than client_send
        got = len(c.reader.buf)
        c.reader.buf.clear()
        closed = False
        while got < size:
            data = c.reader.read_some()
            if not data:
                closed = True
                break
            got += len(data)
    assert closed and got < size, (
        f"client stalled {1 + t(1):.0f}s with client_send 1s, then received {got} of {size} bytes: not dropped")
    wait_for(lambda: all(conn.closed for conn in b.conns), t(3),
             what="moat to close the backend connection of the dropped client")
