#!/usr/bin/python3
"""resource.py - bounded resource attacks on moat, each with moat's RSS
sampled from /proc/PID/status and an ordinary request on another
connection timed meanwhile.

    /usr/bin/python3 tests/adversarial/resource.py [--bin PATH] [ATTACK ...]

Attacks: idle, slowloris, slowloris_many, noread, pipeline, pipeline_noread,
bighead, tinychunks, endless, trickle (a head re-sent one byte at a time:
parser work per byte), bodytrickle. Config: client_header 2s, client_body
2s, client_send 2s, keepalive 5s. Prints one line per attack; exit 1 when a
bound was broken.
"""

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

H = b"Host: example.test\r\n"
CONFIG = {"workers": 2, "timeouts": {"client_header": "2s", "client_body": "2s", "client_send": "2s",
                                     "keepalive": "5s", "backend_idle": "5s"}}
PROBLEMS = []


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])   # utime + stime


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Probe(threading.Thread):
    """Ordinary GETs on fresh connections, every 50 ms, while an attack
    runs: records the worst latency and the failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.worst = 0.0
        self.fail = []
        self.n = 0

    def run(self):
        import harness
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                r = harness.get(self.port, "/probe")
                if r.status != 200:
                    self.fail.append(f"status {r.status}")
            except Exception as e:
                self.fail.append(repr(e))
            dt = time.monotonic() - t0
            self.worst = max(self.worst, dt)
            self.n += 1
            self.stop.wait(0.05)


def with_probe(handler):
    """The attack's handler, except for the probe's /probe: a small answer."""
    import harness
    small = harness.fixed(body=b"probe ok")

    def h(req, conn):
        (small if req.target == "/probe" else handler)(req, conn)
    return h


class Run:
    def __init__(self, name, handler=None, config=None):
        import common
        import harness
        handler = with_probe(handler or harness.info())
        self.name = name
        cfg = dict(CONFIG)
        cfg.update(config or {})
        self.rig = common.Rig(config=cfg, handler=handler)
        self.port = self.rig.port
        self.pid = self.rig.moat.pid
        self.rss0 = self.rig.moat.rss_kib()
        self.rss_max = self.rss0
        self.cpu0 = cpu_ticks(self.pid)
        self.probe = Probe(self.port)
        self.probe.start()
        self.t0 = time.monotonic()
        self.notes = []

    def sample(self):
        try:
            self.rss_max = max(self.rss_max, self.rig.moat.rss_kib())
        except Exception:
            pass

    def note(self, s):
        self.notes.append(s)

    def check(self, cond, msg):
        if not cond:
            PROBLEMS.append(f"{self.name}: {msg}")
            self.notes.append("PROBLEM " + msg)

    def finish(self, rss_limit_kib):
        self.probe.stop.set()
        self.probe.join(5)
        self.sample()
        cpu = (cpu_ticks(self.pid) - self.cpu0) / os.sysconf("SC_CLK_TCK")
        el = time.monotonic() - self.t0
        self.check(self.rss_max - self.rss0 < rss_limit_kib,
                   f"RSS grew {self.rss_max - self.rss0} KiB (limit {rss_limit_kib})")
        self.check(not self.probe.fail, f"probe failures: {self.probe.fail[:3]}")
        self.check(self.probe.worst < 2.0, f"probe worst latency {self.probe.worst:.2f}s")
        probs = self.rig.stop()
        self.check(not probs, "\n".join(probs)[:3000])
        print(f"[{self.name}] {el:.1f}s rss {self.rss0}->{self.rss_max} KiB cpu {cpu:.2f}s probe n={self.probe.n} "
              f"worst={self.probe.worst * 1000:.0f}ms " + "; ".join(self.notes), flush=True)


def connect(port, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def read_all(s, limit=1 << 20, timeout=10):
    s.settimeout(timeout)
    out = b""
    try:
        while len(out) < limit:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    return out


# ---------------------------------------------------------------- attacks

def attack_idle():
    r = Run("idle-2000")
    socks = []
    for i in range(2000):
        socks.append(connect(r.port, f"127.9.{i // 250}.{i % 250 + 1}"))
    r.sample()
    time.sleep(1)
    r.sample()
    # half of them send one byte: accepted, then 408 at client_header
    for s in socks[:1000]:
        s.send(b"G")
    time.sleep(0.5)
    r.sample()
    r.note(f"fds with 2000 conns: {fds(r.pid)}")
    t0 = time.monotonic()
    closed = 0
    for s in socks[:1000]:
        got = read_all(s, timeout=max(0.1, 6 - (time.monotonic() - t0)))
        if got.startswith(b"HTTP/1.1 408"):
            closed += 1
    r.check(closed == 1000, f"{closed}/1000 one-byte conns got 408")
    # the silent ones: closed by moat after TCP_DEFER_ACCEPT + client_header
    t0 = time.monotonic()
    silent_closed = 0
    for s in socks[1000:]:
        got = read_all(s, timeout=max(0.1, 12 - (time.monotonic() - t0)))
        silent_closed += 1
    r.sample()
    time.sleep(0.5)
    r.note(f"fds after: {fds(r.pid)}")
    for s in socks:
        s.close()
    r.finish(rss_limit_kib=64 * 1024)


def attack_slowloris():
    r = Run("slowloris")
    s = connect(r.port)
    head = b"GET /slow HTTP/1.1\r\n" + H + b"X-A: " + b"a" * 200 + b"\r\n\r\n"
    t0 = time.monotonic()
    got = b""
    s.settimeout(0.1)
    for b in head:
        try:
            s.send(bytes([b]))
        except OSError:
            break
        try:
            d = s.recv(65536)
            if d:
                got += d
            else:
                break
        except socket.timeout:
            pass
        if time.monotonic() - t0 > 8:
            break
    got += read_all(s, timeout=3)
    dt = time.monotonic() - t0
    r.note(f"answer after {dt:.1f}s: {got[:30]!r}")
    r.check(got.startswith(b"HTTP/1.1 408"), f"no 408: {got[:80]!r}")
    r.check(dt < 4.5, f"408 came after {dt:.1f}s (client_header 2s)")
    r.finish(rss_limit_kib=16 * 1024)


def attack_slowloris_many():
    r = Run("slowloris-500")
    socks = [connect(r.port, f"127.8.{i // 250}.{i % 250 + 1}") for i in range(500)]
    head = b"GET /slow HTTP/1.1\r\n" + H + b"X-A: " + b"a" * 100 + b"\r\n\r\n"
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < 4:
        for s in socks:
            try:
                s.send(head[k:k + 1])
            except OSError:
                pass
        k += 1
        r.sample()
        time.sleep(0.1)
    n408 = 0
    for s in socks:
        if read_all(s, timeout=0.5).startswith(b"HTTP/1.1 408"):
            n408 += 1
        s.close()
    r.check(n408 == 500, f"{n408}/500 got 408")
    r.finish(rss_limit_kib=64 * 1024)


def attack_noread():
    import harness
    r = Run("noread-200MiB", handler=harness.huge(200 << 20))
    c = harness.Client(r.port, rcvbuf=4096)
    c.send(b"GET /huge HTTP/1.1\r\n" + H + b"\r\n")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 6:
        r.sample()
        time.sleep(0.2)
    # moat must have given up on us (client_send 2s): the connection is closed
    c.sock.settimeout(5)
    total = 0
    closed = False
    try:
        while True:
            d = c.sock.recv(1 << 20)
            if not d:
                closed = True
                break
            total += len(d)
    except (socket.timeout, ConnectionResetError):
        closed = isinstance(sys.exc_info()[1], ConnectionResetError)
    r.note(f"read {total} bytes after stalling, closed={closed}")
    r.check(closed, "connection not closed after client_send")
    r.check(total < 32 << 20, f"{total} bytes buffered for a client that did not read")
    c.close()
    r.finish(rss_limit_kib=32 * 1024)


def attack_pipeline():
    r = Run("pipeline-200")
    s = connect(r.port)
    s.sendall((b"GET /p HTTP/1.1\r\n" + H + b"\r\n") * 199 + b"GET /last HTTP/1.1\r\n" + H +
              b"Connection: close\r\n\r\n")
    got = read_all(s, limit=1 << 24, timeout=20)
    n = got.count(b"HTTP/1.1 200 OK")
    r.check(n == 200, f"{n}/200 responses")
    r.check(got.endswith(b"app GET /last\n"), f"ends {got[-40:]!r}")
    r.finish(rss_limit_kib=16 * 1024)


def attack_pipeline_noread():
    import harness
    r = Run("pipeline-noread", handler=harness.fixed(body=b"x" * 16384))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", r.port))
    s.settimeout(0.5)
    req = b"GET /p HTTP/1.1\r\n" + H + b"\r\n"
    sent = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 4:
            sent += s.send(req * 100)
            r.sample()
    except (socket.timeout, OSError):
        pass
    for _ in range(20):
        r.sample()
        time.sleep(0.2)
    r.note(f"sent {sent // len(req)} requests without reading")
    s.close()
    r.finish(rss_limit_kib=32 * 1024)


def attack_bighead():
    r = Run("10MiB-head")
    s = connect(r.port)
    head = b"GET / HTTP/1.1\r\n" + H + b"X-Big: "
    sent = 0
    try:
        s.sendall(head)
        block = b"a" * 65536
        while sent < 10 << 20:
            s.sendall(block)
            sent += len(block)
    except OSError:
        pass
    got = read_all(s, timeout=5)
    r.note(f"sent {sent} bytes before moat stopped us; got {got[:30]!r}")
    r.check(got.startswith(b"HTTP/1.1 431"), f"no 431: {got[:60]!r}")
    r.finish(rss_limit_kib=16 * 1024)


def attack_tinychunks():
    import harness
    r = Run("1-byte-chunks-x100000", handler=harness.sha256_body())
    s = connect(r.port)
    s.sendall(b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    t0 = time.monotonic()
    piece = b"1\r\na\r\n" * 1000
    for _ in range(100):
        s.sendall(piece)
        r.sample()
    s.sendall(b"0\r\n\r\n")
    got = read_all(s, timeout=60)
    dt = time.monotonic() - t0
    r.note(f"{dt:.1f}s; {got[-120:]!r}")
    r.check(b'"length": 100000' in got, "backend did not get 100000 bytes")
    r.finish(rss_limit_kib=32 * 1024)


def endless_handler(req, conn):
    req.read_body()
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b"z" * 0x4000 + b"\r\n"
    try:
        while not req.backend.stopping.is_set():
            conn.send(chunk)
    except OSError:
        pass


def attack_endless():
    r = Run("endless-chunked-slow-reader", handler=endless_handler)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.connect(("127.0.0.1", r.port))
    s.sendall(b"GET /endless HTTP/1.1\r\n" + H + b"\r\n")
    s.settimeout(1)
    total = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 8:
        try:
            d = s.recv(1024)
        except socket.timeout:
            continue
        if not d:
            break
        total += len(d)
        r.sample()
        time.sleep(0.005)
    r.note(f"read {total} bytes slowly")
    s.close()
    r.finish(rss_limit_kib=32 * 1024)


def attack_trickle():
    """A head that grows one byte per send: moat re-parses the head from
    byte 0 on every read (the parser is restartable, stateless). Compares
    the CPU per trickled byte behind a 28 KB prefix with that behind a
    100-byte one; a large ratio would be a CPU amplification."""
    r = Run("head-trickle", config={"timeouts": {"client_header": "30s"}})
    hz = os.sysconf("SC_CLK_TCK")

    def run(prefix_len, n=2000):
        prefix = b"GET / HTTP/1.1\r\n" + H + b"X-Pad: " + b"v" * (prefix_len - 40)
        conns = []
        for _ in range(4):
            s = connect(r.port)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(prefix)
            conns.append(s)
        time.sleep(0.2)
        c0 = cpu_ticks(r.pid)
        for _ in range(n):
            for s in conns:
                s.send(b"v")
        time.sleep(0.3)
        c1 = cpu_ticks(r.pid)
        for s in conns:
            s.sendall(b"\r\n\r\n")
            r.check(s.recv(12) == b"HTTP/1.1 200", "trickled head not served")
            s.close()
        return (c1 - c0) / hz / (4 * n) * 1e6

    small = min(run(100), run(100))
    big = min(run(28000), run(28000))
    r.note(f"{small:.1f} us/byte behind 100 B, {big:.1f} us/byte behind 28 KB (x{big / max(small, 0.1):.1f})")
    r.check(big < 10 * max(small, 1.0), "re-parsing makes a trickled byte much dearer behind a big head")
    r.finish(rss_limit_kib=32 * 1024)


def attack_bodytrickle():
    """A body sent one byte every 50 ms: client_body (2s) is an idle bound,
    so it goes on; the probe must not suffer."""
    import harness
    r = Run("body-trickle", handler=harness.sha256_body())
    s = connect(r.port)
    s.sendall(b"POST /b HTTP/1.1\r\n" + H + b"Content-Length: 100\r\n\r\n")
    for i in range(60):
        s.send(b"a")
        time.sleep(0.05)
    r.note("sent 60 of 100 body bytes at 20 B/s")
    s.close()
    r.finish(rss_limit_kib=16 * 1024)


def attack_uploads():
    """100 clients each pushing 8 MiB into a backend that reads slowly:
    backpressure must keep moat's memory per connection bounded."""
    def slow_reader(req, conn):
        if req.target == "/probe":
            return conn.send_response(200, b"probe ok")
        n = 0
        for data in req.iter_body(record=False):
            n += len(data)
            req.backend.sleep(0.002)
        conn.send_response(200, b"%d" % n)
    r = Run("uploads-100x8MiB", handler=slow_reader, config={"timeouts": {"client_body": "10s"}})
    stop = time.monotonic() + 6
    block = b"u" * 65536

    def up(i):
        try:
            s = connect(r.port, f"127.7.0.{i + 1}")
            s.sendall(b"POST /u HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % (8 << 20))
            for _ in range(128):
                if time.monotonic() > stop:
                    break
                s.sendall(block)
            s.close()
        except OSError:
            pass
    ths = [threading.Thread(target=up, args=(i,), daemon=True) for i in range(100)]
    for th in ths:
        th.start()
    while time.monotonic() < stop:
        r.sample()
        time.sleep(0.2)
    for th in ths:
        th.join(10)
    r.finish(rss_limit_kib=100 * 1024)


ATTACKS = {
    "uploads": attack_uploads,
    "idle": attack_idle, "slowloris": attack_slowloris, "slowloris_many": attack_slowloris_many,
    "noread": attack_noread, "pipeline": attack_pipeline, "pipeline_noread": attack_pipeline_noread,
    "bighead": attack_bighead, "tinychunks": attack_tinychunks, "endless": attack_endless,
    "trickle": attack_trickle, "bodytrickle": attack_bodytrickle,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None)
    ap.add_argument("attacks", nargs="*")
    args = ap.parse_args()
    if args.bin:
        os.environ["MOAT_BIN"] = os.path.abspath(args.bin)
    for name in args.attacks or list(ATTACKS):
        try:
            ATTACKS[name]()
        except Exception as e:
            import traceback
            traceback.print_exc()
            PROBLEMS.append(f"{name}: exception {e!r}")
    print("\n".join(["PROBLEMS:"] + PROBLEMS) if PROBLEMS else "no problems", flush=True)
    sys.exit(1 if PROBLEMS else 0)


if __name__ == "__main__":
    main()
