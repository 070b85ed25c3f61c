"""Host towards the backend: kept by default, replaced by the upstream's
own name with preserve_host: false; X-Forwarded-Host keeps the client's.
Request fields whose name holds '_' never reach the backend."""

from harness import Client


def test_preserve_host_default_keeps_client_host(moat, backend):
    with Client(moat.port) as c:
        assert c.request("GET", "/h", host="www.example.test").status == 200
    req = backend.requests[0]
    assert req.header("Host") == "www.example.test"
    assert req.header("X-Forwarded-Host") == "www.example.test"


def test_preserve_host_false_sends_the_servers_address(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"proxy": {"preserve_host": False}})
    with Client(m.port) as c:
        assert c.request("GET", "/h", host="www.example.test").status == 200
    req = b.requests[0]
    assert req.header("Host") == b.addr
    assert req.header("X-Forwarded-Host") == "www.example.test"
    assert "host=www.example.test" in req.header("Forwarded")


def test_preserve_host_false_several_servers_sends_upstream_name(make_backend, make_moat):
    b1, b2 = make_backend(), make_backend()
    m = make_moat([b1, b2], {"proxy": {"preserve_host": False}})
    with Client(m.port) as c:
        for _ in range(2):
            assert c.request("GET", "/h", host="www.example.test").status == 200
    reqs = b1.requests + b2.requests
    assert len(reqs) == 2
    assert {r.header("Host") for r in reqs} == {"app"}


def test_underscore_fields_dropped(moat, backend):
    with Client(moat.port) as c:
        r = c.request("GET", "/u", [("Content_Length", "5"), ("X_Real_IP", "6.6.6.6"),
                                    ("X-Kept", "1")])
        assert r.status == 200
    req = backend.requests[0]
    assert not req.has_header("Content_Length")
    assert not req.has_header("X_Real_IP")
    assert req.header("X-Kept") == "1"
