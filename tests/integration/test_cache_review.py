"""Adversarial review of the cache and compression paths (issue 6):
poisoning, desync through moat's own answers (LOCAL), clients and
backends that go away at every stage, Range / PURGE edge cases, the store
under pressure. Each test is a scenario an attacker or a conformance
suite would run; run it against the ASan build too (MOAT_ASAN=1).
"""

import socket
import threading
import time

from cache_util import Origin, assert_hit, assert_miss, cache_config, counted, cstatus, req
from harness import Client, build_request, parse_head, t


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
