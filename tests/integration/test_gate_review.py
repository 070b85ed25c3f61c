"""Gatekeeper review: regressions for defects found when the gatekeeper
(issue 5) was reviewed against docs/security.md.

Each test names the defect it pins down.
"""

import time
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
