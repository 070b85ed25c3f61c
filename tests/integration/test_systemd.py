"""systemd integration without systemd: the readiness protocol (a datagram
socket this test binds stands in for $NOTIFY_SOCKET), socket activation
($LISTEN_FDS), and the privilege drop (`user:`, run as root), including a
reload and a binary upgrade after it. See docs/operations.md, "systemd"."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import (MOAT_BIN, Moat, free_port, get, make_config, run_moat, sanitizer_problems, t, to_yaml,
                     wait_for)
from upgrade_util import Successors, become_subreaper, pid_running, proc_status, read_pid, upgrade


@pytest.fixture
def successors(make_moat):
    become_subreaper()
    s = Successors()
    yield s
    problems = s.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


class Notify:
    """A stand-in for systemd's notification socket."""

    def __init__(self, name):
        self.name = name               # "/path" or "@abstract"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.sock.settimeout(t(10))

    def recv(self):
        """The next message as {key: value} (and the raw text)."""
        data = self.sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in data.split("\n") if line)
        return fields, data

    def expect(self, key, value="1"):
        fields, data = self.recv()
        assert fields.get(key) == value, f"expected {key}={value}, got {data!r}"
        return fields

    def nothing(self, wait=0.3):
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return
        finally:
            self.sock.settimeout(t(10))
        raise AssertionError(f"unexpected notification {data!r}")

    def close(self):
        self.sock.close()


def test_notify_ready_reload_stop(make_backend, make_moat, tmp_path):
    b = make_backend(name="b1")
    n = Notify(str(tmp_path / "notify.sock"))
    m = make_moat([b], env={"NOTIFY_SOCKET": n.name})
    f = n.expect("READY")
    assert f["MAINPID"] == str(m.pid)
    # a reload: RELOADING=1 (with the monotonic time), then READY=1
    m.reload()
    f = n.expect("RELOADING")
    assert int(f["MONOTONIC_USEC"]) > 0
    n.expect("READY")
    # a refused reload ends in READY=1 too (still running, old config)
    good = m.config_path.read_text()
    m.reload(text=good + "no_such_key: 1\n", expect="reload refused")
    n.expect("RELOADING")
    f = n.expect("READY")
    assert "refused" in f.get("STATUS", "")
    m.config_path.write_text(good)
    assert get(m.port, "/").status == 200
    # stop
    assert m.stop() == 0
    n.expect("STOPPING")
    n.close()


def test_notify_abstract_socket(make_backend, make_moat):
    b = make_backend(name="b1")
    n = Notify(f"@moat-test-notify-{os.getpid()}-{free_port()}")
    m = make_moat([b], env={"NOTIFY_SOCKET": n.name})
    assert n.expect("READY")["MAINPID"] == str(m.pid)
    os.kill(m.pid, signal.SIGHUP)
    n.expect("RELOADING")
    n.expect("READY")
    assert m.stop() == 0
    n.expect("STOPPING")
    n.close()


def test_notify_binary_upgrade_hands_mainpid(make_backend, make_moat, successors, tmp_path):
    """The new process announces itself as the main one; the old one
    does not say STOPPING (the service is not stopping)."""
    b = make_backend(name="b1")
    pid_file = tmp_path / "moat.pid"
    n = Notify(str(tmp_path / "notify.sock"))
    m = make_moat([b], {"pid_file": str(pid_file)}, env={"NOTIFY_SOCKET": n.name})
    assert n.expect("READY")["MAINPID"] == str(m.pid)
    new = upgrade(m, pid_file, successors)
    f = n.expect("READY")
    assert f["MAINPID"] == str(new)
    assert m.wait_exit(t(10)) == 0
    n.nothing()
    # a reload and a stop of the new process are told as usual
    os.kill(new, signal.SIGHUP)
    n.expect("RELOADING")
    n.expect("READY")
    assert successors.stop(new) in (0, None)
    n.expect("STOPPING")
    n.close()


def test_socket_activation(make_backend, make_moat, tmp_path):
    """$LISTEN_FDS sockets whose address is a listener are adopted (the
    test's socket has no SO_REUSEPORT: moat could not bind beside it); one
    that is not in the config is closed."""
    b = make_backend(name="b1")
    port = free_port()
    s1 = socket.socket()
    s1.bind(("127.0.0.1", port))
    s1.listen(16)
    s2 = socket.socket()
    s2.bind(("127.0.0.1", 0))
    s2.listen(16)
    other = s2.getsockname()[1]
    cfg = make_config([b], {"workers": 3}, port=port)
    path = tmp_path / "moat.yaml"
    path.write_text(to_yaml(cfg))
    # fds 3 and 4, and LISTEN_PID = the pid that execs moat (the shell's)
    script = f"LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=web:other exec {MOAT_BIN} -c {path}"
    m = Moat(tmp_path, ["/bin/sh", "-c", script], config_path=path, listens=[("127.0.0.1", port)])

    def place_fds():
        os.dup2(s1.fileno(), 3)
        os.dup2(s2.fileno(), 4)

    with open(m.stdout_path, "wb") as out, open(m.stderr_path, "wb") as err:
        m.proc = subprocess.Popen(m.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp_path,
                                  pass_fds=(3, 4), preexec_fn=place_fds)
    try:
        m.wait_ready()
        s1.close()
        s2.close()
        for i in range(30):   # every worker accepts from the one socket
            assert get(port, f"/sa/{i}").status == 200
        log = m.errlog
        assert f"socket activation: inherited listening socket fd 3 (127.0.0.1:{port})" in log
        assert f"socket activation: closing inherited socket fd 4 (127.0.0.1:{other}): not a listener" in log
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", other), timeout=2).close()
    finally:
        problems = m.finish()
    assert not problems, problems


# ---- privilege drop ------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def open_dir():
    """A directory of root's that user nobody can read (tmp_path is root's
    alone)."""
    d = Path(tempfile.mkdtemp(prefix="moat-test-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def privileged_port():
    for port in range(1023, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port below 1024")


def unprivileged_bind_allowed(port):
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return False
    return port >= start


@needs_root
def test_privilege_drop_reload_and_upgrade(make_backend, make_moat, successors, open_dir):
    nobody = pwd.getpwnam("nobody")
    b = make_backend(name="b1")
    port = privileged_port()
    # in a directory of root's: after the drop the file is rewritten in
    # place (it was given to nobody), not replaced
    pid_file = open_dir / "moat.pid"
    cfg = make_config([b], {"user": "nobody", "pid_file": str(pid_file)}, port=port)
    path = open_dir / "moat.yaml"
    path.write_text(to_yaml(cfg))
    os.chmod(path, 0o644)
    m = make_moat(argv=["-c", str(path)], listens=[("127.0.0.1", port)])
    m.config_path = path

    def check_ids(pid):
        for tid in os.listdir(f"/proc/{pid}/task"):
            st = proc_status(pid, tid)
            assert st["Uid"].split() == [str(nobody.pw_uid)] * 4, (tid, st["Uid"])
            assert st["Gid"].split() == [str(nobody.pw_gid)] * 4, (tid, st["Gid"])
            assert st["Groups"].split() == [str(nobody.pw_gid)], (tid, st["Groups"])
            assert st["CapEff"] == "0000000000000000", (tid, st["CapEff"])

    check_ids(m.pid)
    assert get(port, "/as-nobody").status == 200
    assert f"privileges dropped to user nobody (uid {nobody.pw_uid}" in m.errlog
    # the pid file was written before the drop, and given to nobody
    assert read_pid(pid_file) == m.pid
    assert pid_file.stat().st_uid == nobody.pw_uid

    # a reload that needs a new privileged port: refused, clearly; old config kept
    if not unprivileged_bind_allowed(1):
        extra = privileged_port()
        cfg2 = make_config([b], {"user": "nobody", "pid_file": str(pid_file),
                                 "listeners": [{"listen": f"127.0.0.1:{port}"},
                                               {"listen": f"127.0.0.1:{extra}"}]})
        log = m.reload(cfg2, expect="reload refused")
        wait_for(lambda: "Permission denied" in m.errlog, t(5), what="the reason in the log")
        assert "needs a restart" in m.errlog
        assert get(port, "/still").status == 200

    # a binary upgrade after the drop: the new process runs as nobody from
    # the start, inherits the privileged port, and has nothing to drop
    path.write_text(to_yaml(cfg))
    new = upgrade(m, pid_file, successors)
    assert m.wait_exit(t(20)) == 0
    check_ids(new)
    assert get(port, "/upgraded").status == 200
    assert read_pid(pid_file) == new
    # the new process cannot remove it from root's directory at exit: it says so
    assert successors.stop(new) in (0, None)
    assert "pid_file: cannot remove" in m.errlog


@needs_root
def test_user_needs_root(make_backend, open_dir):
    b = make_backend(name="b1")
    path = open_dir / "moat.yaml"
    path.write_text(to_yaml(make_config([b], {"user": "root"})))
    os.chmod(path, 0o644)
    nobody = pwd.getpwnam("nobody")

    def as_nobody():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    p = subprocess.run([MOAT_BIN, "-c", str(path)], capture_output=True, timeout=t(20), preexec_fn=as_nobody,
                       cwd=open_dir)
    err = p.stderr.decode()
    assert not sanitizer_problems(err, p.returncode), err
    assert p.returncode == 1, err
    assert f"user: needs root to switch to \"root\" (running as uid {nobody.pw_uid})" in err


def test_unknown_user_is_a_config_error(tmp_path):
    path = tmp_path / "moat.yaml"
    path.write_text("user: no-such-user-moat-test\n" + to_yaml(make_config([], {
        "upstreams": {"app": {"servers": ["127.0.0.1:1"]}}})))
    p = run_moat(["-t", "-c", str(path)])
    assert p.returncode == 1
    assert f"{path}:1:7: user: unknown user \"no-such-user-moat-test\" (not in the user database)" in p.stderr


def test_check_warnings_exit_zero(tmp_path):
    """`moat -t` (the unit's ExecStartPre) prints warnings, and passes."""
    path = tmp_path / "moat.yaml"
    path.write_text(
        "listeners: [{listen: \"127.0.0.1:1\"}]\n"
        "upstreams:\n"
        "  app: {servers: [\"127.0.0.1:2\"]}\n"
        "  spare: {servers: [\"127.0.0.1:3\"]}\n"
        "routes:\n"
        "  - upstream: app\n"
        "  - path: /api/\n"
        "    upstream: app\n")
    p = run_moat(["-t", "-c", str(path)])
    assert p.returncode == 0, p.stderr
    assert "configuration OK" in p.stdout
    lines = p.stderr.splitlines()
    assert f"{path}:7:5: warning: routes[1] can never match: routes[0] (line 6, column 5; any host, any path) " \
           "comes first and takes every request it would" in lines, p.stderr
    assert f"{path}:4:3: warning: upstream \"spare\" is not used by any route" in lines, p.stderr
