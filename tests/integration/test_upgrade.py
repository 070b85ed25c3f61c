"""Upgrade: websocket is tunnelled after the backend's 101: raw bytes both
ways, nothing parsed as HTTP any more."""

import hashlib
import threading
import time

from harness import Client, build_request, fixed, pattern, pattern_sha256, t, websocket_echo

WS_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]


def open_tunnel(port):
    c = Client(port)
    c.send(build_request("GET", "/ws", WS_HEADERS))
    r = c.read_response()
    assert r.status == 101, r
    assert r.header("Upgrade").lower() == "websocket"
    assert "upgrade" in r.header("Connection").lower()
    assert r.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    return c


def test_websocket_tunnel_echo(make_backend, make_moat):
    b = make_backend(websocket_echo())
    m = make_moat([b])
    c = open_tunnel(m.port)
    with c:
        # bytes that look like HTTP must pass untouched
        for payload in (b"\x81\x05hello", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256))):
            c.send(payload)
            got = b""
            while len(got) < len(payload):
                data = c.recv()
                assert data, "tunnel closed"
                got += data
            assert got == payload
    req = b.requests[0]
    assert req.header("Upgrade") == "websocket"
    assert "upgrade" in req.header("Connection").lower()
    assert req.header("Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ=="
    assert req.header("X-Forwarded-For") == "127.0.0.1"


def test_websocket_server_speaks_first(make_backend, make_moat):
    b = make_backend(websocket_echo(greeting=b"\x81\x02hi"))
    m = make_moat([b])
    with open_tunnel(m.port) as c:
        got = b""
        while len(got) < 4:
            data = c.recv()
            assert data, "tunnel closed"
            got += data
        assert got == b"\x81\x02hi"


def test_websocket_tunnel_bulk_both_ways(make_backend, make_moat):
    size = 4 * 1024 * 1024
    b = make_backend(websocket_echo())
    m = make_moat([b])
    with open_tunnel(m.port) as c:
        errors = []

        def sender():
            try:
                for block in pattern(size, seed=21):
                    c.send(block)
            except OSError as e:
                errors.append(e)

        th = threading.Thread(target=sender)
        th.start()
        h = hashlib.sha256()
        n = 0
        while n < size:
            data = c.recv()
            assert data, f"tunnel closed after {n} bytes"
            h.update(data)
            n += len(data)
        th.join(t(10))
        assert not errors
        assert h.hexdigest() == pattern_sha256(size, seed=21)


def test_websocket_client_close_reaches_backend(make_backend, make_moat):
    b = make_backend(websocket_echo())
    m = make_moat([b])
    c = open_tunnel(m.port)
    c.send(b"ping")
    assert c.recv() == b"ping"
    c.sock.shutdown(1)   # client EOF: the backend must see it and close its side
    assert c.wait_closed(t(3)), "tunnel not closed after client EOF and backend close"
    c.close()


def test_websocket_backend_close_reaches_client(make_backend, make_moat):
    def handler(req, conn):
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nbye")
        conn.upgraded = True
        conn.close()

    b = make_backend(handler)
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(build_request("GET", "/ws", WS_HEADERS))
        r = c.read_response()
        assert r.status == 101
        got = b""
        while len(got) < 3:
            data = c.recv()
            if not data:
                break
            got += data
        assert got == b"bye"
        assert c.wait_closed(t(3))


def test_upgrade_refused_by_backend_stays_http(make_backend, make_moat):
    b = make_backend(fixed(200, b"no upgrade for you"))
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(build_request("GET", "/ws", WS_HEADERS))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"no upgrade for you")
        r = c.request("GET", "/next")
        assert (r.status, r.body) == (200, b"no upgrade for you")
    assert [q.target for q in b.requests] == ["/ws", "/next"]


def test_non_websocket_upgrade_not_forwarded(moat, backend):
    with Client(moat.port) as c:
        r = c.request("GET", "/", [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                                   ("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")])
        assert r.status == 200
        time.sleep(0.05)
        assert c.request("GET", "/2").status == 200
    req = backend.requests[0]
    assert not req.has_header("Upgrade")
    assert not req.has_header("HTTP2-Settings")
    assert not req.has_header("Connection")
