"""An adversarial review of the TLS and HTTP/2 wiring in the proxy
(h2conn.c, h2up.c, tlsconn.c, backend.c, client.c, io.c): stream close
against txn end against parent close, backpressure, shutdown and reload
with streams in flight, timeouts, error pages over HTTP/2, HTTP/2 and TLS
backends. Each test names what it guards.
"""

import hashlib
import json
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from harness import Client, free_port, pattern_bytes, sha256_body, t
from tls_util import (DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, RST_STREAM, H2Backend,
                      H2Client, RawH2, TLSBackend, TLSClient, client_socket, echo_json, frame,
                      moat_alive_h2, pki, request_block, server_ctx)  # noqa: F401

CANCEL = 0x8
# RSS growth allowed while a 20 MiB body is held back (ASan's quarantine and
# shadow memory make RSS a loose measure there)
RSS_SLACK_KIB = (24 if __import__("harness").ASAN else 12) * 1024


def slow_body(size, chunk=65536, delay=0.0, first_delay=0.0):
    """A handler answering `size` bytes of pattern, chunk by chunk."""
    data = pattern_bytes(size)

    def handler(req, conn):
        req.read_body()
        if first_delay:
            req.backend.sleep(first_delay)
        conn.send(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        for i in range(0, size, chunk):
            conn.send(data[i:i + chunk])
            if delay:
                req.backend.sleep(delay)
    return handler


def delayed(seconds, body=b"done"):
    def handler(req, conn):
        req.read_body()
        req.backend.sleep(seconds)
        conn.send_response(200, body, [("Content-Type", "text/plain")])
    return handler


@pytest.fixture
def two(make_backend, make_moat, pki):
    """make(handler, config=None) -> moat with a TLS (.port) and an h2c
    (.plain) listener in front of one backend (.backend)."""
    def make(handler=None, config=None):
        b = make_backend(handler or echo_json())
        tls_port, plain = free_port(), free_port()
        cfg = {"listeners": [
            {"listen": f"127.0.0.1:{tls_port}", "tls": {"cert": pki.ec, "key": pki.ec_key}},
            {"listen": f"127.0.0.1:{plain}"}]}
        cfg.update(config or {})
        m = make_moat([b], cfg)
        m.plain = plain
        m.backend = b
        return m
    return make


def port_of(m, tls):
    return m.port if tls else m.plain


# --------------------------------------------------------------------------
# stream close vs txn end vs parent close


@pytest.mark.parametrize("tls", [True, False])
def test_reset_stream_mid_response_then_more_streams(two, tls):
    m = two(slow_body(4 << 20, delay=0.01))
    with H2Client(port_of(m, tls), tls=tls) as c:
        sid = c.request("GET", "/big")
        st = c.streams[sid]
        while len(st.data) < 100000:
            assert c._pump(), st
        c.conn.reset_stream(sid, CANCEL)
        c.flush()
        for i in range(3):
            r = c.get(f"/after/{i}")
            assert r.status == 200, r
    moat_alive_h2(port_of(m, tls), tls=tls)


@pytest.mark.parametrize("tls", [True, False])
def test_close_connection_with_50_streams_in_flight(two, tls):
    m = two(delayed(0.3))
    for _ in range(2):
        c = H2Client(port_of(m, tls), tls=tls)
        for i in range(50):
            c.request("GET", f"/s/{i}")
        c.wait_settings()
        m.backend.wait_requests(10)
        c.close()
    time.sleep(0.5)  # streams not forwarded yet are dropped with their connection
    moat_alive_h2(port_of(m, tls), tls=tls)


def test_client_goaway_while_streams_run(two):
    m = two(delayed(0.3))
    with RawH2(m.port) as h:
        sids = [1, 3, 5, 7, 9]
        for sid in sids:
            h.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(f"/g/{sid}")))
        h.send(frame(GOAWAY, 0, 0, struct.pack("!II", 0, 0)))
        done = h.read_until(lambda fs: sum(1 for ft, fl, s, p in fs if ft == DATA and fl & END_STREAM) >= 5,
                            t(5))
        assert done, h.got
        assert statuses(h) == {sid: 200 for sid in sids}, h.got
    moat_alive_h2(m.port)


def statuses(h):
    """{stream: :status} of every response head, decoded in wire order (the
    HPACK table depends on it)."""
    import hpack
    dec = hpack.Decoder()
    out, block, sid = {}, b"", None
    for ft, fl, s, p in h.got:
        if ft not in (HEADERS, 9):
            continue
        if ft == HEADERS:
            if fl & 0x8:
                p = p[1:len(p) - p[0]]
            if fl & 0x20:
                p = p[5:]
            sid = s
        block += p
        if fl & END_HEADERS:
            for n, v in dec.decode(block, raw=True):
                if n == b":status" and sid not in out:
                    out[sid] = int(v)
            block = b""
    return out


def data_ended(sids):
    return lambda fs: all(any(ft in (DATA, HEADERS) and fl & END_STREAM and s == sid
                              for ft, fl, s, p in fs) for sid in sids)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_streams_in_flight_finish_on_stop_and_reload(two, sig):
    m = two(delayed(0.8))
    with RawH2(m.port) as h:
        sids = [1, 3, 5, 7, 9]
        for sid in sids:
            h.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(f"/f/{sid}")))
        m.backend.wait_requests(5)
        m.send_signal(sig)
        assert h.read_until(data_ended(sids), t(5)), h.got
        assert statuses(h) == {sid: 200 for sid in sids}, h.got
        if sig == signal.SIGTERM:
            assert h.goaway() is not None, h.got
    if sig == signal.SIGTERM:
        assert m.wait_exit() == 0
    else:
        moat_alive_h2(m.port)


# --------------------------------------------------------------------------
# backpressure


def test_client_without_window_update_holds_memory_bounded(two):
    size = 20 << 20
    big = slow_body(size, chunk=1 << 20)

    def handler(req, conn):
        if req.target == "/big":
            return big(req, conn)
        return fixedok()(req, conn)
    m = two(handler, {"timeouts": {"client_send": "2s"}})
    before = m.rss_kib()
    with RawH2(m.port) as h:
        h.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("/big")))
        h.read_until(lambda fs: sum(len(p) for ft, _, s, p in fs if ft == DATA) >= 65535, t(5))
        time.sleep(1.0)
        grown = m.rss_kib() - before
        assert grown < RSS_SLACK_KIB, f"RSS grew {grown} KiB for a client that reads nothing"
        # others are served meanwhile
        moat_alive_h2(m.port)
        moat_alive_h2(m.plain, tls=False)
        # and client_send ends the stalled connection
        t0 = time.monotonic()
        h.read_until(lambda fs: any(ft in (RST_STREAM, GOAWAY) for ft, _, _, _ in fs), t(8))
        assert h.eof or h.reset_of(1) is not None, h.got[-5:]
        assert time.monotonic() - t0 < t(6)


@pytest.mark.parametrize("tls", [True, False])
def test_large_upload_slow_backend_intact(two, tls):
    size = 6 << 20
    data = pattern_bytes(size, seed=7)
    m = two(sha256_body(delay_read=1.0))
    with H2Client(port_of(m, tls), tls=tls) as c:
        sid = c.request("POST", "/up", headers=[("content-length", str(size))], body=data)
        r = c.response(sid, timeout=t(20))
    assert r.status == 200, r
    j = json.loads(bytes(r.data))
    assert j["length"] == size and j["sha256"] == hashlib.sha256(data).hexdigest(), j


def early_answer():
    """Answers at once, then reads the body (late) and closes."""
    def handler(req, conn):
        conn.send_response(200, b"early", [("Content-Type", "text/plain"), ("Connection", "close")])
        req.backend.sleep(0.3)
        req.read_body()
        conn.close_after = True
    return handler


@pytest.mark.parametrize("tls", [True, False])
def test_backend_answers_before_reading_body(two, tls):
    """The response reaches the client at once; the unread request is then
    cancelled (RST_STREAM NO_ERROR, RFC 9113 8.1) and the connection lives."""
    m = two(early_answer())
    with RawH2(port_of(m, tls), tls=tls) as h:
        h.send(frame(HEADERS, END_HEADERS, 1, request_block("/early", method="POST",
                                                            extra=[("content-length", str(2 << 20))])))
        for _ in range(4):
            h.send(frame(DATA, 0, 1, b"x" * 16383))
        assert h.read_until(lambda fs: h.reset_of(1) is not None, t(5)), h.got
        assert h.status_of(1) == 200 and h.reset_of(1) == 0, h.got
        assert b"early" in b"".join(p for ft, _, sid, p in h.got if ft == DATA and sid == 1)
        h.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block("/next")))
        assert h.read_until(data_ended([3]), t(5)), h.got


# --------------------------------------------------------------------------
# load


@pytest.mark.parametrize("tls", [True, False])
def test_h2load_many_connections_and_streams(two, tls):
    m = two(fixedok())
    url = f"https://127.0.0.1:{m.port}/" if tls else f"http://127.0.0.1:{m.plain}/"
    asan = __import__("harness").ASAN
    n, conc = (1000, ["-c", "10", "-m", "10"]) if asan else (4000, ["-c", "50", "-m", "20"])
    p = subprocess.run(["h2load", "-n", str(n), *conc, url], capture_output=True, text=True,
                       timeout=t(60))
    assert f"{n} succeeded" in p.stdout and "0 errored" in p.stdout, p.stdout[-1500:]
    assert f"status codes: {n} 2xx" in p.stdout, p.stdout[-1500:]
    moat_alive_h2(port_of(m, tls), tls=tls)


def fixedok():
    def handler(req, conn):
        req.read_body()
        conn.send_response(200, b"ok", [("Content-Type", "text/plain")])
    return handler


# --------------------------------------------------------------------------
# HTTP/1.1 over TLS


def test_http11_tls_pipelining_and_10mib_both_ways(two, pki):
    m = two(sha256_body())
    with TLSClient(m.port, ca=pki.ca) as c:
        c.send(b"".join(f"GET /p/{i} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() for i in range(5)))
        for i in range(5):
            r = c.read_response()
            assert r.status == 200, r
        size = 10 << 20
        data = pattern_bytes(size, seed=3)
        c.send(f"POST /big HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\n\r\n".encode() + data)
        r = c.read_response()
        j = json.loads(r.body)
        assert j["length"] == size and j["sha256"] == hashlib.sha256(data).hexdigest()
    m2 = two(slow_body(10 << 20))
    with TLSClient(m2.port, ca=pki.ca) as c:
        c.send(b"GET /dl HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == \
            hashlib.sha256(pattern_bytes(10 << 20)).hexdigest()


# --------------------------------------------------------------------------
# timeouts


@pytest.mark.parametrize("proto", ["tls11", "h2", "h2c"])
def test_keepalive_idle_timeout(two, pki, proto):
    m = two(config={"timeouts": {"keepalive": "1s"}})
    if proto == "tls11":
        c = TLSClient(m.port, ca=pki.ca)
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        c.wait_closed(t(5))
    else:
        c = H2Client(port_of(m, proto == "h2"), tls=proto == "h2")
        assert c.get("/").status == 200
        t0 = time.monotonic()
        while c._pump(t(5)):
            pass
    assert time.monotonic() - t0 < t(4)
    c.close()


@pytest.mark.parametrize("send", [b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"])
def test_tls_handshake_timeout(two, send):
    m = two(config={"timeouts": {"client_header": "1s"}})
    s = socket.create_connection(("127.0.0.1", m.port))
    s.settimeout(t(5))
    if send:
        s.sendall(send)
    t0 = time.monotonic()
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass  # the unread half hello makes the close a reset
    assert time.monotonic() - t0 < t(4)
    s.close()
    moat_alive_h2(m.port)


def test_proxy_protocol_and_tls_on_one_listener(make_backend, make_moat, pki):
    b = make_backend(echo_json())
    port = free_port()
    m = make_moat([b], {"listeners": [{"listen": f"127.0.0.1:{port}", "proxy_protocol": True,
                                        "tls": {"cert": pki.ec, "key": pki.ec_key}}],
                        "proxy": {"trusted_proxies": ["127.0.0.1/32"]}})
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 443\r\n")
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    assert s.selected_alpn_protocol() == "h2"
    s.close()
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 443\r\n")
    s = ssl.create_default_context(cafile=pki.ca).wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"GET /pp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert b"203.0.113.9" in got, got


# --------------------------------------------------------------------------
# access log and error pages over HTTP/2


def test_access_log_h2_proto(two):
    m = two()
    assert moat_alive_h2(m.port).status == 200
    recs = m.access_records(1)
    assert recs[-1].get("proto", recs[-1].get("protocol")) == "HTTP/2.0", recs[-1]


@pytest.mark.parametrize("tls", [True, False])
def test_413_over_h2_keeps_connection(two, tls):
    m = two(config={"limits": {"body": 1000}})
    with H2Client(port_of(m, tls), tls=tls) as c:
        sid = c.request("POST", "/big", headers=[("content-length", "5000")], body=b"y" * 5000)
        r = c.response(sid)
        assert r.status == 413, r
        sid = c.request("POST", "/big2", headers=[("content-length", "5000")], end=False)
        r = c.response(sid)
        assert r.status == 413, r
        assert c.get("/ok").status == 200


@pytest.mark.parametrize("tls", [True, False])
def test_error_pages_over_h2_keep_connection(make_backend, make_moat, pki, tls):
    b = make_backend(delayed(3))
    tls_port, plain, dead = free_port(), free_port(), free_port()
    m = make_moat([b], {
        "listeners": [{"listen": f"127.0.0.1:{tls_port}", "tls": {"cert": pki.ec, "key": pki.ec_key}},
                      {"listen": f"127.0.0.1:{plain}"}],
        "timeouts": {"backend_first_byte": "500ms"},
        "limits": {"body": 100},
        "upstreams": {"app": {"servers": [b.addr]}, "down": {"servers": [f"127.0.0.1:{dead}"]}},
        "routes": [{"path": "/slow", "upstream": "app"}, {"path": "/down", "upstream": "down"}]})
    with H2Client(tls_port if tls else plain, tls=tls) as c:
        assert c.get("/nowhere").status == 404
        r = c.response(c.request("POST", "/slow", headers=[("content-length", "1000")], body=b"z" * 1000))
        assert r.status == 413, r
        r = c.get("/slow", headers=[("x-big", "a" * 40000)])
        assert r.status == 431, r
        assert c.get("/down").status == 502
        r = c.get("/slow")
        assert r.status == 504, r
        assert b"504" in bytes(r.data)
        assert c.get("/nowhere/again").status == 404
        assert c.goaway is None


def test_h2_client_streams_reuse_backend_connection(two):
    m = two(fixedok(), {"workers": 1})
    with H2Client(m.port) as c:
        for i in range(10):
            assert c.get(f"/r/{i}").status == 200
    assert m.backend.connections == 1, m.backend.connections


def test_https_upstream_keepalive_reuse(make_moat, pki):
    b = TLSBackend(server_ctx(pki.ec, pki.ec_key), fixedok(), name="tlsb")
    try:
        port = free_port()
        m = make_moat([], {"workers": 1, "listeners": [{"listen": f"127.0.0.1:{port}"}],
                           "upstreams": {"app": {"servers": [f"https://127.0.0.1:{b.port}"],
                                                 "tls": {"ca": pki.ca, "sni": "localhost"}}}})
        with Client(port) as c:
            for i in range(20):
                r = c.request("GET", f"/k/{i}")
                assert r.status == 200, r
                time.sleep(0.02)
        with H2Client(m.port, tls=False) as c:
            for i in range(5):
                assert c.get(f"/h/{i}").status == 200
        assert b.connections == 1 and not b.handshake_errors, (b.connections, b.handshake_errors)
    finally:
        b.stop()


class DyingH2Origin:
    """An h2c origin that answers every request with a head and `partial`
    bytes of a longer body, then closes the connection."""

    def __init__(self, partial=30000, total=100000):
        import h2.config
        import h2.connection
        import h2.events
        self.h2 = h2
        self.partial, self.total = partial, total
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        h2 = self.h2
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        s.settimeout(10)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        conn.send_headers(ev.stream_id, [(":status", "200"),
                                                         ("content-length", str(self.total))])
                        conn.send_data(ev.stream_id, b"p" * 16000)
                        conn.send_data(ev.stream_id, b"q" * (self.partial - 16000))
                        s.sendall(conn.data_to_send())
                        time.sleep(0.2)
                        s.close()
                        return
                s.sendall(conn.data_to_send())
        except OSError:
            pass

    def stop(self):
        self.stopping = True
        self.lsock.close()


@pytest.mark.parametrize("client", ["h1", "h2"])
def test_h2c_upstream_dies_mid_response(make_moat, client):
    o = DyingH2Origin()
    try:
        port = free_port()
        m = make_moat([], {"listeners": [{"listen": f"127.0.0.1:{port}"}],
                           "upstreams": {"app": {"servers": [f"h2c://127.0.0.1:{o.port}"]}}})
        t0 = time.monotonic()
        if client == "h1":
            with Client(port) as c:
                c.send(b"GET /die HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while True:
                    try:
                        d = c.sock.recv(65536)
                    except (ConnectionResetError, socket.timeout):
                        break
                    if not d:
                        break
                    got += d
            assert got.startswith(b"HTTP/1.1 200") or got.startswith(b"HTTP/1.1 502"), got[:100]
            assert len(got) < 100000
        else:
            with H2Client(port, tls=False) as c:
                r = c.response(c.request("GET", "/die"), timeout=t(5))
                assert r.reset is not None or r.status == 502, r
                assert c.get("/again", timeout=t(5)).status in (200, 502)
        assert time.monotonic() - t0 < t(4)
    finally:
        o.stop()


def test_fast_download_with_default_windows_not_calm(two):
    """A client that keeps the default 64 KiB windows and acknowledges as
    it reads (python-h2: a WINDOW_UPDATE per 32 KiB, stream and connection)
    downloads 20 MiB: no GOAWAY ENHANCE_YOUR_CALM."""
    size = 20 << 20
    m = two(slow_body(size, chunk=1 << 20))
    with H2Client(m.port) as c:
        r = c.get("/big", timeout=t(30))
        assert len(r.data) == size and c.goaway is None, (len(r.data), c.goaway)


# --------------------------------------------------------------------------
# HTTP/2 backends (h2c://)


@pytest.fixture
def h2c_origin():
    def handler(req):
        body = json.dumps({"sha256": hashlib.sha256(req["body"]).hexdigest(),
                           "length": len(req["body"])}).encode()
        return [(":status", "200"), ("content-length", str(len(body)))], body, None
    o = H2Backend(handler)
    yield o
    o.stop()


@pytest.mark.parametrize("scheme", ["h2c", "h2"])
def test_h2c_upstream_upload_intact_and_load(make_moat, h2c_origin, pki, scheme):
    port = free_port()
    ups = {"servers": [f"h2c://127.0.0.1:{h2c_origin.port}"]}
    if scheme == "h2":
        h2c_origin.ssl_ctx = server_ctx(pki.ec, pki.ec_key, alpn=["h2"])
        ups = {"servers": [f"h2://127.0.0.1:{h2c_origin.port}"], "tls": {"ca": pki.ca, "sni": "localhost"}}
    m = make_moat([], {"listeners": [{"listen": f"127.0.0.1:{port}"}], "upstreams": {"app": ups}})
    size = 3 << 20
    data = pattern_bytes(size, seed=11)
    with H2Client(m.port, tls=False) as c:
        sids = [c.request("POST", f"/up/{i}", headers=[("content-length", str(size))], body=data)
                for i in range(2)]
        sids.append(c.request("POST", "/up/chunked", body=data))
        for sid in sids:
            r = c.response(sid, timeout=t(20))
            j = json.loads(bytes(r.data))
            assert r.status == 200 and j == {"sha256": hashlib.sha256(data).hexdigest(),
                                             "length": size}, r
    n = 1000
    p = subprocess.run(["h2load", "-n", str(n), "-c", "10", "-m", "5", f"http://127.0.0.1:{m.port}/"],
                       capture_output=True, text=True, timeout=t(60))
    assert f"status codes: {n} 2xx" in p.stdout, p.stdout[-1500:]
    assert "[error]" not in m.stderr, m.stderr[-2000:]


def test_reset_streams_towards_h2c_upstream(make_moat, h2c_origin):
    port = free_port()
    make_moat([], {"listeners": [{"listen": f"127.0.0.1:{port}"}],
                   "upstreams": {"app": {"servers": [f"h2c://127.0.0.1:{h2c_origin.port}"]}}})
    with H2Client(port, tls=False) as c:
        for i in range(20):
            sid = c.request("POST", f"/r/{i}", headers=[("content-length", "100000")], end=False)
            c.conn.send_data(sid, b"a" * 1000)
            c.conn.reset_stream(sid, CANCEL)
            c.flush()
        assert c.get("/after").status == 200
    moat_alive_h2(port, tls=False)


# --------------------------------------------------------------------------
# more timeouts


def test_tls_handshake_done_then_silence_gets_client_header_timeout(two, pki):
    """After the handshake the first request head must come within
    timeouts.client_header, as on a cleartext connection (not keepalive)."""
    m = two(config={"timeouts": {"client_header": "1s", "keepalive": "20s"}})
    with TLSClient(m.port, ca=pki.ca) as c:
        t0 = time.monotonic()
        c.wait_closed(t(6))
        assert time.monotonic() - t0 < t(4)


@pytest.mark.parametrize("tls", [True, False])
def test_h2_stream_body_stalls_gets_408_connection_lives(two, tls):
    m = two(config={"timeouts": {"client_body": "1s"}})
    with H2Client(port_of(m, tls), tls=tls) as c:
        sid = c.request("POST", "/stall", headers=[("content-length", "100")], body=b"abc", end=False)
        r = c.response(sid, timeout=t(6))
        assert r.status == 408 or r.reset is not None, r
        assert c.get("/ok").status == 200


def test_h2_stream_of_retired_generation_closed_after_drain(two):
    """A reload bounds how long requests under the old config run
    (timeouts.drain): HTTP/1.1 connections are closed then; an HTTP/2
    stream is a virtual client off the worker's list and was missed."""
    m = two(delayed(8), {"timeouts": {"drain": "1s"}})
    with H2Client(m.port) as c:
        sid = c.request("GET", "/long")
        m.backend.wait_requests(1)
        m.reload()
        t0 = time.monotonic()
        r = c.response(sid, timeout=t(10))
        assert r.reset is not None or r.status in (502, 503, 504), r
        assert time.monotonic() - t0 < t(5), r


def big_or_ok(size):
    big = slow_body(size, chunk=1 << 20)

    def handler(req, conn):
        return (big if req.target == "/big" else fixedok())(req, conn)
    return handler


def test_h2_client_that_reads_nothing_is_closed_after_client_send(two):
    m = two(big_or_ok(20 << 20), {"timeouts": {"client_send": "1s"}})
    s = client_socket(m.port, rcvbuf=4096)
    import h2.config
    import h2.connection
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({4: 16 << 20})
    conn.increment_flow_control_window(16 << 20)
    conn.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
                          (":path", "/big")], end_stream=True)
    s.sendall(conn.data_to_send())
    before = m.rss_kib()
    time.sleep(t(4))
    grown = m.rss_kib() - before
    assert grown < RSS_SLACK_KIB, grown
    s.settimeout(t(4))
    got = 0
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
    except (ConnectionResetError, ssl.SSLError):
        pass
    assert got < (20 << 20), got
    s.close()
    moat_alive_h2(m.port)
