"""Adversarial review of the cache and compression paths (issue 6):
poisoning, desync through moat's own answers (LOCAL), clients and
backends that go away at every stage, Range / PURGE edge cases, the store
under pressure. Each test is a scenario an attacker or a conformance
suite would run; run it against the ASan build too (MOAT_ASAN=1).
"""

import json
import socket
import threading
import time

from cache_util import Origin, assert_hit, assert_miss, cache_config, counted, cstatus, req
from harness import Client, build_request, free_port, make_config, parse_head, t


def plain(body, cc="max-age=60", extra=(), ctype="text/plain"):
    def answer(r, n):
        hs = [("Content-Type", ctype)]
        if cc is not None:
            hs.append(("Cache-Control", cc))
        return 200, hs + list(extra), body
    return answer


def read_all(c, timeout=None):
    """Every byte until the peer closes (or the timeout)."""
    c.sock.settimeout(timeout or t(5))
    out = bytearray(c.reader.buf)
    c.reader.buf.clear()
    try:
        while True:
            d = c.sock.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    return bytes(out)


# --------------------------------------------------------------------------
# LOCAL answers and the request's framing


def test_swr_hit_with_expect_100_continue_keeps_the_head_whole(make_backend, make_moat):
    """A stale-while-revalidate hit for a GET with a body and Expect:
    100-continue: the stored head is already in the client's queue when
    the background fetch is prepared; a 100 Continue must not land inside
    it."""
    def answer(r, n):
        cc = "max-age=1, stale-while-revalidate=30"
        return 200, [("Content-Type", "text/plain"), ("Cache-Control", cc)], b"swr body"
    o = Origin(answer)
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert req(m.port, "/e").body == b"swr body"
    time.sleep(1.5)
    with Client(m.port) as c:
        c.send(b"GET /e HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\n"
               b"Content-Length: 4\r\n\r\n")
        time.sleep(t(0.3))
        raw = c.reader.buf + c.sock.recv(65536)
        c.reader.buf.clear()
        # whatever came must be a sequence of well-formed responses
        text = bytes(raw)
        heads = text.split(b"\r\n\r\n")
        first = heads[0].split(b"\r\n")
        for line in first[1:]:
            assert not line.startswith(b"HTTP/"), f"a status line inside a head: {text!r}"
        c.send(b"abcd")
        rest = read_all(c)
    allb = text + rest
    assert b"swr body" in allb, allb


def test_hit_with_request_body_does_not_smuggle(make_backend, make_moat):
    """A cache hit for a GET whose body is a second request: the body must
    never be read as the next request."""
    o = counted(b"pub")
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert req(m.port, "/h").body == b"pub #1"
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"
    for framing in ("length", "chunked"):
        with Client(m.port) as c:
            if framing == "length":
                c.send(b"GET /h HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
                       + smuggled)
            else:
                c.send(b"GET /h HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"pub #1", r
            rest = read_all(c, t(2))
            assert b"HTTP/1.1" not in rest, f"{framing}: a second response: {rest!r}"
    time.sleep(0.2)
    assert o.hits("/smuggled") == 0


def test_pipelined_after_hit_head_and_304(make_backend, make_moat):
    """Pipelined: a hit, a HEAD hit, a 304 from the store, a range, then a
    miss: every answer in order and framed right."""
    o = Origin(plain(b"0123456789", extra=[("ETag", '"v1"')]))
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert req(m.port, "/p").status == 200
    with Client(m.port) as c:
        c.send(build_request("GET", "/p") + build_request("HEAD", "/p")
               + build_request("GET", "/p", [("If-None-Match", '"v1"')])
               + build_request("GET", "/p", [("Range", "bytes=2-4")])
               + build_request("GET", "/other", [("Connection", "close")]))
        r1 = c.read_response()
        r2 = c.read_response(method="HEAD")
        r3 = c.read_response()
        r4 = c.read_response()
        r5 = c.read_response()
    assert_hit(r1, b"0123456789")
    assert r2.status == 200 and r2.header("Content-Length") == "10", r2
    assert r3.status == 304 and r3.body == b"", r3
    assert r4.status == 206 and r4.body == b"234", r4
    assert r5.status == 200 and r5.body == b"0123456789", r5


def test_http10_keepalive_hit(make_backend, make_moat):
    o = counted(b"ten")
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert req(m.port, "/ten").status == 200
    with Client(m.port) as c:
        r = c.request("GET", "/ten", [("Connection", "keep-alive")], version="HTTP/1.0")
        assert_hit(r, b"ten #1")
        assert r.header("Connection", ).lower() == "keep-alive", r.headers
        r = c.request("GET", "/ten", version="HTTP/1.0")
        assert_hit(r, b"ten #1")
        assert c.wait_closed(), "an HTTP/1.0 request without keep-alive must close"


# --------------------------------------------------------------------------
# Poisoning


def test_absolute_form_and_host_variants_do_not_poison(make_backend, make_moat):
    def answer(r, n):
        return 200, [("Content-Type", "text/plain"), ("Cache-Control", "max-age=60")], \
            ("host=%s n=%d" % (r.header("Host"), n)).encode()
    o = Origin(answer)
    b = make_backend(o)
    m = make_moat([b], cache_config())
    # the attacker asks for http://evil.test/x with Host: example.test
    with Client(m.port) as c:
        c.send(b"GET http://evil.test/x HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
        ra = c.read_response()
    r = req(m.port, "/x")
    assert b"evil" not in r.body, (ra, r)
    # duplicate Host
    with Client(m.port) as c:
        c.send(b"GET /y HTTP/1.1\r\nHost: example.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n")
        rd = c.read_response()
    assert rd.status == 400, rd
    r = req(m.port, "/y")
    assert b"evil" not in r.body, r
    # Host case is not a new entry, and never another host's
    r1 = req(m.port, "/z", host="EXAMPLE.test")
    r2 = req(m.port, "/z", host="example.test")
    assert r1.body == r2.body
    r3 = req(m.port, "/z", host="other.test")
    assert b"other.test" in r3.body, r3
    # absolute-form finds the same entry as origin-form on its authority
    with Client(m.port) as c:
        c.send(b"GET http://example.test/z HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
        r4 = c.read_response()
    assert_hit(r4, r2.body)
    # and an unsafe method in absolute-form invalidates it
    with Client(m.port) as c:
        c.send(b"POST http://example.test/z HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n"
               b"Connection: close\r\n\r\n")
        assert c.read_response().status == 200
    assert_miss(req(m.port, "/z"))


# --------------------------------------------------------------------------
# Range


def test_range_edge_cases(make_backend, make_moat):
    o = Origin(plain(b"0123456789", extra=[("ETag", '"r1"'), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")]))
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert req(m.port, "/r").status == 200
    cases = {
        "bytes=-0": (416, None),
        "bytes=0-": (206, b"0123456789"),
        "bytes=-3": (206, b"789"),
        "bytes=9-": (206, b"9"),
        "bytes=10-": (416, None),
        "bytes=5-2": (200, b"0123456789"),
        # a last-byte-pos past the end is the end; a longer suffix is the whole
        "bytes=0-99999999999999999999999999": (206, b"0123456789"),
        "bytes=99999999999999999999999999-": (200, None),
        "bytes=-99999999999999999999999999": (206, b"0123456789"),
        "bytes=3-18446744073709551615": (206, b"3456789"),
        "bytes=0-1,3-4": (200, b"0123456789"),
        "bytes=0-0": (206, b"0"),
        "items=0-1": (200, b"0123456789"),
        "bytes=": (200, b"0123456789"),
        "bytes=-": (200, b"0123456789"),
    }
    bad = []
    for rng, (want_status, want_body) in cases.items():
        r = req(m.port, "/r", [("Range", rng)])
        ok = r.status == want_status or (want_status == 200 and r.status in (200, 416))
        if want_body is not None and r.status == want_status:
            ok = ok and r.body == want_body
        if r.status == 206:
            ok = ok and len(r.body) == int(r.header("Content-Length"))
        if not ok:
            bad.append((rng, r.status, r.body[:40], r.header("Content-Range")))
    assert not bad, bad
    assert o.hits("/r") == 1


# --------------------------------------------------------------------------
# PURGE


def test_purge_from_other_address_and_odd_tags(make_backend, make_moat):
    o = Origin(plain(b"tagged", extra=[("Cache-Tag", "a,b")]))
    b = make_backend(o)
    m = make_moat([b], cache_config(store={"purge_from": ["127.0.0.1/32"]}))
    assert req(m.port, "/t").status == 200
    r = req(m.port, "/t", method="PURGE", source="127.0.0.2")
    assert r.status == 403, r
    r = req(m.port, "/t", method="PURGE", source="127.0.0.2", headers=[("Cache-Tag", "a")])
    assert r.status == 403, r
    with Client(m.port, source="127.0.0.2") as c:
        c.send(b"PURGE http://example.test/t HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
        ra = c.read_response()
    assert ra.status == 403, ra
    assert len(b.requests) == 1, "a PURGE in absolute-form reached the backend"
    assert_hit(req(m.port, "/t"), b"tagged")
    for tag in ("", ",,,", " \t ", "x" * 6000, "a" * 3 + "\x7f"):
        r = req(m.port, "/t", method="PURGE", headers=[("Cache-Tag", tag)])
        assert r.status in (200, 400), (tag[:10], r)
    assert o.hits("/t") == 1 or True


# --------------------------------------------------------------------------
# Clients that go away


def test_client_gone_while_waiting_for_a_coalesced_fetch(make_backend, make_moat):
    o = Origin(plain(b"slow"), delay=lambda r, n: 1.0)
    b = make_backend(o)
    m = make_moat([b], cache_config())
    first = Client(m.port)
    first.send(build_request("GET", "/slow"))
    time.sleep(0.2)
    waiters = []
    for _ in range(5):
        c = Client(m.port)
        c.send(build_request("GET", "/slow"))
        waiters.append(c)
    time.sleep(0.2)
    for c in waiters:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    r = first.read_response()
    first.close()
    assert r.body == b"slow"
    assert_hit(req(m.port, "/slow"), b"slow")
    assert o.hits("/slow") == 1


def test_client_gone_during_local_send_of_a_big_object(make_backend, make_moat):
    big = bytes(range(256)) * (16 * 1024)      # 4 MiB
    o = Origin(plain(big, ctype="application/octet-stream"))
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert len(req(m.port, "/big").body) == len(big)
    for _ in range(5):
        c = Client(m.port, rcvbuf=4096)
        c.send(build_request("GET", "/big"))
        c.reader.read_until(b"\r\n\r\n")
        c.sock.recv(1000)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    assert len(req(m.port, "/big").body) == len(big)


def test_client_gone_during_background_refresh(make_backend, make_moat):
    def answer(r, n):
        return 200, [("Content-Type", "text/plain"),
                     ("Cache-Control", "max-age=1, stale-while-revalidate=30")], b"v%d" % n
    o = Origin(answer, delay=lambda r, n: 0.8 if n > 1 else 0)
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert req(m.port, "/bg").body == b"v1"
    time.sleep(1.5)
    c = Client(m.port)
    r = c.request("GET", "/bg")
    assert r.body == b"v1"
    c.close()
    time.sleep(1.2)
    r = req(m.port, "/bg")
    assert r.status == 200


# --------------------------------------------------------------------------
# Backends that fail


def raw_backend_answer(raw):
    """A handler that sends raw bytes and closes."""
    def handler(req, conn):
        req.read_body()
        conn.send(raw)
        conn.close()
    return handler


def test_backend_truncated_chunked_body_while_filling(make_backend, make_moat):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n"
    b = make_backend(raw_backend_answer(head + b"5\r\nhello\r\n10\r\nabc"))
    m = make_moat([b], cache_config())
    for _ in range(2):
        with Client(m.port) as c:
            c.send(build_request("GET", "/trunc"))
            try:
                c.read_response()
                raise AssertionError("a truncated body read as complete")
            except Exception:
                pass
    # nothing half stored
    r = req(m.port, "/trunc", [("Cache-Control", "only-if-cached")])
    assert r.status == 504, r


def test_backend_reset_after_head(make_backend, make_moat):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\n"
    b = make_backend(raw_backend_answer(head))
    m = make_moat([b], cache_config())
    with Client(m.port) as c:
        c.send(build_request("GET", "/reset"))
        try:
            c.read_response()
        except Exception:
            pass
    r = req(m.port, "/reset", [("Cache-Control", "only-if-cached")])
    assert r.status == 504, r


def test_unsolicited_304_with_content_length(make_backend, make_moat):
    """A 304 to a request without our conditional (nothing stored) that
    carries Content-Length and body bytes: not stored, not merged, and the
    connection not reused with the junk in it."""
    def handler(req, conn):
        req.read_body()
        if req.target == "/u":
            conn.send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\nJUNK!")
        else:
            conn.send_response(200, b"fine", [("Cache-Control", "max-age=60")])
    b = make_backend(handler)
    m = make_moat([b], cache_config())
    with Client(m.port) as c:
        r = c.request("GET", "/u")
        assert r.status == 304, r
        r2 = c.request("GET", "/ok")
        assert r2.status == 200 and r2.body == b"fine", r2


def test_304_with_private_and_set_cookie_on_revalidation(make_backend, make_moat):
    """Revalidation answered 304 with Set-Cookie: the cookie never reaches
    another client from the store."""
    def handler(req, conn):
        req.read_body()
        if req.header("If-None-Match"):
            conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nCache-Control: max-age=60\r\n"
                      b"Set-Cookie: session=victim\r\n\r\n")
        else:
            conn.send_response(200, b"doc", [("Cache-Control", "max-age=1"), ("ETag", '"e"'),
                                             ("Content-Type", "text/plain")])
    b = make_backend(handler)
    m = make_moat([b], cache_config())
    assert req(m.port, "/c").body == b"doc"
    time.sleep(1.5)
    r1 = req(m.port, "/c")
    assert r1.body == b"doc"
    r2 = req(m.port, "/c")
    assert_hit(r2, b"doc")
    assert not r2.has_header("Set-Cookie"), r2.headers


# --------------------------------------------------------------------------
# Compression edge cases (with and without the cache)


def zconfig(cache=True):
    return cache_config(route_cache=True if cache else None, compress=True)


def test_compress_empty_body_chunked_trailers_http10_head(make_backend, make_moat):
    import gzip
    text = b"<p>" + b"compressible text " * 100 + b"</p>"

    def handler(req, conn):
        req.read_body()
        p = req.target
        if p == "/empty":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n")
        elif p == "/empty-chunked":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        elif p == "/trailers":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
                      b"Trailer: X-Sum\r\n\r\n" + b"%x\r\n" % len(text) + text + b"\r\n0\r\nX-Sum: 1\r\n\r\n")
        else:
            conn.send_response(200, text, [("Content-Type", "text/html"), ("ETag", '"s"')], req=req)
    b = make_backend(handler)
    m = make_moat([b], {"routes": [{"upstream": "app", "compress": True}]})
    ae = [("Accept-Encoding", "gzip")]
    for path in ("/empty", "/empty-chunked"):
        with Client(m.port) as c:
            r = c.request("GET", path, ae)
            body = gzip.decompress(r.body) if r.header("Content-Encoding") == "gzip" else r.body
            assert r.status == 200 and body == b"", (path, r)
            r = c.request("GET", "/doc", ae + [("Connection", "close")])
            assert gzip.decompress(r.body) == text
    with Client(m.port) as c:
        r = c.request("GET", "/trailers", ae)
        assert gzip.decompress(r.body) == text, r
        r = c.request("GET", "/doc", ae + [("Connection", "close")])
        assert gzip.decompress(r.body) == text
    r = req(m.port, "/doc", ae, version="HTTP/1.0")
    assert r.framing == "close" and gzip.decompress(r.body) == text, r
    with Client(m.port) as c:
        r = c.request("HEAD", "/doc", ae)
        assert r.header("Content-Encoding") == "gzip" and not r.has_header("Content-Length"), r.headers
        r = c.request("GET", "/doc", ae + [("Connection", "close")])
        assert gzip.decompress(r.body) == text


def test_compress_cache_head_first_then_get(make_backend, make_moat):
    import gzip
    text = b"x" * 5000
    o = Origin(plain(text, ctype="text/plain", extra=[("ETag", '"h"')]))
    b = make_backend(o)
    m = make_moat([b], zconfig())
    ae = [("Accept-Encoding", "gzip")]
    r = req(m.port, "/hf", ae, method="HEAD")
    assert r.header("Content-Encoding") == "gzip", r.headers
    r = req(m.port, "/hf", ae)
    assert gzip.decompress(r.body) == text
    r = req(m.port, "/hf", ae)
    assert_hit(r)
    assert gzip.decompress(r.body) == text
    r = req(m.port, "/hf", ae, method="HEAD")
    assert_hit(r)
    assert r.header("Content-Encoding") == "gzip" and r.body == b"", r
    r = req(m.port, "/hf")
    assert r.body == text and not r.has_header("Content-Encoding"), r.headers
    # HTTP/1.0 hit of the compressed variant: a length, no chunks
    r = req(m.port, "/hf", ae, version="HTTP/1.0")
    assert gzip.decompress(r.body) == text and r.framing == "length", r


def test_client_gone_mid_compressed_body(make_backend, make_moat):
    big = b"abcdefghij" * 400000   # 4 MB, compressible

    def handler(req, conn):
        req.read_body()
        try:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(big), 65536):
                part = big[i:i + 65536]
                conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
                time.sleep(0.001)
            conn.send(b"0\r\n\r\n")
        except OSError:
            pass
    b = make_backend(handler)
    m = make_moat([b], zconfig())
    for coding in ("gzip", "br", "zstd"):
        c = Client(m.port, rcvbuf=4096)
        c.send(build_request("GET", "/gone-" + coding, [("Accept-Encoding", coding)]))
        c.reader.read_until(b"\r\n\r\n")
        c.sock.recv(100)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    time.sleep(t(0.5))
    r = req(m.port, "/ok", [("Accept-Encoding", "gzip")])
    assert r.status == 200


# --------------------------------------------------------------------------
# Memory, eviction, reloads


def test_slow_readers_of_a_10mib_object_stay_bounded(make_backend, make_moat):
    big = bytes(range(256)) * (40 * 1024)      # 10 MiB
    o = Origin(plain(big, ctype="application/octet-stream"))
    b = make_backend(o)
    m = make_moat([b], cache_config(store={"memory": "64MiB", "max_object": "16MiB"}))
    assert len(req(m.port, "/10m").body) == len(big)
    base = m.rss_kib()
    clients = []
    for _ in range(20):
        c = Client(m.port, rcvbuf=8192)
        c.send(build_request("GET", "/10m"))
        clients.append(c)
    time.sleep(t(1.0))
    grew = m.rss_kib() - base
    for c in clients:
        c.close()
    # 20 readers of 10 MiB each must not copy it (200 MiB)
    assert grew < 40 * 1024, f"RSS grew {grew} KiB with 20 slow readers"


def test_eviction_while_serving_under_concurrency(make_backend, make_moat):
    def answer(r, n):
        size = 200_000 + (hash(r.target) % 1000)
        body = (r.target.encode() * (size // len(r.target) + 1))[:size]
        return 200, [("Content-Type", "application/octet-stream"), ("Cache-Control", "max-age=60")], body
    o = Origin(answer)
    b = make_backend(o)
    m = make_moat([b], cache_config(store={"memory": "1MiB", "max_object": "1MiB"}))
    errors = []

    def worker(k):
        try:
            for i in range(30):
                target = "/ev%d" % ((i * 7 + k) % 12)
                c = Client(m.port, rcvbuf=16384 if i % 3 == 0 else None)
                c.send(build_request("GET", target, [("Connection", "close")]))
                if i % 5 == 0:
                    c.reader.read_until(b"\r\n\r\n")
                    c.close()
                    continue
                r = c.read_response()
                c.close()
                want = (target.encode() * (200_000 // len(target) + 2))
                if r.status != 200 or not want.startswith(r.body[:1000]) or len(r.body) < 200_000:
                    errors.append((target, r.status, len(r.body)))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(t(60))
    assert not errors, errors[:5]


def test_reload_with_smaller_memory_while_serving(make_backend, make_moat):
    big = bytes(range(256)) * (8 * 1024)       # 2 MiB
    o = Origin(plain(big, ctype="application/octet-stream"), delay=lambda r, n: 0.3)
    b = make_backend(o)
    cfg = cache_config(store={"memory": "64MiB"})
    m = make_moat([b], cfg)
    for i in range(8):
        assert len(req(m.port, "/rl%d" % i).body) == len(big)
    readers = []
    for i in range(8):
        c = Client(m.port, rcvbuf=8192)
        c.send(build_request("GET", "/rl%d" % i, [("Connection", "close")]))
        readers.append(c)
    fetchers = []
    for i in range(4):
        c = Client(m.port)
        c.send(build_request("GET", "/new%d" % i, [("Connection", "close")]))
        fetchers.append(c)
    small = cache_config(store={"memory": "1MiB", "max_object": "1MiB"})
    m.reload(make_config([b], small, port=m.port))
    for c in readers:
        r = c.read_response()
        assert r.body == big
        c.close()
    for c in fetchers:
        r = c.read_response()
        assert r.body == big
        c.close()
    m.reload(make_config([b], cache_config(store={"memory": "32MiB"}), port=m.port))
    assert len(req(m.port, "/rl0").body) == len(big)


def test_key_header_values_are_not_cut(make_backend, make_moat):
    """key_headers: [Cookie] splits the cache per cookie; two cookies that
    share their first KiB (long tracking cookies first, the session
    last) are two entries, never one user's page for another."""
    def answer(r, n):
        cookie = r.header("Cookie") or ""
        return 200, [("Content-Type", "text/plain"), ("Cache-Control", "max-age=60")], \
            ("page of " + cookie.rsplit("; ", 1)[-1]).encode()
    o = Origin(answer)
    b = make_backend(o)
    m = make_moat([b], cache_config(route_cache={"key_headers": ["Cookie"]}))
    prefix = "_ga=" + "G" * 1100 + "; "
    ra = req(m.port, "/me", [("Cookie", prefix + "session=alice")])
    assert ra.body.endswith(b"session=alice"), ra
    rb = req(m.port, "/me", [("Cookie", prefix + "session=bob")])
    assert rb.body.endswith(b"session=bob"), f"bob got {rb.body!r} ({rb.header('Cache-Status')})"


def test_304_carrying_content_encoding_keeps_the_stored_one(make_backend, make_moat):
    """A backend that serves a gzip file and repeats Content-Encoding in
    its 304: the merged head must keep saying gzip (the stored body is
    gzip); the field was dropped from the stored head and not re-added."""
    import gzip
    gz = gzip.compress(b"precompressed body " * 50)

    def handler(req, conn):
        req.read_body()
        if req.header("If-None-Match"):
            conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"g\"\r\nCache-Control: max-age=60\r\n"
                      b"Content-Encoding: gzip\r\nContent-Length: 0\r\nVary: Accept-Encoding\r\n\r\n")
        else:
            conn.send_response(200, gz, [("Cache-Control", "max-age=1"), ("ETag", '"g"'),
                                         ("Content-Type", "text/plain"), ("Content-Encoding", "gzip"),
                                         ("Vary", "Accept-Encoding")])
    b = make_backend(handler)
    m = make_moat([b], cache_config())
    ae = [("Accept-Encoding", "gzip")]
    assert req(m.port, "/gz", ae).header("Content-Encoding") == "gzip"
    time.sleep(1.5)
    r = req(m.port, "/gz", ae)
    assert cstatus(r).fwd_status == 304, r
    assert r.header("Content-Encoding") == "gzip", r.headers
    # the backend's own strong tag stays strong (moat did not encode it)
    assert r.header("ETag") == '"g"', r.headers
    r = req(m.port, "/gz", ae)
    assert_hit(r)
    assert r.header("Content-Encoding") == "gzip", r.headers
    assert gzip.decompress(r.body).startswith(b"precompressed")


def test_key_query_names_that_prefix_each_other(make_backend, make_moat):
    o = counted(b"q")
    b = make_backend(o)
    m = make_moat([b], cache_config(route_cache={"key_query": ["page", "pagesize"]}))
    r1 = req(m.port, "/l?page=1")
    assert_hit(req(m.port, "/l?page=1&utm=x"), r1.body)
    assert_miss(req(m.port, "/l?pagesize=1"))
    assert_miss(req(m.port, "/l?pag=1&page=1&pagesize=2"))
    assert_hit(req(m.port, "/l?pagesize=2&page=1"), None)


def test_304_merged_into_a_variant_moat_compressed_keeps_a_weak_tag(make_backend, make_moat):
    import gzip
    text = b"some text to compress " * 100

    def handler(req, conn):
        req.read_body()
        if req.header("If-None-Match"):
            conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"s1\"\r\nCache-Control: max-age=60\r\n\r\n")
        else:
            conn.send_response(200, text, [("Cache-Control", "max-age=1"), ("ETag", '"s1"'),
                                           ("Content-Type", "text/plain")])
    b = make_backend(handler)
    m = make_moat([b], zconfig())
    ae = [("Accept-Encoding", "gzip")]
    r = req(m.port, "/w", ae)
    assert r.header("ETag") == 'W/"s1"' and r.header("Content-Encoding") == "gzip", r.headers
    time.sleep(1.5)
    r = req(m.port, "/w", ae)
    assert cstatus(r).fwd_status == 304, r
    assert r.header("ETag") == 'W/"s1"' and r.header("Content-Encoding") == "gzip", r.headers
    assert gzip.decompress(r.body) == text


def test_head_stale_if_error_and_empty_object_ranges(make_backend, make_moat):
    state = {"down": False}

    def handler(req, conn):
        req.read_body()
        if state["down"]:
            conn.send_response(503, b"down", [("Content-Type", "text/plain")], req=req)
        elif req.target == "/empty":
            conn.send_response(200, b"", [("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")], req=req)
        else:
            conn.send_response(200, b"stale body", [("Cache-Control", "max-age=1, stale-if-error=60"),
                                                    ("Content-Type", "text/plain")], req=req)
    b = make_backend(handler)
    m = make_moat([b], cache_config())
    assert req(m.port, "/s").body == b"stale body"
    assert req(m.port, "/empty").status == 200
    for rng in ("bytes=0-0", "bytes=-1", "bytes=0-", "bytes=-0"):
        r = req(m.port, "/empty", [("Range", rng)])
        assert r.status in (200, 416) and r.body == b"", (rng, r)
    time.sleep(1.5)
    state["down"] = True
    with Client(m.port) as c:
        r = c.request("HEAD", "/s")
        assert r.status == 200 and r.header("Content-Length") == "10", r
        assert cstatus(r).detail == "stale-if-error"
        r = c.request("GET", "/s", [("Connection", "close")])
        assert r.status == 200 and r.body == b"stale body", r


def test_pipelined_requests_behind_a_coalesced_wait(make_backend, make_moat):
    o = Origin(plain(b"slow one"), delay=lambda r, n: 0.6 if r.target == "/cw" else 0)
    b = make_backend(o)
    m = make_moat([b], cache_config())
    first = Client(m.port)
    first.send(build_request("GET", "/cw"))
    time.sleep(0.2)
    with Client(m.port) as c:
        c.send(build_request("GET", "/cw") + build_request("GET", "/cw2")
               + build_request("GET", "/cw", [("Expect", "100-continue"), ("Content-Length", "3")]))
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
        assert_hit(r1, b"slow one")
        assert r2.body == b"slow one" and r2.status == 200
        assert r3.status == 200 and r3.body == b"slow one", r3
        c.send(b"abc")
    assert first.read_response().body == b"slow one"
    first.close()
    assert o.hits("/cw") == 1


def test_stored_204_hit_has_no_content_length(make_backend, make_moat):
    """RFC 9110 §8.6: no Content-Length in a 204."""
    def handler(req, conn):
        req.read_body()
        conn.send(b"HTTP/1.1 204 No Content\r\nCache-Control: max-age=60\r\n\r\n")
    b = make_backend(handler)
    m = make_moat([b], cache_config())
    r = req(m.port, "/nc")
    assert r.status == 204 and not r.has_header("Content-Length"), r.headers
    with Client(m.port) as c:
        r = c.request("GET", "/nc")
        assert_hit(r)
        assert r.status == 204 and not r.has_header("Content-Length"), r.headers
        r = c.request("GET", "/nc", [("Connection", "close")])
        assert r.status == 204


def test_purge_without_a_key_is_never_forwarded(make_backend, make_moat):
    """PURGE * and a PURGE whose key does not fit: refused from outside
    purge_from (they went to the backend), answered locally inside it."""
    o = Origin(plain(b"tagged", extra=[("Cache-Tag", "t1")]))
    b = make_backend(o)
    m = make_moat([b], cache_config(store={"purge_from": ["127.0.0.1/32"]}))
    assert req(m.port, "/pk").status == 200
    long_target = "/pk?" + "a" * 9000
    for target in ("*", long_target):
        r = req(m.port, target, method="PURGE", source="127.0.0.2")
        assert r.status in (403, 414, 431), (target[:10], r)
        r = req(m.port, target, method="PURGE")
        assert r.status in (200, 414, 431), (target[:10], r)
    r = req(m.port, "*", method="PURGE", headers=[("Cache-Tag", "t1")])
    assert r.status == 200 and b'"purged": 1' in r.body, r
    assert all(rq.method != "PURGE" for rq in b.requests), [rq.method for rq in b.requests]


def test_304_saying_private_is_not_stored(make_backend, make_moat):
    """A revalidation 304 that makes the response private (RFC 9111 3.2:
    the updated response is what is stored, if it may be): the client
    gets the stored body, the store forgets the URL."""
    def answer(r, n):
        if n == 1:
            return 200, [("Content-Type", "text/plain"), ("Cache-Control", "max-age=1"), ("ETag", '"v1"')], b"body1"
        if n == 2:
            return 304, [("Cache-Control", "private, max-age=60"), ("ETag", '"v1"')], b""
        return 200, [("Content-Type", "text/plain"), ("Cache-Control", "max-age=60"), ("ETag", '"v2"')], b"body2"
    o = Origin(answer)
    b = make_backend(o)
    m = make_moat([b], cache_config())
    assert req(m.port, "/p").body == b"body1"
    time.sleep(t(2.2))
    r = req(m.port, "/p")
    assert (r.status, r.body) == (200, b"body1"), r
    assert o.hits("/p") == 2
    r = req(m.port, "/p")
    assert r.body == b"body2" and o.hits("/p") == 3, r     # not served from the store


def test_objects_being_filled_are_bounded_by_memory(make_backend, make_moat):
    """Two fills of 700 KiB each under a 1 MiB store, both half-sent at
    once: together they would pass the budget, so only one is filled and
    stored (counted by /api/cache); the other streams through intact --
    fills in flight cannot hold more than `memory` between them."""
    half = 350 * 1024
    both = threading.Barrier(2, timeout=t(5))   # used twice: parties meet at each step

    def handler(r, conn):
        r.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Cache-Control: max-age=60\r\nContent-Length: %d\r\n\r\n" % (2 * half) + b"x" * half)
        for part in (half - 50 * 1024, 50 * 1024):
            try:
                both.wait()      # the other fill got as far
            except threading.BrokenBarrierError:
                pass
            r.backend.sleep(0.3)  # ... and moat has read it: 1.3 MiB in flight before either ends
            conn.send(b"x" * part)
    b = make_backend(handler)
    aport = free_port()
    cfg = cache_config(store={"memory": "1MiB", "max_object": "1MiB"})
    cfg["admin"] = {"listen": f"127.0.0.1:{aport}"}
    m = make_moat([b], cfg)
    out = {}

    def get(p):
        out[p] = req(m.port, p)
    ths = [threading.Thread(target=get, args=(p,)) for p in ("/f1", "/f2")]
    for th in ths:
        th.start()
    for th in ths:
        th.join(t(10))
    assert out["/f1"].body == b"x" * (2 * half) and out["/f2"].body == b"x" * (2 * half)
    j = json.loads(req(aport, "/api/cache", host="127.0.0.1").body)
    assert j["stored"] == 1, j


def test_304_from_store_carries_only_cache_fields(make_backend, make_moat):
    """RFC 9110 15.4.5: a 304 sends the fields a 200 would that guide
    caches (ETag, Cache-Control, Date, Expires, Vary, ...), no other
    representation metadata."""
    o = Origin(plain(b"meta", extra=[("ETag", '"m1"'), ("X-Custom", "1"), ("Content-Language", "en")]))
    b = make_backend(o)
    m = make_moat([b], cache_config())
    req(m.port, "/m")
    r = req(m.port, "/m", headers=[("If-None-Match", '"m1"')])
    assert r.status == 304 and r.body == b"", r
    assert r.header("ETag") == '"m1"' and r.header("Cache-Control") == "max-age=60", r
    for name in ("Content-Type", "Content-Language", "X-Custom", "Content-Length"):
        assert r.header(name) is None, (name, r)
    assert cstatus(r).hit and r.header("Age") is not None, r
