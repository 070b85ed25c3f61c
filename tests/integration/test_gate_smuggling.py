"""Gatekeeper: request smuggling (issue 5), what test_parser_strict.py and
test_adversarial.py do not already cover.

Already covered there (not repeated): CL.TE, TE.CL, duplicate and listed
Content-Length, Content-Length with + / hex / overflow, TE gzip / identity /
xchunked / quoted / params / doubled, TE with a vertical tab or a space
before the colon, obs-fold (several), bare CR / LF in heads, NUL and
control characters in names and values, chunk sizes with 0x / + / - /
overflow / spaces, bad chunk extensions and trailers, HTTP/1.0 with TE, a
request hidden in a body staying a body, pipelines after a bad request.

Here:
  1. more framing vectors, each refused with 400 (501 for a coding moat
     does not know) and a close, the backend receiving no byte;
  2. the gatekeeper sees every request a pipeline holds: a second request
     that follows a body is checked by the route lists, the rate limit and
     the WAF like any first one; a request inside a body is never routed.
Every vector hides "GET /smuggled" or "GET /admin" where a confused parser
would see a second request.
"""

import time

import pytest

from harness import Client, Closed, t

H = b"Host: example.test\r\n"
SMUG = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"
ADMIN = b"GET /admin/secret HTTP/1.1\r\nHost: example.test\r\n\r\n"


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def send_refused(port, raw, statuses=(400,)):
    with Client(port) as c:
        try:
            c.send(raw)
        except OSError:
            pass
        r = c.read_response()
        assert r.status in statuses, f"sent {raw[:120]!r}: got {r.status}, expected one of {statuses}"
        assert c.wait_closed(), f"sent {raw[:120]!r}: connection not closed after {r.status}"
    return r


def assert_backend_untouched(backend):
    time.sleep(t(0.1))
    assert backend.bytes_received == 0, (
        f"backend received {backend.bytes_received} bytes: {backend.raw_requests!r}")


# --------------------------------------------------------------------------
# 1. Framing vectors not covered elsewhere


TE_VECTORS = [
    pytest.param(b"Transfer-Encoding: chunked, identity\r\n", id="te-chunked-identity"),
    pytest.param(b"Transfer-Encoding: identity, chunked\r\n", id="te-identity-chunked"),
    pytest.param(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", id="te-lines-chunked-identity"),
    pytest.param(b"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", id="te-chunked-then-empty"),
    pytest.param(b"Transfer-Encoding:\x0cchunked\r\n", id="te-formfeed"),
    pytest.param(b"Transfer-Encoding: chunked\x00\r\n", id="te-nul"),
    pytest.param(b"Transfer-Encoding: chun\x00ked\r\n", id="te-inner-nul"),
    pytest.param(b"Transfer-Encoding: chunKed".replace(b"K", "\u212a".encode()) + b"\r\n", id="te-kelvin-k"),
    pytest.param(b"Transfer-Encoding: \xa0chunked\r\n", id="te-nbsp"),
    pytest.param(b"Transfer-Encoding: chunked\r\r\n", id="te-cr-cr-lf"),
    pytest.param(b"Transfer-Encoding: chunked;\r\n", id="te-chunked-semicolon"),
]


@pytest.mark.parametrize("te", TE_VECTORS)
def test_te_obfuscations_refused(moat, backend, te):
    raw = b"POST / HTTP/1.1\r\n" + H + te + b"Content-Length: 5\r\n\r\n" + b"0\r\n\r\n" + SMUG
    send_refused(moat.port, raw, (400, 501))
    assert_backend_untouched(backend)
    # and without a Content-Length beside it
    raw = b"POST / HTTP/1.1\r\n" + H + te + b"\r\n" + b"0\r\n\r\n" + SMUG
    send_refused(moat.port, raw, (400, 501))
    assert_backend_untouched(backend)


HEAD_VECTORS = [
    pytest.param(b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + H + b"\r\n0\r\n\r\n" + SMUG,
                 id="space-line-after-request-line"),
    pytest.param(b"POST / HTTP/1.1\r\n\tTransfer-Encoding: chunked\r\n" + H + b"\r\n0\r\n\r\n" + SMUG,
                 id="tab-line-after-request-line"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 48\r\n\r\nhello" + SMUG, id="cl-list-different"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\x0b\r\n\r\nhello" + SMUG, id="cl-vtab"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \x005\r\n\r\nhello" + SMUG, id="cl-nul"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-length: 48\r\n\r\nhello" + SMUG,
                 id="cl-case-duplicate"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1_0\r\n\r\nhello" + SMUG, id="cl-underscore"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \xd9\xa5\r\n\r\nhello" + SMUG, id="cl-arabic-digit"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\r\n\r\n" + SMUG, id="cr-cr-lf-in-head"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"\r\r\n" + SMUG, id="cr-cr-lf-end"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"\n\r\n" + SMUG, id="lf-then-crlf-end"),
    pytest.param(b"GET /\x00 HTTP/1.1\r\n" + H + b"\r\n" + SMUG, id="nul-in-target"),
    pytest.param(b"G\x00ET / HTTP/1.1\r\n" + H + b"\r\n" + SMUG, id="nul-in-method"),
    pytest.param(b"GET / HTTP/1.1\x00\r\n" + H + b"\r\n" + SMUG, id="nul-after-version"),
    pytest.param(b"GET\t/\tHTTP/1.1\r\n" + H + b"\r\n" + SMUG, id="tab-separators"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n\x00\r\n\r\n" + SMUG, id="nul-line"),
]


@pytest.mark.parametrize("raw", HEAD_VECTORS)
def test_head_vectors_refused(moat, backend, raw):
    send_refused(moat.port, raw)
    assert_backend_untouched(backend)


CHUNK_VECTORS = [
    pytest.param(b"0X5\r\nhello\r\n0\r\n\r\n", id="size-0X-upper"),
    pytest.param(b"1_0\r\n" + b"h" * 16 + b"\r\n0\r\n\r\n", id="size-underscore"),
    pytest.param(b"5\x00\r\nhello\r\n0\r\n\r\n", id="size-nul"),
    pytest.param(b"\x005\r\nhello\r\n0\r\n\r\n", id="size-leading-nul"),
    pytest.param(b"5\x0b\r\nhello\r\n0\r\n\r\n", id="size-vtab"),
    pytest.param(b"5;a=b\x00\r\nhello\r\n0\r\n\r\n", id="ext-nul"),
    pytest.param(b"10000000000000005\r\nhello\r\n0\r\n\r\n", id="size-wraps-to-5"),
    pytest.param(b"5\r\nhello\r\n0\r\r\n\r\n", id="last-chunk-cr-cr-lf"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\r\n", id="end-cr-cr-lf"),
    pytest.param(b"5\r\nhello\r\n0\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\x00\r\n", id="trailer-nul"),
    pytest.param(b"5\r\nhello\r\n\r\n", id="missing-last-chunk"),
    pytest.param(b"5\r\nhel\r\n0\r\n\r\n", id="data-shorter-than-size"),
]


@pytest.mark.parametrize("body", CHUNK_VECTORS)
def test_chunk_vectors_refused(moat, backend, body):
    raw = b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body + SMUG
    send_refused(moat.port, raw)
    assert_backend_untouched(backend)


# --------------------------------------------------------------------------
# 2. The gatekeeper checks every request of a pipeline


ROUTES = [{"path": "/admin", "upstream": "app", "deny": ["127.0.0.0/8"]}, {"upstream": "app"}]


@pytest.mark.parametrize("first", [
    pytest.param(b"POST /public HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", id="after-cl-body"),
    pytest.param(b"POST /public HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                 id="after-chunked-body"),
    pytest.param(b"GET /public HTTP/1.1\r\n" + H + b"\r\n", id="after-get"),
    pytest.param(b"POST /public HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n", id="after-empty-body"),
])
def test_second_request_after_a_body_is_acl_checked(make_backend, make_moat, first):
    b = make_backend()
    m = make_moat([b], {"routes": ROUTES})
    with Client(m.port) as c:
        c.send(first + ADMIN)
        r1 = c.read_response()
        assert r1.status == 200, r1
        r2 = c.read_response()
        assert r2.status == 403, r2
    time.sleep(t(0.1))
    assert [q.target for q in b.requests] == ["/public"]
    assert b"/admin" not in b"".join(b.raw_requests)


@pytest.mark.parametrize("raw", [
    pytest.param(b"POST /public HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(ADMIN) + ADMIN, id="cl"),
    pytest.param(b"POST /public HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(ADMIN)
                 + b"0\r\n\r\n", id="chunked"),
])
def test_request_inside_a_body_is_not_routed(make_backend, make_moat, raw):
    """The /admin request inside the body reaches the backend as the body
    of /public, byte for byte, and is never routed (no 403 for it, no
    second request)."""
    b = make_backend()
    m = make_moat([b], {"routes": ROUTES})
    with Client(m.port) as c:
        c.send(raw + b"GET /public/2 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        assert c.read_response().status == 200
        assert c.read_response().status == 200
    assert [q.target for q in b.requests] == ["/public", "/public/2"]
    assert bytes(b.requests[0].body) == ADMIN


def test_refused_vector_with_a_hidden_admin_request(make_backend, make_moat):
    """CL.TE hiding /admin: 400, closed, and neither request reaches the
    backend; /admin is never answered (no 403 either: it is never parsed)."""
    b = make_backend()
    m = make_moat([b], {"routes": ROUTES})
    raw = b"POST /public HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + ADMIN
    with Client(m.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 400
        try:
            extra = c.read_response()
        except Closed:
            extra = None
        assert extra is None, f"a second response after the 400: {extra!r}"
    assert_backend_untouched(b)


def test_pipelined_requests_each_count_for_the_rate_limit(make_backend, make_moat):
    """10 requests in one write, burst 2: the 4th and later are refused and
    never reach the backend; a pipeline is no way around the limit."""
    b = make_backend()
    m = make_moat([b], {"rate_limits": {"p": {"key": "client_ip", "rate": "1/m", "burst": 2}},
                        "routes": [{"upstream": "app", "rate_limit": "p"}]})
    raw = b"".join(b"POST /p%d HTTP/1.1\r\n" % i + H + b"Content-Length: 2\r\n\r\nok" for i in range(10))
    got = []
    with Client(m.port, source="127.0.0.2") as c:
        c.send(raw)
        for _ in range(10):
            try:
                got.append(c.read_response().status)
            except Closed:
                break
    assert got[:4] == [200, 200, 200, 429], got
    assert set(got[3:]) == {429}, got
    time.sleep(t(0.1))
    assert [q.target for q in b.requests] == ["/p0", "/p1", "/p2"]


def test_pipelined_attack_after_a_body_is_waf_checked(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"routes": [{"upstream": "app", "waf": True}]})
    attack = b"GET /search?q=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    with Client(m.port) as c:
        c.send(b"POST /form HTTP/1.1\r\n" + H + b"Content-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: 10\r\n\r\nname=alice" + attack)
        r1 = c.read_response()
        assert r1.status == 200, r1
        r2 = c.read_response()
        assert r2.status == 403, r2
    time.sleep(t(0.1))
    assert [q.target for q in b.requests] == ["/form"]
