"""Gatekeeper: refusals counted and logged (issue 5, /tmp/gk/spec.md
"Refusals" and log.refusal_rate).

Every refusal moves moat_refusals_total{reason="..."} of the admin
listener's /metrics (src/proxy/metrics.c) by exactly one, under the
reason the spec names: acl, banned, conn_limit_ip, rate_limit, waf, slow,
proxy_protocol (malformed requests stay "bad_request"). The error log
holds at most log.refusal_rate refusal lines per second per worker; the
rest are counted and summarised ("N refusals not logged"), so that lines
logged + N add up to every refusal.
"""

import re
import select
import socket
import time

import pytest

from harness import Client, free_port, huge, sha256_body, t, wait_for

GATE_REASONS = ("acl", "banned", "conn_limit_ip", "rate_limit", "waf", "slow", "proxy_protocol")
H = b"Host: example.test\r\n"
BAD = b"GET /\r\n\r\n"
SAMPLE = re.compile(r'^moat_refusals_total\{reason="([^"]*)"\} (\S+)$', re.M)


# --------------------------------------------------------------------------
# Helpers


def start(make_moat, backends, config):
    ap = free_port()
    cfg = dict(config)
    cfg["admin"] = {"listen": f"127.0.0.1:{ap}"}
    m = make_moat(backends, cfg)

    def up():
        try:
            socket.create_connection(("127.0.0.1", ap), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(up, t(5), what="the admin port")
    time.sleep(t(0.2))    # the readiness probes of the harness are counted by now
    return m, ap


def refusals(ap):
    with Client(ap) as c:
        r = c.request("GET", "/metrics", [("Connection", "close")], host=f"127.0.0.1:{ap}")
    assert r.status == 200, r
    text = r.body.decode()
    return {k: float(v) for k, v in SAMPLE.findall(text)}


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
            if after.get(k, 0) != before.get(k, 0)}


def assert_moved(ap, before, reason, n, timeout=3.0):
    """Waits until `reason` moved by n; asserts no other gatekeeper reason
    moved."""
    wait_for(lambda: refusals(ap).get(reason, 0) - before.get(reason, 0) >= n, t(timeout), interval=0.05,
             what=f'moat_refusals_total{{reason="{reason}"}} to grow by {n}')
    time.sleep(t(0.1))
    d = delta(before, refusals(ap))
    assert d.get(reason) == n, f"{reason}: expected +{n}, got {d}"
    others = {k: v for k, v in d.items() if k in GATE_REASONS and k != reason}
    assert not others, f"other gatekeeper reasons moved: {others}"


PROBE = b"GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"


def closed_at_accept(port, source):
    try:
        c = Client(port, source=source, timeout=t(3))
    except OSError:
        return True
    with c:
        try:
            c.send(PROBE)
        except OSError:
            return True
        return c.wait_closed(t(2)) and c.leftover == b""


def status(port, source="127.0.0.2", target="/", headers=()):
    with Client(port, source=source) as c:
        return c.request("GET", target, list(headers) + [("Connection", "close")]).status


def malformed(port, source):
    try:
        with Client(port, source=source, timeout=t(3)) as c:
            c.send(BAD)
            return c.read_response().status
    except Exception:   # noqa: BLE001 - closed: no answer
        return None


# --------------------------------------------------------------------------
# Counted by reason


def test_every_gate_reason_exposed_from_the_start(backend, make_moat):
    m, ap = start(make_moat, [backend], {})
    got = refusals(ap)
    for reason in GATE_REASONS:
        assert got.get(reason) == 0, f'moat_refusals_total{{reason="{reason}"}}: {got.get(reason)} ({got})'


def test_listener_acl_counted(backend, make_moat):
    m, ap = start(make_moat, [backend], {"listeners": [{"listen": f"127.0.0.1:{free_port()}",
                                                         "deny": ["127.0.0.3"]}]})
    before = refusals(ap)
    for _ in range(3):
        assert closed_at_accept(m.port, "127.0.0.3")
    assert status(m.port, "127.0.0.2") == 200
    assert_moved(ap, before, "acl", 3)


def test_route_acl_counted(backend, make_moat):
    m, ap = start(make_moat, [backend], {"routes": [{"path": "/admin", "upstream": "app", "deny": ["127.0.0.3"]},
                                                    {"upstream": "app"}]})
    before = refusals(ap)
    assert [status(m.port, "127.0.0.3", "/admin") for _ in range(2)] == [403, 403]
    assert status(m.port, "127.0.0.2", "/admin") == 200
    assert_moved(ap, before, "acl", 2)


def test_banned_counted(backend, make_moat):
    m, ap = start(make_moat, [backend], {"bans": {"threshold": 1, "window": "1m", "duration": "1m",
                                                  "on": ["malformed"]}})
    assert malformed(m.port, "127.0.0.2") == 400
    before = refusals(ap)
    for _ in range(4):
        assert closed_at_accept(m.port, "127.0.0.2")
    assert_moved(ap, before, "banned", 4)


def test_conn_limit_ip_counted(backend, make_moat):
    m, ap = start(make_moat, [backend], {"limits": {"connections_per_ip": 1}})
    held = Client(m.port, source="127.0.0.2")
    try:
        assert held.request("GET", "/").status == 200
        before = refusals(ap)
        for _ in range(2):
            assert closed_at_accept(m.port, "127.0.0.2")
        assert_moved(ap, before, "conn_limit_ip", 2)
    finally:
        held.close()


def test_rate_limit_counted(backend, make_moat):
    m, ap = start(make_moat, [backend], {"rate_limits": {"p": {"key": "client_ip", "rate": "1/m"}},
                                         "routes": [{"upstream": "app", "rate_limit": "p"}]})
    before = refusals(ap)
    assert [status(m.port) for _ in range(4)] == [200, 429, 429, 429]
    assert_moved(ap, before, "rate_limit", 3)


def test_waf_counted(backend, make_moat):
    m, ap = start(make_moat, [backend], {"routes": [{"upstream": "app", "waf": True}]})
    before = refusals(ap)
    assert status(m.port, target="/s?q=1%27%20OR%20%271%27%3D%271") == 403
    assert status(m.port, target="/s?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E") == 403
    assert_moved(ap, before, "waf", 2)


def test_slow_body_counted(make_backend, make_moat):
    b = make_backend(sha256_body())
    m, ap = start(make_moat, [b], {"limits": {"min_body_rate": 512}, "timeouts": {"client_body": "1s"}})
    before = refusals(ap)
    with Client(m.port, source="127.0.0.2", timeout=t(10)) as c:
        c.send(b"POST /u HTTP/1.1\r\n" + H + b"Content-Length: 1000\r\n\r\n")
        end = time.monotonic() + t(5)
        while time.monotonic() < end:
            try:
                c.send(b"x")
            except OSError:
                break
            r, _, _ = select.select([c.sock], [], [], 0.1)
            if r:
                break
        assert c.read_response().status == 408
    assert_moved(ap, before, "slow", 1)


def test_slow_read_counted(make_backend, make_moat):
    b = make_backend(huge(256 << 20))
    m, ap = start(make_moat, [b], {"limits": {"min_send_rate": 512}, "timeouts": {"client_send": "1s"}})
    before = refusals(ap)
    c = Client(m.port, source="127.0.0.2", rcvbuf=4096, timeout=t(10))
    try:
        c.send(b"GET /big HTTP/1.1\r\n" + H + b"\r\n")
        assert_moved(ap, before, "slow", 1, timeout=6.0)
    finally:
        c.close()


def test_proxy_protocol_counted(backend, make_moat):
    m, ap = start(make_moat, [backend], {"listeners": [{"listen": f"127.0.0.1:{free_port()}",
                                                         "proxy_protocol": True}],
                                         "proxy": {"trusted_proxies": ["127.0.0.2"]}})
    before = refusals(ap)
    for data in (b"GET / HTTP/1.1\r\n" + H + b"\r\n", b"PROXY TCP4 999.0.0.1 1.1.1.1 1 2\r\n"):
        with Client(m.port, source="127.0.0.2", timeout=t(3)) as c:
            c.send(data)
            assert c.wait_closed(t(2)) and c.leftover == b""
    assert_moved(ap, before, "proxy_protocol", 2)


# --------------------------------------------------------------------------
# log.refusal_rate


def flood(port, source, n):
    for _ in range(n):
        assert malformed(port, source) == 400


def refusal_lines(m, source):
    """Error log lines about refusals of `source` (every request it sends
    here is refused). A summary may be a line of its own or ride on the
    next refusal line; either way it is read by summaries()."""
    pat = re.compile(re.escape(source) + r"(?![0-9])")
    return [line for line in m.errlog.splitlines() if pat.search(line)]


def summaries(m):
    return [int(x) for x in re.findall(r"(\d+) refusals? not logged", m.errlog)]


def max_in_any_second(lines):
    """The most lines whose timestamps fall within one second of each
    other (a sliding window over the error log's millisecond stamps)."""
    stamps = []
    for line in lines:
        m = re.match(r"^\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d)\.(\d{3})", line)
        if m:
            h, mi, se, ms = map(int, m.groups())
            stamps.append(((h * 60 + mi) * 60 + se) * 1000 + ms)
    stamps.sort()
    best, j = 0, 0
    for i in range(len(stamps)):
        while stamps[i] - stamps[j] >= 1000:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("workers,rate", [(1, 5), (2, 5), (1, None)], ids=["w1-r5", "w2-r5", "w1-default-20"])
def test_refusal_log_rate_limited_and_summarised(backend, make_moat, workers, rate):
    """200 malformed requests as fast as they go: at most `rate` refusal
    lines per second per worker, the rest summarised ("N refusals not
    logged") without waiting for another refusal, and logged + summarised =
    every refusal; /metrics counts all 200.

    A limit counted in whole seconds may let `rate` lines through at the
    end of one second and `rate` more at the start of the next: up to twice
    the rate within any one second is tolerated, never more, and never more
    than `rate` per second over the flood."""
    cfg = {"workers": workers, "log": {"level": "info", "error": "stderr", "access": "stdout", "format": "json"}}
    if rate is not None:
        cfg["log"]["refusal_rate"] = rate
    per_s = (rate or 20) * workers
    m, ap = start(make_moat, [backend], cfg)
    before = refusals(ap)
    src = "127.0.0.9"
    t0 = time.monotonic()
    flood(m.port, src, 200)
    flood_s = time.monotonic() - t0

    def settled():
        return len(refusal_lines(m, src)) + sum(summaries(m)) >= 200
    try:
        wait_for(settled, t(3), interval=0.1, what="summary lines")
    except AssertionError:
        raise AssertionError("no summary for the refusals not logged within 3 s of the flood (and no "
                             f"further refusal): {len(refusal_lines(m, src))} logged + {summaries(m)} "
                             f"summarised of 200:\n{m.errlog[-1500:]}") from None
    lines = refusal_lines(m, src)
    assert lines, "no refusal line at all"
    assert len(lines) <= per_s * (int(flood_s) + 2), f"{len(lines)} lines in {flood_s:.1f}s"
    assert max_in_any_second(lines) <= 2 * per_s, f"{max_in_any_second(lines)} lines within one second"
    assert len(lines) + sum(summaries(m)) == 200, (
        f"{len(lines)} logged + {summaries(m)} summarised != 200")
    d = delta(before, refusals(ap))
    assert d.get("bad_request") == 200, d


def test_refusal_rate_zero_is_unlimited(backend, make_moat):
    m, ap = start(make_moat, [backend], {"workers": 1, "log": {"level": "info", "error": "stderr",
                                                               "access": "stdout", "refusal_rate": 0}})
    flood(m.port, "127.0.0.9", 60)
    wait_for(lambda: len(refusal_lines(m, "127.0.0.9")) >= 60, t(3), what="60 refusal lines")
    assert not summaries(m)


def test_gate_refusals_are_rate_limited_in_the_log_too(backend, make_moat):
    """A flood of 150 rate-limit refusals: at most 5 lines a second."""
    m, ap = start(make_moat, [backend], {"workers": 1,
                                         "log": {"level": "info", "error": "stderr", "access": "stdout",
                                                 "refusal_rate": 5},
                                         "rate_limits": {"p": {"key": "client_ip", "rate": "1/m"}},
                                         "routes": [{"upstream": "app", "rate_limit": "p"}]})
    before = refusals(ap)
    got = [status(m.port, "127.0.0.9") for _ in range(151)]
    assert got.count(429) == 150
    time.sleep(t(1.2))
    lines = refusal_lines(m, "127.0.0.9")
    assert lines and max_in_any_second(lines) <= 10, lines
    assert_moved(ap, before, "rate_limit", 150)
