"""Binary upgrade (SIGUSR2) and reloads (SIGHUP) under load.

A binary upgrade hands every listening socket to a new moat process; the
old one stops accepting and drains. What a client may see of it:

- no refused or reset new connection, no failed request, ever;
- an idle keep-alive connection of the old process is closed by it (as on
  any graceful stop). A client that sent its next request on it just then
  sees the connection close without a byte of response, and sends the
  request again on a new connection (RFC 9112, 9.3.1: what HTTP clients do
  for a request that never got an answer). The load below does that and
  counts it as `retried`; the backend proves such a request had not
  reached it (every path arrives exactly once).
"""

import collections
import os
import signal
import socket
import threading
import time

import pytest

from harness import Client, Closed, build_request, get, make_config, t, to_yaml, wait_for, websocket_echo
from upgrade_util import Successors, become_subreaper, pid_running, read_pid, upgrade

WS_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]


@pytest.fixture
def successors(make_moat):
    """New moat processes, stopped by PID before make_moat's teardown."""
    become_subreaper()
    s = Successors()
    yield s
    problems = s.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


class Load:
    """`threads` clients, `per_thread` GET requests each: runs of 10
    requests on one keep-alive connection, then 10 one-shot connections.
    Every response must be 200 with the backend's echo of its path."""

    def __init__(self, port, threads=2, per_thread=1000, prefix="l"):
        self.port = port
        self.per_thread = per_thread
        self.prefix = prefix
        self.failures = []        # (thread, i, what)
        self.retried = 0          # keep-alive connection closed before any response byte
        self.refused = 0
        self.done = [0] * threads
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(max(0.1, deadline - time.monotonic()))
        assert not any(th.is_alive() for th in self.threads), f"load still running after {timeout:.0f}s"

    @property
    def total(self):
        return sum(self.done)

    def paths(self):
        return [f"/{self.prefix}{n}/{i}" for n in range(len(self.threads)) for i in range(self.per_thread)]

    def _fail(self, n, i, what):
        with self.lock:
            self.failures.append((n, i, what))

    def _check(self, n, i, r):
        want = f"b1 GET /{self.prefix}{n}/{i}\n".encode()
        if (r.status, r.body) != (200, want):
            self._fail(n, i, (r.status, r.body[:200]))

    def _connect(self):
        try:
            return Client(self.port)
        except ConnectionRefusedError:
            with self.lock:
                self.refused += 1
            raise

    def _one_shot(self, n, i):
        with self._connect() as c:
            r = c.request("GET", f"/{self.prefix}{n}/{i}", [("Connection", "close")])
        self._check(n, i, r)

    def _run(self, n):
        i = 0
        c = None
        try:
            while i < self.per_thread:
                if i % 20 < 10:
                    if c is None:
                        c, reused = self._connect(), False
                    try:
                        c.send(build_request("GET", f"/{self.prefix}{n}/{i}"))
                        r = c.read_response()
                    except (Closed, ConnectionResetError, BrokenPipeError) as e:
                        if not reused or c.reader.buf:
                            raise AssertionError(f"fresh connection failed or response cut: {e!r}")
                        with self.lock:
                            self.retried += 1
                        c.close()
                        c = None
                        continue      # the same request again, on a new connection
                    self._check(n, i, r)
                    reused = True
                    if (r.header("Connection") or "").lower() == "close" or i % 20 == 9:
                        c.close()
                        c = None
                else:
                    self._one_shot(n, i)
                i += 1
                with self.lock:
                    self.done[n] += 1
        except Exception as e:
            self._fail(n, i, repr(e))
        finally:
            if c is not None:
                c.close()

    def check(self, backend):
        assert not self.failures, self.failures[:5]
        assert self.refused == 0
        assert self.total == len(self.threads) * self.per_thread
        # every request reached the backend exactly once: a retried one
        # had not been forwarded
        got = collections.Counter(r.target for r in backend.requests if r.target.startswith(f"/{self.prefix}"))
        dup = [p for p, k in got.items() if k > 1]
        assert not dup, f"requests forwarded twice: {dup[:5]}"
        assert set(got) == set(self.paths())


def wait_progress(load, n, timeout=None):
    wait_for(lambda: load.total >= n or load.failures, timeout or t(20), what=f"{n} requests of load")
    assert not load.failures, load.failures[:5]


def upgrade_config(backends, pid_file, extra=None):
    return dict({"pid_file": str(pid_file), "timeouts": {"drain": "20s"}}, **(extra or {}))


def test_upgrade_under_load_refuses_nothing(make_backend, make_moat, successors, tmp_path):
    b = make_backend(name="b1")
    pid_file = tmp_path / "moat.pid"
    m = make_moat([b], upgrade_config([b], pid_file))
    old = m.pid
    assert read_pid(pid_file) == old
    load = Load(m.port).start()
    wait_progress(load, 300)
    new = upgrade(m, pid_file, successors)
    assert new != old
    # the old process drains and exits 0; the pid file stays the new one's
    assert m.wait_exit(t(20)) == 0
    assert read_pid(pid_file) == new
    load.join(t(90))
    load.check(b)
    assert load.total >= 2000
    # each step is logged
    log = m.errlog
    for needle in ("upgrade: SIGUSR2 received", f"upgrade: started", f"as pid {new}",
                   "upgrade: inherited listening socket", f"the new process (pid {new}) is ready",
                   "stopped (upgraded)", f"telling the old process (pid {old}) to stop"):
        assert needle in log, f"{needle!r} not logged:\n{log[-3000:]}"
    # the new process serves on, and stops cleanly (pid file removed)
    assert get(m.port, "/after").status == 200
    assert successors.stop(new) in (0, None)
    assert not pid_file.exists()


@pytest.mark.parametrize("before,after", [(4, 1), (1, 3)])
def test_upgrade_changes_worker_count(make_backend, make_moat, successors, tmp_path, before, after):
    """Fewer workers than inherited sockets: a worker accepts from several
    (each socket keeps getting its share of connections); more workers:
    some share a socket. Either way nothing is refused."""
    b = make_backend(name="b1")
    pid_file = tmp_path / "moat.pid"
    m = make_moat([b], upgrade_config([b], pid_file, {"workers": before}))
    cfg = make_config([b], upgrade_config([b], pid_file, {"workers": after}), port=m.port)
    m.config_path.write_text(to_yaml(cfg))
    load = Load(m.port, per_thread=400).start()
    wait_progress(load, 100)
    new = upgrade(m, pid_file, successors)
    assert m.wait_exit(t(20)) == 0
    load.join(t(60))
    load.check(b)
    # the new process alone: every socket of the group is accepted from
    # (a socket nobody accepted from would leave some connects hanging)
    for i in range(200):
        with Client(m.port, timeout=t(5)) as c:
            r = c.request("GET", f"/solo/{i}", [("Connection", "close")])
            assert r.status == 200
    assert f"moat 0.1.0 ready: {after} workers" in m.errlog
    assert pid_running(new)


def test_upgrade_keeps_tunnel_on_old_process(make_backend, make_moat, successors, tmp_path):
    ws = make_backend(websocket_echo(), name="ws")
    b = make_backend(name="b1")
    pid_file = tmp_path / "moat.pid"
    cfg = upgrade_config([b], pid_file, {
        "upstreams": {"app": {"servers": [b.addr]}, "ws": {"servers": [ws.addr]}},
        "routes": [{"path": "/ws", "upstream": "ws"}, {"upstream": "app"}]})
    m = make_moat(config=cfg)
    c = Client(m.port)
    c.send(build_request("GET", "/ws", WS_HEADERS))
    assert c.read_response().status == 101

    def echo(payload):
        c.send(payload)
        got = b""
        while len(got) < len(payload):
            data = c.recv()
            assert data, "tunnel closed"
            got += data
        assert got == payload

    with c:
        echo(b"before")
        new = upgrade(m, pid_file, successors)
        # new requests go to the new process, the tunnel stays on the old
        assert get(m.port, "/x").status == 200
        time.sleep(t(0.5))
        assert m.alive(), "the old process did not wait for the tunnel"
        echo(b"during the drain")
        echo(bytes(range(256)) * 64)
    # tunnel closed by the client: the old process is done
    assert m.wait_exit(t(10)) == 0
    assert pid_running(new)
    assert get(m.port, "/y").status == 200


def test_failed_upgrade_keeps_old_process(make_backend, make_moat, successors, tmp_path):
    b = make_backend(name="b1")
    pid_file = tmp_path / "moat.pid"
    m = make_moat([b], upgrade_config([b], pid_file))
    good = m.config_path.read_text()
    m.config_path.write_text(good + "no_such_key: 1\n")
    load = Load(m.port, per_thread=200, prefix="f").start()
    os.kill(m.pid, signal.SIGUSR2)
    wait_for(lambda: "upgrade failed" in m.errlog, t(10), what="'upgrade failed' in the log")
    assert "exited with status 1 before it was ready" in m.errlog
    assert f"pid {m.pid} keeps serving" in m.errlog
    assert "unknown key \"no_such_key\"" in m.errlog
    load.join(t(60))
    load.check(b)
    assert load.retried == 0
    assert m.alive()
    assert read_pid(pid_file) == m.pid
    # and a later upgrade, with the config fixed, goes through
    m.config_path.write_text(good)
    new = upgrade(m, pid_file, successors)
    assert m.wait_exit(t(20)) == 0
    assert get(m.port, "/z").status == 200
    assert pid_running(new)


def test_upgrade_start_failure_keeps_old_process(make_backend, make_moat, successors, tmp_path):
    """The new config is valid but the new process cannot start (an added
    listener's port is taken): it gives up after adopting the inherited
    sockets, without taking a connection from their queues, and the old
    process serves on."""
    from harness import free_port
    b = make_backend(name="b1")
    pid_file = tmp_path / "moat.pid"
    m = make_moat([b], upgrade_config([b], pid_file))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    with busy:
        port = busy.getsockname()[1]
        cfg = make_config([b], upgrade_config([b], pid_file, {
            "listeners": [{"listen": f"127.0.0.1:{m.port}"}, {"listen": f"127.0.0.1:{port}"}]}))
        m.config_path.write_text(to_yaml(cfg))
        load = Load(m.port, per_thread=300, prefix="s").start()
        wait_progress(load, 50)
        os.kill(m.pid, signal.SIGUSR2)
        wait_for(lambda: "upgrade failed" in m.errlog, t(10), what="'upgrade failed' in the log")
        load.join(t(60))
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in m.errlog
    assert "this new process gives up; the old one" in m.errlog
    load.check(b)
    assert load.retried == 0
    assert m.alive()
    assert read_pid(pid_file) == m.pid


def test_upgrade_with_changed_listeners(make_backend, make_moat, successors, tmp_path):
    """The new config keeps one address, drops one and adds one: the kept
    one is inherited, the dropped one closed, the new one bound."""
    from harness import free_port
    b = make_backend(name="b1")
    pid_file = tmp_path / "moat.pid"
    keep, drop, add = free_port(), free_port(), free_port()
    listeners = lambda ports: [{"listen": f"127.0.0.1:{p}"} for p in ports]
    m = make_moat([b], upgrade_config([b], pid_file, {"listeners": listeners([keep, drop])}))
    m.config_path.write_text(to_yaml(make_config([b], upgrade_config([b], pid_file,
                                                                   {"listeners": listeners([keep, add])}))))
    upgrade(m, pid_file, successors)
    assert m.wait_exit(t(20)) == 0
    assert get(keep, "/k").status == 200
    assert get(add, "/a").status == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", drop), timeout=2).close()
    assert f"closing inherited socket" in m.errlog and f"127.0.0.1:{drop}): not a listener" in m.errlog


def test_sighup_reloads_under_load(make_backend, make_moat):
    b = make_backend(name="b1")
    m = make_moat([b])
    cfg1 = make_config([b], port=m.port)
    cfg2 = make_config([b], {"proxy": {"hide_headers": ["x-nothing"]}}, port=m.port)
    load = Load(m.port, prefix="r").start()
    wait_progress(load, 50)
    for k in range(20):
        m.reload(cfg2 if k % 2 == 0 else cfg1)
        time.sleep(0.02)
    load.join(t(90))
    load.check(b)
    # a reload closes nothing: not even an idle keep-alive connection
    assert load.retried == 0
    assert m.count("reloaded") == 20
