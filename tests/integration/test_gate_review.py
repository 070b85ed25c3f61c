"""Gatekeeper review: regressions for defects found when the gatekeeper
(issue 5) was reviewed against docs/security.md.

Each test names the defect it pins down.
"""

import time
from pathlib import Path
from urllib.parse import quote

from harness import Client, t

SQLI = "/search?q=" + quote("1' OR '1'='1")


def hit(port, target="/", source="127.0.0.2", headers=(), method="GET", body=b""):
    with Client(port, source=source, timeout=t(10)) as c:
        return c.request(method, target, list(headers) + [("Connection", "close")], body=body)


# --------------------------------------------------------------------------
# A request held by a rate limit (delay_after) must still meet the WAF.


def test_waf_inspects_requests_held_by_delay_after(backend, make_moat):
    """rate 2/s, burst 5, delay_after 1: the third request at once is held
    (about 0.5 s). The modules after the rate limit used to run with no
    head after the hold, and the WAF let anything held pass: an attack
    sent after two quick requests reached the backend."""
    m = make_moat([backend], {
        "rate_limits": {"p": {"key": "client_ip", "rate": "2/s", "burst": 5, "delay_after": 1}},
        "routes": [{"upstream": "app", "rate_limit": "p", "waf": True}],
    })
    assert hit(m.port, "/a").status == 200
    assert hit(m.port, "/b").status == 200
    t0 = time.monotonic()
    r = hit(m.port, SQLI)
    assert r.status == 403, r
    assert b"waf-" in r.body, r.body
    assert time.monotonic() - t0 < t(5)
    time.sleep(t(0.1))
    assert [q.target for q in backend.requests] == ["/a", "/b"]


# --------------------------------------------------------------------------
# Offenses that come through a trusted proxy must not ban the proxy.


def lb_get(port, target, client, lb="127.0.0.2"):
    """A request through the load balancer `lb` (a trusted proxy) for
    `client`; its status, or None when the connection was closed first."""
    try:
        with Client(port, source=lb, timeout=t(5)) as c:
            return c.request("GET", target, [("X-Forwarded-For", client), ("Connection", "close")]).status
    except OSError:
        return None


def test_malformed_heads_through_a_trusted_proxy_do_not_ban_it(backend, make_moat):
    """bans on malformed, threshold 3; 127.0.0.2 is the load balancer. A
    client behind it sending three malformed heads used to get the
    balancer's own address banned (the offense fell on the socket peer),
    and then every client behind it was closed at accept."""
    m = make_moat([backend], {
        "proxy": {"trusted_proxies": ["127.0.0.2"]},
        "bans": {"threshold": 3, "window": "1m", "duration": "1m", "on": ["malformed", "4xx"]},
    })
    for _ in range(4):
        with Client(m.port, source="127.0.0.2", timeout=t(5)) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n")
            assert c.read_response().status == 400
    assert lb_get(m.port, "/ok", "203.0.113.8") == 200


def test_no_route_offenses_count_against_the_client_behind_a_trusted_proxy(backend, make_moat):
    """bans on 4xx, threshold 3; only /app/ is routed. Three 404s for a
    client behind the balancer ban that client (403 through the
    balancer), not the balancer: its other clients are still served."""
    m = make_moat([backend], {
        "proxy": {"trusted_proxies": ["127.0.0.2"]},
        "bans": {"threshold": 3, "window": "1m", "duration": "1m", "on": ["4xx"]},
        "routes": [{"path": "/app/", "upstream": "app"}],
    })
    assert [lb_get(m.port, "/nope", "203.0.113.7") for _ in range(3)] == [404] * 3
    assert lb_get(m.port, "/app/x", "203.0.113.8") == 200
    assert lb_get(m.port, "/app/x", "203.0.113.7") == 403


# --------------------------------------------------------------------------
# The WAF reads the first body_limit bytes of a chunked body, whatever its
# framing.


def chunked_post(port, chunks):
    raw = (b"POST /login HTTP/1.1\r\nHost: example.test\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
    with Client(port, timeout=t(10)) as c:
        c.send(raw)
        return c.read_response(method="POST")


def test_waf_sees_a_small_chunked_body_padded_with_framing(backend, make_moat):
    """An 80-byte form body sent as 1-byte chunks with 4000-byte chunk
    extensions (240 KiB on the wire): the framing used to fill the input
    buffer after 44 body bytes, and the WAF judged those alone -- the SQL
    injection after them reached the backend."""
    m = make_moat([backend], {"routes": [{"upstream": "app", "waf": True}]})
    attack = b"q=" + quote("1' OR '1'='1").encode()
    one = b"%x\r\n%s\r\n" % (len(attack), attack)
    assert chunked_post(m.port, one).status == 403
    pad = b"".join(b"1;x=" + b"y" * 4000 + b"\r\na\r\n" for _ in range(60))
    r = chunked_post(m.port, pad + b"1\r\n&\r\n" + one)
    assert r.status == 403, r
    # the same framing with an ordinary body still passes, whole
    ok = chunked_post(m.port, pad + b"1\r\n&\r\n" + b"7\r\nb=hello\r\n")
    assert ok.status == 200, ok
    time.sleep(t(0.1))
    assert len(backend.requests) == 1
    assert backend.requests[0].body == b"a" * 60 + b"&b=hello"


# --------------------------------------------------------------------------
# A client that gives up on a request was not answered 4xx.


def test_client_giving_up_is_no_4xx_offense(backend, make_moat):
    """bans on 4xx, threshold 2. A client that cancels an upload (closes
    in the middle of its body; logged as 499) used to be counted a 4xx
    offense each time, and banned after two cancelled uploads."""
    m = make_moat([backend], {"bans": {"threshold": 2, "window": "1m", "duration": "1m", "on": ["4xx"]}})
    for i in range(3):
        with Client(m.port, source="127.0.0.2", timeout=t(5)) as c:
            c.send(b"POST /up%d HTTP/1.1\r\nHost: example.test\r\nContent-Length: 100000\r\n\r\n" % i
                   + b"x" * 1000)
            backend.wait_requests(i + 1)
        time.sleep(t(0.1))
    r = hit(m.port, "/after")
    assert r.status == 200, r


# --------------------------------------------------------------------------
# A trusted proxy's forwarding field that names no client.


def test_unreadable_forwarded_from_a_trusted_proxy_is_refused(backend, make_moat):
    """client_ip: forwarded; the balancer (127.0.0.2, trusted) appends its
    for= to the client's own Forwarded line, so a client that sends an
    unbalanced quote makes the whole field unreadable. moat used to take
    the balancer for the client, which passed a route that allows only the
    balancer's network. Now: 400, and the backend sees nothing."""
    m = make_moat([backend], {
        "proxy": {"trusted_proxies": ["127.0.0.2"], "client_ip": "forwarded"},
        "routes": [{"upstream": "app", "allow": ["127.0.0.0/8"]}],
    })
    with Client(m.port, source="127.0.0.2", timeout=t(5)) as c:
        r = c.request("GET", "/secret", [("Forwarded", 'for="evil, for=203.0.113.9'), ("Connection", "close")])
    assert r.status == 400, r
    # a readable one for an outside client is refused by the allow list
    with Client(m.port, source="127.0.0.2", timeout=t(5)) as c:
        r = c.request("GET", "/secret", [("Forwarded", "for=203.0.113.9"), ("Connection", "close")])
    assert r.status == 403, r
    # the balancer's own request (no field) is its own
    with Client(m.port, source="127.0.0.2", timeout=t(5)) as c:
        r = c.request("GET", "/health", [("Connection", "close")])
    assert r.status == 200, r
    assert [q.target for q in backend.requests] == ["/health"]


# --------------------------------------------------------------------------
# connections_per_ip: counts released only for connections that were counted;
# a trusted proxy's own connections are not limited.


def open_conns(port, source, n):
    out = []
    for _ in range(n):
        c = Client(port, source=source, timeout=t(5))
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
        out.append(c)
    return out


def test_per_ip_limit_turned_on_by_a_reload_counts_exactly(backend, make_moat):
    """Two connections opened while the limit is off, then a reload sets
    connections_per_ip: 2. Their closes used to give back counts they never
    took, so later connections went uncounted (4 open with a limit of 2)."""
    cfg = {"limits": {"connections_per_ip": 0}}
    m = make_moat([backend], cfg)
    old = open_conns(m.port, "127.0.0.3", 2)
    text = Path(m.config_path).read_text()
    assert "connections_per_ip: 0" in text
    m.reload(text=text.replace("connections_per_ip: 0", "connections_per_ip: 2"))
    for c in old:
        c.close()
    time.sleep(t(0.3))
    keep = open_conns(m.port, "127.0.0.3", 2)
    c = Client(m.port, source="127.0.0.3", timeout=t(5))
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.wait_closed(t(3)) and c.leftover == b""
    finally:
        c.close()
        for k in keep:
            k.close()


def test_per_ip_limit_spares_a_trusted_proxy(backend, make_moat):
    m = make_moat([backend], {"limits": {"connections_per_ip": 2},
                              "proxy": {"trusted_proxies": ["127.0.0.2"]}})
    conns = open_conns(m.port, "127.0.0.2", 4)
    for c in conns:
        c.close()


# --------------------------------------------------------------------------
# The body the WAF reads first is still counted as received.


def test_body_read_for_the_waf_counts_in_bytes_in(backend, make_moat):
    """A 20 KiB form body sent after the head on a WAF route: the access
    log's bytes_in used to miss what the WAF's body read took off the
    socket (only the head was counted)."""
    m = make_moat([backend], {"routes": [{"upstream": "app", "waf": True}]})
    body = b"a=" + b"x" * (20 << 10)
    with Client(m.port, source="127.0.0.2", timeout=t(10)) as c:
        c.send(b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        time.sleep(t(0.2))
        c.send(body)
        assert c.read_response().status == 200
    rec = m.access_records(1)[-1]
    assert rec["bytes_in"] >= len(body), rec
