"""Basic proxying: exact bytes forwarded, methods, versions, routing, balancing."""

import threading

from harness import Client, curl, fixed, free_port, get, head_aware, info, t


def test_simple_get_backend_receives_exact_bytes(moat, backend):
    with Client(moat.port) as c:
        c.send(b"GET /hello?x=1 HTTP/1.1\r\n"
               b"Host: example.test\r\n"
               b"User-Agent: itest/1.0\r\n"
               b"Accept: */*\r\n"
               b"\r\n")
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"app GET /hello?x=1\n"
    assert backend.raw_requests == [
        b"GET /hello?x=1 HTTP/1.1\r\n"
        b"Host: example.test\r\n"
        b"User-Agent: itest/1.0\r\n"
        b"Accept: */*\r\n"
        b"X-Forwarded-For: 127.0.0.1\r\n"
        b"X-Forwarded-Proto: http\r\n"
        b"X-Forwarded-Host: example.test\r\n"
        b"Forwarded: for=127.0.0.1;host=example.test;proto=http\r\n"
        b"\r\n"
    ]


def test_response_status_headers_and_body_relayed(make_backend, make_moat):
    b = make_backend(fixed(201, b"created!", [("Content-Type", "text/x-test"),
                                              ("X-Custom-Header", "Some Value"),
                                              ("x-lower-case", "v"),
                                              ("Set-Cookie", "a=1"),
                                              ("Set-Cookie", "b=2")], reason="Created Fine"))
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert (r.status, r.reason, r.body) == (201, "Created Fine", b"created!")
    assert r.header("Content-Type") == "text/x-test"
    assert ("X-Custom-Header", "Some Value") in r.headers, "header case not preserved"
    assert ("x-lower-case", "v") in r.headers, "header case not preserved"
    assert r.header_all("Set-Cookie") == ["a=1", "b=2"]
    assert r.header("Content-Length") == "8"


def test_post_with_content_length_forwarded_with_same_length(moat, backend):
    with Client(moat.port) as c:
        r = c.request("POST", "/submit", [("Content-Type", "text/plain")], body=b"hello world")
    assert r.status == 200
    assert backend.raw_requests == [
        b"POST /submit HTTP/1.1\r\n"
        b"Host: example.test\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: 11\r\n"
        b"X-Forwarded-For: 127.0.0.1\r\n"
        b"X-Forwarded-Proto: http\r\n"
        b"X-Forwarded-Host: example.test\r\n"
        b"Forwarded: for=127.0.0.1;host=example.test;proto=http\r\n"
        b"\r\n"
        b"hello world"
    ]


def test_methods_are_forwarded_verbatim(moat, backend):
    with Client(moat.port) as c:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"):
            body = b"x" if method in ("POST", "PUT", "PATCH") else b""
            r = c.request(method, "/m", body=body)
            assert r.status == 200, method
            assert r.body == f"app {method} /m\n".encode()
    assert [r.method for r in backend.requests] == [
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"]


def test_head_response_has_no_body_and_connection_stays_usable(make_backend, make_moat):
    b = make_backend(head_aware(b"hello"))
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("HEAD", "/h")
        assert r.status == 200
        assert r.header("Content-Length") == "5"
        assert r.body == b""
        # the next response on the same connection must start right away:
        # no stray body bytes from the HEAD
        r2 = c.request("GET", "/h")
        assert (r2.status, r2.body) == (200, b"hello")
    assert [r.method for r in b.requests] == ["HEAD", "GET"]


def test_http10_client_gets_response_then_close(moat, backend):
    with Client(moat.port) as c:
        c.send(b"GET /old HTTP/1.0\r\nUser-Agent: old\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"app GET /old\n"
        assert r.header("Transfer-Encoding") is None, "chunked sent to an HTTP/1.0 client"
        assert c.wait_closed(), "HTTP/1.0 request without keep-alive: connection must close"


def test_http10_client_never_gets_chunked(make_backend, make_moat):
    from harness import chunked_response
    b = make_backend(chunked_response([b"part one, ", b"part two"]))
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(b"GET / HTTP/1.0\r\nHost: example.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.header("Transfer-Encoding") is None
        assert r.body == b"part one, part two"
        assert c.wait_closed()


def test_http10_keepalive_client(moat, backend):
    """A 1.0 client asking for keep-alive either gets it (with a framed
    response) or a closed connection, never a hang or a broken stream."""
    with Client(moat.port) as c:
        c.send(b"GET /a HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"app GET /a\n")
        if r.framing == "close":
            return
        c.send(b"GET /b HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"app GET /b\n")


def test_no_matching_route_gives_404_from_moat(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"routes": [{"host": "only.example", "upstream": "app"}]})
    with Client(m.port) as c:
        r = c.request("GET", "/x", host="other.example")
    assert r.status == 404
    assert r.header("X-Backend") is None
    assert b.bytes_received == 0


def _routing_moat(make_backend, make_moat):
    names = ["api", "wild", "exact", "fallback"]
    bs = {n: make_backend(name=n) for n in names}
    cfg = {
        "upstreams": {n: {"servers": [bs[n].addr]} for n in names},
        "routes": [
            {"host": "*.example.com", "path": "/api/", "upstream": "api"},
            {"host": "*.example.com", "upstream": "wild"},
            {"host": "exact.example.org", "upstream": "exact"},
            {"upstream": "fallback"},
        ],
    }
    return bs, make_moat(config=cfg)


def test_routing_host_and_path(make_backend, make_moat):
    bs, m = _routing_moat(make_backend, make_moat)
    cases = [
        ("a.example.com", "/api/users", "api"),
        ("a.example.com", "/api/", "api"),
        ("a.example.com", "/apix", "wild"),        # prefix is "/api/", not "/api"
        ("a.example.com", "/api", "wild"),
        ("deep.sub.example.com", "/api/x", "api"),
        ("A.EXAMPLE.COM", "/api/x", "api"),        # host is case-insensitive
        ("a.example.com:8080", "/api/x", "api"),   # port in Host is ignored
        ("example.com", "/api/x", "fallback"),     # "*.example.com" does not match the bare suffix
        ("xexample.com", "/", "fallback"),
        ("exact.example.org", "/", "exact"),
        ("EXACT.Example.Org:81", "/z", "exact"),
        ("sub.exact.example.org", "/", "fallback"),
        ("other", "/api/x", "fallback"),
    ]
    with Client(m.port) as c:
        for host, path, want in cases:
            r = c.request("GET", path, host=host)
            assert r.status == 200, (host, path)
            assert r.body == f"{want} GET {path}\n".encode(), (host, path, r.body)


def test_routing_first_match_wins(make_backend, make_moat):
    one, two = make_backend(name="one"), make_backend(name="two")
    cfg = {
        "upstreams": {"one": {"servers": [one.addr]}, "two": {"servers": [two.addr]}},
        "routes": [{"path": "/a/", "upstream": "one"},
                   {"path": "/a/b/", "upstream": "two"},
                   {"upstream": "two"}],
    }
    m = make_moat(config=cfg)
    assert get(m.port, "/a/b/c").body == b"one GET /a/b/c\n"
    assert get(m.port, "/b").body == b"two GET /b\n"


def test_round_robin_respects_weights(make_backend, make_moat):
    a, b = make_backend(name="a"), make_backend(name="b")
    cfg = {"workers": 1,
           "upstreams": {"app": {"servers": [a.addr, {"address": b.addr, "weight": 2}]}}}
    m = make_moat(config=cfg)
    seen = []
    with Client(m.port) as c:
        for i in range(30):
            r = c.request("GET", f"/{i}")
            assert r.status == 200
            seen.append(r.header("X-Backend"))
    assert abs(seen.count("a") - 10) <= 1 and abs(seen.count("b") - 20) <= 1, seen
    # interleaved, not 10 then 20: every window of 6 requests sees both
    assert all({"a", "b"} <= set(seen[i:i + 6]) for i in range(0, 24)), seen


def test_two_listeners_serve_the_same_routes(make_backend, make_moat):
    b = make_backend()
    p1, p2 = free_port(), free_port()
    m = make_moat([b], {"listeners": [{"listen": f"127.0.0.1:{p1}"},
                                      {"listen": f"127.0.0.1:{p2}"}]})
    assert m.ports == [p1, p2]
    assert get(p1, "/one").body == b"b1 GET /one\n"
    assert get(p2, "/two").body == b"b1 GET /two\n"


def test_ipv6_listener(make_backend, make_moat):
    b = make_backend()
    port = free_port("::1")
    m = make_moat([b], {"listeners": [{"listen": f"[::1]:{port}"}]})
    assert m.ports == [port]
    with Client(port, host="::1") as c:
        r = c.request("GET", "/six")
    assert (r.status, r.body) == (200, b"b1 GET /six\n")
    assert b.requests[0].header("X-Forwarded-For") == "::1"


def test_request_sent_one_byte_at_a_time(moat, backend):
    raw = b"GET /slowly HTTP/1.1\r\nHost: example.test\r\nX-A: b\r\n\r\n"
    with Client(moat.port) as c:
        for i in range(len(raw)):
            c.send(raw[i:i + 1])
            threading.Event().wait(0.002)
        r = c.read_response()
    assert (r.status, r.body) == (200, b"app GET /slowly\n")


def test_concurrent_clients(moat, backend):
    errors = []

    def worker(n):
        try:
            with Client(moat.port) as c:
                for i in range(10):
                    r = c.request("GET", f"/c{n}/{i}")
                    if r.status != 200 or r.body != f"app GET /c{n}/{i}\n".encode():
                        errors.append((n, i, r.status, r.body))
        except Exception as e:
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t(30))
    assert not errors
    assert len(backend.requests) == 160


def test_curl_get(moat, backend):
    p = curl(["-o", "-", "-w", "%{http_code}", f"http://127.0.0.1:{moat.port}/via-curl?q=1"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"app GET /via-curl?q=1\n200"
    req = backend.requests[0]
    assert req.header("Host") == f"127.0.0.1:{moat.port}"
    assert req.header("User-Agent").startswith("curl/")
    assert req.header("X-Forwarded-Host") == f"127.0.0.1:{moat.port}"


def test_upstream_with_two_servers_uses_both(make_backend, make_moat):
    a, b = make_backend(info(), name="a"), make_backend(info(), name="b")
    m = make_moat(config={"upstreams": {"app": {"servers": [a.addr, b.addr]}}})
    with Client(m.port) as c:
        names = {c.request("GET", "/").header("X-Backend") for _ in range(4)}
    assert names == {"a", "b"}


def test_dead_server_skipped(make_backend, make_moat):
    """A server refusing connections is passed over for the next one."""
    b = make_backend()
    dead = free_port()
    m = make_moat(config={"upstreams": {"app": {"servers": [f"127.0.0.1:{dead}", b.addr]}}})
    for i in range(10):
        r = get(m.port, f"/{i}")
        assert (r.status, r.body) == (200, f"b1 GET /{i}\n".encode()), i
    assert len(b.requests) == 10


def test_connection_limit_queues_extra_connections(make_backend, make_moat):
    """Past limits.connections (per worker) new connections wait in the
    listen queue until one closes (docs/configuration.md)."""
    import select
    from harness import build_request
    b = make_backend()
    m = make_moat([b], {"workers": 1, "limits": {"connections": 2}})
    c1, c2 = Client(m.port), Client(m.port)
    try:
        assert c1.request("GET", "/1").status == 200
        assert c2.request("GET", "/2").status == 200
        with Client(m.port) as c3:
            c3.send(build_request("GET", "/3"))
            r, _, _ = select.select([c3.sock], [], [], 0.5)
            assert not r, "a connection past limits.connections was served"
            c1.close()
            r3 = c3.read_response()
            assert (r3.status, r3.body) == (200, b"b1 GET /3\n")
    finally:
        c1.close()
        c2.close()


def test_client_half_close_after_request_still_answered(moat, backend):
    """A client that sends its request and shuts down its sending side (as
    `nc -N` does) still gets the response."""
    with Client(moat.port) as c:
        c.send(b"GET /half HTTP/1.1\r\nHost: example.test\r\n\r\n")
        c.sock.shutdown(1)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"app GET /half\n")
