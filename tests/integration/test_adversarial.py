"""Adversarial regression tests: what an attacker's tools (smuggling probes,
slowloris, byte-at-a-time senders) and misbehaving backends do to moat.

The long-running versions live in tests/adversarial/ (fuzz_socket.py,
fuzz_backend.py, resource.py, vectors.py, refparse.py); this file keeps
the findings as small deterministic tests, plus the most important vectors
as fast checks. Every vector hides "GET /smuggled" where a confused parser
would see a second request: the backend must never receive it.

Findings (each a test below):
  1. a response head split over reads stalled until backend_first_byte
     (504; fixed in fa13fab, these tests guard it);
  2. moat sends 1xx to HTTP/1.0 clients: its own 100 Continue, a backend's 101;
  3. routes match the raw path: /public/../admin escapes a /public/ route;
  4. 1xx heads flooding a slow client are cut mid-head: corrupted stream;
  5. the sticky cookie is an unkeyed public hash of the backend's address.
"""

import socket
import time

import pytest

from harness import Client, Closed, t, wait_for

H = b"Host: example.test\r\n"
SMUG = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def exchange(port, raw, bytewise=False, fin=True, timeout=None):
    """Sends raw (whole, or one byte per send), optionally half-closes,
    and returns every byte moat sent until it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout or t(5))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if bytewise:
            for i in range(len(raw)):
                s.send(raw[i:i + 1])
        else:
            s.sendall(raw)
        if fin:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass   # moat may close early on a refused head
    out = bytearray()
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    return bytes(out)


def statuses(data):
    return [int(data[i + 9:i + 12]) for i in range(len(data)) if data.startswith(b"HTTP/1.1 ", i)
            and (i == 0 or data[i - 2:i] == b"\r\n" or data[i - 1:i] == b"\n")]


# ---------------------------------------------------------------- smuggling: refused

REFUSED = [
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n" + SMUG, id="cl-te"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                 + chunk(SMUG) + b"0\r\n\r\n", id="te-cl"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\x0b\r\nContent-Length: 4\r\n\r\n"
                 + chunk(SMUG) + b"0\r\n\r\n", id="te-vtab"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n" + chunk(SMUG) + b"0\r\n\r\n",
                 id="te-space-colon"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUG, id="te-xchunked"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"X: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUG,
                 id="te-obs-fold"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
                 b"0\r\n\r\n" + SMUG, id="te-te-duplicate"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n" + SMUG,
                 id="chunk-size-plus"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + SMUG,
                 id="chunk-size-0x"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n" + SMUG,
                 id="chunk-ext-empty"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n" + SMUG,
                 id="chunked-lf-only"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\nGET /smuggled"
                 b" HTTP/1.1\r\n\r\n", id="trailer-bare-lf"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +%d\r\n\r\n" % len(SMUG) + SMUG, id="cl-plus"),
    pytest.param(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\nContent-Length: 0\r\n\r\n" % len(SMUG) + SMUG,
                 id="cl-cl"),
    pytest.param(b"GET /\r\n\r\n" + SMUG, id="http09"),
    pytest.param(b"GET / HTTP/1.1\nHost: example.test\n\n" + SMUG, id="lf-only-head"),
    pytest.param(b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUG,
                 id="http10-te"),
    pytest.param(b"GET http://user@evil.test/ HTTP/1.1\r\n" + H + b"\r\n" + SMUG, id="absolute-userinfo"),
]


def test_smuggling_vectors_refused_whole_and_bytewise(moat, backend):
    """Each vector is refused with one 4xx/5xx and a close, whether it
    arrives in one write or one byte per write. In one write the backend
    sees nothing; byte by byte a bad chunked body may come after its head
    was forwarded: the backend then sees that head and a truncated body,
    never a complete request and never the hidden one."""
    for bytewise in (False, True):
        for raw in REFUSED:
            got = exchange(moat.port, raw.values[0], bytewise=bytewise)
            st = statuses(got)
            assert len(st) == 1 and st[0] in (400, 501, 505), f"{raw.id} bytewise={bytewise}: {got[:200]!r}"
        time.sleep(t(0.2))
        if not bytewise:
            assert backend.requests == [], f"forwarded: {backend.raw_requests!r}"
    for r in backend.requests:
        assert r.target == "/" and not r.done, f"bytewise: forwarded {bytes(r.raw)!r}"


# ---------------------------------------------------------------- smuggling: a body stays a body

AS_BODY = [
    pytest.param(b"POST /b HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(SMUG) + SMUG, id="cl"),
    pytest.param(b"GET /b HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(SMUG) + SMUG, id="get-with-cl"),
    pytest.param(b"POST /b HTTP/1.1\r\n" + H + b"Transfer-Encoding:\tcHuNkEd\r\n\r\n" + chunk(SMUG) + b"0\r\n\r\n",
                 id="te-tab-mixed-case"),
    pytest.param(b"POST /b HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x;a=b ; c=\"d;e\"\r\n"
                 % len(SMUG) + SMUG + b"\r\n0;z\r\nX-T: 1\r\n\r\n", id="chunk-extensions-trailer"),
    pytest.param(b"POST /b HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(SMUG)
                 + SMUG, id="expect"),
    pytest.param(b"GET /b HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: %d"
                 b"\r\n\r\n" % len(SMUG) + SMUG, id="upgrade-refused-by-backend"),
    pytest.param(b"POST /b HTTP/1.1\r\n" + H + b"Connection: Content-Length\r\nContent-Length: %d\r\n\r\n"
                 % len(SMUG) + SMUG, id="connection-names-cl"),
    pytest.param(b"POST /b HTTP/1.1\r\n" + H + b"Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + chunk(SMUG) + b"0\r\n\r\n", id="connection-names-te"),
    pytest.param(b"POST /b HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
                 id="http10-keepalive-cl"),
    pytest.param(b"POST /b HTTP/1.1\r\n" + H + b"Content-Length: 000%d\r\n\r\n" % len(SMUG) + SMUG,
                 id="cl-leading-zeros"),
]


def test_requests_inside_bodies_stay_bodies(moat, backend):
    """Each vector: one request reaches the backend, its body exactly the
    bytes that look like a request; never a second one."""
    n = 0
    for raw in AS_BODY:
        for bytewise in (False, True):
            got = exchange(moat.port, raw.values[0], bytewise=bytewise)
            st = [s for s in statuses(got) if s != 100]
            assert st == [200], f"{raw.id} bytewise={bytewise}: {got[:300]!r}"
            n += 1
            r = backend.wait_requests(n)[-1]
            wait_for(lambda: r.done, t(2), what=f"{raw.id}: the body at the backend")
            assert r.target == "/b" and r.body == SMUG, f"{raw.id}: {bytes(r.raw)!r}"
            cl, te = r.header_all("Content-Length"), r.header_all("Transfer-Encoding")
            assert (cl == [str(len(SMUG))] and not te) or (te == ["chunked"] and not cl), r.headers
    time.sleep(t(0.1))
    assert len(backend.requests) == n, [r.target for r in backend.requests]


# ---------------------------------------------------------------- pipelining edges

def test_partial_pipelined_request_never_forwarded(moat, backend):
    """"GET / ... Content-Length: 0 CRLF CRLF GET /admin" and a FIN: one
    request served, the fragment dropped."""
    got = exchange(moat.port, b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\nGET /admin")
    assert statuses(got) == [200], got
    time.sleep(t(0.1))
    assert [r.target for r in backend.requests] == ["/"]


@pytest.mark.parametrize("raw", [
    pytest.param(b"GET /a HTTP/1.0\r\n\r\n" + SMUG, id="http10-default-close"),
    pytest.param(b"GET /a HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n" + SMUG, id="http10-ka-close"),
    pytest.param(b"GET /a HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n" + SMUG, id="http11-close"),
])
def test_nothing_after_a_closing_request(moat, backend, raw):
    got = exchange(moat.port, raw, fin=False)
    assert statuses(got) == [200], got
    time.sleep(t(0.1))
    assert [r.target for r in backend.requests] == ["/a"]


def test_absolute_form_target_wins_over_host_consistently(moat, backend):
    got = exchange(moat.port, b"GET http://evil.test/x?y HTTP/1.1\r\nHost: example.test\r\n\r\n")
    assert statuses(got) == [200]
    r = backend.wait_requests(1)[0]
    assert (r.target, r.header_all("Host")) == ("/x?y", ["evil.test"]), r.raw
    assert "evil.test" in r.header("X-Forwarded-Host") and "example.test" not in bytes(r.raw).decode()


def test_200_pipelined_requests_byte_by_byte(moat, backend):
    raw = b"".join(b"GET /p%d HTTP/1.1\r\n" % i + H + b"\r\n" for i in range(200))
    got = exchange(moat.port, raw + b"GET /last HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
                   bytewise=True, fin=False, timeout=t(20))
    assert statuses(got) == [200] * 201
    assert [r.target for r in backend.requests] == [f"/p{i}" for i in range(200)] + ["/last"]


# ---------------------------------------------------------------- resources

def test_slowloris_gets_408_at_client_header(make_backend, make_moat):
    """One byte every 100 ms: the head deadline runs from the first byte,
    so the trickle ends with 408 and a close at client_header (500 ms)."""
    b = make_backend()
    m = make_moat([b], {"timeouts": {"client_header": "500ms"}})
    s = socket.create_connection(("127.0.0.1", m.port), timeout=t(5))
    head = b"GET / HTTP/1.1\r\n" + H + b"X-Slow: " + b"s" * 100 + b"\r\n\r\n"
    start = time.monotonic()
    s.settimeout(0.1)
    got = b""
    for i in range(len(head)):
        try:
            s.send(head[i:i + 1])
        except OSError:
            break
        try:
            d = s.recv(4096)
            got += d
            if not d:
                break
        except socket.timeout:
            pass
        if time.monotonic() - start > t(4):
            break
    s.settimeout(t(3))
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    elapsed = time.monotonic() - start
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    assert elapsed < 0.5 + t(1), f"408 after {elapsed:.1f}s"
    assert b.bytes_received == 0


def test_moat_pages_never_name_the_backend(make_backend, make_moat):
    """400, 405, 505 and 504 pages, with a backend that answers late: no
    address, no port."""
    late = make_backend(handler=lambda req, conn: (req.backend.sleep(t(3)), conn.close()))
    m = make_moat([late], {"timeouts": {"backend_first_byte": "300ms"}})
    secrets = (b"127.0.0.1", b"%d" % late.port)
    for raw, want in [(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 504),
                      (b"GET /\r\n\r\n", 400),
                      (b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", 405),
                      (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)]:
        got = exchange(m.port, raw, fin=False)
        assert statuses(got) == [want], got[:200]
        for secret in secrets:
            assert secret not in got, f"{want} page holds {secret!r}: {got!r}"


# ---------------------------------------------------------------- finding 1 (fixed in fa13fab)

def split_head_backend(first, rest, pause=0.1):
    """A backend that writes `first`, waits `pause`, then writes `rest`:
    a response head that reaches moat in two reads, as any head larger than
    one TCP segment does on a real network."""
    def handler(req, conn):
        req.read_body()
        conn.send(first)
        req.backend.sleep(pause)
        try:
            conn.send(rest)
        except OSError:
            pass
    return handler


def timed_get(port, target="/"):
    start = time.monotonic()
    with Client(port, timeout=t(10)) as c:
        r = c.request("GET", target, [("Connection", "close")])
    return r, time.monotonic() - start


def test_response_head_split_across_reads_is_not_stalled(make_backend, make_moat):
    """Finding 1: a response head that arrived in two reads was never
    completed: txn.c read from the backend only while its input buffer was
    empty, so once part of a head sat there moat waited for
    backend_first_byte and answered 504 (after 60 s by default) although the
    backend answered in 100 ms."""
    b = make_backend(split_head_backend(b"HTTP/1.1 200 OK\r\nContent-", b"Length: 2\r\n\r\nok"))
    m = make_moat([b], {"timeouts": {"backend_first_byte": "1s"}})
    r, elapsed = timed_get(m.port)
    assert (r.status, r.body) == (200, b"ok"), f"after {elapsed:.1f}s: {r.status} {r.body[:60]!r}"
    assert elapsed < t(1.5)


def test_final_head_split_after_an_interim_response_is_not_stalled(make_backend, make_moat):
    """Finding 1 after a 103 Early Hints: the 103 was forwarded, the final
    head that followed it in two pieces never completed."""
    b = make_backend(split_head_backend(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 20",
                                        b"0 OK\r\nContent-Length: 2\r\n\r\nok"))
    # after the 103 the wait is backend_idle's
    m = make_moat([b], {"timeouts": {"backend_first_byte": "1s", "backend_idle": "1s"}})
    r, elapsed = timed_get(m.port)
    assert (r.status, r.body) == (200, b"ok"), f"after {elapsed:.1f}s: {r.status} {r.body[:60]!r}"
    assert [x.status for x in r.informational] == [103]


def test_backend_closing_inside_its_head_gets_502_at_once(make_backend, make_moat):
    """Finding 1, other symptom: a backend that sends half a head and closes
    gives 502 at once; moat did not read the EOF and answered 504 at
    backend_first_byte instead."""
    def handler(req, conn):
        req.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-")
        req.backend.sleep(0.1)
        conn.close()
    b = make_backend(handler)
    m = make_moat([b], {"timeouts": {"backend_first_byte": "1s"}})
    r, elapsed = timed_get(m.port)
    assert r.status == 502, f"after {elapsed:.1f}s: {r.status}"
    assert elapsed < t(1.5)


# ---------------------------------------------------------------- findings 2-5 (failing until fixed)

def test_no_100_continue_to_an_http10_client(moat, backend):
    """Finding 2: moat answers Expect: 100-continue with "HTTP/1.1 100
    Continue" to an HTTP/1.0 client. RFC 9110 10.1.1 / 15.2: a server MUST
    ignore the expectation in an HTTP/1.0 request and MUST NOT send a 1xx
    to an HTTP/1.0 client, which takes the 100 for the final response: every
    later response on a keep-alive connection is then read one request late
    (a response-queue desync in any HTTP/1.0 intermediary that pools it).
    moat already drops a backend's 1xx for HTTP/1.0 clients, not its own."""
    with Client(moat.port) as c:
        c.send(b"POST /a HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n")
        time.sleep(t(0.1))
        c.send(b"hello")
        r = c.read_response(skip_1xx=False)
        assert r.status == 200, f"an HTTP/1.0 client got {r.status} first: {r.raw_head!r}"
        assert r.body == b"app POST /a\n"


def test_no_upgrade_tunnel_for_an_http10_request(make_backend, make_moat):
    """Finding 2: an Upgrade in an HTTP/1.0 request is tunnelled. moat
    forwards it as HTTP/1.1 with "Connection: upgrade" (so the backend
    cannot know it came from 1.0) and relays the 101, a 1xx, to an HTTP/1.0
    client. RFC 9110 7.8: a server MUST ignore Upgrade received in an
    HTTP/1.0 request (an HTTP/1.0 intermediary in front would forward it
    without knowing the connection then stops being HTTP). Expected: Upgrade
    dropped, no 101 to the client, the bytes that follow parsed as HTTP."""
    from harness import websocket_echo
    b = make_backend(websocket_echo())
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status != 101, f"HTTP/1.0 request tunnelled: {r.raw_head!r}"
    req = b.wait_requests(1)[0]
    assert not req.has_header("Upgrade"), req.raw


@pytest.mark.parametrize("target", ["/public/../admin", "/public/%2e%2e/admin", "/public/./../admin?x=1",
                                    "/public/%2E./admin"])
def test_route_prefix_not_escaped_by_dot_segments(make_backend, make_moat, target):
    """Finding 3: routes match the raw request path as a prefix, with no
    normalisation, and the raw target is forwarded. With a route for
    /public/ only, "GET /public/../admin" matches it and reaches the
    backend, which (like most servers: RFC 3986 5.2.4, %2E being '.')
    resolves it to /admin: a path an operator exposed nothing for (a plain
    "GET /admin" gets 404). Expected: a target whose dot-segments leave the
    prefix does not match the route (400 / 404), or is forwarded resolved."""
    import posixpath
    import re
    from urllib.parse import unquote
    b = make_backend()
    m = make_moat([b], {"routes": [{"path": "/public/", "upstream": "app"}]})
    got = exchange(m.port, b"GET " + target.encode() + b" HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    st = statuses(got)
    time.sleep(t(0.1))
    for req in b.requests:
        path = req.target.split("?", 1)[0]
        resolved = posixpath.normpath(re.sub(r"%2[eE]", ".", path))
        assert resolved.startswith("/public/") or resolved == "/public", (
            f"{target!r} (status {st}) reached the backend as {req.target!r} = {unquote(resolved)!r}, "
            f"outside the only route's /public/")


def test_interim_flood_to_a_slow_client_never_corrupts_the_stream(make_backend, make_moat):
    """Finding 4: txn.c forwards each 1xx head into the client's output queue
    without looking at the result of moat_fwd_response_head(), and without
    backpressure (the backend is read while the client does not read).
    Once the queue (512 KiB) is full, put() stops mid-head: the client gets
    "HTTP/1.1 103 Early Hints\\r\\nLink: " and the next head glued to it
    ("Link: HTTP/1.1 103 Early Hints"), then the final response inside a
    header value: a corrupted, desynchronised response stream. Expected:
    only whole, well-formed heads; the final response a 200 (or a clean
    502)."""
    link = "<" + "a" * 20000 + ">; rel=preload"

    def handler(req, conn):
        req.read_body()
        hint = f"HTTP/1.1 103 Early Hints\r\nLink: {link}\r\n\r\n".encode()
        try:
            for _ in range(400):
                conn.send(hint)
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
    b = make_backend(handler)
    m = make_moat([b], {"workers": 1})
    with Client(m.port, rcvbuf=4096, timeout=t(10)) as c:
        c.send(b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        time.sleep(t(0.3))   # not reading: moat's queues fill
        n = 0
        while True:
            try:
                r = c.read_response(skip_1xx=False)
            except Closed as e:
                pytest.fail(f"after {n} good heads the stream is cut or corrupted: {e}")
            for name, value in r.headers:
                assert not value.startswith("HTTP/1."), (
                    f"head #{n + 1} ({r.status}) holds another head in {name}: {value[:80]!r}")
                if name.lower() == "link":
                    assert value == link, f"head #{n + 1}: Link cut to {len(value)} bytes"
            n += 1
            if r.status >= 200:
                break
    assert r.status in (200, 502), r
    if r.status == 200:
        assert (n, r.body) == (401, b"ok"), (n, r.body)


# moat_lb_hash_bytes() of src/upstream/lb.c, in Python: what an attacker
# reading the source can compute.
_M64 = (1 << 64) - 1
_K_PI, _K_E, _K_SQRT2, _K_SQRT3 = (0x243f6a8885a308d3, 0xb7e151628aed2a6b, 0x6a09e667f3bcc908,
                                   0xbb67ae8584caa73b)


def _fold(a, b):
    r = a * b
    return (r & _M64) ^ (r >> 64)


def _rd(s, i, n):
    return int.from_bytes(s[i:i + n], "little")


def _mix64(x):
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & _M64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & _M64
    return x ^ (x >> 31)


def public_hash(s):
    n = len(s)
    h = _fold(n ^ _K_PI, _K_SQRT3)
    if n > 16:
        i, left = 0, n
        while left > 16:
            h ^= _fold(_rd(s, i, 8) ^ _K_E, _rd(s, i + 8, 8) ^ _K_SQRT2 ^ h)
            i += 16
            left -= 16
        a, b = _rd(s, i + left - 16, 8), _rd(s, i + left - 8, 8)
    elif n >= 8:
        a, b = _rd(s, 0, 8), _rd(s, n - 8, 8)
    elif n >= 4:
        a, b = _rd(s, 0, 4), _rd(s, n - 4, 4)
    elif n > 0:
        a, b = s[0] << 16 | s[n >> 1] << 8 | s[n - 1], 0
    else:
        a = b = 0
    h ^= _fold(a ^ _K_E, b ^ _K_SQRT2 ^ h)
    return _mix64(h ^ _K_PI)


def test_sticky_cookie_does_not_reveal_the_backend_address(make_backend, make_moat):
    """Finding 5: the sticky cookie ("an opaque id of the server (a hash, never
    its address)", docs/balancing.md) is moat_lb_hash_bytes(address text)
    cut to 48 bits: unkeyed, public, the same in every moat. Anyone who gets
    a Set-Cookie can hash candidate addresses offline and recover the
    backend's address and port (here the whole port range of 127.0.0.1 in a
    fraction of a second; RFC 1918 space times common ports in seconds in
    C), which docs/security.md says never reaches a client. Expected: an id
    that cannot be computed from the address (keyed with a per-instance
    secret, or random)."""
    b1, b2 = make_backend(name="a"), make_backend(name="b")
    m = make_moat([b1, b2], {"upstreams": {"app": {"servers": [b1.addr, b2.addr], "sticky": {"cookie": "srv"}}}})
    with Client(m.port) as c:
        r = c.request("GET", "/", [("Connection", "close")])
    cookie = r.header("Set-Cookie")
    assert cookie and cookie.startswith("srv="), r
    value = int(cookie[4:].split(";")[0], 16)
    recovered = [p for p in range(1, 65536) if public_hash(b"127.0.0.1:%d" % p) & 0xffffffffffff == value]
    assert not recovered, (f"{cookie!r} gives the backend away: 127.0.0.1:{recovered[0]} "
                           f"(servers: {b1.addr}, {b2.addr})")
