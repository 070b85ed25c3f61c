"""Gatekeeper: address lists (issue 5, /tmp/gk/spec.md "listeners[].allow /
deny / allow_file / deny_file" and the same keys on routes).

A listener's list is checked at accept: a refused client's connection is
closed without a byte. A route's list is checked once the request head is
parsed: 403, and nothing reaches the backend. Lists are matched by the
longest prefix (allow 127.0.0.0/8 + deny 127.0.0.3/32: .3 refused, .2
served; and the other way round). Clients are told apart by the source
address their socket is bound to (127.0.0.2, 127.0.0.3, ...); IPv6 through
::1. allow_file / deny_file: one CIDR per line, '#' comments and blank
lines, a bad line refused at load as FILE:LINE:COL, the files read again on
SIGHUP.
"""

import re
import socket

import pytest

from harness import Client, Closed, free_port, make_config, run_moat, t, to_yaml, wait_for


# --------------------------------------------------------------------------
# Helpers


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback (::1) on this machine")


PROBE = b"GET /refused HTTP/1.1\r\nHost: example.test\r\n\r\n"


def closed_at_accept(port, source=None, host="127.0.0.1", send=True, timeout=2.0):
    """Connects from `source`, sends a request (unless send is False), and
    returns (closed, bytes): whether moat closed the connection within
    `timeout`, and what it sent. A silent client is only seen by moat once
    the listener's TCP_DEFER_ACCEPT (1 s) lets it through, hence the longer
    timeout for send=False."""
    try:
        c = Client(port, host=host, source=source, timeout=t(3))
    except (ConnectionResetError, ConnectionRefusedError):
        return True, b""
    with c:
        if send:
            try:
                c.send(PROBE)
            except OSError:
                return True, b""
        closed = c.wait_closed(t(timeout))
        return closed, c.leftover


def assert_refused_at_accept(port, source=None, host="127.0.0.1", send=True):
    closed, got = closed_at_accept(port, source, host, send, 2.0 if send else 4.0)
    assert closed, f"a connection from {source or host} was not closed at accept"
    assert got == b"", f"moat sent bytes to a refused client {source}: {got[:200]!r}"


def fetch(port, target, source=None, host="127.0.0.1", headers=()):
    """One GET on a fresh connection from `source`; the Response."""
    with Client(port, host=host, source=source) as c:
        return c.request("GET", target, list(headers) + [("Connection", "close")])


def assert_served(port, target, source=None, host="127.0.0.1", backend=None):
    r = fetch(port, target, source, host)
    assert r.status == 200, f"GET {target} from {source or host}: {r.status} {r.body[:200]!r}"
    if backend is not None:
        assert backend.requests and backend.requests[-1].target == target, (
            [q.target for q in backend.requests])
    return r


def one_listener(port=None, **acl):
    return [dict({"listen": f"127.0.0.1:{port or free_port()}"}, **acl)]


# --------------------------------------------------------------------------
# Listener lists: closed at accept


def test_listener_deny_closes_at_accept_with_no_bytes(backend, make_moat):
    m = make_moat([backend], {"listeners": one_listener(deny=["127.0.0.3"])})
    assert_refused_at_accept(m.port, "127.0.0.3")
    assert_served(m.port, "/from-2", "127.0.0.2", backend=backend)
    assert_refused_at_accept(m.port, "127.0.0.3")
    # a client that sends nothing is closed too
    assert_refused_at_accept(m.port, "127.0.0.3", send=False)
    assert [r.target for r in backend.requests] == ["/from-2"]
    assert backend.bytes_received == len(backend.raw_requests[0])


def test_listener_deny_refused_client_sending_a_request_gets_nothing(backend, make_moat):
    """A denied client that sends a request at once gets no response (a
    close or a reset), and the backend nothing."""
    m = make_moat([backend], {"listeners": one_listener(deny=["127.0.0.3"])})
    with Client(m.port, source="127.0.0.3", timeout=t(3)) as c:
        try:
            c.send(b"GET /denied HTTP/1.1\r\nHost: example.test\r\n\r\n")
        except OSError:
            pass
        assert c.wait_closed(t(2)), "denied connection still open"
        assert c.leftover == b"", c.leftover[:200]
    assert backend.bytes_received == 0


def test_listener_allow_only_listed(backend, make_moat):
    m = make_moat([backend], {"listeners": one_listener(allow=["127.0.0.2", "127.0.0.4/32"])})
    assert_served(m.port, "/two", "127.0.0.2", backend=backend)
    assert_served(m.port, "/four", "127.0.0.4", backend=backend)
    assert_refused_at_accept(m.port, "127.0.0.3")
    assert_refused_at_accept(m.port, "127.0.0.1")
    assert [r.target for r in backend.requests] == ["/two", "/four"]


def test_listener_allow_network_deny_host_longest_prefix(backend, make_moat):
    """allow 127.0.0.0/8, deny 127.0.0.3/32: .3 refused, .2 and .5 served."""
    m = make_moat([backend], {"listeners": one_listener(allow=["127.0.0.0/8"], deny=["127.0.0.3/32"])})
    assert_refused_at_accept(m.port, "127.0.0.3")
    assert_served(m.port, "/two", "127.0.0.2", backend=backend)
    assert_served(m.port, "/five", "127.0.0.5", backend=backend)


def test_listener_deny_network_allow_host_longest_prefix(backend, make_moat):
    """The other way round: deny 127.0.0.0/8, allow 127.0.0.2: .2 served
    (the longer prefix wins), .3 refused."""
    m = make_moat([backend], {"listeners": one_listener(allow=["127.0.0.2"], deny=["127.0.0.0/8"])})
    assert_served(m.port, "/two", "127.0.0.2", backend=backend)
    assert_refused_at_accept(m.port, "127.0.0.3")


def test_listener_nested_prefixes(backend, make_moat):
    """allow /8, deny /24, allow /30 inside it: the longest match decides."""
    m = make_moat([backend], {"listeners": one_listener(allow=["127.0.0.0/8", "127.0.5.0/30"],
                                                         deny=["127.0.5.0/24"])})
    assert_served(m.port, "/a", "127.0.0.2", backend=backend)       # /8 allow
    assert_refused_at_accept(m.port, "127.0.5.9")                   # /24 deny
    assert_served(m.port, "/b", "127.0.5.2", backend=backend)       # /30 allow
    assert_refused_at_accept(m.port, "127.0.5.4")                   # just past the /30


def test_listener_lists_per_listener(backend, make_moat):
    """Each listener has its own lists: .3 refused on one, served on the
    other."""
    p1, p2 = free_port(), free_port()
    make_moat([backend], {"listeners": [{"listen": f"127.0.0.1:{p1}", "deny": ["127.0.0.3"]},
                                            {"listen": f"127.0.0.1:{p2}"}]})
    assert_refused_at_accept(p1, "127.0.0.3")
    assert_served(p2, "/other", "127.0.0.3", backend=backend)


def test_listener_refusal_keeps_serving_others_under_churn(backend, make_moat):
    """50 refused connections in a row do not disturb an allowed client's
    keep-alive connection."""
    m = make_moat([backend], {"listeners": one_listener(deny=["127.0.0.3"])})
    with Client(m.port, source="127.0.0.2") as good:
        for i in range(50):
            assert_refused_at_accept(m.port, "127.0.0.3")
            if i % 10 == 0:
                assert good.request("GET", f"/ka{i}").status == 200
    assert [r.target for r in backend.requests] == [f"/ka{i}" for i in range(0, 50, 10)]


@needs_ipv6
def test_listener_ipv6_allow_and_deny(make_backend, make_moat):
    b = make_backend()
    p4, p6a, p6d = free_port(), free_port("::1"), free_port("::1")
    make_moat([b], {"listeners": [
        {"listen": f"127.0.0.1:{p4}", "deny": ["::1"]},            # an IPv6 entry never matches IPv4
        {"listen": f"[::1]:{p6a}", "allow": ["::1/128"], "deny": ["::/0"]},
        {"listen": f"[::1]:{p6d}", "allow": ["127.0.0.0/8"], "deny": ["::1"]},
    ]})
    assert_served(p4, "/v4", "127.0.0.2", backend=b)
    assert_served(p6a, "/v6", None, host="::1", backend=b)
    assert_refused_at_accept(p6d, None, host="::1")
    assert [r.target for r in b.requests] == ["/v4", "/v6"]


@needs_ipv6
def test_listener_ipv6_prefix(make_backend, make_moat):
    """A /64 that holds ::1 refuses it; an allow /128 inside a denied /0
    serves it."""
    b = make_backend()
    p1, p2 = free_port("::1"), free_port("::1")
    make_moat([b], {"listeners": [{"listen": f"[::1]:{p1}", "deny": ["::/64"]},
                                      {"listen": f"[::1]:{p2}", "deny": ["::/0"], "allow": ["::1"]}]})
    assert_refused_at_accept(p1, None, host="::1")
    assert_served(p2, "/ok", None, host="::1", backend=b)


# --------------------------------------------------------------------------
# Route lists: 403


ROUTES = [{"path": "/admin", "upstream": "app", "allow": ["127.0.0.2"]},
          {"path": "/private", "upstream": "app", "deny": ["127.0.0.3"]},
          {"upstream": "app"}]


def test_route_allow_and_deny_403(backend, make_moat):
    m = make_moat([backend], {"routes": ROUTES})
    assert_served(m.port, "/admin/x", "127.0.0.2", backend=backend)
    r = fetch(m.port, "/admin/x", "127.0.0.3")
    assert r.status == 403, r
    r = fetch(m.port, "/private/y", "127.0.0.3")
    assert r.status == 403, r
    assert_served(m.port, "/private/y", "127.0.0.2", backend=backend)
    assert_served(m.port, "/public", "127.0.0.3", backend=backend)
    assert [q.target for q in backend.requests] == ["/admin/x", "/private/y", "/public"]


def test_route_403_backend_receives_nothing(backend, make_moat):
    m = make_moat([backend], {"routes": [{"path": "/admin", "upstream": "app", "deny": ["127.0.0.0/8"]},
                                         {"upstream": "app"}]})
    # routes match the normalised path: dot-segments, %-escapes of
    # unreserved characters and doubled slashes do not get around the list
    for target in ("/admin", "/admin/", "/admin/users?id=1", "/x/../admin/y", "/%61dmin/z", "//admin"):
        r = fetch(m.port, target, "127.0.0.2")
        assert r.status == 403, f"{target}: {r.status}"
    # a POST with a body is refused before its body reaches anyone
    with Client(m.port, source="127.0.0.2") as c:
        r = c.request("POST", "/admin/upload", [("Connection", "close")], body=b"x" * 5000)
        assert r.status == 403
    assert backend.bytes_received == 0, backend.raw_requests


def test_route_403_keeps_the_connection_usable_or_closes_cleanly(backend, make_moat):
    """After a 403, a keep-alive connection either serves the next request
    or is closed; it never answers out of order."""
    m = make_moat([backend], {"routes": ROUTES})
    with Client(m.port, source="127.0.0.3") as c:
        c.send(b"GET /admin HTTP/1.1\r\nHost: example.test\r\n\r\nGET /public HTTP/1.1\r\nHost: example.test\r\n\r\n")
        r1 = c.read_response()
        assert r1.status == 403
        try:
            r2 = c.read_response()
        except Closed:
            r2 = None      # closed after the 403: allowed
        if r2 is not None:
            assert (r2.status, r2.body) == (200, b"app GET /public\n")
    assert all(q.target == "/public" for q in backend.requests)


def test_route_longest_prefix(backend, make_moat):
    m = make_moat([backend], {"routes": [
        {"path": "/a", "upstream": "app", "allow": ["127.0.0.0/8"], "deny": ["127.0.0.3/32"]},
        {"path": "/b", "upstream": "app", "allow": ["127.0.0.3"], "deny": ["127.0.0.0/8"]},
        {"upstream": "app"}]})
    assert fetch(m.port, "/a", "127.0.0.3").status == 403
    assert fetch(m.port, "/a", "127.0.0.2").status == 200
    assert fetch(m.port, "/b", "127.0.0.3").status == 200
    assert fetch(m.port, "/b", "127.0.0.2").status == 403
    assert [q.target for q in backend.requests] == ["/a", "/b"]


def test_route_list_uses_client_ip_from_trusted_proxy(backend, make_moat):
    """Route lists match the client IP (proxy.client_ip): behind a trusted
    proxy, the rightmost untrusted X-Forwarded-For address; from an
    untrusted peer, its socket address whatever it claims."""
    m = make_moat([backend], {"proxy": {"trusted_proxies": ["127.0.0.2"]},
                              "routes": [{"path": "/admin", "upstream": "app", "deny": ["203.0.113.0/24"]},
                                         {"path": "/office", "upstream": "app", "allow": ["198.51.100.7"]},
                                         {"upstream": "app"}]})
    xff = lambda v: [("X-Forwarded-For", v)]   # noqa: E731
    assert fetch(m.port, "/admin", "127.0.0.2", headers=xff("203.0.113.9")).status == 403
    assert fetch(m.port, "/admin", "127.0.0.2", headers=xff("203.0.113.9, 198.51.100.7")).status == 200
    assert fetch(m.port, "/admin", "127.0.0.2", headers=xff("198.51.100.7, 203.0.113.9")).status == 403
    assert fetch(m.port, "/office", "127.0.0.2", headers=xff("198.51.100.7")).status == 200
    # untrusted peer: its own address counts, the header is ignored
    assert fetch(m.port, "/office", "127.0.0.3", headers=xff("198.51.100.7")).status == 403
    assert fetch(m.port, "/admin", "127.0.0.3", headers=xff("203.0.113.9")).status == 200
    assert [q.target for q in backend.requests] == ["/admin", "/office", "/admin"]


@needs_ipv6
def test_route_ipv6(make_backend, make_moat):
    b = make_backend()
    p6 = free_port("::1")
    m = make_moat([b], {"listeners": [{"listen": f"[::1]:{p6}"}, {"listen": f"127.0.0.1:{free_port()}"}],
                        "routes": [{"path": "/v6deny", "upstream": "app", "deny": ["::1/128"]},
                                   {"path": "/v6only", "upstream": "app", "allow": ["::1"], "deny": ["0.0.0.0/0"]},
                                   {"upstream": "app"}]})
    p4 = m.ports[1]
    assert fetch(p6, "/v6deny", host="::1").status == 403
    assert fetch(p4, "/v6deny", "127.0.0.2").status == 200
    assert fetch(p6, "/v6only", host="::1").status == 200
    assert fetch(p4, "/v6only", "127.0.0.2").status == 403
    assert [q.target for q in b.requests] == ["/v6deny", "/v6only"]


# --------------------------------------------------------------------------
# allow_file / deny_file


def test_allow_file_and_deny_file(backend, make_moat, tmp_path):
    allow = tmp_path / "allow.txt"
    deny = tmp_path / "deny.txt"
    allow.write_text("# the office\n127.0.0.0/8\n\n# the lab\n::1/128\n")
    deny.write_text("# bad neighbours\n\n127.0.0.3\n127.0.0.16/28\n")
    m = make_moat([backend], {"listeners": one_listener(allow_file=str(allow), deny_file=str(deny))})
    assert_served(m.port, "/two", "127.0.0.2", backend=backend)
    assert_refused_at_accept(m.port, "127.0.0.3")
    assert_refused_at_accept(m.port, "127.0.0.20")
    assert_served(m.port, "/thirtytwo", "127.0.0.32", backend=backend)


def test_route_deny_file(backend, make_moat, tmp_path):
    deny = tmp_path / "deny.txt"
    deny.write_text("127.0.0.3\n")
    m = make_moat([backend], {"routes": [{"path": "/admin", "upstream": "app", "deny_file": str(deny)},
                                         {"upstream": "app"}]})
    assert fetch(m.port, "/admin", "127.0.0.3").status == 403
    assert fetch(m.port, "/admin", "127.0.0.2").status == 200
    assert [q.target for q in backend.requests] == ["/admin"]


def test_file_combined_with_inline_list(backend, make_moat, tmp_path):
    deny = tmp_path / "deny.txt"
    deny.write_text("127.0.0.3\n")
    m = make_moat([backend], {"listeners": one_listener(deny=["127.0.0.4"], deny_file=str(deny))})
    assert_refused_at_accept(m.port, "127.0.0.3")
    assert_refused_at_accept(m.port, "127.0.0.4")
    assert_served(m.port, "/two", "127.0.0.2", backend=backend)


BAD_LINES = [
    pytest.param("# list\n127.0.0.2\nnot-an-address\n", 3, id="word"),
    pytest.param("10.0.0.0/33\n", 1, id="prefix-too-long"),
    pytest.param("\n\n# x\n10.0.0.1\n300.1.2.3\n", 5, id="octet-300"),
    pytest.param("::1\n::1/129\n", 2, id="ipv6-prefix-too-long"),
    pytest.param("10.0.0.0/8 10.1.0.0/16\n", 1, id="two-on-a-line"),
]


@pytest.mark.parametrize("content,line", BAD_LINES)
def test_bad_line_in_list_file_refused_at_load(tmp_path, content, line):
    lst = tmp_path / "deny.txt"
    lst.write_text(content)
    cfg = make_config(config={"listeners": one_listener(deny_file=str(lst))},
                      backends=(), port=None)
    cfg["upstreams"] = {"app": {"servers": ["127.0.0.1:9"]}}
    path = tmp_path / "moat.yaml"
    path.write_text(to_yaml(cfg))
    p = run_moat(["-t", "-c", str(path)])
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"moat -t accepted a bad list file:\n{out}"
    m = re.search(re.escape(str(lst)) + r":(\d+):(\d+):", out)
    assert m, f"no {lst}:LINE:COL: in\n{out}"
    assert int(m.group(1)) == line, out
    assert int(m.group(2)) >= 1, out


def test_missing_list_file_refused_at_load(tmp_path):
    missing = tmp_path / "nope.txt"
    cfg = make_config(config={"listeners": one_listener(allow_file=str(missing))})
    cfg["upstreams"] = {"app": {"servers": ["127.0.0.1:9"]}}
    path = tmp_path / "moat.yaml"
    path.write_text(to_yaml(cfg))
    p = run_moat(["-t", "-c", str(path)])
    assert p.returncode != 0
    assert str(missing) in p.stdout + p.stderr


def test_bad_list_file_moat_refuses_to_start(backend, make_moat, tmp_path):
    lst = tmp_path / "deny.txt"
    lst.write_text("127.0.0.3\n127.0.0.x\n")
    m = make_moat([backend], {"routes": [{"path": "/a", "upstream": "app", "deny_file": str(lst)},
                                         {"upstream": "app"}]}, ready=False)
    rc = m.wait_exit(t(10))
    assert rc != 0
    assert f"{lst}:2:1:" in m.stderr, m.stderr


# --------------------------------------------------------------------------
# Reload


def test_list_files_read_again_on_sighup(backend, make_moat, tmp_path):
    """The config file does not change; the list file does; SIGHUP applies
    the new list to new connections."""
    deny = tmp_path / "deny.txt"
    deny.write_text("127.0.0.3\n")
    m = make_moat([backend], {"listeners": one_listener(deny_file=str(deny))})
    assert_refused_at_accept(m.port, "127.0.0.3")
    assert_served(m.port, "/a", "127.0.0.2", backend=backend)
    deny.write_text("# swapped\n127.0.0.2\n")
    m.reload()
    assert_refused_at_accept(m.port, "127.0.0.2")
    assert_served(m.port, "/b", "127.0.0.3", backend=backend)


def test_route_list_file_read_again_on_sighup(backend, make_moat, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("127.0.0.2\n")
    m = make_moat([backend], {"routes": [{"path": "/admin", "upstream": "app", "allow_file": str(allow)},
                                         {"upstream": "app"}]})
    assert fetch(m.port, "/admin", "127.0.0.3").status == 403
    allow.write_text("127.0.0.2\n127.0.0.3\n")
    m.reload()
    assert fetch(m.port, "/admin", "127.0.0.3").status == 200


def test_bad_list_file_on_reload_refused_old_lists_kept(backend, make_moat, tmp_path):
    deny = tmp_path / "deny.txt"
    deny.write_text("127.0.0.3\n")
    m = make_moat([backend], {"listeners": one_listener(deny_file=str(deny))})
    deny.write_text("127.0.0.2\nbogus/8\n")
    m.reload(expect="reload refused")
    wait_for(lambda: f"{deny}:2:1:" in m.errlog, t(3), what=f"{deny}:2:1: in the error log")
    assert_refused_at_accept(m.port, "127.0.0.3")
    assert_served(m.port, "/still", "127.0.0.2", backend=backend)


def test_inline_lists_changed_by_reload(backend, make_moat):
    cfg = {"listeners": one_listener(deny=["127.0.0.3"])}
    m = make_moat([backend], cfg)
    assert_refused_at_accept(m.port, "127.0.0.3")
    cfg2 = make_config([backend], {"listeners": [{"listen": f"127.0.0.1:{m.port}", "deny": ["127.0.0.4"]}]})
    m.reload(cfg2)
    assert_served(m.port, "/three", "127.0.0.3", backend=backend)
    assert_refused_at_accept(m.port, "127.0.0.4")
