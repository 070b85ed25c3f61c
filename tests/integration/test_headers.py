"""Headers: hop-by-hop removal, forwarding headers and the trust rule,
order and case preserved, response headers hidden."""

from harness import Client, fixed, free_port, raw_response

FWD = [
    ("X-Forwarded-For", "127.0.0.1"),
    ("X-Forwarded-Proto", "http"),
    ("X-Forwarded-Host", "example.test"),
    ("Forwarded", "for=127.0.0.1;host=example.test;proto=http"),
]


def forwarded_elements(value):
    """RFC 7239 field value -> list of elements, each a list of (k, v)
    with quoted values unquoted."""
    elements = []
    for element in value.split(","):
        pairs = []
        for pair in element.strip().split(";"):
            k, _, v = pair.partition("=")
            if v.startswith('"') and v.endswith('"') and len(v) >= 2:
                v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            pairs.append((k.strip().lower(), v))
        elements.append(pairs)
    return elements


def xff_list(req):
    return [x.strip() for v in req.header_all("X-Forwarded-For") for x in v.split(",")]


def test_hop_by_hop_request_headers_removed(moat, backend):
    with Client(moat.port) as c:
        r = c.request("GET", "/hop", [
            ("X-Before", "1"),
            ("Connection", "keep-alive, X-Hop-One, x-hop-two"),
            ("X-Hop-One", "secret1"),
            ("Keep-Alive", "timeout=5"),
            ("X-Middle", "2"),
            ("X-HOP-TWO", "secret2"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "gzip"),
            ("Upgrade", "h2c"),
            ("X-After", "3"),
        ])
    assert r.status == 200
    req = backend.requests[0]
    assert req.headers == [("Host", "example.test"), ("X-Before", "1"), ("X-Middle", "2"),
                           ("X-After", "3")] + FWD


def test_connection_header_split_over_lines(moat, backend):
    with Client(moat.port) as c:
        r = c.request("GET", "/", [("Connection", "X-A"), ("Connection", "X-B"),
                                   ("X-A", "1"), ("X-B", "2"), ("X-C", "3")])
    assert r.status == 200
    assert backend.requests[0].headers == [("Host", "example.test"), ("X-C", "3")] + FWD


def test_te_trailers_is_forwarded(moat, backend):
    with Client(moat.port) as c:
        assert c.request("GET", "/", [("TE", "trailers")]).status == 200
    req = backend.requests[0]
    assert req.header_all("TE") == ["trailers"]


def test_expect_not_forwarded(moat, backend):
    with Client(moat.port) as c:
        c.send(b"POST /e HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\n"
               b"Content-Length: 4\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status == 100
        c.send(b"data")
        r = c.read_response()
    assert r.status == 200
    req = backend.requests[0]
    assert not req.has_header("Expect")
    assert req.body == b"data"


def test_header_order_case_and_duplicates_preserved(moat, backend):
    hdrs = [("x-lower", "a"), ("X-UPPER", "B"), ("X-Mixed-Case", "c"), ("Accept", "*/*"),
            ("X-Dup", "1"), ("Cookie", "a=1"), ("X-Dup", "2"), ("cookie", "b=2"),
            ("X-Spaces", "in  the   value"), ("X-Empty", "")]
    with Client(moat.port) as c:
        assert c.request("GET", "/", hdrs).status == 200
    req = backend.requests[0]
    assert req.headers == [("Host", "example.test")] + hdrs + FWD


def test_obs_text_in_value_forwarded(moat, backend):
    """Bytes 0x80-0xFF are obs-text, allowed in field values (RFC 9110 5.5)."""
    with Client(moat.port) as c:
        assert c.request("GET", "/", [("X-Latin1", "caf\xe9")]).status == 200
    assert backend.requests[0].header_all("X-Latin1") == ["caf\xe9"]


def test_host_kept_as_sent(moat, backend):
    with Client(moat.port) as c:
        assert c.request("GET", "/", host="Example.TEST:8080").status == 200
    req = backend.requests[0]
    assert req.header_all("Host") == ["Example.TEST:8080"]
    assert req.header_all("X-Forwarded-Host") == ["Example.TEST:8080"]


def test_forwarded_host_with_port_is_quoted(moat, backend):
    """RFC 7239: a value that is not a token (":" is not) is a quoted-string."""
    with Client(moat.port) as c:
        assert c.request("GET", "/", host="example.test:8080").status == 200
    fwd = backend.requests[0].header_all("Forwarded")
    assert fwd == ['for=127.0.0.1;host="example.test:8080";proto=http']


def test_untrusted_peer_forwarding_headers_replaced(moat, backend):
    with Client(moat.port) as c:
        r = c.request("GET", "/", [("X-Forwarded-For", "1.2.3.4"),
                                   ("X-Forwarded-For", "5.6.7.8"),
                                   ("Forwarded", "for=1.2.3.4;proto=https"),
                                   ("X-Forwarded-Proto", "https"),
                                   ("X-Forwarded-Host", "evil.example")])
    assert r.status == 200
    req = backend.requests[0]
    assert req.headers == [("Host", "example.test")] + FWD


def test_trusted_peer_forwarding_headers_appended(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"proxy": {"trusted_proxies": ["127.0.0.2"]}})
    with Client(m.port, source="127.0.0.2") as c:
        r = c.request("GET", "/", [("X-Forwarded-For", "203.0.113.7, 10.0.0.1"),
                                   ("Forwarded", 'for=203.0.113.7;proto=https, for="[2001:db8::1]"')])
    assert r.status == 200
    req = b.requests[0]
    assert xff_list(req) == ["203.0.113.7", "10.0.0.1", "127.0.0.2"]
    elements = [e for v in req.header_all("Forwarded") for e in forwarded_elements(v)]
    assert elements == [
        [("for", "203.0.113.7"), ("proto", "https")],
        [("for", "[2001:db8::1]")],
        [("for", "127.0.0.2"), ("host", "example.test"), ("proto", "http")],
    ]


def test_trusted_peer_multiple_xff_lines_kept_in_order(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"proxy": {"trusted_proxies": ["127.0.0.0/8"]}})
    with Client(m.port, source="127.0.0.2") as c:
        r = c.request("GET", "/", [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")])
    assert r.status == 200
    assert xff_list(b.requests[0]) == ["1.1.1.1", "2.2.2.2", "127.0.0.2"]


def test_trusted_peer_without_incoming_headers(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"proxy": {"trusted_proxies": ["127.0.0.2"]}})
    with Client(m.port, source="127.0.0.2") as c:
        assert c.request("GET", "/").status == 200
    req = b.requests[0]
    assert req.header_all("X-Forwarded-For") == ["127.0.0.2"]
    assert req.header_all("Forwarded") == ["for=127.0.0.2;host=example.test;proto=http"]


def test_peer_outside_trusted_list_is_replaced(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"proxy": {"trusted_proxies": ["127.0.0.2"]}})
    with Client(m.port, source="127.0.0.3") as c:
        assert c.request("GET", "/", [("X-Forwarded-For", "1.2.3.4"),
                                      ("Forwarded", "for=1.2.3.4")]).status == 200
    req = b.requests[0]
    assert req.header_all("X-Forwarded-For") == ["127.0.0.3"]
    assert req.header_all("Forwarded") == ["for=127.0.0.3;host=example.test;proto=http"]


def test_ipv6_client_forwarded_for_is_quoted(make_backend, make_moat):
    b = make_backend()
    port = free_port("::1")
    m = make_moat([b], {"listeners": [{"listen": f"[::1]:{port}"}]})
    assert m.ports == [port]
    with Client(port, host="::1") as c:
        assert c.request("GET", "/").status == 200
    req = b.requests[0]
    assert req.header_all("X-Forwarded-For") == ["::1"]
    assert req.header_all("Forwarded") == ['for="[::1]";host=example.test;proto=http']


def test_response_headers_hidden(make_backend, make_moat):
    b = make_backend(fixed(200, b"body", [
        ("Content-Type", "text/plain"),
        ("Server", "SecretServer/1.2.3"),
        ("X-Powered-By", "PHP/5.1"),
        ("X-Debug", "stack trace here"),
        ("X-Internal", "10.1.2.3"),
        ("X-Keep", "kept"),
    ]))
    cfg = {"proxy": {"hide_headers": ["x-debug"]},
           "routes": [{"path": "/strip/", "upstream": "app", "strip_headers": ["x-internal"]},
                      {"upstream": "app"}]}
    m = make_moat([b], cfg)
    with Client(m.port) as c:
        r = c.request("GET", "/strip/x")
        assert r.status == 200 and r.body == b"body"
        names = {n.lower() for n, _ in r.headers}
        assert "x-powered-by" not in names
        assert "x-debug" not in names
        assert "x-internal" not in names
        assert r.header("X-Keep") == "kept"
        assert b"SecretServer" not in r.raw_head
        # strip_headers belongs to its route only
        r = c.request("GET", "/other")
        assert r.header("X-Internal") == "10.1.2.3"
        assert r.header("X-Debug") is None and r.header("X-Powered-By") is None
        assert b"SecretServer" not in r.raw_head


def test_response_headers_hidden_case_insensitively(make_backend, make_moat):
    b = make_backend(raw_response(b"HTTP/1.1 200 OK\r\nSERVER: SecretServer\r\nx-powered-by: Express\r\n"
                                  b"X-DEBUG: 1\r\nContent-Length: 2\r\n\r\nok"))
    m = make_moat([b], {"proxy": {"hide_headers": ["X-Debug"]}})
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert (r.status, r.body) == (200, b"ok")
    assert b"SecretServer" not in r.raw_head
    assert not r.has_header("X-Powered-By") and not r.has_header("X-Debug")


def test_hop_by_hop_response_headers_removed(make_backend, make_moat):
    """RFC 9110 7.6.1 applies both ways: the backend's Connection options
    and Keep-Alive are not relayed to the client."""
    b = make_backend(raw_response(b"HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\n"
                                  b"Keep-Alive: timeout=3\r\nX-End: 2\r\nContent-Length: 2\r\n\r\nok"))
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/")
        assert (r.status, r.body) == (200, b"ok")
        assert not r.has_header("X-Resp-Hop")
        assert not r.has_header("Keep-Alive")
        assert r.header("X-End") == "2"
        assert c.request("GET", "/again").status == 200


def test_exact_forwarded_lines_for_post(moat, backend):
    peer = "127.0.0.1"
    with Client(moat.port) as c:
        c.send(b"POST /p HTTP/1.1\r\nHost: h.example\r\nContent-Length: 2\r\n\r\nhi")
        assert c.read_response().status == 200
    assert backend.requests[0].headers == [
        ("Host", "h.example"), ("Content-Length", "2"),
        ("X-Forwarded-For", peer), ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "h.example"),
        ("Forwarded", f"for={peer};host=h.example;proto=http")]
