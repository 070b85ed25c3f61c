"""Gatekeeper: the PROXY protocol (issue 5, /tmp/gk/spec.md
"listeners[].proxy_protocol").

On a listener with proxy_protocol: true every connection starts with a
PROXY v1 (text) or v2 (binary) header, accepted only from a peer in
proxy.trusted_proxies; the address in it becomes the client's address:
X-Forwarded-For / Forwarded to the backend, the access log, route lists.
From an untrusted peer, without a header or with a bad one: the connection
is closed with no bytes and nothing reaches the backend. A header split
over several TCP writes works.
"""

import socket
import struct
import time

import pytest

from harness import Client, free_port, t

H = b"Host: example.test\r\n"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
GET = b"GET /pp HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"


def v1(src, dst, sport=40000, dport=443, proto=None):
    proto = proto or ("TCP6" if ":" in src else "TCP4")
    return f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src=None, dst=None, sport=40000, dport=443, cmd=1, tlvs=b"", fam=None, ver=2):
    if src is None:
        body = tlvs
        fam = 0x00 if fam is None else fam
    else:
        af = socket.AF_INET6 if ":" in src else socket.AF_INET
        fam = (0x21 if af == socket.AF_INET6 else 0x11) if fam is None else fam
        body = socket.inet_pton(af, src) + socket.inet_pton(af, dst) + struct.pack("!HH", sport, dport) + tlvs
    return SIG + bytes([(ver << 4) | cmd, fam]) + struct.pack("!H", len(body)) + body


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def pp_moat(make_moat, backends, trusted=("127.0.0.2",), **extra):
    cfg = {"listeners": [{"listen": f"127.0.0.1:{free_port()}", "proxy_protocol": True}],
           "proxy": {"trusted_proxies": list(trusted)}}
    cfg.update(extra)
    return make_moat(backends, cfg)


def send_pieces(port, pieces, source="127.0.0.2", pause=0.02):
    """Sends the pieces as separate writes (TCP_NODELAY, a pause between);
    returns the Client."""
    c = Client(port, source=source, timeout=t(5))
    for i, p in enumerate(pieces):
        if i:
            time.sleep(pause)
        c.send(p)
    return c


def exchange(port, data, source="127.0.0.2"):
    with send_pieces(port, [data], source) as c:
        return c.read_response()


def xff(req):
    return [x.strip() for v in req.header_all("X-Forwarded-For") for x in v.split(",")]


def assert_closed_silently(port, data, source="127.0.0.2", backend=None, timeout=2.0):
    try:
        c = Client(port, source=source, timeout=t(5))
    except OSError:
        return
    with c:
        try:
            if data:
                c.send(data)
        except OSError:
            pass
        assert c.wait_closed(t(timeout)), f"connection with {data[:60]!r} from {source} not closed"
        assert c.leftover == b"", f"moat answered {data[:60]!r} from {source}: {c.leftover[:200]!r}"
    if backend is not None:
        time.sleep(t(0.1))
        assert backend.bytes_received == 0, backend.raw_requests


# --------------------------------------------------------------------------
# Accepted headers


def test_v1_tcp4_sets_the_client_address(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, v1("203.0.113.7", "192.0.2.1") + GET)
    assert r.status == 200, r
    req = backend.requests[0]
    assert xff(req) == ["203.0.113.7"], req.headers
    assert req.header("Forwarded").startswith("for=203.0.113.7;"), req.headers
    rec = m.access_records(1)[0]
    assert rec["client"] == "203.0.113.7", rec


def test_v1_tcp6_sets_the_client_address(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, v1("2001:db8::7", "2001:db8::1") + GET)
    assert r.status == 200, r
    req = backend.requests[0]
    assert xff(req) == ["2001:db8::7"], req.headers
    assert req.header("Forwarded").startswith('for="[2001:db8::7]";'), req.headers
    assert m.access_records(1)[0]["client"] == "2001:db8::7"


def test_v2_ipv4_sets_the_client_address(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, v2("198.51.100.20", "192.0.2.1", 51000, 80) + GET)
    assert r.status == 200, r
    assert xff(backend.requests[0]) == ["198.51.100.20"]
    assert m.access_records(1)[0]["client"] == "198.51.100.20"


def test_v2_ipv6_sets_the_client_address(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, v2("2001:db8:1::20", "2001:db8::1") + GET)
    assert r.status == 200, r
    assert xff(backend.requests[0]) == ["2001:db8:1::20"]
    assert m.access_records(1)[0]["client"] == "2001:db8:1::20"


def test_v2_with_tlvs(backend, make_moat):
    tlvs = tlv(0x02, b"example.test") + tlv(0x04, b"\x00" * 9) + tlv(0xE0, b"custom")
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, v2("198.51.100.21", "192.0.2.1", tlvs=tlvs) + GET)
    assert r.status == 200, r
    assert xff(backend.requests[0]) == ["198.51.100.21"]
    assert backend.requests[0].raw.startswith(b"GET /pp HTTP/1.1\r\n"), backend.requests[0].raw


def test_v2_local_uses_the_socket_address(backend, make_moat):
    """LOCAL (a proxy's own health check): the real endpoints count."""
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, v2(cmd=0) + GET)
    assert r.status == 200, r
    assert xff(backend.requests[0]) == ["127.0.0.2"]


def test_v1_unknown_uses_the_socket_address(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, b"PROXY UNKNOWN\r\n" + GET)
    assert r.status == 200, r
    assert xff(backend.requests[0]) == ["127.0.0.2"]


def test_keepalive_requests_keep_the_proxied_address(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    with send_pieces(m.port, [v1("203.0.113.8", "192.0.2.1")]) as c:
        for i in range(3):
            assert c.request("GET", f"/k{i}").status == 200
    assert [xff(r) for r in backend.requests] == [["203.0.113.8"]] * 3
    assert [rec["client"] for rec in m.access_records(3)] == ["203.0.113.8"] * 3


def test_incoming_xff_replaced_with_the_proxied_address(backend, make_moat):
    """The proxied client (not a trusted proxy) sends its own
    X-Forwarded-For: replaced, as for any untrusted client."""
    m = pp_moat(make_moat, [backend])
    r = exchange(m.port, v1("203.0.113.9", "192.0.2.1") + b"GET /x HTTP/1.1\r\n" + H
                 + b"X-Forwarded-For: 10.9.9.9\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    assert xff(backend.requests[0]) == ["203.0.113.9"]


def test_proxied_address_that_is_a_trusted_proxy_keeps_xff(backend, make_moat):
    """The address in the header is itself in trusted_proxies: its
    X-Forwarded-For is appended to, as for a trusted peer."""
    m = pp_moat(make_moat, [backend], trusted=("127.0.0.2", "10.0.0.0/8"))
    r = exchange(m.port, v1("10.0.0.5", "192.0.2.1") + b"GET /x HTTP/1.1\r\n" + H
                 + b"X-Forwarded-For: 203.0.113.10\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    assert xff(backend.requests[0]) == ["203.0.113.10", "10.0.0.5"]


def test_route_list_uses_the_proxied_address(backend, make_moat):
    m = pp_moat(make_moat, [backend], routes=[
        {"path": "/admin", "upstream": "app", "deny": ["203.0.113.0/24"]}, {"upstream": "app"}])
    admin = b"GET /admin HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    assert exchange(m.port, v1("203.0.113.7", "192.0.2.1") + admin).status == 403
    assert exchange(m.port, v1("198.51.100.7", "192.0.2.1") + admin).status == 200
    assert [xff(r) for r in backend.requests] == [["198.51.100.7"]]


# --------------------------------------------------------------------------
# Split over writes


def test_v1_header_one_byte_per_write(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    hdr = v1("203.0.113.11", "192.0.2.1")
    with send_pieces(m.port, [hdr[i:i + 1] for i in range(len(hdr))] + [GET], pause=0.005) as c:
        r = c.read_response()
    assert r.status == 200, r
    assert xff(backend.requests[0]) == ["203.0.113.11"]


@pytest.mark.parametrize("cuts", [(1,), (5, 12), (13, 14, 15, 16), (20,), (27,)], ids=str)
def test_v2_header_split(backend, make_moat, cuts):
    m = pp_moat(make_moat, [backend])
    hdr = v2("198.51.100.30", "192.0.2.1", tlvs=tlv(0x04, b"\x00\x00"))
    pieces, prev = [], 0
    for cut in cuts:
        pieces.append(hdr[prev:cut])
        prev = cut
    pieces.append(hdr[prev:])
    pieces.append(GET)
    with send_pieces(m.port, pieces, pause=0.05) as c:
        r = c.read_response()
    assert r.status == 200, r
    assert xff(backend.requests[0]) == ["198.51.100.30"]


def test_header_and_request_split_mid_request(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    data = v1("203.0.113.12", "192.0.2.1") + GET
    cut = len(v1("203.0.113.12", "192.0.2.1")) + 5
    with send_pieces(m.port, [data[:cut], data[cut:]], pause=0.05) as c:
        assert c.read_response().status == 200
    assert xff(backend.requests[0]) == ["203.0.113.12"]


# --------------------------------------------------------------------------
# Refused


def test_untrusted_peer_closed(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    assert_closed_silently(m.port, v1("203.0.113.7", "192.0.2.1") + GET, "127.0.0.3", backend)
    assert_closed_silently(m.port, v2("203.0.113.7", "192.0.2.1") + GET, "127.0.0.3", backend)
    assert exchange(m.port, v1("203.0.113.7", "192.0.2.1") + GET).status == 200   # .2 still fine


def test_untrusted_peer_closed_before_sending(backend, make_moat):
    """The peer check needs no bytes: an untrusted peer is closed even if
    it sends nothing."""
    m = pp_moat(make_moat, [backend])
    assert_closed_silently(m.port, b"", "127.0.0.3", backend)


def test_missing_header_closed(backend, make_moat):
    m = pp_moat(make_moat, [backend])
    assert_closed_silently(m.port, GET, "127.0.0.2", backend)


def test_no_header_at_all_not_held_forever(backend, make_moat):
    m = pp_moat(make_moat, [backend], timeouts={"client_header": "1s"})
    with Client(m.port, source="127.0.0.2", timeout=t(5)) as c:
        start = time.monotonic()
        assert c.wait_closed(1.0 + t(2)), "a trusted peer that sends nothing is held open"
        assert time.monotonic() - start >= 0.5


GARBAGE = [
    pytest.param(b"PROXY TCP4 999.1.1.1 192.0.2.1 1 2\r\n", id="v1-bad-address"),
    pytest.param(b"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n", id="v1-missing-port"),
    pytest.param(b"PROXY TCP4 203.0.113.7 192.0.2.1 70000 80\r\n", id="v1-port-range"),
    pytest.param(b"PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n", id="v1-tcp4-with-ipv6"),
    pytest.param(b"PROXY TCP5 203.0.113.7 192.0.2.1 1 2\r\n", id="v1-bad-proto"),
    pytest.param(b"proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n", id="v1-lowercase"),
    pytest.param(b"PROXY  TCP4 203.0.113.7 192.0.2.1 1 2\r\n", id="v1-double-space"),
    pytest.param(b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n", id="v1-bare-lf"),
    pytest.param(b"PROXY TCP4 " + b"1" * 120 + b"\r\n", id="v1-too-long"),
    pytest.param(v2("203.0.113.7", "192.0.2.1", ver=1), id="v2-bad-version"),
    pytest.param(v2("203.0.113.7", "192.0.2.1", cmd=2), id="v2-bad-command"),
    pytest.param(SIG + b"\x21\x11\x00\x04" + b"\xcb\x00\x71\x07", id="v2-short-ipv4-block"),
    pytest.param(SIG[:-1] + b"X" + b"\x21\x11\x00\x0c" + b"\x00" * 12, id="v2-bad-signature"),
    pytest.param(b"\x16\x03\x01\x00\x05hello", id="tls-hello"),
    pytest.param(b"\x00" * 32, id="nuls"),
]


@pytest.mark.parametrize("data", GARBAGE)
def test_bad_header_closed(backend, make_moat, data):
    m = pp_moat(make_moat, [backend])
    assert_closed_silently(m.port, data + GET, "127.0.0.2", backend)


def test_plain_listener_does_not_interpret_proxy(backend, make_moat):
    """Without proxy_protocol, a PROXY line is not HTTP: 400, and nobody
    gets to choose their address."""
    m = make_moat([backend], {"proxy": {"trusted_proxies": ["127.0.0.2"]}})
    with Client(m.port, source="127.0.0.2") as c:
        c.send(v1("203.0.113.7", "192.0.2.1") + GET)
        r = c.read_response()
    assert r.status == 400
    assert backend.bytes_received == 0


def test_two_listeners_one_with_proxy_protocol(backend, make_moat):
    p1, p2 = free_port(), free_port()
    make_moat([backend], {"listeners": [{"listen": f"127.0.0.1:{p1}", "proxy_protocol": True},
                                            {"listen": f"127.0.0.1:{p2}"}],
                              "proxy": {"trusted_proxies": ["127.0.0.2"]}})
    assert exchange(p1, v1("203.0.113.40", "192.0.2.1") + GET).status == 200
    assert exchange(p2, GET, source="127.0.0.3").status == 200
    assert [xff(r) for r in backend.requests] == [["203.0.113.40"], ["127.0.0.3"]]
