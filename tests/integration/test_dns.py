"""Servers named by a host name are looked up again every resolve_interval
(docs/configuration.md, servers): a changed address is used for new
connections without a reload; a name that stops resolving keeps its last
address.

The name lives in /etc/hosts (resolved through "files"), so these tests need
root; /etc/hosts is always restored. The two backends listen on the same
port, one on 127.0.0.2, one on 127.0.0.3."""

import fcntl
import os
import secrets
import socket
import threading

import pytest

from harness import get, t, wait_for

HOSTS = "/etc/hosts"
HOSTS_LOCK = "/tmp/moat-test-etc-hosts.lock"


@pytest.fixture
def hosts_name():
    """(name, set_addr): set_addr(ip) makes /etc/hosts map a unique name to
    ip, set_addr(None) removes it. Only that name's line is ever touched
    (other test runs may edit the file at the same time: each edit is a
    read-modify-write under a lock), the file is rewritten in place (it may
    be a bind mount, and readers never see it empty), and the line is
    always removed at teardown."""
    if os.geteuid() != 0:
        pytest.skip("needs root to edit /etc/hosts")
    if not os.access(HOSTS, os.W_OK):
        pytest.skip(f"{HOSTS} is not writable")
    name = f"moat-test-{secrets.token_hex(6)}.internal"

    def set_addr(ip):
        with open(HOSTS_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(HOSTS, "r+b") as f:
                kept = b"".join(l for l in f.read().splitlines(keepends=True)
                                if l.split()[-1:] != [name.encode()])
                if ip:
                    if kept and not kept.endswith(b"\n"):
                        kept += b"\n"
                    kept += f"{ip} {name}\n".encode()
                f.seek(0)
                f.write(kept)
                f.truncate()

    try:
        yield name, set_addr
    finally:
        set_addr(None)
        with open(HOSTS, "rb") as f:
            assert name.encode() not in f.read(), f"{name} left in {HOSTS}"


def listen_on(backend, host, port):
    """Moves an idle Backend's listener to host:port (the harness binds
    port 0): stops its accept thread, binds the new socket, starts it again."""
    assert backend.connections == 0
    backend.stopping.set()
    backend.accept_thread.join(2)
    backend.lsock.close()
    backend.stopping.clear()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    backend.lsock = s
    backend.port = port
    backend.addr = f"{host}:{port}"
    backend.accept_thread = threading.Thread(target=backend._accept_loop, daemon=True)
    backend.accept_thread.start()


def two_backends_same_port(make_backend):
    two = make_backend(name="two", host="127.0.0.2")
    three = make_backend(name="three", host="127.0.0.3")
    listen_on(three, "127.0.0.3", two.port)
    return two, three


def served_by(port, target):
    r = get(port, target)
    assert r.status == 200, r
    return r.header("X-Backend")


def dns_config(name, port, **keys):
    return {"upstreams": {"app": dict({"servers": [f"{name}:{port}"], "resolve_interval": "1s"},
                                      **keys)},
            "routes": [{"upstream": "app"}]}


def test_new_address_used_without_reload(hosts_name, make_backend, make_moat):
    name, set_addr = hosts_name
    two, three = two_backends_same_port(make_backend)
    set_addr("127.0.0.2")
    m = make_moat(config=dns_config(name, two.port))
    for i in range(5):
        assert served_by(m.port, f"/before/{i}") == "two"
    n_two = len(two.requests)

    set_addr("127.0.0.3")   # resolve_interval 1s: at most ~2 s until used
    wait_for(lambda: served_by(m.port, "/poll") == "three", t(3), interval=0.05,
             what=f"requests to reach 127.0.0.3 after /etc/hosts changed; log:\n{m.errlog[-1500:]}")
    # from then on only the new address, on new and on kept connections
    n_two = len(two.requests)
    for i in range(10):
        assert served_by(m.port, f"/after/{i}") == "three"
    assert len(two.requests) == n_two, "requests still went to the old address"
    assert m.count("reloaded") == 0


def test_name_that_stops_resolving_keeps_last_address(hosts_name, make_backend, make_moat):
    name, set_addr = hosts_name
    two, _ = two_backends_same_port(make_backend)
    set_addr("127.0.0.2")
    m = make_moat(config=dns_config(name, two.port))
    assert served_by(m.port, "/before") == "two"
    set_addr(None)
    wait_for(lambda: any("cannot resolve" in l and name in l for l in m.errlog.splitlines()),
             t(4), interval=0.05,
             what=f"a failed lookup logged:\n{m.errlog[-1500:]}")
    for i in range(5):
        assert served_by(m.port, f"/after/{i}") == "two"
