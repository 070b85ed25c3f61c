"""Gatekeeper: rate limits (issue 5, /tmp/gk/spec.md "rate_limits" and
routes[].rate_limit).

A policy allows `rate` requests per unit plus `burst` at once; past it moat
answers 429 (or the policy's status) with Retry-After, RateLimit-Policy and
RateLimit, and the backend receives nothing. With delay_after, excess
requests up to the burst are delayed to the rate instead of refused.
Counts are exact across workers. Keys: client_ip (the socket address, or
behind a trusted proxy the rightmost untrusted X-Forwarded-For address),
route, "header:NAME", "cookie:NAME" and lists of them.

Every request here goes on a fresh connection (with Connection: close), so
whatever moat does with a connection after a 429 does not matter; clients
are told apart by their bound source address (127.0.0.2, 127.0.0.3, ...).
"""

import re
import threading
import time

from harness import Client, t


# --------------------------------------------------------------------------
# Helpers


def limited(policies, routes=None, **extra):
    """A config with rate_limits = policies and routes (default: one
    catch-all route limited by every policy named in `policies`)."""
    cfg = {"rate_limits": policies,
           "routes": routes or [{"upstream": "app", "rate_limit": list(policies)[0]
                                 if len(policies) == 1 else list(policies)}]}
    cfg.update(extra)
    return cfg


def hit(port, target="/", source="127.0.0.2", headers=(), method="GET", body=b""):
    with Client(port, source=source) as c:
        return c.request(method, target, list(headers) + [("Connection", "close")], body=body)


def statuses(port, n, target="/", source="127.0.0.2", headers=()):
    return [hit(port, target, source, headers).status for _ in range(n)]


def check_refusal_headers(r, status=429):
    assert r.status == status, r
    ra = r.header("Retry-After")
    assert ra is not None and re.fullmatch(r"\d+", ra), f"Retry-After {ra!r}: {r.headers!r}"
    assert int(ra) >= 1, f"Retry-After {ra!r}"
    policy, state = r.header("RateLimit-Policy"), r.header("RateLimit")
    assert policy and re.search(r"\d", policy), f"RateLimit-Policy {policy!r}: {r.headers!r}"
    assert state and re.search(r"\d", state), f"RateLimit {state!r}: {r.headers!r}"
    # both IETF draft shapes: "limit=6, remaining=0, reset=1" (draft 7) and
    # '"name";r=0;t=1' (draft 8 and later): nothing remains after a refusal
    m = re.search(r"(?:remaining=|(?:^|;)\s*r=)(\d+)", state)
    if m:
        assert int(m.group(1)) == 0, f"RateLimit {state!r} on a refusal"
    return int(ra)


# --------------------------------------------------------------------------
# Burst and refusal


def test_burst_exact_count_and_429_headers(backend, make_moat):
    """burst 5 at 1/s: exactly 6 of 20 immediate requests pass; the other
    14 get 429 with the headers; the backend sees exactly the 6."""
    m = make_moat([backend], limited({"per_ip": {"key": "client_ip", "rate": "1/s", "burst": 5}}))
    rs = [hit(m.port, f"/r{i}") for i in range(20)]
    got = [r.status for r in rs]
    assert got == [200] * 6 + [429] * 14, got
    for r in rs[6:]:
        ra = check_refusal_headers(r)
        assert ra <= 2, f"Retry-After {ra} at 1/s"
    time.sleep(t(0.1))
    assert [q.target for q in backend.requests] == [f"/r{i}" for i in range(6)]


def test_retry_after_is_honest(backend, make_moat):
    """After waiting Retry-After seconds the next request passes."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/s", "burst": 1}}))
    assert statuses(m.port, 2) == [200, 200]
    r = hit(m.port)
    ra = check_refusal_headers(r)
    time.sleep(ra + 0.05)
    assert hit(m.port).status == 200


def test_refused_requests_never_reach_the_backend(backend, make_moat):
    """Refused POSTs with bodies: the backend receives no byte of them."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 0}}))
    assert hit(m.port, "/first", method="POST", body=b"a" * 100).status == 200
    before = backend.bytes_received
    for i in range(10):
        r = hit(m.port, f"/refused{i}", method="POST", body=b"b" * 20000)
        assert r.status == 429
    time.sleep(t(0.2))
    assert backend.bytes_received == before, backend.raw_requests[1:]
    assert [q.target for q in backend.requests] == ["/first"]


def test_status_503_policy(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 1, "status": 503}}))
    rs = [hit(m.port) for _ in range(4)]
    assert [r.status for r in rs] == [200, 200, 503, 503]
    check_refusal_headers(rs[2], status=503)


def test_rate_per_minute_and_hour(backend, make_moat):
    m = make_moat([backend], limited({"m": {"key": "client_ip", "rate": "3/m"},
                                      "h": {"key": "client_ip", "rate": "2/h"}},
                                     routes=[{"path": "/m", "upstream": "app", "rate_limit": "m"},
                                             {"path": "/h", "upstream": "app", "rate_limit": "h"}]))
    assert statuses(m.port, 3, "/m") == [200, 429, 429]
    r = hit(m.port, "/m")
    ra = check_refusal_headers(r)
    assert 1 <= ra <= 21, f"Retry-After {ra} at 3/m"
    assert statuses(m.port, 2, "/h") == [200, 429]
    ra = check_refusal_headers(hit(m.port, "/h"))
    assert 1700 <= ra <= 1801, f"Retry-After {ra} at 2/h"


# --------------------------------------------------------------------------
# Steady state


def paced(port, rate, seconds, source="127.0.0.2", target="/"):
    """Sends `rate` requests per second for `seconds`, each on a fresh
    connection at its planned time; returns (statuses, elapsed from the
    first send to the last)."""
    n = int(rate * seconds)
    start = time.monotonic()
    out = []
    last = start
    for i in range(n):
        when = start + i / rate
        delay = when - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        last = time.monotonic()
        out.append(hit(port, target, source).status)
    return out, last - start


def test_steady_state_over_the_rate(backend, make_moat):
    """20 requests/s for 3 s against 10/s burst 2: about 3 + 10 x 3 pass."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "10/s", "burst": 2}}))
    got, elapsed = paced(m.port, 20, 3)
    passed = got.count(200)
    expected = 3 + 10 * elapsed
    assert set(got) <= {200, 429}, got
    assert abs(passed - expected) <= 4, f"{passed} passed in {elapsed:.2f}s, expected about {expected:.0f}"
    time.sleep(t(0.1))
    assert len(backend.requests) == passed


def test_steady_state_under_the_rate_never_refused(backend, make_moat):
    """5 requests/s against 10/s with no burst: none refused."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "10/s"}}))
    got, _ = paced(m.port, 5, 2)
    assert got == [200] * 10, got


def test_tokens_refill_at_the_rate(backend, make_moat):
    """Burst used up; after 1.05 s at 2/s exactly 2 more pass."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "2/s", "burst": 3}}))
    assert statuses(m.port, 6) == [200] * 4 + [429] * 2
    time.sleep(1.05)
    assert statuses(m.port, 4) == [200, 200, 429, 429]


# --------------------------------------------------------------------------
# Keys


def test_key_client_ip_separates_addresses(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 2}}))
    a = statuses(m.port, 5, source="127.0.0.2")
    b = statuses(m.port, 5, source="127.0.0.3")
    c = statuses(m.port, 2, source="127.0.0.2")
    assert (a, b, c) == ([200] * 3 + [429] * 2, [200] * 3 + [429] * 2, [429, 429])


def test_key_header(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "header:X-Api-Key", "rate": "1/m", "burst": 2}}))
    ka = statuses(m.port, 5, headers=[("X-Api-Key", "alpha")])
    kb = statuses(m.port, 5, source="127.0.0.2", headers=[("x-api-key", "beta")])
    # the same key from another address shares alpha's bucket
    ka2 = statuses(m.port, 2, source="127.0.0.3", headers=[("X-API-KEY", "alpha")])
    assert (ka, kb, ka2) == ([200] * 3 + [429] * 2, [200] * 3 + [429] * 2, [429, 429])


def test_key_cookie(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "cookie:session", "rate": "1/m", "burst": 2}}))
    s1 = statuses(m.port, 4, headers=[("Cookie", "theme=dark; session=s1")])
    s2 = statuses(m.port, 4, headers=[("Cookie", "session=s2; theme=dark")])
    s1b = statuses(m.port, 1, source="127.0.0.3", headers=[("Cookie", "a=b"), ("Cookie", "session=s1")])
    # a cookie of another name holding the same value is not "session"
    other = statuses(m.port, 1, headers=[("Cookie", "xsession=s1")])
    assert (s1, s2, s1b, other) == ([200] * 3 + [429], [200] * 3 + [429], [429], [200])


def test_key_route(backend, make_moat):
    """key route: one bucket per route, whoever sends."""
    m = make_moat([backend], limited({"p": {"key": "route", "rate": "1/m", "burst": 2}},
                                     routes=[{"path": "/a", "upstream": "app", "rate_limit": "p"},
                                             {"path": "/b", "upstream": "app", "rate_limit": "p"}]))
    a = [hit(m.port, "/a", src).status for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")]
    b = [hit(m.port, "/b", src).status for src in ("127.0.0.5", "127.0.0.4", "127.0.0.3", "127.0.0.2")]
    assert (a, b) == ([200, 200, 200, 429], [200, 200, 200, 429])


def test_key_client_ip_shared_across_routes_unless_route_in_key(backend, make_moat):
    m = make_moat([backend], limited(
        {"shared": {"key": "client_ip", "rate": "1/m", "burst": 2},
         "split": {"key": ["client_ip", "route"], "rate": "1/m", "burst": 2}},
        routes=[{"path": "/s1", "upstream": "app", "rate_limit": "shared"},
                {"path": "/s2", "upstream": "app", "rate_limit": "shared"},
                {"path": "/p1", "upstream": "app", "rate_limit": "split"},
                {"path": "/p2", "upstream": "app", "rate_limit": "split"}]))
    shared = [hit(m.port, p).status for p in ("/s1", "/s2", "/s1", "/s2")]
    assert shared == [200, 200, 200, 429]
    split = [hit(m.port, p).status for p in ("/p1", "/p2") * 4]
    assert split == [200, 200] * 3 + [429, 429]
    assert hit(m.port, "/p1", "127.0.0.3").status == 200


def test_key_list_client_ip_and_header(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": ["client_ip", "header:X-User"], "rate": "1/m", "burst": 1}}))
    u1 = statuses(m.port, 3, headers=[("X-User", "u1")])
    u2 = statuses(m.port, 3, headers=[("X-User", "u2")])
    u1_other_ip = statuses(m.port, 3, source="127.0.0.3", headers=[("X-User", "u1")])
    assert u1 == u2 == u1_other_ip == [200, 200, 429]


def test_two_policies_on_one_route_both_apply(backend, make_moat):
    m = make_moat([backend], limited({"ip": {"key": "client_ip", "rate": "1/m", "burst": 9},
                                      "all": {"key": "route", "rate": "1/m", "burst": 3}}))
    got = [hit(m.port, "/", src).status for src in ("127.0.0.2", "127.0.0.3") * 4]
    assert got == [200] * 4 + [429] * 4, got


def test_unlimited_route_beside_a_limited_one(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m"}},
                                     routes=[{"path": "/limited", "upstream": "app", "rate_limit": "p"},
                                             {"upstream": "app"}]))
    assert statuses(m.port, 3, "/limited") == [200, 429, 429]
    assert statuses(m.port, 10, "/free") == [200] * 10


# --------------------------------------------------------------------------
# delay_after


def test_delay_after_sequential_requests_delayed_not_refused(backend, make_moat):
    """rate 10/s, burst 10, delay_after 2: one after the other, 13 requests
    all pass; the first 3 at once, the other 10 paced to the rate (about
    100 ms each): about 1 s in all."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "10/s", "burst": 10, "delay_after": 2}}))
    times = []
    start = time.monotonic()
    got = []
    for i in range(13):
        t0 = time.monotonic()
        got.append(hit(m.port, f"/d{i}").status)
        times.append(time.monotonic() - t0)
    total = time.monotonic() - start
    assert got == [200] * 13, got
    assert max(times[:3]) < t(0.08), f"the first 3 were delayed: {times}"
    assert 0.7 <= total <= 1.0 + t(1.0), f"13 requests in {total:.2f}s, expected about 1s: {times}"
    assert sum(1 for x in times[3:] if x >= 0.05) >= 8, f"excess requests not delayed: {times}"


def test_delay_after_concurrent_burst_capped(backend, make_moat):
    """14 at once, rate 10/s, burst 10, delay_after 2: 11 pass (3 at once,
    8 delayed up to ~0.8 s), 3 refused at once."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "10/s", "burst": 10, "delay_after": 2}}))
    results = [None] * 14
    barrier = threading.Barrier(14)

    def one(i):
        c = Client(m.port, source="127.0.0.2", timeout=t(10))
        try:
            barrier.wait(t(5))
            t0 = time.monotonic()
            r = c.request("GET", f"/c{i}", [("Connection", "close")])
            results[i] = (r.status, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = (repr(e), 0)
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(14)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t(15))
    ok = sorted(d for s, d in results if s == 200)
    refused = sorted(d for s, d in results if s == 429)
    assert (len(ok), len(refused)) == (11, 3), results
    assert ok[2] < t(0.15), f"3 should pass at once: {ok}"
    assert ok[-1] >= 0.5, f"the last of the burst should wait ~0.8s: {ok}"
    assert ok[-1] <= t(2.0), ok
    assert max(refused) < t(0.3), f"refusals are not delayed: {refused}"


# --------------------------------------------------------------------------
# Workers


def test_burst_exact_across_two_workers(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 5}}, workers=2))
    got = statuses(m.port, 20)
    assert got.count(200) == 6 and got[:6] == [200] * 6, got


def test_burst_exact_across_four_workers_concurrently(backend, make_moat):
    """40 requests from 8 threads at once, 4 workers, burst 9: exactly 10
    pass."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 9}}, workers=4))
    got = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            s = hit(m.port).status
            with lock:
                got.append(s)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t(20))
    assert len(got) == 40 and got.count(200) == 10 and got.count(429) == 30, sorted(got)
    time.sleep(t(0.1))
    assert len(backend.requests) == 10


# --------------------------------------------------------------------------
# Client IP behind a trusted proxy


def test_client_ip_from_trusted_proxy_xff(backend, make_moat):
    """Behind the trusted 127.0.0.2, clients are told apart by their
    X-Forwarded-For address."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 1}},
                                     proxy={"trusted_proxies": ["127.0.0.2"]}))
    c1 = statuses(m.port, 3, headers=[("X-Forwarded-For", "203.0.113.1")])
    c2 = statuses(m.port, 3, headers=[("X-Forwarded-For", "203.0.113.2")])
    assert (c1, c2) == ([200, 200, 429], [200, 200, 429])


def test_spoofed_xff_from_untrusted_peer_ignored(backend, make_moat):
    """127.0.0.3 is not trusted: a new X-Forwarded-For on every request
    does not get it a new bucket."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 1}},
                                     proxy={"trusted_proxies": ["127.0.0.2"]}))
    got = [hit(m.port, source="127.0.0.3", headers=[("X-Forwarded-For", f"198.51.100.{i}")]).status
           for i in range(6)]
    assert got == [200, 200, 429, 429, 429, 429]


def test_rightmost_untrusted_address_wins(backend, make_moat):
    """A client behind the trusted proxy prepends made-up addresses: the
    rightmost address not in trusted_proxies is its key, whatever comes
    before it."""
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 1}},
                                     proxy={"trusted_proxies": ["127.0.0.2", "10.0.0.0/8"]}))
    got = [hit(m.port, headers=[("X-Forwarded-For", f"192.0.2.{i}, 203.0.113.5, 10.1.1.1")]).status
           for i in range(5)]
    assert got == [200, 200, 429, 429, 429], got
    # the same client seen through a second X-Forwarded-For line
    got = [hit(m.port, headers=[("X-Forwarded-For", f"192.0.2.{i}"), ("X-Forwarded-For", "203.0.113.5")]).status
           for i in range(2)]
    assert got == [429, 429], got


def test_client_ip_from_forwarded_header(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 1}},
                                     proxy={"trusted_proxies": ["127.0.0.2"], "client_ip": "forwarded"}))
    c1 = statuses(m.port, 3, headers=[("Forwarded", "for=203.0.113.1;proto=https")])
    c2 = statuses(m.port, 3, headers=[("Forwarded", 'for="[2001:db8::1]"')])
    # with client_ip: forwarded, X-Forwarded-For is not looked at
    c3 = statuses(m.port, 2, headers=[("Forwarded", "for=203.0.113.1"), ("X-Forwarded-For", "198.51.100.1")])
    assert (c1, c2, c3) == ([200, 200, 429], [200, 200, 429], [429, 429])


def test_client_ip_none_uses_the_socket_address(backend, make_moat):
    m = make_moat([backend], limited({"p": {"key": "client_ip", "rate": "1/m", "burst": 1}},
                                     proxy={"trusted_proxies": ["127.0.0.2"], "client_ip": "none"}))
    got = [hit(m.port, headers=[("X-Forwarded-For", f"203.0.113.{i}")]).status for i in range(4)]
    assert got == [200, 200, 429, 429]


def test_request_without_the_key_header_or_cookie_not_limited(backend, make_moat):
    """docs/security.md: a request without the header or cookie its key
    needs is not limited by that policy (and does not use up anyone's
    quota)."""
    m = make_moat([backend], limited({"h": {"key": "header:X-Api-Key", "rate": "1/m"},
                                      "c": {"key": "cookie:session", "rate": "1/m"}},
                                     routes=[{"path": "/h", "upstream": "app", "rate_limit": "h"},
                                             {"path": "/c", "upstream": "app", "rate_limit": "c"}]))
    assert statuses(m.port, 5, "/h") == [200] * 5
    assert statuses(m.port, 5, "/c", headers=[("Cookie", "theme=dark")]) == [200] * 5
    assert statuses(m.port, 2, "/h", headers=[("X-Api-Key", "k")]) == [200, 429]
    assert statuses(m.port, 2, "/c", headers=[("Cookie", "session=s")]) == [200, 429]
