"""Load balancing (docs/balancing.md): smooth weighted round robin, least
connections and ewma steering away from a slow server, random two, hash by
header / URI and its consistency when a server is added, sticky cookies,
backup servers, draining a server by reload.

Backends answer info(): the X-Backend header names the one that served."""

import re
import threading
import time

import pytest

from harness import Client, get, info, make_config, slow, t, wait_for


def upstream(servers, **keys):
    """A config with upstream "app" = servers (+ keys), one catch-all route."""
    return {"upstreams": {"app": dict({"servers": servers}, **keys)},
            "routes": [{"upstream": "app"}]}


def who(r):
    assert r.status == 200, r
    name = r.header("X-Backend")
    assert name, f"no X-Backend in {r!r}"
    return name


def longest_run(seq, value):
    best = cur = 0
    for v in seq:
        cur = cur + 1 if v == value else 0
        best = max(best, cur)
    return best


def load(port, threads, seconds, target="/load"):
    """`threads` keep-alive clients sending GETs back to back for `seconds`.
    Returns ({backend: count}, [errors])."""
    counts = {}
    errors = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def run(n):
        try:
            with Client(port) as c:
                i = 0
                while time.monotonic() < stop_at:
                    r = c.request("GET", f"{target}/{n}/{i}")
                    i += 1
                    if r.status != 200:
                        with lock:
                            errors.append((n, i, r.status, r.body[:100]))
                        continue
                    with lock:
                        name = r.header("X-Backend")
                        counts[name] = counts.get(name, 0) + 1
        except Exception as e:   # a client error counts as a failed request
            with lock:
                errors.append((n, repr(e)))

    ths = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(seconds + t(15))
    assert not any(th.is_alive() for th in ths), "load threads did not finish"
    return counts, errors


# --------------------------------------------------------------------------
# round_robin


def test_round_robin_weights_exact_share_and_smooth(make_backend, make_moat):
    heavy, light = make_backend(name="heavy"), make_backend(name="light")
    m = make_moat(config=upstream([{"address": heavy.addr, "weight": 3},
                                   {"address": light.addr, "weight": 1}],
                                  algorithm="round_robin"))
    with Client(m.port) as c:
        seen = [who(c.request("GET", f"/{i}")) for i in range(400)]
    n_heavy, n_light = seen.count("heavy"), seen.count("light")
    assert n_heavy + n_light == 400
    # weight 3 : 1 over 400 requests = 300 : 100 (within 2% of 400)
    assert abs(n_heavy - 300) <= 8 and abs(n_light - 100) <= 8, (n_heavy, n_light)
    # smooth: a a b a, never a burst of the heavy one
    assert longest_run(seen, "heavy") <= 3, "".join("H" if s == "heavy" else "l" for s in seen)
    assert longest_run(seen, "light") == 1, "".join("H" if s == "heavy" else "l" for s in seen)
    # the backends saw exactly what the client was told
    assert len(heavy.requests) == n_heavy and len(light.requests) == n_light


# --------------------------------------------------------------------------
# least_connections, ewma: a slow server gets fewer requests


@pytest.mark.parametrize("algorithm", ["least_connections", "ewma"])
def test_slow_server_gets_fewer_requests(algorithm, make_backend, make_moat):
    slow_b = make_backend(slow(0.2, info()), name="slow")
    fast = make_backend(name="fast")
    m = make_moat(config=upstream([slow_b.addr, fast.addr], algorithm=algorithm))
    counts, errors = load(m.port, threads=6, seconds=2.0)
    assert not errors, errors[:5]
    total = sum(counts.values())
    n_slow = counts.get("slow", 0)
    assert total >= 50, f"only {total} requests in 2 s: {counts}"
    # round robin would give the slow one half of the requests
    assert n_slow < 0.25 * total, f"{algorithm}: slow server got {n_slow} of {total}: {counts}"


# --------------------------------------------------------------------------
# random_two


def test_random_two_spreads_over_four_servers(make_backend, make_moat):
    bs = [make_backend(name=f"s{i}") for i in range(4)]
    m = make_moat(config=upstream([b.addr for b in bs], algorithm="random_two"))
    with Client(m.port) as c:
        seen = [who(c.request("GET", f"/{i}")) for i in range(400)]
    shares = {b.name: seen.count(b.name) / 400 for b in bs}
    for name, share in shares.items():
        assert 0.15 <= share <= 0.35, f"{name} got {share:.0%}: {shares}"


# --------------------------------------------------------------------------
# hash


def test_hash_by_header_same_user_same_server(make_backend, make_moat):
    bs = [make_backend(name=f"s{i}") for i in range(3)]
    m = make_moat(config=upstream([b.addr for b in bs], algorithm="hash",
                                  hash={"key": "header", "name": "X-User"}))
    # one user: always the same server, on one connection and on many
    seen = set()
    with Client(m.port) as c:
        for i in range(25):
            seen.add(who(c.request("GET", f"/a/{i}", headers=[("X-User", "alice")])))
    for i in range(25):
        seen.add(who(get(m.port, f"/b/{i}", headers=[("X-User", "alice")])))
    assert len(seen) == 1, f"X-User: alice went to {seen}"

    # many users: spread over every server, each one stable
    placed = {}
    for u in range(60):
        placed[u] = who(get(m.port, "/", headers=[("X-User", f"user-{u}")]))
    assert set(placed.values()) == {b.name for b in bs}, placed
    for u in range(0, 60, 3):
        assert who(get(m.port, "/again", headers=[("x-user", f"user-{u}")])) == placed[u], u


def test_hash_by_uri(make_backend, make_moat):
    bs = [make_backend(name=f"s{i}") for i in range(3)]
    m = make_moat(config=upstream([b.addr for b in bs], algorithm="hash", hash={"key": "uri"}))
    uris = [f"/item/{i}?v={i * 7}" for i in range(40)]
    first = {}
    with Client(m.port) as c:
        for u in uris:
            first[u] = who(c.request("GET", u))
    assert set(first.values()) == {b.name for b in bs}, first
    for rnd in range(2):
        for u in reversed(uris):
            assert who(get(m.port, u)) == first[u], f"round {rnd}: {u} moved"


def test_hash_adding_a_fifth_server_moves_about_a_fifth_of_the_keys(make_backend, make_moat):
    bs = [make_backend(name=f"s{i}") for i in range(5)]
    cfg4 = upstream([b.addr for b in bs[:4]], algorithm="hash",
                    hash={"key": "header", "name": "X-Key"})
    m = make_moat(config=cfg4)
    keys = [f"key-{i}" for i in range(200)]

    def placement():
        with Client(m.port) as c:
            return {k: who(c.request("GET", "/", headers=[("X-Key", k)])) for k in keys}

    before = placement()
    assert set(before.values()) == {b.name for b in bs[:4]}
    cfg5 = upstream([b.addr for b in bs], algorithm="hash", hash={"key": "header", "name": "X-Key"})
    m.reload(make_config(config=cfg5, port=m.port))
    after = placement()
    moved = [k for k in keys if after[k] != before[k]]
    to_new = [k for k in moved if after[k] == "s4"]
    # ideal: 1/5 of the keys move, all of them to the new server
    assert len(moved) < 0.35 * len(keys), f"{len(moved)} of {len(keys)} keys moved"
    assert len(to_new) >= 0.10 * len(keys), f"the new server took {len(to_new)} keys only"
    assert after == placement(), "placement not stable after the reload"


# --------------------------------------------------------------------------
# sticky


COOKIE_RE = re.compile(r"srv=([0-9a-f]+); Path=/; HttpOnly; Max-Age=3600")


def sticky_moat(make_backend, make_moat, n=3):
    bs = [make_backend(name=f"s{i}") for i in range(n)]
    m = make_moat(config=upstream([b.addr for b in bs], sticky={"cookie": "srv", "ttl": "1h"}))
    return bs, m


def cookie_of(r):
    sc = r.header_all("Set-Cookie")
    assert len(sc) == 1, f"expected one Set-Cookie, got {sc!r}"
    mm = COOKIE_RE.fullmatch(sc[0])
    assert mm, f"Set-Cookie {sc[0]!r} is not srv=<hex>; Path=/; HttpOnly; Max-Age=3600"
    return mm.group(1)


def test_sticky_cookie_set_then_followed(make_backend, make_moat):
    bs, m = sticky_moat(make_backend, make_moat)
    ids = {}      # backend -> cookie value
    for i in range(6):
        r = get(m.port, f"/first/{i}")
        value = cookie_of(r)
        name = who(r)
        assert ids.setdefault(name, value) == value, f"{name} got two ids: {ids[name]}, {value}"
    assert set(ids) == {b.name for b in bs}, "requests without a cookie were not balanced"
    assert len(set(ids.values())) == len(bs), f"ids not distinct: {ids}"
    for b in bs:
        value = ids[b.name]
        host, port = b.addr.rsplit(":", 1)
        assert port not in value and host not in value, f"cookie {value!r} reveals {b.addr}"
        assert value != b.addr.encode().hex()[: len(value)]

    # with the cookie: the same server every time, on new connections and
    # on one, among other cookies; no new Set-Cookie
    for b in bs:
        value = ids[b.name]
        for i in range(10):
            r = get(m.port, f"/again/{i}", headers=[("Cookie", f"srv={value}")])
            assert who(r) == b.name, f"cookie {value} of {b.name} went to {who(r)}"
            assert not r.has_header("Set-Cookie"), r.header_all("Set-Cookie")
        with Client(m.port) as c:
            for i in range(10):
                r = c.request("GET", f"/ka/{i}", headers=[("Cookie", f"a=1; srv={value}; z=2")])
                assert who(r) == b.name
                assert not r.has_header("Set-Cookie"), r.header_all("Set-Cookie")


@pytest.mark.parametrize("bogus", ["0123456789ab", "zz", "", "127.0.0.1"])
def test_sticky_bogus_cookie_balanced_and_replaced(bogus, make_backend, make_moat):
    bs, m = sticky_moat(make_backend, make_moat)
    ids = {}
    for i in range(6):
        r = get(m.port, f"/first/{i}")
        ids[who(r)] = cookie_of(r)
    assert bogus not in ids.values()
    got = set()
    for i in range(6):
        r = get(m.port, f"/bogus/{i}", headers=[("Cookie", f"srv={bogus}")])
        name = who(r)
        got.add(name)
        # a new cookie, naming the server that answered
        assert cookie_of(r) == ids[name], (name, r.header_all("Set-Cookie"), ids)
    assert len(got) >= 2, f"requests with a bogus cookie all went to {got}: not balanced"


def test_sticky_server_gone_rebalanced_with_new_cookie(make_backend, make_moat):
    bs, m = sticky_moat(make_backend, make_moat)
    ids = {}
    for i in range(6):
        r = get(m.port, f"/first/{i}")
        ids[who(r)] = cookie_of(r)
    gone = bs[0]
    gone.stop()
    for i in range(4):
        r = get(m.port, f"/after/{i}", headers=[("Cookie", f"srv={ids[gone.name]}")])
        name = who(r)
        assert name != gone.name
        assert cookie_of(r) == ids[name], "the cookie was not set again for the new server"


# --------------------------------------------------------------------------
# backup


def test_backup_only_when_primary_unavailable(make_backend, make_moat):
    primary, backup = make_backend(name="primary"), make_backend(name="backup")
    m = make_moat(config=upstream([primary.addr, {"address": backup.addr, "backup": True}]))
    failures = []
    with Client(m.port) as c:
        for i in range(20):
            assert who(c.request("GET", f"/up/{i}")) == "primary"
        assert len(backup.requests) == 0 and backup.connections == 0, "the backup got traffic"

        primary.stop()
        for i in range(20):
            r = c.request("GET", f"/down/{i}")
            if r.status != 200 or r.header("X-Backend") != "backup":
                failures.append((i, r.status, r.header("X-Backend")))
        for i in range(5):
            r = get(m.port, f"/fresh/{i}")
            if r.status != 200 or r.header("X-Backend") != "backup":
                failures.append((f"fresh {i}", r.status, r.header("X-Backend")))
    assert not failures, failures
    assert len(backup.requests) == 25


# --------------------------------------------------------------------------
# drain


def test_drain_by_reload_no_new_requests_in_flight_finishes(make_backend, make_moat):
    def handler(req, conn):
        if req.target == "/slow":
            slow(1.5, info())(req, conn)
        else:
            info()(req, conn)

    a, b = make_backend(handler, name="a"), make_backend(handler, name="b")
    servers = [a.addr, b.addr]
    m = make_moat(config=upstream(servers))
    result = {}

    def slow_request():
        t0 = time.monotonic()
        try:
            with Client(m.port) as c:
                result["r"] = c.request("GET", "/slow")
        except Exception as e:
            result["error"] = repr(e)
        result["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=slow_request)
    th.start()
    holder = wait_for(lambda: a if a.requests else (b if b.requests else None), t(5),
                      what="the slow request at a backend")
    other = b if holder is a else a
    n_holder = len(holder.requests)

    drained = [{"address": s, "drain": True} if s == holder.addr else s for s in servers]
    m.reload(make_config(config=upstream(drained), port=m.port))
    for i in range(10):
        assert who(get(m.port, f"/new/{i}")) == other.name
    with Client(m.port) as c:
        for i in range(10):
            assert who(c.request("GET", f"/ka/{i}")) == other.name
    assert len(holder.requests) == n_holder, "the draining server got new requests"

    th.join(t(10))
    assert not th.is_alive()
    assert "error" not in result, result
    r = result["r"]
    assert (r.status, r.header("X-Backend")) == (200, holder.name), r
    assert r.body == f"{holder.name} GET /slow\n".encode()


def test_every_server_draining_503_at_once(make_backend, make_moat):
    a, b = make_backend(name="a"), make_backend(name="b")
    m = make_moat(config=upstream([a.addr, b.addr]))
    assert {who(get(m.port, f"/{i}")) for i in range(4)} == {"a", "b"}
    n = len(a.requests) + len(b.requests)
    m.reload(make_config(config=upstream([{"address": a.addr, "drain": True},
                                          {"address": b.addr, "drain": True}]), port=m.port))
    for i in range(3):
        t0 = time.monotonic()
        r = get(m.port, f"/drained/{i}")
        assert r.status == 503, r
        assert time.monotonic() - t0 < t(0.5)
    assert len(a.requests) + len(b.requests) == n, "a draining server got a request"


def test_hash_by_cookie(make_backend, make_moat):
    bs = [make_backend(name=f"s{i}") for i in range(3)]
    m = make_moat(config=upstream([b.addr for b in bs], algorithm="hash",
                                  hash={"key": "cookie", "name": "sid"}))
    placed = {}
    for u in range(30):
        placed[u] = who(get(m.port, "/", headers=[("Cookie", f"theme=dark; sid=s{u}")]))
    assert set(placed.values()) == {b.name for b in bs}, placed
    for u in range(30):
        # the other cookies do not matter, only sid's value
        r = get(m.port, "/x", headers=[("Cookie", f"sid=s{u}; theme=light; x={u}")])
        assert who(r) == placed[u], u


def test_sticky_without_ttl_is_a_session_cookie(make_backend, make_moat):
    bs = [make_backend(name=f"s{i}") for i in range(2)]
    m = make_moat(config=upstream([b.addr for b in bs], sticky={"cookie": "srv"}))
    r = get(m.port, "/")
    sc = r.header_all("Set-Cookie")
    assert len(sc) == 1 and re.fullmatch(r"srv=[0-9a-f]+; Path=/; HttpOnly", sc[0]), sc
