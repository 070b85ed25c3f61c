"""Gatekeeper: automatic bans (issue 5, /tmp/gk/spec.md "bans" and the
admin API /api/bans).

`threshold` offenses of the kinds in `on` within `window` ban the client
for `duration`, doubled on each repeat ban up to `max_duration`. A banned
client's new connections are closed at accept without a byte (or, when its
address comes from a trusted proxy's header, answered 403); other clients
are not affected; `exempt` addresses are never banned; bans outlive a
SIGHUP reload; GET /api/bans lists them, DELETE /api/bans/IP lifts one,
POST /api/bans bans by hand.

Durations are short (1-2 s) so that expiry is observed in the test; clients
are told apart by their bound source address.
"""

import json
import socket
import time

import pytest

from harness import Client, free_port, make_config, t, wait_for

BAD = b"GET /\r\n\r\n"    # HTTP/0.9: 400, a "malformed" offense


# --------------------------------------------------------------------------
# Helpers


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


PROBE = b"GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"


def closed_at_accept(port, source=None, host="127.0.0.1"):
    """True when moat closes a new connection from `source` without
    answering the request sent on it (a GET, with Connection: close, so
    that a served client's connection ends at once too)."""
    try:
        c = Client(port, host=host, source=source, timeout=t(3))
    except (ConnectionResetError, ConnectionRefusedError):
        return True
    with c:
        try:
            c.send(PROBE)
        except OSError:
            return True
        return c.wait_closed(t(2)) and c.leftover == b""


def assert_banned(port, source, host="127.0.0.1"):
    assert closed_at_accept(port, source, host), f"{source or host} is not refused at accept"


def get_status(port, source, target="/", headers=(), host="127.0.0.1"):
    with Client(port, host=host, source=source) as c:
        return c.request("GET", target, list(headers) + [("Connection", "close")]).status


def assert_served(port, source, target="/", host="127.0.0.1"):
    s = get_status(port, source, target, host=host)
    assert s == 200, f"{source or host}: {s}"


def malformed(port, source, host="127.0.0.1"):
    """One malformed request; True if moat answered it (400), False if the
    connection was closed without an answer (banned)."""
    try:
        c = Client(port, host=host, source=source, timeout=t(3))
    except (ConnectionResetError, ConnectionRefusedError):
        return False
    with c:
        try:
            c.send(BAD)
            r = c.read_response()
        except Exception:   # noqa: BLE001 - closed or reset: no answer
            return False
        assert r.status == 400, r
        return True


def offend_until_banned(port, source, limit=20, host="127.0.0.1"):
    """Sends malformed requests until one is not answered; returns how
    many were answered (offenses counted)."""
    for i in range(limit):
        if not malformed(port, source, host):
            return i
    raise AssertionError(f"{source} not banned after {limit} malformed requests")


def bans_cfg(admin_port=None, **bans):
    cfg = {"bans": dict({"threshold": 3, "window": "1m", "duration": "1m", "max_duration": "1h",
                         "on": ["malformed"]}, **bans)}
    if admin_port:
        cfg["admin"] = {"listen": f"127.0.0.1:{admin_port}"}
    return cfg


def admin(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    hs = [("Connection", "close")]
    if body is not None:
        hs.append(("Content-Type", "application/json"))
    with Client(port) as c:
        r = c.request(method, path, hs, data, host=f"127.0.0.1:{port}")
    j = None
    if r.body and (r.header("Content-Type") or "").startswith("application/json"):
        j = json.loads(r.body)
    return r, j


def list_bans(port):
    r, j = admin(port, "GET", "/api/bans")
    assert r.status == 200, r
    assert isinstance(j, dict) and isinstance(j.get("bans"), list), r.body
    return {b["ip"]: b for b in j["bans"]}


def start(make_moat, backend, config):
    port = free_port()
    cfg = dict(config)
    cfg["admin"] = {"listen": f"127.0.0.1:{port}"}
    m = make_moat([backend], cfg)
    wait_for(lambda: _accepts(port), t(5), what="the admin port")
    return m, port


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Banning


def test_malformed_threshold_bans_at_accept(backend, make_moat):
    m = make_moat([backend], bans_cfg())
    assert offend_until_banned(m.port, "127.0.0.2") == 3
    assert_banned(m.port, "127.0.0.2")
    # others unaffected
    assert_served(m.port, "127.0.0.3")
    assert malformed(m.port, "127.0.0.3")
    assert_served(m.port, "127.0.0.3")
    assert_banned(m.port, "127.0.0.2")
    assert len(backend.requests) == 2


def test_banned_client_sending_at_once_gets_nothing(backend, make_moat):
    m = make_moat([backend], bans_cfg(threshold=1))
    assert malformed(m.port, "127.0.0.2")
    n0 = len(backend.requests)
    with Client(m.port, source="127.0.0.2", timeout=t(3)) as c:
        try:
            c.send(b"GET /after-ban HTTP/1.1\r\nHost: example.test\r\n\r\n")
        except OSError:
            pass
        assert c.wait_closed(t(2))
        assert c.leftover == b"", c.leftover[:200]
    time.sleep(t(0.1))
    assert len(backend.requests) == n0


def test_rate_limit_refusals_ban(backend, make_moat):
    cfg = bans_cfg(on=["rate_limit"])
    cfg["rate_limits"] = {"p": {"key": "client_ip", "rate": "1/m"}}
    cfg["routes"] = [{"upstream": "app", "rate_limit": "p"}]
    m = make_moat([backend], cfg)
    got = [get_status(m.port, "127.0.0.2") for _ in range(4)]
    assert got == [200, 429, 429, 429], got
    assert_banned(m.port, "127.0.0.2")
    assert get_status(m.port, "127.0.0.3") == 200
    assert len(backend.requests) == 2


def offense_404(port, source):
    return get_status(port, source, "/nowhere") == 404        # moat's own 404: no route


def offense_backend_401(port, source):
    return get_status(port, source, "/deny-me") == 401        # the backend's 4xx


def offense_400(port, source):
    return malformed(port, source)                            # moat's own 400


def offense_acl(port, source):
    return get_status(port, source, "/admin") == 403


@pytest.mark.parametrize("kind,offend", [("4xx", offense_404), ("4xx", offense_backend_401), ("4xx", offense_400),
                                         ("acl", offense_acl)],
                         ids=["4xx-no-route", "4xx-from-backend", "4xx-malformed", "acl"])
def test_other_offense_kinds(make_backend, make_moat, kind, offend):
    def handler(req, conn):
        req.read_body()
        status = 401 if req.target == "/deny-me" else 200
        conn.send_response(status, b"x", [("Content-Type", "text/plain")], req=req)
    b = make_backend(handler)
    cfg = bans_cfg(on=[kind])
    cfg["routes"] = [{"path": "/admin", "upstream": "app", "deny": ["127.0.0.0/8"]},
                     {"path": "/ok", "upstream": "app"}, {"path": "/deny-me", "upstream": "app"}]
    m = make_moat([b], cfg)
    for _ in range(3):
        assert offend(m.port, "127.0.0.2")
    assert_banned(m.port, "127.0.0.2")
    assert get_status(m.port, "127.0.0.3", "/ok") == 200


def test_kinds_not_listed_do_not_count(backend, make_moat):
    cfg = bans_cfg(on=["rate_limit"])
    m = make_moat([backend], cfg)
    for _ in range(10):
        assert malformed(m.port, "127.0.0.2")
    assert_served(m.port, "127.0.0.2")


def test_offenses_outside_the_window_do_not_count(backend, make_moat):
    m = make_moat([backend], bans_cfg(threshold=3, window="1s"))
    assert malformed(m.port, "127.0.0.2") and malformed(m.port, "127.0.0.2")
    time.sleep(1.3)
    assert malformed(m.port, "127.0.0.2") and malformed(m.port, "127.0.0.2")
    assert_served(m.port, "127.0.0.2")
    assert malformed(m.port, "127.0.0.2")       # 3 within the last second
    assert_banned(m.port, "127.0.0.2")


def test_exempt_never_banned(backend, make_moat):
    m = make_moat([backend], bans_cfg(exempt=["127.0.0.2", "127.0.1.0/24"]))
    for _ in range(10):
        assert malformed(m.port, "127.0.0.2")
        assert malformed(m.port, "127.0.1.7")
    assert_served(m.port, "127.0.0.2")
    assert_served(m.port, "127.0.1.7")
    assert offend_until_banned(m.port, "127.0.0.3") == 3


# --------------------------------------------------------------------------
# Expiry and repeat bans


def test_ban_expires(backend, make_moat):
    m = make_moat([backend], bans_cfg(duration="2s", max_duration="1m"))
    offend_until_banned(m.port, "127.0.0.2")
    banned_at = time.monotonic()
    time.sleep(1.0)
    assert_banned(m.port, "127.0.0.2")
    wait_for(lambda: not closed_at_accept(m.port, "127.0.0.2"), t(3), interval=0.1,
             what="the 2 s ban to expire")
    elapsed = time.monotonic() - banned_at
    assert 1.8 <= elapsed <= 2.0 + t(1.5), f"ban lasted {elapsed:.1f}s, configured 2s"
    assert_served(m.port, "127.0.0.2")


def test_repeat_ban_doubles_up_to_max_duration(backend, make_moat):
    """1 s, then 2 s, then 4 s capped at 3 s."""
    m = make_moat([backend], bans_cfg(threshold=2, duration="1s", max_duration="3s"))
    lasted = []
    for expected in (1.0, 2.0, 3.0):
        offend_until_banned(m.port, "127.0.0.2")
        t0 = time.monotonic()
        time.sleep(expected * 0.6)
        assert_banned(m.port, "127.0.0.2")
        wait_for(lambda: not closed_at_accept(m.port, "127.0.0.2"), t(expected + 3), interval=0.05,
                 what=f"a {expected:.0f}s ban to expire")
        lasted.append(time.monotonic() - t0)
    for got, want in zip(lasted, (1.0, 2.0, 3.0)):
        assert want - 0.2 <= got <= want + t(1.2), f"bans lasted {lasted}, expected 1, 2, 3 s"


# --------------------------------------------------------------------------
# Trusted proxies


def test_client_behind_trusted_proxy_banned_with_403(backend, make_moat):
    """A client whose address comes from a trusted proxy's X-Forwarded-For
    is refused with 403 once banned; the proxy itself and the proxy's other
    clients are still served."""
    cfg = bans_cfg(on=["rate_limit"])
    cfg["proxy"] = {"trusted_proxies": ["127.0.0.2"]}
    cfg["rate_limits"] = {"p": {"key": "client_ip", "rate": "1/m"}}
    cfg["routes"] = [{"upstream": "app", "rate_limit": "p"}]
    m = make_moat([backend], cfg)
    bad = [("X-Forwarded-For", "203.0.113.7")]
    got = [get_status(m.port, "127.0.0.2", headers=bad) for _ in range(4)]
    assert got == [200, 429, 429, 429], got
    assert get_status(m.port, "127.0.0.2", headers=bad) == 403
    assert get_status(m.port, "127.0.0.2", headers=[("X-Forwarded-For", "203.0.113.8")]) == 200
    n = len(backend.requests)
    assert get_status(m.port, "127.0.0.2", headers=bad) == 403
    time.sleep(t(0.1))
    assert len(backend.requests) == n


# --------------------------------------------------------------------------
# Reload


def test_bans_survive_sighup(backend, make_moat):
    m = make_moat([backend], bans_cfg(duration="1m"))
    offend_until_banned(m.port, "127.0.0.2")
    assert_banned(m.port, "127.0.0.2")
    m.reload()
    assert_banned(m.port, "127.0.0.2")
    # a changed config too
    cfg = make_config([backend], dict(bans_cfg(threshold=5, duration="30s"),
                                      listeners=[{"listen": f"127.0.0.1:{m.port}"}]))
    m.reload(cfg)
    assert_banned(m.port, "127.0.0.2")
    assert_served(m.port, "127.0.0.3")
    assert offend_until_banned(m.port, "127.0.0.3") == 5


# --------------------------------------------------------------------------
# Admin API


def test_admin_lists_automatic_ban(backend, make_moat):
    m, ap = start(make_moat, backend, bans_cfg(duration="10m", max_duration="1h"))
    assert list_bans(ap) == {}
    before = time.time()
    offend_until_banned(m.port, "127.0.0.2")
    bans = list_bans(ap)
    assert set(bans) == {"127.0.0.2"}, bans
    b = bans["127.0.0.2"]
    assert isinstance(b["until"], (int, float)) and before + 590 <= b["until"] <= time.time() + 601, b
    assert isinstance(b["remaining_s"], (int, float)) and 590 <= b["remaining_s"] <= 600, b
    assert b["count"] == 1, b
    assert b["reason"] == "malformed", b


def test_admin_count_grows_on_repeat(backend, make_moat):
    m, ap = start(make_moat, backend, bans_cfg(threshold=2, duration="1s", max_duration="1m"))
    offend_until_banned(m.port, "127.0.0.2")
    assert list_bans(ap)["127.0.0.2"]["count"] == 1
    wait_for(lambda: not closed_at_accept(m.port, "127.0.0.2"), t(3), interval=0.05, what="expiry")
    offend_until_banned(m.port, "127.0.0.2")
    b = list_bans(ap)["127.0.0.2"]
    assert b["count"] == 2 and 1 <= b["remaining_s"] <= 2, b


def test_admin_delete_lifts(backend, make_moat):
    m, ap = start(make_moat, backend, bans_cfg())
    offend_until_banned(m.port, "127.0.0.2")
    assert_banned(m.port, "127.0.0.2")
    r, j = admin(ap, "DELETE", "/api/bans/127.0.0.2")
    assert r.status == 200 and j == {"lifted": True}, (r, j)
    assert_served(m.port, "127.0.0.2")
    assert "127.0.0.2" not in list_bans(ap)
    r, _ = admin(ap, "DELETE", "/api/bans/127.0.0.2")
    assert r.status == 404, r
    r, _ = admin(ap, "DELETE", "/api/bans/192.0.2.1")
    assert r.status == 404, r


def test_admin_post_bans_by_hand(backend, make_moat):
    m, ap = start(make_moat, backend, bans_cfg())
    assert_served(m.port, "127.0.0.4")
    r, _ = admin(ap, "POST", "/api/bans", {"ip": "127.0.0.4", "duration": "10m"})
    assert r.status in (200, 201), r
    assert_banned(m.port, "127.0.0.4")
    assert_served(m.port, "127.0.0.5")
    b = list_bans(ap)["127.0.0.4"]
    assert 590 <= b["remaining_s"] <= 600, b
    r, _ = admin(ap, "DELETE", "/api/bans/127.0.0.4")
    assert r.status == 200
    assert_served(m.port, "127.0.0.4")


def test_admin_post_short_ban_expires(backend, make_moat):
    m, ap = start(make_moat, backend, bans_cfg())
    r, _ = admin(ap, "POST", "/api/bans", {"ip": "127.0.0.4", "duration": "1s"})
    assert r.status in (200, 201), r
    assert_banned(m.port, "127.0.0.4")
    wait_for(lambda: not closed_at_accept(m.port, "127.0.0.4"), t(3), interval=0.05, what="expiry")
    assert list_bans(ap).get("127.0.0.4") is None


def test_admin_post_bans_an_address_behind_a_trusted_proxy(backend, make_moat):
    cfg = bans_cfg()
    cfg["proxy"] = {"trusted_proxies": ["127.0.0.2"]}
    m, ap = start(make_moat, backend, cfg)
    r, _ = admin(ap, "POST", "/api/bans", {"ip": "203.0.113.5", "duration": "10m"})
    assert r.status in (200, 201), r
    assert get_status(m.port, "127.0.0.2", headers=[("X-Forwarded-For", "203.0.113.5")]) == 403
    assert get_status(m.port, "127.0.0.2", headers=[("X-Forwarded-For", "203.0.113.6")]) == 200
    assert get_status(m.port, "127.0.0.2") == 200


@pytest.mark.parametrize("body", [{"ip": "not-an-ip", "duration": "10m"},
                                  {"ip": "127.0.0.4", "duration": "forever"},
                                  {"duration": "10m"}])
def test_admin_post_bad_input_400(backend, make_moat, body):
    m, ap = start(make_moat, backend, bans_cfg())
    r, _ = admin(ap, "POST", "/api/bans", body)
    assert r.status == 400, r
    assert list_bans(ap) == {}
    assert_served(m.port, "127.0.0.4")


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback")
def test_admin_ipv6_ban(make_backend, make_moat):
    b = make_backend()
    ap = free_port()
    p6 = free_port("::1")
    cfg = bans_cfg()
    cfg["admin"] = {"listen": f"127.0.0.1:{ap}"}
    cfg["listeners"] = [{"listen": f"[::1]:{p6}"}, {"listen": f"127.0.0.1:{free_port()}"}]
    m = make_moat([b], cfg)
    wait_for(lambda: _accepts(ap), t(5), what="the admin port")
    r, _ = admin(ap, "POST", "/api/bans", {"ip": "::1", "duration": "10m"})
    assert r.status in (200, 201), r
    assert_banned(p6, None, host="::1")
    assert_served(m.ports[1], "127.0.0.2")
    assert "::1" in list_bans(ap)
    r, j = admin(ap, "DELETE", "/api/bans/::1")
    assert r.status == 200, r
    assert_served(p6, None, host="::1")


def test_admin_bans_survive_reload(backend, make_moat):
    m, ap = start(make_moat, backend, bans_cfg())
    admin(ap, "POST", "/api/bans", {"ip": "127.0.0.4", "duration": "10m"})
    offend_until_banned(m.port, "127.0.0.2")
    m.reload()
    assert set(list_bans(ap)) == {"127.0.0.2", "127.0.0.4"}
    assert_banned(m.port, "127.0.0.4")
    assert_banned(m.port, "127.0.0.2")
