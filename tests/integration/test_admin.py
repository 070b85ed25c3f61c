"""The admin listener (src/proxy/admin*.c): every JSON endpoint's shape and
its figures moving as requests flow through a real backend; reload through
the API (a good and a bad config); drain and undrain of one server while a
slow request is in flight; the bearer token; who may connect (loopback,
admin.allow, a unix socket); the limits (head, body, connections,
timeout); the one-line mode's --admin; and the info line every action
leaves in the error log. /metrics has its own file, test_metrics.py.
"""

import json
import os
import re
import socket
import stat
import threading
import time

import pytest

from harness import (Client, Response, build_request, free_port, get, info, make_config,
                     run_moat, slow, t, to_yaml, wait_for)

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


# --------------------------------------------------------------------------
# Helpers


def start(make_moat, backends=(), admin=None, config=None, **kw):
    """moat with an admin listener on a free 127.0.0.1 port (unless `admin`
    names listen); returns (moat, admin port or None)."""
    cfg = dict(config or {})
    port = None
    adm = dict(admin or {})
    if "listen" not in adm:
        port = free_port()
        adm["listen"] = f"127.0.0.1:{port}"
    cfg["admin"] = adm
    m = make_moat(backends, cfg, **kw)
    if port:
        wait_for(lambda: accepts(port), t(10), what=f"the admin port {port}")
    return m, port


def accepts(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def call(port, method="GET", path="/api/health", token=None, body=b"", headers=(), host="127.0.0.1",
         source=None):
    """One admin request on a fresh connection; returns (Response, parsed JSON
    or None)."""
    hs = list(headers) + [("Connection", "close")]
    if token is not None:
        hs.append(("Authorization", f"Bearer {token}"))
    with Client(port, host=host, source=source) as c:
        r = c.request(method, path, hs, body, host=f"{host}:{port}")
    return r, parse(r)


def parse(r):
    ctype = (r.header("Content-Type") or "")
    if ctype.startswith("application/json") and r.body:
        return json.loads(r.body)
    return None


def ok(port, path, **kw):
    r, j = call(port, "GET", path, **kw)
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json", r.headers
    assert r.header("Cache-Control") == "no-store", r.headers
    return j


def post(port, path, **kw):
    return call(port, "POST", path, **kw)


def unix_call(path, method="GET", target="/api/health", token=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(t(10))
    s.connect(str(path))
    hs = [("Connection", "close")]
    if token:
        hs.append(("Authorization", f"Bearer {token}"))
    s.sendall(build_request(method, target, hs, host="localhost"))
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), body


def version():
    return run_moat(["--version"]).stdout.split()[1]


def local_address():
    """A non-loopback address of this machine, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))       # no packet leaves: it only picks a route
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def server_row(j, upstream, address):
    for u in j["upstreams"]:
        if u["name"] == upstream:
            for s in u["servers"]:
                if s["address"] == address:
                    return s
    raise AssertionError(f"no server {address} of {upstream} in {j}")


# --------------------------------------------------------------------------
# Endpoints


def test_health_and_config(backend, make_moat):
    m, port = start(make_moat, [backend])
    j = ok(port, "/api/health")
    assert j["status"] == "ok"
    assert j["version"] == version()
    assert j["pid"] == m.pid
    assert isinstance(j["uptime_seconds"], int) and 0 <= j["uptime_seconds"] < 60
    assert j["workers"] == 2
    c = ok(port, "/api/config")
    assert c["generation"] == 1
    assert ISO.fullmatch(c["loaded_at"]), c
    assert abs(c["loaded_at_unix"] - time.time()) < 60
    assert c["file"] == str(m.config_path)
    assert (c["listeners"], c["upstreams"], c["routes"]) == (1, 1, 1)
    # HEAD: same head, no body
    with Client(port) as cl:
        r = cl.request("HEAD", "/api/health", [("Connection", "close")])
    assert r.status == 200 and r.body == b""
    assert int(r.header("Content-Length")) > 0


def test_listeners(backend, make_moat):
    m, port = start(make_moat, [backend])
    j = ok(port, "/api/listeners")
    assert j == {"listeners": [{"address": f"127.0.0.1:{m.port}", "backlog": 511}]}


def test_routes_and_upstreams_count_requests(make_backend, make_moat):
    a, b = make_backend(name="a"), make_backend(name="b")
    c = make_backend(name="c")
    cfg = {"upstreams": {"api": {"servers": [a.addr, b.addr]}, "web": {"algorithm": "least_connections",
                                                                       "servers": [c.addr]}},
           "routes": [{"host": "*.example.test", "path": "/api/", "upstream": "api"}, {"upstream": "web"}]}
    m, port = start(make_moat, config=cfg)
    r0 = ok(port, "/api/routes")
    assert r0["generation"] == 1
    assert [(r["index"], r["host"], r["path"], r["upstream"], r["label"]) for r in r0["routes"]] == [
        (0, "*.example.test", "/api/", "api", "*.example.test/api/"), (1, None, "/", "web", "*/")]
    assert all(r["requests"] == {"total": 0, "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
               for r in r0["routes"])

    for i in range(6):
        assert get(m.port, f"/api/{i}", host="x.example.test").status == 200
    for i in range(3):
        assert get(m.port, f"/page/{i}").status == 200

    def counted():
        j = ok(port, "/api/routes")
        return j if [r["requests"]["total"] for r in j["routes"]] == [6, 3] else None
    j = wait_for(counted, t(5), what="6 and 3 requests counted on the routes")
    api, web = j["routes"]
    assert api["requests"]["2xx"] == 6 and web["requests"]["2xx"] == 3
    assert api["bytes_in"] > 6 * 20 and api["bytes_out"] > 0

    u = ok(port, "/api/upstreams")
    assert u["generation"] == 1
    names = [x["name"] for x in u["upstreams"]]
    assert names == ["api", "web"]
    up_api = u["upstreams"][0]
    assert up_api["algorithm"] == "round_robin"
    assert u["upstreams"][1]["algorithm"] == "least_connections"
    assert up_api["requests"]["2xx"] == 6
    assert up_api["retries"] == 0 and up_api["failures"] == {"connect": 0, "other": 0}
    servers = up_api["servers"]
    assert [s["address"] for s in servers] == [a.addr, b.addr]
    assert sum(s["requests"] for s in servers) == 6
    # round robin in each worker: both servers get some
    assert all(s["requests"] >= 1 for s in servers), servers
    for s in servers:
        assert s["state"] == "up" and s["healthy"] is True
        assert s["weight"] == 1 and s["backup"] is False
        assert s["drain"] is False and s["admin_drain"] is False
        assert s["active"] == 0 and s["failures"] == 0 and s["ejections"] == 0
        assert isinstance(s["latency_ms"], (int, float)) and s["latency_ms"] >= 0
    assert [len(a.requests), len(b.requests)] == [s["requests"] for s in servers]


def test_connections(backend, make_moat):
    m, port = start(make_moat, [backend])
    j = wait_for(lambda: (lambda x: x if x["clients"] == 0 else None)(ok(port, "/api/connections")),
                 t(5), what="no client connection at start")
    assert len(j["workers"]) == 2
    assert [w["worker"] for w in j["workers"]] == [0, 1]
    clients = [Client(m.port) for _ in range(3)]
    try:
        for c in clients:
            assert c.request("GET", "/keep").status == 200
        j = wait_for(lambda: (lambda x: x if x["clients"] == 3 else None)(ok(port, "/api/connections")),
                     t(5), what="3 client connections")
        assert sum(w["clients"] for w in j["workers"]) == 3
        # the backend keeps its connections alive: they wait in the pools
        assert j["idle_backend"] >= 1
        assert j["idle_backend"] == sum(w["idle_backend"] for w in j["workers"])
        assert j["accepted"] >= 3
    finally:
        for c in clients:
            c.close()
    wait_for(lambda: ok(port, "/api/connections")["clients"] == 0, t(5), what="no client connection")


def test_stats(make_backend, make_moat):
    b = make_backend(name="app", handler=info(status=404))
    m, port = start(make_moat, [b])
    s0 = ok(port, "/api/stats")
    assert s0["requests"] == 0 and s0["refusals"]["bad_request"] == 0
    assert set(s0["refusals"]) >= {"bad_request", "no_route", "no_server", "backend_error", "timeout"}
    for i in range(4):
        assert get(m.port, f"/missing/{i}").status == 404
    with Client(m.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert c.read_response().status == 400

    def done():
        s = ok(port, "/api/stats")
        return s if s["requests"] == 4 and s["refusals"]["bad_request"] == 1 else None
    s = wait_for(done, t(5), what="4 requests and one bad_request counted")
    assert s["routed"]["4xx"] == 4 and s["routed"]["total"] == 4
    assert s["bytes_in"] > 0 and s["bytes_out"] > 0
    # (+1 at most: the harness's readiness probe, which a deferred accept may count late)
    assert 0 <= s["connections"]["accepted"] - s0["connections"]["accepted"] - 5 <= 1
    assert s["latency"]["count"] == 4 and s["latency"]["sum_ms"] > 0


# --------------------------------------------------------------------------
# Reload


def test_reload_good_and_bad(make_backend, make_moat):
    a, b = make_backend(name="a"), make_backend(name="b")
    base = {"upstreams": {"a": {"servers": [a.addr]}, "b": {"servers": [b.addr]}}, "routes": [{"upstream": "a"}]}
    m, port = start(make_moat, config=base)
    admin = {"listen": f"127.0.0.1:{port}"}
    assert get(m.port, "/1").body == b"a GET /1\n"

    new = make_config(config=dict(base, routes=[{"path": "/new/", "upstream": "b"}, {"upstream": "a"}],
                                  admin=admin), port=m.port)
    m.config_path.write_text(to_yaml(new))
    r, j = post(port, "/api/reload")
    assert r.status == 200 and j == {"generation": 2}, r
    assert ok(port, "/api/config")["generation"] == 2
    assert get(m.port, "/new/x").body == b"b GET /new/x\n"
    assert len(ok(port, "/api/routes")["routes"]) == 2

    text = to_yaml(new).replace("  - upstream: a\n", "  - upstream: missing\n").replace(
        "workers: 2\n", "workers: lots\n")
    m.config_path.write_text(text)
    r, j = post(port, "/api/reload")
    assert r.status == 422, r
    lines = j["error"].split("\n")
    assert len(lines) >= 2, j
    for line in lines:
        assert re.match(re.escape(str(m.config_path)) + r":\d+:\d+: ", line), line
    i = text.index("missing")
    where = f"{m.config_path}:{text.count(chr(10), 0, i) + 1}:{i - text.rfind(chr(10), 0, i)}:"
    assert any(line.startswith(where) for line in lines), (where, lines)
    assert ok(port, "/api/config")["generation"] == 2
    assert get(m.port, "/new/y").body == b"b GET /new/y\n"
    assert m.count("admin: 127.0.0.1:") >= 4     # requested + done, requested + refused
    assert m.count("reload done (generation 2)") == 1
    assert m.count("reload refused") >= 1
    # GET is not how one reloads
    r, j = call(port, "GET", "/api/reload")
    assert r.status == 405 and r.header("Allow") == "POST"


def test_reload_in_one_line_mode_and_admin_flag(backend, make_moat):
    port, aport = free_port(), free_port()
    m = make_moat(argv=["proxy", "--from", f"127.0.0.1:{port}", "--to", f"http://{backend.addr}",
                        "--workers", "1", "--admin", f"127.0.0.1:{aport}"], listens=[("127.0.0.1", port)])
    wait_for(lambda: accepts(aport), t(10), what="the admin port")
    assert ok(aport, "/api/health")["workers"] == 1
    assert ok(aport, "/api/config")["file"] is None
    r, j = post(aport, "/api/reload")
    assert r.status == 409 and "one-line mode" in j["error"]
    p = run_moat(["proxy", "--from", f"127.0.0.1:{port}", "--to", "http://127.0.0.1:1",
                  "--admin", f"127.0.0.1:{port}"])
    assert p.returncode == 2
    assert "--admin: \"127.0.0.1:%d\" is also the address of --from" % port in p.stderr
    p = run_moat(["proxy", "--from", f"127.0.0.1:{port}", "--to", "http://127.0.0.1:1", "--admin", "x"])
    assert p.returncode == 2 and "--admin: expected an address like" in p.stderr


# --------------------------------------------------------------------------
# Drain


def test_drain_and_undrain(make_backend, make_moat):
    def handler(req, conn):
        if req.target == "/slow":
            req.backend.sleep(t(1.5))
        info()(req, conn)
    a, b = make_backend(name="a", handler=handler), make_backend(name="b", handler=handler)
    m, port = start(make_moat, [a, b])

    def drain(addr, action="drain", upstream="app"):
        return post(port, f"/api/upstreams/{upstream}/servers/{addr}/{action}")

    # b drained: the slow request goes to a
    r, j = drain(b.addr)
    assert r.status == 200 and j == {"upstream": "app", "server": b.addr, "admin_drain": True,
                                     "state": "draining", "active": 0}, j
    slow_result = {}

    def slow_request():
        slow_result["r"] = get(m.port, "/slow")
    th = threading.Thread(target=slow_request)
    th.start()
    a.wait_requests(1)
    # now a is drained (its request in flight) and b back
    r, j = drain(a.addr)
    assert r.status == 200 and j["state"] == "draining" and j["active"] == 1, j
    r, j = drain(b.addr, "undrain")
    assert r.status == 200 and j["state"] == "up" and j["admin_drain"] is False, j
    u = ok(port, "/api/upstreams")
    assert server_row(u, "app", a.addr)["state"] == "draining"
    assert server_row(u, "app", a.addr)["active"] == 1
    assert server_row(u, "app", b.addr)["state"] == "up"
    before_a = len(a.requests)
    for i in range(6):
        assert get(m.port, f"/n{i}").body == f"b GET /n{i}\n".encode()
    assert len(a.requests) == before_a, "a drained server got a new request"
    th.join(t(10))
    assert slow_result["r"].status == 200 and slow_result["r"].body == b"a GET /slow\n"

    r, j = drain(a.addr, "undrain")
    assert r.status == 200 and j["state"] == "up"
    bodies = {get(m.port, f"/m{i}").body.split()[0] for i in range(4)}
    assert bodies == {b"a", b"b"}

    # unknown names, wrong method, bad escapes; percent-encoded address works
    r, j = drain(a.addr, upstream="nope")
    assert r.status == 404 and j["error"] == 'no upstream named "nope"'
    r, j = drain("127.0.0.1:1")
    assert r.status == 404 and "has no server" in j["error"]
    r, j = call(port, "GET", f"/api/upstreams/app/servers/{a.addr}/drain")
    assert r.status == 405 and r.header("Allow") == "POST"
    r, j = post(port, f"/api/upstreams/app/servers/{a.addr}/drain/more")
    assert r.status == 404
    r, j = post(port, "/api/upstreams/app/servers/%zz/drain")
    assert r.status == 400
    r, j = post(port, "/api/upstreams/app/servers/" + a.addr.replace(":", "%3A") + "/drain")
    assert r.status == 200 and j["server"] == a.addr
    # every action in the log, with the peer
    assert m.count(f"upstream app: server {a.addr} drained") == 2
    assert m.count(f"upstream app: server {b.addr} undrained") == 1
    assert re.search(r"admin: 127\.0\.0\.1:\d+: upstream app: server \S+ drained", m.errlog)


def test_drain_survives_reload(make_backend, make_moat):
    a, b = make_backend(name="a"), make_backend(name="b")
    m, port = start(make_moat, [a, b])
    assert post(port, f"/api/upstreams/app/servers/{a.addr}/drain")[0].status == 200
    assert post(port, "/api/reload")[0].status == 200
    assert server_row(ok(port, "/api/upstreams"), "app", a.addr)["state"] == "draining"
    for i in range(4):
        assert get(m.port, f"/{i}").body.startswith(b"b ")


# --------------------------------------------------------------------------
# Who may use it


def test_token(backend, make_moat):
    m, port = start(make_moat, [backend], admin={"token": "s3cret-T0ken"})
    for path in ("/api/health", "/metrics", "/api/stats"):
        r, j = call(port, "GET", path)
        assert r.status == 401, r
        assert r.header("WWW-Authenticate") == 'Bearer realm="moat"'
        assert j["error"].startswith("unauthorized")
        r, j = call(port, "GET", path, token="wrong")
        assert r.status == 401
        assert r.header("WWW-Authenticate") == 'Bearer realm="moat", error="invalid_token"'
        r, _ = call(port, "GET", path, token="s3cret-T0ke")
        assert r.status == 401
        r, _ = call(port, "GET", path, token="s3cret-T0ken")
        assert r.status == 200, r
    r, _ = call(port, "GET", "/api/health", headers=[("Authorization", "bearer  s3cret-T0ken")])
    assert r.status == 200
    r, _ = call(port, "GET", "/api/health", headers=[("Authorization", "Basic czNjcmV0LVQwa2Vu")])
    assert r.status == 401
    r, _ = call(port, "GET", "/api/health", headers=[("Authorization", "Bearer s3cret-T0ken"),
                                                     ("Authorization", "Bearer s3cret-T0ken")])
    assert r.status == 401
    r, _ = call(port, "POST", "/api/reload")
    assert r.status == 401
    # the dashboard page holds no data: it loads without the token and asks for it
    r, _ = call(port, "GET", "/")
    assert r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8"
    assert r.header("Cache-Control") == "no-store"
    assert m.count("401 (no bearer token)") >= 3
    assert m.count("401 (wrong bearer token)") >= 3


def test_token_follows_reload(backend, make_moat):
    m, port = start(make_moat, [backend], admin={"token": "one"})
    assert call(port, token="one")[0].status == 200
    cfg = make_config([backend], {"admin": {"listen": f"127.0.0.1:{port}", "token": "two"}}, port=m.port)
    m.config_path.write_text(to_yaml(cfg))
    r, j = post(port, "/api/reload", token="one")
    assert r.status == 200 and j["generation"] == 2
    assert call(port, token="one")[0].status == 401
    assert call(port, token="two")[0].status == 200


def test_not_loopback_refused_unless_allowed(backend, make_moat):
    ip = local_address()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    port = free_port("0.0.0.0")
    m, _ = start(make_moat, [backend], admin={"listen": f"0.0.0.0:{port}"})
    wait_for(lambda: accepts(port), t(10), what="the admin port")
    r, j = call(port, host=ip)
    assert r.status == 403 and j["error"].startswith("forbidden"), r
    assert m.count(f"admin: {ip}:") == 1 and m.count("403 (not loopback and not in admin.allow)") == 1
    assert call(port)[0].status == 200            # loopback always
    cfg = make_config([backend], {"admin": {"listen": f"0.0.0.0:{port}", "allow": [f"{ip}/32"]}},
                      port=m.port)
    m.config_path.write_text(to_yaml(cfg))
    assert post(port, "/api/reload")[0].status == 200
    assert call(port, host=ip)[0].status == 200


def test_cross_origin_post_refused(backend, make_moat):
    m, port = start(make_moat, [backend])
    r, j = post(port, "/api/reload", headers=[("Origin", "http://evil.example")])
    assert r.status == 403 and "cross-origin" in j["error"]
    r, j = post(port, "/api/reload", headers=[("Origin", f"http://127.0.0.1:{port}")])
    assert r.status == 200
    assert ok(port, "/api/config")["generation"] == 2


def test_unix_socket(backend, make_moat, tmp_path):
    path = tmp_path / "admin.sock"
    # a stale socket file (nobody listens) is replaced
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    assert path.exists()
    m, _ = start(make_moat, [backend], admin={"listen": f"unix:{path}", "token": "tok"})
    wait_for(lambda: path.exists() and stat.S_ISSOCK(path.stat().st_mode), t(10), what="the admin socket")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    status, head, body = unix_call(path, token="tok")
    assert status == 200, head
    assert json.loads(body)["status"] == "ok"
    assert unix_call(path)[0] == 401
    status, _, body = unix_call(path, "POST", "/api/reload", token="tok")
    assert status == 200 and json.loads(body) == {"generation": 2}
    assert re.search(r"admin: unix pid=\d+ uid=\d+: reload requested", m.errlog)
    assert m.count("removing the stale socket file") == 1
    assert m.stop() == 0
    assert not path.exists(), "the socket file is left behind"


def test_unix_socket_path_taken(backend, make_moat, tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    m, _ = start(make_moat, [backend], admin={"listen": f"unix:{path}"}, ready=False)
    assert m.wait_exit() != 0
    assert "is not a socket: not replacing it" in m.errlog
    assert path.read_text() == "keep me"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lpath = tmp_path / "live.sock"
    live.bind(str(lpath))
    live.listen(1)
    try:
        m2, _ = start(make_moat, [backend], admin={"listen": f"unix:{lpath}"}, ready=False)
        assert m2.wait_exit() != 0
        assert "another process listens on it" in m2.errlog
        assert lpath.exists()
    finally:
        live.close()


def test_admin_address_taken_fails_start(backend, make_moat):
    port = free_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        m, _ = start(make_moat, [backend], admin={"listen": f"127.0.0.1:{port}"}, ready=False)
        assert m.wait_exit() != 0
        assert f"admin: cannot listen on 127.0.0.1:{port}" in m.errlog
    finally:
        holder.close()


def test_admin_on_a_listener_address_is_a_config_error(backend, tmp_path):
    port = free_port()
    cfg = make_config([backend], {"admin": {"listen": f"127.0.0.1:{port}"}}, port=port)
    text = to_yaml(cfg)
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    p = run_moat(["-t", "-c", str(f)])
    assert p.returncode == 1
    i = text.index(f"127.0.0.1:{port}", text.index("admin:"))
    where = f"{f}:{text.count(chr(10), 0, i) + 1}:{i - text.rfind(chr(10), 0, i)}:"
    assert f"{where} admin.listen: \"127.0.0.1:{port}\" takes the address of listeners[0]" in p.stderr


# --------------------------------------------------------------------------
# HTTP and limits


def test_http_details(backend, make_moat):
    m, port = start(make_moat, [backend])
    r, j = call(port, "GET", "/nope")
    assert r.status == 404 and j == {"error": "not found"}
    r, j = call(port, "GET", "/api/nope")
    assert r.status == 404 and j == {"error": "not found"}
    r, j = call(port, "DELETE", "/api/health")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    r, j = call(port, "POST", "/metrics")
    assert r.status == 405
    r, _ = call(port, "GET", "/api/health?pretty=1")
    assert r.status == 200
    # keep-alive: several requests on one connection, pipelined too
    with Client(port) as c:
        for _ in range(3):
            r = c.request("GET", "/api/health")
            assert r.status == 200 and r.header("Connection") is None
        c.send(build_request("GET", "/api/config") + build_request("GET", "/api/listeners"))
        assert "generation" in json.loads(c.read_response().body)
        assert "listeners" in json.loads(c.read_response().body)
        assert c.is_open()
    # HTTP/1.0 closes unless asked
    with Client(port) as c:
        r = c.request("GET", "/api/health", version="HTTP/1.0")
        assert r.status == 200 and r.header("Connection") == "close"
        assert c.wait_closed()
    # a body within the limit is read (and ignored), Expect: 100-continue answered
    with Client(port) as c:
        c.send(build_request("POST", "/api/reload", [("Expect", "100-continue"),
                                                     ("Content-Length", "5")], host="x"))
        interim = c.reader.read_until(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        c.send(b"hello")
        assert c.read_response().status == 200
    with Client(port) as c:
        c.send(b"POST /api/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 411 and c.wait_closed()
    with Client(port) as c:
        c.send(b"GARBAGE\r\n\r\n")
        r = c.read_response()
        assert r.status == 400 and r.header("Connection") == "close"
        assert c.wait_closed()


def test_limits(backend, make_moat):
    m, port = start(make_moat, [backend])
    with Client(port) as c:
        c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        assert c.read_response().status == 431
        assert c.wait_closed()
    with Client(port) as c:
        c.send(b"POST /api/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n")
        assert c.read_response().status == 413
    with Client(port) as c:
        body = b"x" * 65536
        r = c.request("POST", "/api/upstreams/app/servers/none/drain", body=body)
        assert r.status == 404
    # at most 64 connections: the next one gets 503
    held = [Client(port) for _ in range(64)]
    try:
        time.sleep(t(0.3))
        with Client(port) as c:
            c.send(build_request("GET", "/api/health"))
            try:
                r = c.read_response()
                assert r.status == 503, r
            except Exception:
                pass                # a reset may beat the 503 to the client
            assert c.wait_closed()
        assert "refusing more (503)" in m.errlog
    finally:
        for c in held:
            c.close()
    wait_for(lambda: call(port)[0].status == 200, t(5), what="the admin answering again")


def test_idle_connection_times_out(backend, make_moat):
    m, port = start(make_moat, [backend])
    with Client(port, timeout=t(30)) as c:
        t0 = time.monotonic()
        assert c.wait_closed(t(20)), "an idle admin connection was not closed"
        took = time.monotonic() - t0
        assert 9 <= took <= t(14), took
    with Client(port, timeout=t(30)) as c:
        c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")      # never finished
        assert c.wait_closed(t(20))
