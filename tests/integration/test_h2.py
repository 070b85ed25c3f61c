"""HTTP/2 towards clients (issue 4): over TLS (ALPN h2) and cleartext with
prior knowledge (h2c), translated to HTTP/1.1 for the backend; and how moat
stands up to clients that abuse the protocol (rapid reset, CONTINUATION
flood, huge header lists, PING flood).

Clients: curl, nghttp, h2load, and python3-h2 (tls_util.H2Client) or raw
frames (tls_util.RawH2) on a socket.
"""

import hashlib
import json
import socket
import struct
import subprocess
import time

import pytest

from harness import Client, chunked_response, free_port, head_aware, huge, pattern_sha256, t
from tls_util import (CANCEL, CONTINUATION, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM,  # noqa: F401
                      HEADERS, PING, RST_STREAM, SETTINGS, SETTINGS_MAX_CONCURRENT_STREAMS,
                      H2Client, RawH2, echo_json, frame, hdrs, hpack_block, https_curl, moat_alive_h2,
                      nghttp, pki, request_block)


@pytest.fixture
def h2moat(make_backend, make_moat, pki):
    """moat with a TLS listener (.port) and a cleartext one (.plain) in front
    of an echo_json backend (.backend)."""
    b = make_backend(echo_json())
    tls_port, plain = free_port(), free_port()
    m = make_moat([b], {"listeners": [
        {"listen": f"127.0.0.1:{tls_port}", "tls": {"cert": pki.ec, "key": pki.ec_key}},
        {"listen": f"127.0.0.1:{plain}"}]})
    m.plain = plain
    m.backend = b
    return m


def either(m, tls):
    return m.port if tls else m.plain


# --------------------------------------------------------------------------
# h2c with prior knowledge, next to HTTP/1.1


def test_h2c_prior_knowledge_curl(h2moat):
    r = https_curl(f"http://127.0.0.1:{h2moat.plain}/pk?a=1", http="2pk")
    assert r.rc == 0 and r.status == 200 and r.http_version == "2", r
    e = r.json()
    assert e["target"] == "/pk?a=1" and e["version"] == "HTTP/1.1", e
    assert hdrs(e, "X-Forwarded-Proto") == ["http"], e


def test_h2c_nghttp(h2moat):
    p, statuses = nghttp(f"http://127.0.0.1:{h2moat.plain}/ng")
    assert p.returncode == 0 and statuses == [200], p.stdout[-2000:] + p.stderr


def test_http11_still_served_on_h2c_listener(h2moat):
    with Client(h2moat.plain) as c:
        for i in range(3):
            r = c.request("GET", f"/h1/{i}")
            assert r.status == 200 and r.version == "HTTP/1.1", r
    r = https_curl(f"http://127.0.0.1:{h2moat.plain}/c", http="1.1")
    assert r.status == 200 and r.http_version == "1.1", r


def test_h2c_off_listener_speaks_http11_only(make_backend, make_moat):
    port = free_port()
    m = make_moat([make_backend()], {"listeners": [{"listen": f"127.0.0.1:{port}", "h2c": False}]})
    r = https_curl(f"http://127.0.0.1:{m.port}/", http="2pk")
    assert r.status != 200 or r.http_version != "2", r
    with Client(port) as c:
        assert c.request("GET", "/").status == 200


# --------------------------------------------------------------------------
# Translation to HTTP/1.1


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_header_translation(h2moat, tls):
    with H2Client(either(h2moat, tls), tls=tls, authority="example.test:8443") as c:
        r = c.get("/t?q=1", headers=[("cookie", "a=1"), ("x-one", "1"), ("cookie", "b=2"),
                                     ("cookie", "c=3"), ("user-agent", "h2test"),
                                     ("te", "trailers")])
    assert r.status == 200, r
    e = json.loads(bytes(r.data))
    assert e["method"] == "GET" and e["target"] == "/t?q=1" and e["version"] == "HTTP/1.1", e
    assert hdrs(e, "Host") == ["example.test:8443"], e
    assert e["headers"][0][0].lower() == "host", e
    assert hdrs(e, "Cookie") == ["a=1; b=2; c=3"], e
    assert hdrs(e, "X-One") == ["1"] and hdrs(e, "User-Agent") == ["h2test"], e
    names = {n.lower() for n, _ in e["headers"]}
    assert not any(n.startswith(":") for n in names), e
    for bad in ("connection", "keep-alive", "proxy-connection", "upgrade", "http2-settings",
                "transfer-encoding"):
        assert bad not in names, (bad, e)
    assert hdrs(e, "X-Forwarded-Proto") == (["https"] if tls else ["http"]), e


def test_connection_specific_field_from_client_refused(h2moat):
    """A request carrying Connection: is malformed in HTTP/2 (RFC 9113
    8.2.2): a stream error or a 400, never forwarded."""
    with RawH2(h2moat.port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                     request_block("/bad", extra=[("connection", "keep-alive")])))
        c.read_until(lambda fs: c.reset_of(1) is not None or c.status_of(1) or c.goaway())
        assert c.reset_of(1) is not None or c.status_of(1) == 400 or c.goaway(), c.got
    time.sleep(0.1)
    assert not any(r.target == "/bad" for r in h2moat.backend.requests)
    moat_alive_h2(h2moat.port)


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "no-length"])
def test_request_body(h2moat, with_length):
    body = bytes(range(256)) * 1200   # 300 KiB: more than one flow-control window
    headers = [("content-type", "application/octet-stream")]
    if with_length:
        headers.append(("content-length", str(len(body))))
    with H2Client(h2moat.port) as c:
        sid = c.request("POST", "/upload", headers, body=body)
        r = c.response(sid)
    assert r.status == 200, r
    e = json.loads(bytes(r.data))
    assert e["method"] == "POST" and e["length"] == len(body), e
    assert e["sha256"] == hashlib.sha256(body).hexdigest()
    if with_length:
        assert hdrs(e, "Content-Length") == [str(len(body))], e
    else:
        assert e["framing"] in ("chunked", "length"), e


def test_request_body_shorter_than_content_length_reset(h2moat):
    with RawH2(h2moat.port) as c:
        c.send(frame(HEADERS, END_HEADERS, 1, request_block(
            "/cl", method="POST", extra=[("content-length", "10")])))
        c.send(frame(0, END_STREAM, 1, b"12345"))    # DATA: 5 of 10 bytes
        c.read_until(lambda fs: c.reset_of(1) is not None or c.status_of(1) or c.goaway())
        assert c.reset_of(1) == 0x1 or c.goaway() or (c.status_of(1) or 0) >= 400, c.got[-5:]
    moat_alive_h2(h2moat.port)


def test_request_body_in_many_small_frames_h2c(h2moat):
    with H2Client(h2moat.plain, tls=False) as c:
        sid = c.request("PUT", "/small", [("content-type", "text/plain")], end=False)
        for i in range(50):
            c.conn.send_data(sid, b"%04d," % i)
            c.flush()
        c.conn.end_stream(sid)
        c.flush()
        r = c.response(sid)
    e = json.loads(bytes(r.data))
    assert r.status == 200 and e["length"] == 250, (r, e)


def test_large_download_h2(make_backend, make_moat, pki):
    size = 5 * 1024 * 1024
    b = make_backend(huge(size, seed=7))
    port = free_port()
    make_moat([b], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                   "tls": {"cert": pki.ec, "key": pki.ec_key}}]})
    with H2Client(port) as c:
        r = c.get("/big", timeout=t(30))
    assert r.status == 200 and len(r.data) == size, (r.status, len(r.data))
    assert hashlib.sha256(r.data).hexdigest() == pattern_sha256(size, seed=7)
    r = https_curl(f"https://localhost:{port}/big", ca=pki.ca, http="2")
    assert r.status == 200 and r.http_version == "2" and len(r.body) == size, r.stderr
    assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(size, seed=7)


def test_many_concurrent_streams_nghttp(h2moat):
    p, statuses = nghttp(f"http://127.0.0.1:{h2moat.plain}/many", args=["-m", "50"])
    assert p.returncode == 0 and statuses == [200] * 50, (statuses, p.stderr[-2000:])


def test_many_concurrent_streams_h2load(h2moat):
    p = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "20",
                        f"https://127.0.0.1:{h2moat.port}/load"],
                       capture_output=True, timeout=t(60))
    out = p.stdout.decode()
    assert "200 succeeded" in out and "200 2xx" in out, out[-2000:]
    assert "Application protocol: h2" in out, out[-2000:]


def test_streams_on_one_connection_interleave(h2moat):
    with H2Client(h2moat.port) as c:
        sids = [c.request("GET", f"/s{i}") for i in range(30)]
        rs = [c.response(s) for s in sids]
    assert [r.status for r in rs] == [200] * 30
    assert [json.loads(bytes(r.data))["target"] for r in rs] == [f"/s{i}" for i in range(30)]


def test_max_concurrent_streams_advertised(h2moat):
    for tls in (True, False):
        with RawH2(either(h2moat, tls), tls=tls) as c:
            c.read_until(lambda fs: c.settings() is not None)
            s = c.settings()
            assert s is not None and s.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 100, s


# --------------------------------------------------------------------------
# Abuse: each ends with the connection closed (GOAWAY or not), and moat
# serving new connections.


def closed_or_goaway(c, timeout=None):
    c.read_until(lambda fs: c.goaway() is not None, timeout or t(5))
    if c.goaway() is None:
        c.drain(t(3))
    return c.goaway() is not None or c.eof


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_rapid_reset(h2moat, tls):
    port = either(h2moat, tls)
    block = request_block("/rr", scheme="https" if tls else "http")
    with RawH2(port, tls=tls) as c:
        sid = 1
        burst = bytearray()
        for i in range(1000):
            burst += frame(HEADERS, END_STREAM | END_HEADERS, sid, block)
            burst += frame(RST_STREAM, 0, sid, struct.pack("!I", CANCEL))
            sid += 2
            if len(burst) > 32768:
                if not c.send(bytes(burst)):
                    break
                burst.clear()
        c.send(bytes(burst))
        assert closed_or_goaway(c), "1000 streams opened and reset: no GOAWAY, connection open"
        g = c.goaway()
        if g is not None:
            assert g[1] == ENHANCE_YOUR_CALM, f"GOAWAY error {g[1]:#x}"
    # Far fewer than 1000 requests reached the backend.
    time.sleep(0.2)
    n = sum(1 for r in h2moat.backend.requests if r.target == "/rr")
    assert n < 500, f"{n} of the reset requests were forwarded"
    moat_alive_h2(port, tls=tls)


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_continuation_flood(h2moat, tls):
    port = either(h2moat, tls)
    with RawH2(port, tls=tls) as c:
        c.send(frame(HEADERS, 0, 1, request_block("/cf", scheme="https" if tls else "http")))
        piece = hpack_block([("x-f", "v" * 8)])
        sent = 0
        batch = frame(CONTINUATION, 0, 1, piece) * 500
        deadline = time.monotonic() + t(5)
        while sent < 100000 and time.monotonic() < deadline:   # 100k frames, ~2.4 MB
            if not c.send(batch):
                break
            sent += 500
            if c.eof:
                break
        assert closed_or_goaway(c), f"{sent} CONTINUATION frames: no GOAWAY, connection open"
    assert not any(r.target == "/cf" for r in h2moat.backend.requests)
    moat_alive_h2(port, tls=tls)


def test_continuation_flood_empty_frames(h2moat):
    """Empty CONTINUATION frames add nothing to the header list: a limit on
    its size alone never ends them."""
    with RawH2(h2moat.port) as c:
        c.send(frame(HEADERS, 0, 1, request_block("/cf0")))
        batch = frame(CONTINUATION, 0, 1, b"") * 1000
        for _ in range(100):
            if not c.send(batch):
                break
        assert closed_or_goaway(c), "100k empty CONTINUATION frames: no GOAWAY, connection open"
    moat_alive_h2(h2moat.port)


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_oversized_header_list(h2moat, tls):
    port = either(h2moat, tls)
    big = [(f"x-big-{i}", "b" * 1024) for i in range(200)]
    block = request_block("/big-headers", scheme="https" if tls else "http", extra=big)
    with RawH2(port, tls=tls) as c:
        c.read_until(lambda fs: c.settings() is not None)
        # HEADERS + CONTINUATION in frames of at most 16 KiB (the default max frame size).
        parts = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        out = b""
        for i, p in enumerate(parts):
            flags = (END_STREAM if i == 0 else 0) | (END_HEADERS if i == len(parts) - 1 else 0)
            out += frame(HEADERS if i == 0 else CONTINUATION, flags, 1, p)
        c.send(out)
        c.read_until(lambda fs: c.status_of(1) or c.reset_of(1) is not None or c.goaway())
        st, rst, g = c.status_of(1), c.reset_of(1), c.goaway()
        assert st == 431 or rst is not None or g is not None or c.eof, (st, rst, g, c.got[-5:])
        if st == 431 and g is None and not c.eof:
            # A 431 is a stream's answer: the connection goes on.
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3,
                         request_block("/after-431", scheme="https" if tls else "http")))
            c.read_until(lambda fs: c.status_of(3))
            assert c.status_of(3) == 200, c.got[-5:]
    assert not any(r.target == "/big-headers" for r in h2moat.backend.requests)
    moat_alive_h2(port, tls=tls)


@pytest.mark.parametrize("fields", [[(f"x-big-{i}", "b" * 1024) for i in range(40)],
                                    [(f"x-n-{i}", "v") for i in range(150)]],
                         ids=["40KiB", "150fields"])
def test_header_list_over_limit_gets_431(h2moat, fields):
    """Over limits.header_size_max (32 KiB) or header_count_max (100), yet
    not a flood: the stream is answered 431 and the connection goes on."""
    block = request_block("/h431", extra=fields)
    with RawH2(h2moat.port) as c:
        parts = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        out = b""
        for i, p in enumerate(parts):
            flags = (END_STREAM if i == 0 else 0) | (END_HEADERS if i == len(parts) - 1 else 0)
            out += frame(HEADERS if i == 0 else CONTINUATION, flags, 1, p)
        c.send(out)
        c.read_until(lambda fs: c.status_of(1) or c.reset_of(1) is not None or c.goaway())
        assert c.status_of(1) == 431 and c.goaway() is None, (c.status_of(1), c.reset_of(1),
                                                                c.goaway(), c.got[-5:])
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, request_block("/after-431")))
        c.read_until(lambda fs: c.status_of(3))
        assert c.status_of(3) == 200, c.got[-5:]
    assert not any(r.target == "/h431" for r in h2moat.backend.requests)


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_ping_flood(h2moat, tls):
    port = either(h2moat, tls)
    # A client that never reads: PING ACKs pile up in moat unless it stops.
    with RawH2(port, tls=tls, rcvbuf=4096) as c:
        c.sock.settimeout(t(2))
        batch = b"".join(frame(PING, 0, 0, struct.pack("!Q", i)) for i in range(1000))
        sent = 0
        blocked = False
        deadline = time.monotonic() + t(4)
        while sent < 200000 and time.monotonic() < deadline:
            try:
                c.sock.sendall(batch)
            except socket.timeout:
                blocked = True     # moat stopped reading from us
                break
            except (BrokenPipeError, ConnectionResetError, OSError):
                break
            sent += 1000
        gone = closed_or_goaway(c, t(3))
        assert gone, (f"{sent} PINGs unread (sender blocked: {blocked}): no GOAWAY, connection "
                      f"open")
        g = c.goaway()
        if g is not None:
            assert g[1] == ENHANCE_YOUR_CALM, f"GOAWAY error {g[1]:#x}"
    moat_alive_h2(port, tls=tls)


def test_settings_flood(h2moat):
    with RawH2(h2moat.port, rcvbuf=4096) as c:
        payload = struct.pack("!HI", 0x4, 65535)
        batch = frame(SETTINGS, 0, 0, payload) * 1000
        c.sock.settimeout(t(3))
        try:
            for _ in range(100):
                c.sock.sendall(batch)
        except (socket.timeout, OSError):
            pass
        assert closed_or_goaway(c), "100k SETTINGS unacknowledged: no GOAWAY, connection open"
    moat_alive_h2(h2moat.port)


def test_ordinary_after_goaway_on_other_conn(h2moat):
    """A connection's GOAWAY does not disturb the others."""
    with H2Client(h2moat.port) as keep:
        assert keep.get("/k1").status == 200
        with RawH2(h2moat.port) as bad:
            bad.send(b"\x00\x00\x08\x07\x00\x00\x00\x00\x01" + b"\x00" * 8)  # GOAWAY on stream 1
            bad.drain(t(2))
        assert keep.get("/k2").status == 200


def test_chunked_trailers_from_http11_backend_reach_h2_client(make_backend, make_moat, pki):
    b = make_backend(chunked_response([b"abc", b"defg"], trailers=[("X-Checksum", "42")]))
    port = free_port()
    make_moat([b], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                   "tls": {"cert": pki.ec, "key": pki.ec_key}}]})
    with H2Client(port) as c:
        r = c.get("/tr", headers=[("te", "trailers")])
    assert r.status == 200 and bytes(r.data) == b"abcdefg", r
    assert r.trailer("x-checksum") == "42", r
    assert r.header("transfer-encoding") is None, r


def test_head_and_204_have_no_data(make_backend, make_moat, pki):
    b = make_backend(head_aware(b"hello"))
    port = free_port()
    make_moat([b], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                   "tls": {"cert": pki.ec, "key": pki.ec_key}}]})
    with H2Client(port) as c:
        r = c.response(c.request("HEAD", "/h"))
        assert r.status == 200 and bytes(r.data) == b"" and r.header("content-length") == "5", r
        r = c.get("/g")
        assert r.status == 200 and bytes(r.data) == b"hello", r
