"""gRPC through moat (issue 4): an h2c:// (and h2://) upstream speaking
HTTP/2 end to end, so that response trailers (grpc-status, grpc-message)
reach the client. The origin is tls_util.H2Backend (python3-h2, server
side); the client is tls_util.H2Client over TLS (ALPN h2) and over h2c.
"""

import struct

import pytest

from harness import free_port
from tls_util import H2Backend, H2Client, https_curl, pki, server_ctx  # noqa: F401


def grpc_frame(payload):
    return b"\x00" + struct.pack("!I", len(payload)) + payload


def grpc_handler(req):
    h = dict(req["headers"])
    path = h.get(":path", "")
    if path.endswith("/Missing"):
        # Trailers-only: one HEADERS with END_STREAM.
        return [(":status", "200"), ("content-type", "application/grpc"),
                ("grpc-status", "5"), ("grpc-message", "no such thing")], b"", None
    if path.endswith("/Fail"):
        return ([(":status", "200"), ("content-type", "application/grpc")], b"",
                [("grpc-status", "5"), ("grpc-message", "not found")])
    if h.get(":method") != "POST":
        return [(":status", "200"), ("content-type", "text/plain")], b"plain " + path.encode(), None
    body = req["body"]
    assert body[:1] == b"\x00"
    msg = body[5:5 + struct.unpack("!I", body[1:5])[0]]
    return ([(":status", "200"), ("content-type", "application/grpc")],
            grpc_frame(b"reply:" + msg), [("grpc-status", "0"), ("grpc-message", "ok")])


@pytest.fixture
def grpc_backend():
    b = H2Backend(grpc_handler)
    yield b
    b.stop()


@pytest.fixture
def gmoat(grpc_backend, make_moat, pki):
    tls_port, plain = free_port(), free_port()
    m = make_moat([], {"listeners": [
        {"listen": f"127.0.0.1:{tls_port}", "tls": {"cert": pki.ec, "key": pki.ec_key}},
        {"listen": f"127.0.0.1:{plain}"}],
        "upstreams": {"app": {"servers": [f"h2c://127.0.0.1:{grpc_backend.port}"]}}})
    m.plain = plain
    return m


def call(port, tls, method, payload=b"hello", extra=()):
    with H2Client(port, tls=tls, authority="grpc.test") as c:
        sid = c.request("POST", f"/pkg.Svc/{method}",
                        [("content-type", "application/grpc"), ("te", "trailers"),
                         ("grpc-timeout", "5S")] + list(extra),
                        body=grpc_frame(payload))
        return c.response(sid)


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_grpc_unary_ok(gmoat, grpc_backend, tls):
    r = call(gmoat.port if tls else gmoat.plain, tls, "Echo", b"ping")
    assert r.status == 200, r
    assert r.header("content-type") == "application/grpc", r
    assert bytes(r.data) == grpc_frame(b"reply:ping"), r
    assert r.trailer("grpc-status") == "0" and r.trailer("grpc-message") == "ok", r
    req = grpc_backend.wait_requests(1)[0]
    h = {}
    for n, v in req["headers"]:
        h.setdefault(n, []).append(v)
    assert h[":method"] == ["POST"] and h[":path"] == ["/pkg.Svc/Echo"], h
    assert h["content-type"] == ["application/grpc"] and h["te"] == ["trailers"], h
    assert h.get(":authority", h.get("host")) == ["grpc.test"], h
    assert req["body"] == grpc_frame(b"ping")


@pytest.mark.parametrize("tls", [True, False], ids=["h2", "h2c"])
def test_grpc_error_status_passes(gmoat, tls):
    r = call(gmoat.port if tls else gmoat.plain, tls, "Fail")
    assert r.status == 200, r
    assert r.trailer("grpc-status") == "5" and r.trailer("grpc-message") == "not found", r


def test_grpc_trailers_only_response(gmoat):
    r = call(gmoat.port, True, "Missing")
    assert r.status == 200, r
    # Trailers-only: grpc-status in the one header block.
    assert (r.header("grpc-status") or r.trailer("grpc-status")) == "5", r


def test_grpc_many_calls_on_one_connection(gmoat, grpc_backend):
    with H2Client(gmoat.port, authority="grpc.test") as c:
        sids = [c.request("POST", "/pkg.Svc/Echo",
                          [("content-type", "application/grpc"), ("te", "trailers")],
                          body=grpc_frame(b"m%d" % i)) for i in range(20)]
        rs = [c.response(s) for s in sids]
    for i, r in enumerate(rs):
        assert bytes(r.data) == grpc_frame(b"reply:m%d" % i) and r.trailer("grpc-status") == "0", r


def test_plain_http11_request_to_h2c_upstream(gmoat):
    r = https_curl(f"http://127.0.0.1:{gmoat.plain}/hello", http="1.1")
    assert r.rc == 0 and r.status == 200 and r.body == b"plain /hello", r


def test_grpc_over_h2_upstream(make_moat, pki):
    """h2:// servers: HTTP/2 over TLS to the backend (ALPN h2)."""
    b = H2Backend(grpc_handler, ssl_ctx=server_ctx(pki.ec, pki.ec_key, alpn=["h2"]))
    try:
        port = free_port()
        make_moat([], {"listeners": [
            {"listen": f"127.0.0.1:{port}", "tls": {"cert": pki.ec, "key": pki.ec_key}}],
            "upstreams": {"app": {"servers": [f"h2://127.0.0.1:{b.port}"],
                                  "tls": {"ca": pki.ca, "sni": "localhost"}}}})
        r = call(port, True, "Echo", b"tls")
        assert r.status == 200 and bytes(r.data) == grpc_frame(b"reply:tls"), r
        assert r.trailer("grpc-status") == "0", r
    finally:
        b.stop()
