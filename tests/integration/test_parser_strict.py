"""The strict request parser: anything two servers could frame differently
is refused with a status and a closed connection, and nothing of it (least
of all a smuggled request) reaches the backend."""

import time

import pytest

from harness import Client, t

H = b"Host: example.test\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"


def send_refused(port, raw, statuses):
    """Sends raw on a fresh connection; asserts one response with a status
    in `statuses`, then a close. Returns the response."""
    with Client(port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status in statuses, f"sent {raw!r}: got {r.status}, expected one of {statuses}"
        assert c.wait_closed(), f"sent {raw!r}: connection not closed after {r.status}"
    return r


def assert_backend_untouched(backend):
    time.sleep(t(0.1))   # anything forwarded would have arrived by now
    smuggled = [r for r in backend.requests if "smuggled" in r.target]
    assert not smuggled, f"smuggled request reached the backend: {smuggled[0].raw!r}"
    assert backend.bytes_received == 0, (
        f"backend received {backend.bytes_received} bytes: {backend.raw_requests!r}")


BAD_400 = [
    # framing: Content-Length / Transfer-Encoding
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n" + SMUGGLED, id="cl-then-te"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n"
                 b"0\r\n\r\n" + SMUGGLED, id="te-then-cl"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
                 id="duplicate-cl-same"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 53\r\n\r\nhello" + SMUGGLED,
                 id="duplicate-cl-different"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello", id="cl-list-5-5"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5,5\r\n\r\nhello", id="cl-list-5,5"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\nhello", id="cl-alpha"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\nhello", id="cl-negative"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", id="cl-plus"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", id="cl-hex"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5 5\r\n\r\nhello", id="cl-inner-space"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5.0\r\n\r\nhello", id="cl-decimal"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\nhello", id="cl-empty"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\nhello",
                 id="cl-overflow"),
    # header syntax
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n", id="obs-fold-space"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n\tb\r\n\r\n", id="obs-fold-tab"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: example.test\r\n Content-Length: 53\r\n\r\n" + SMUGGLED,
                 id="obs-fold-cl"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", id="bare-cr-in-value"),
    pytest.param(b"GET / HTTP/1.1\r" + H + b"\r\n", id="bare-cr-after-request-line"),
    pytest.param(b"GET / HTTP/1.1\nHost: example.test\n\n", id="bare-lf-everywhere"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: example.test\nX-A: b\r\n\r\n", id="bare-lf-one-header"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n\n", id="bare-lf-end-of-head"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", id="nul-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", id="ctl-01-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x1bb\r\n\r\n", id="ctl-esc-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", id="del-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-\x01A: b\r\n\r\n", id="ctl-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X-\x00A: b\r\n\r\n", id="nul-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\nHost : example.test\r\n\r\n", id="space-before-colon-host"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length : 53\r\n\r\n" + SMUGGLED,
                 id="space-before-colon-cl"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n",
                 id="tab-before-colon-te"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n", id="space-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b": novalue\r\n\r\n", id="empty-name"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n", id="no-colon"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"X(A): b\r\n\r\n", id="non-token-name"),
    # Host
    pytest.param(b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", id="http11-no-host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", id="two-hosts"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n", id="two-same-hosts"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a@b.example\r\n\r\n", id="host-with-at"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n", id="host-with-slash"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n", id="host-list"),
    # Transfer-Encoding is HTTP/1.1 only (RFC 9112 6.1)
    pytest.param(b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", id="te-in-http10"),
    # request line
    pytest.param(b"GET  / HTTP/1.1\r\n" + H + b"\r\n", id="double-space"),
    pytest.param(b"GET / HTTP/1.1 \r\n" + H + b"\r\n", id="trailing-space"),
    pytest.param(b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", id="space-in-target"),
    pytest.param(b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", id="ctl-in-target"),
    pytest.param(b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", id="del-in-target"),
    pytest.param(b"G@T / HTTP/1.1\r\n" + H + b"\r\n", id="non-token-method"),
    pytest.param(b" GET / HTTP/1.1\r\n" + H + b"\r\n", id="leading-space"),
    pytest.param(b"GET / http/1.1\r\n" + H + b"\r\n", id="lowercase-version"),
    pytest.param(b"GET / HTTP/1.1.1\r\n" + H + b"\r\n", id="long-version"),
    pytest.param(b"GET / FOO/1.1\r\n" + H + b"\r\n", id="not-http"),
    pytest.param(b"GET /\r\n" + H + b"\r\n", id="no-version"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", id="tls-hello"),
]


@pytest.mark.parametrize("raw", BAD_400)
def test_refused_with_400(moat, backend, raw):
    send_refused(moat.port, raw, (400,))
    assert_backend_untouched(backend)


BAD_TE = [
    pytest.param(b"Transfer-Encoding: gzip\r\n", id="gzip"),
    pytest.param(b"Transfer-Encoding: gzip, chunked\r\n", id="gzip-chunked"),
    pytest.param(b"Transfer-Encoding: chunked, gzip\r\n", id="chunked-gzip"),
    pytest.param(b"Transfer-Encoding: identity\r\n", id="identity"),
    pytest.param(b"Transfer-Encoding: xchunked\r\n", id="xchunked"),
    pytest.param(b"Transfer-Encoding: chunked;q=1\r\n", id="chunked-params"),
    pytest.param(b"Transfer-Encoding: \"chunked\"\r\n", id="quoted"),
    pytest.param(b"Transfer-Encoding:\r\n", id="empty"),
    pytest.param(b"Transfer-Encoding: chunked, chunked\r\n", id="chunked-chunked"),
    pytest.param(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", id="two-te-lines"),
    pytest.param(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", id="gzip-line-chunked-line"),
]


@pytest.mark.parametrize("te", BAD_TE)
def test_transfer_encoding_other_than_chunked(moat, backend, te):
    """400, or 501 for a coding moat does not implement; closed either way."""
    raw = (b"POST / HTTP/1.1\r\n" + H + te + b"\r\n"
           b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED)
    send_refused(moat.port, raw, (400, 501))
    assert_backend_untouched(backend)


def test_connect_refused_405(moat, backend):
    send_refused(moat.port, b"CONNECT backend.internal:443 HTTP/1.1\r\nHost: backend.internal:443\r\n\r\n",
                 (405,))
    assert_backend_untouched(backend)


def test_transfer_encoding_chunked_is_case_insensitive(moat, backend):
    with Client(moat.port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert backend.requests[0].body == b"hello"


BAD_CHUNKS = [
    pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", id="size-not-hex"),
    pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="size-negative"),
    pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="size-0x"),
    pytest.param(b"+5\r\nhello\r\n0\r\n\r\n", id="size-plus"),
    pytest.param(b"\r\nhello\r\n0\r\n\r\n", id="size-empty"),
    pytest.param(b" 5\r\nhello\r\n0\r\n\r\n", id="size-leading-space"),
    pytest.param(b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n", id="size-overflow"),
    pytest.param(b"5\nhello\r\n0\r\n\r\n", id="size-bare-lf"),
    pytest.param(b"5\rhello\r\n0\r\n\r\n", id="size-bare-cr"),
    pytest.param(b"5\r\nhelloXX\r\n0\r\n\r\n", id="data-longer-than-size"),
    pytest.param(b"5\r\nhello\n0\r\n\r\n", id="data-bare-lf"),
    pytest.param(b"5\r\nhello0\r\n\r\n", id="data-no-crlf"),
    pytest.param(b"5;\r\nhello\r\n0\r\n\r\n", id="ext-empty"),
    pytest.param(b"5;=v\r\nhello\r\n0\r\n\r\n", id="ext-no-name"),
    pytest.param(b"5;a=\r\nhello\r\n0\r\n\r\n", id="ext-empty-value"),
    pytest.param(b"5;a=\"open\r\nhello\r\n0\r\n\r\n", id="ext-unterminated-quote"),
    pytest.param(b"5;a@b\r\nhello\r\n0\r\n\r\n", id="ext-non-token"),
    pytest.param(b"5;a=b c\r\nhello\r\n0\r\n\r\n", id="ext-space-in-value"),
    pytest.param(b"5;a=\x01\r\nhello\r\n0\r\n\r\n", id="ext-ctl"),
    pytest.param(b"5\r\nhello\r\n0\r\nbad trailer line\r\n\r\n", id="trailer-no-colon"),
    pytest.param(b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n", id="trailer-obs-fold"),
    pytest.param(b"5\r\nhello\r\n0\r\nX-T: a\nX-U: b\r\n\r\n", id="trailer-bare-lf"),
]


@pytest.mark.parametrize("body", BAD_CHUNKS)
def test_bad_chunked_body_refused(moat, backend, body):
    """The whole request (head, bad body, smuggled request) arrives in one
    write: nothing of it may be forwarded."""
    raw = b"POST /chunked HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body + SMUGGLED
    send_refused(moat.port, raw, (400,))
    assert_backend_untouched(backend)


def test_bad_chunk_after_body_started_truncates_backend_request(make_backend, make_moat):
    """The head and a good chunk are already forwarded when the bad chunk
    comes: the client gets 400 and a close, the backend a truncated request
    and a closed connection, never the request hidden behind the bad chunk."""
    from harness import echo, wait_for
    b = make_backend(echo())
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(b"POST /late HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        b.wait_requests(1)
        wait_for(lambda: b"hello" in bytes(b.requests[0].raw), t(3), what="the first chunk at the backend")
        c.send(b"zz\r\nhello\r\n0\r\n\r\n" + SMUGGLED)
        r = c.read_response()
        assert r.status == 400
        assert c.wait_closed()
    wait_for(lambda: all(conn.closed for conn in b.conns), t(3),
             what="moat to close the backend connection of the truncated request")
    assert len(b.requests) == 1
    assert not b.requests[0].done, "the backend saw a complete request"
    assert b"smuggled" not in bytes(b.requests[0].raw)


@pytest.mark.parametrize("version", [b"HTTP/1.2", b"HTTP/2.0", b"HTTP/3.0", b"HTTP/1.9"])
def test_unsupported_version_505(moat, backend, version):
    send_refused(moat.port, b"GET / " + version + b"\r\n" + H + b"\r\n", (505,))
    assert_backend_untouched(backend)


def test_valid_request_then_smuggling_attempt_in_pipeline(moat, backend):
    """The valid request is served; the bad one after it is refused and
    the connection closed; the backend sees only the first."""
    raw = (b"GET /first HTTP/1.1\r\n" + H + b"\r\n"
           b"POST /second HTTP/1.1\r\n" + H + b"Content-Length: 53\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"0\r\n\r\n" + SMUGGLED)
    with Client(moat.port) as c:
        c.send(raw)
        r1 = c.read_response()
        assert (r1.status, r1.body) == (200, b"app GET /first\n")
        r2 = c.read_response()
        assert r2.status == 400
        assert c.wait_closed()
    time.sleep(t(0.2))
    assert [r.target for r in backend.requests] == ["/first"]
    assert backend.raw_requests[0].startswith(b"GET /first HTTP/1.1\r\n")
    assert b"smuggled" not in b"".join(backend.raw_requests)


def test_request_line_too_long_414(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"limits": {"request_line": "1KiB"}})
    with Client(m.port) as c:   # well under the limit: served
        r = c.request("GET", "/" + "a" * 900)
        assert r.status == 200
    send_refused(m.port, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n" + H + b"\r\n", (414,))
    time.sleep(t(0.2))
    assert len(b.requests) == 1


def test_request_line_default_limit_8k(moat, backend):
    with Client(moat.port) as c:
        assert c.request("GET", "/" + "a" * 7900).status == 200
    send_refused(moat.port, b"GET /" + b"a" * 8300 + b" HTTP/1.1\r\n" + H + b"\r\n", (414,))
    time.sleep(t(0.2))
    assert len(backend.requests) == 1


def test_header_section_too_big_431(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"limits": {"request_line": "1KiB", "header_size": "2KiB"}})
    with Client(m.port) as c:
        assert c.request("GET", "/", [("X-Big", "v" * 1500)]).status == 200
    send_refused(m.port, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 3000 + b"\r\n\r\n", (431,))
    # many small headers adding up past the size limit
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(30))
    send_refused(m.port, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n", (431,))
    time.sleep(t(0.2))
    assert len(b.requests) == 1


def test_header_section_default_limit_32k(moat, backend):
    with Client(moat.port) as c:
        assert c.request("GET", "/", [("X-Big", "v" * 16000)]).status == 200
    send_refused(moat.port, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 40000 + b"\r\n\r\n", (431,))
    time.sleep(t(0.2))
    assert len(backend.requests) == 1


def test_header_count_431(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"limits": {"header_count": 10}})
    with Client(m.port) as c:   # Host + 8
        assert c.request("GET", "/", [(f"X-H{i}", "v") for i in range(8)]).status == 200
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(11))
    send_refused(m.port, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n", (431,))
    time.sleep(t(0.2))
    assert len(b.requests) == 1


def test_header_count_default_100(moat, backend):
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    send_refused(moat.port, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n", (431,))
    assert_backend_untouched(backend)


def test_body_over_limit_413(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"limits": {"body": "1KiB"}})
    with Client(m.port) as c:
        assert c.request("POST", "/", body=b"x" * 1000).status == 200
    r = send_refused(m.port, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2000\r\n\r\n" + b"x" * 2000,
                     (413,))
    assert r.status == 413
    time.sleep(t(0.2))
    assert len(b.requests) == 1


def test_parser_survives_garbage_then_serves(moat, backend):
    """A burst of bad connections does not hurt the next good one."""
    for raw in (b"\x00" * 100, b"\r\n" * 50 + b"X", b"GET", b"\xff\xfe\xfd\r\n\r\n"):
        with Client(moat.port) as c:
            c.send(raw)
            c.sock.shutdown(1)   # half-close: moat sees EOF after the bytes
            assert c.wait_closed(), f"connection not closed after {raw!r} and EOF"
    with Client(moat.port) as c:
        assert c.request("GET", "/ok").status == 200
    assert [r.target for r in backend.requests] == ["/ok"]
