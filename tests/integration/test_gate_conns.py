"""Gatekeeper: connection and rate floors (issue 5, /tmp/gk/spec.md
"limits.connections_per_ip / connections_total / min_body_rate /
min_send_rate").

- connections_per_ip: the N+1th open connection from one address is closed
  at accept (no bytes); other addresses are still served; a slot freed is
  usable again. Counted over all workers.
- connections_total: past it moat stops accepting: extra connections wait
  in the kernel's queue and are served once others close; none is refused
  or reset.
- min_body_rate: a body trickled below the rate is cut with 408 within the
  grace (timeouts.client_body) plus a margin, while a normal upload and a
  slow-but-above-the-rate upload succeed.
- min_send_rate: a client that does not read (or reads below the rate) a
  large response is cut off within timeouts.client_send plus a margin: moat
  closes its side and gives up the backend connection.
- slowloris: many head trickles are cut at timeouts.client_header while an
  ordinary client keeps being served, fast.
"""

import hashlib
import os
import select
import socket
import threading
import time

import pytest

from harness import (Client, Closed, huge, pattern, pattern_sha256, sha256_body, slow, t,
                     wait_for)

H = b"Host: example.test\r\n"


# --------------------------------------------------------------------------
# Helpers


PROBE = b"GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"


def closed_at_accept(port, source, timeout=2.0):
    """(closed, bytes) for a new connection from `source` that sends a
    request: refused at accept means closed with no byte."""
    try:
        c = Client(port, source=source, timeout=t(3))
    except (ConnectionResetError, ConnectionRefusedError):
        return True, b""
    with c:
        try:
            c.send(PROBE)
        except OSError:
            return True, b""
        closed = c.wait_closed(t(timeout))
        return closed, c.leftover


def keepalive_client(port, source, target="/held"):
    """A connection with one request served on it, left open."""
    c = Client(port, source=source)
    r = c.request("GET", target)
    assert r.status == 200, r
    return c


def get_status(port, source, target="/"):
    with Client(port, source=source) as c:
        return c.request("GET", target, [("Connection", "close")]).status


# --------------------------------------------------------------------------
# connections_per_ip


def test_connections_per_ip(backend, make_moat):
    m = make_moat([backend], {"workers": 2, "limits": {"connections_per_ip": 3}})
    held = [keepalive_client(m.port, "127.0.0.2", f"/h{i}") for i in range(3)]
    try:
        for _ in range(3):
            closed, got = closed_at_accept(m.port, "127.0.0.2")
            assert closed and got == b"", f"4th connection from .2: closed={closed} got={got[:100]!r}"
        assert get_status(m.port, "127.0.0.3", "/other") == 200
        # the held connections still work
        for c in held:
            assert c.request("GET", "/again").status == 200
        # free one slot: one more .2 connection fits, not two
        held.pop().close()

        def one_more():
            try:
                c = Client(m.port, source="127.0.0.2", timeout=t(3))
                r = c.request("GET", "/freed")
                held.append(c)
                return r.status == 200
            except (Closed, OSError):
                return False
        wait_for(one_more, t(3), interval=0.05, what="a freed slot for 127.0.0.2")
        closed, got = closed_at_accept(m.port, "127.0.0.2")
        assert closed and got == b""
    finally:
        for c in held:
            c.close()
    assert not any(r.target == "/refused" for r in backend.requests)


def test_connections_per_ip_counts_over_all_workers(backend, make_moat):
    """4 workers, limit 6: 6 connections held (spread over the workers by
    the kernel), the next 10 all refused."""
    m = make_moat([backend], {"workers": 4, "limits": {"connections_per_ip": 6}})
    held = [keepalive_client(m.port, "127.0.0.2") for _ in range(6)]
    try:
        refused = sum(1 for _ in range(10) if closed_at_accept(m.port, "127.0.0.2", 0.5)[0])
        assert refused == 10, f"only {refused} of 10 connections past the limit refused"
    finally:
        for c in held:
            c.close()


def test_connections_per_ip_idle_unsent_connections_count(backend, make_moat):
    """Connections that never send a byte count too (slowloris without a
    byte)."""
    m = make_moat([backend], {"limits": {"connections_per_ip": 2}})
    idle = [Client(m.port, source="127.0.0.2") for _ in range(2)]
    try:
        time.sleep(t(1.5))   # past the listener's TCP_DEFER_ACCEPT (1 s): accepted by now
        closed, _ = closed_at_accept(m.port, "127.0.0.2")
        assert closed
        assert get_status(m.port, "127.0.0.3") == 200
    finally:
        for c in idle:
            c.close()


# --------------------------------------------------------------------------
# connections_total


def test_connections_total_backpressure(backend, make_moat):
    """Limit 4: 4 held connections; 3 more wait (no answer, not closed, no
    reset) until 2 of the held ones close; then all 3 are served."""
    m = make_moat([backend], {"workers": 2, "limits": {"connections_total": 4}})
    held = [keepalive_client(m.port, f"127.0.0.{2 + i}") for i in range(4)]
    waiting = []
    try:
        for i in range(3):
            c = Client(m.port, source=f"127.0.1.{i + 1}", timeout=t(10))
            c.send(b"GET /waited%d HTTP/1.1\r\n" % i + H + b"Connection: close\r\n\r\n")
            waiting.append(c)
        time.sleep(t(0.8))
        for c in waiting:
            r, _, _ = select.select([c.sock], [], [], 0)
            assert not r, "a connection past connections_total got an answer or a close"
        assert not any(q.target.startswith("/waited") for q in backend.requests)
        held[0].close()
        held[1].close()
        start = time.monotonic()
        for i, c in enumerate(waiting):
            r = c.read_response()
            assert (r.status, r.body) == (200, b"app GET /waited%d\n" % i), r
        assert time.monotonic() - start < t(3)
    finally:
        for c in held + waiting:
            c.close()
    assert get_status(m.port, "127.0.0.9", "/after") == 200


def test_connections_total_under_load_nothing_refused(make_backend, make_moat):
    """40 concurrent clients, connections_total 10, a backend taking 200 ms:
    every request succeeds, at most 10 at the backend at once."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(req, conn):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            slow(0.2)(req, conn)
        finally:
            with lock:
                state["now"] -= 1

    b = make_backend(handler)
    m = make_moat([b], {"workers": 2, "limits": {"connections_total": 10}})
    results = []

    def client(i):
        try:
            with Client(m.port, source=f"127.0.2.{i + 1}", timeout=t(20)) as c:
                results.append(c.request("GET", f"/l{i}", [("Connection", "close")]).status)
        except Exception as e:   # noqa: BLE001 - reported below
            results.append(repr(e))

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t(30))
    elapsed = time.monotonic() - start
    assert results.count(200) == 40, results
    assert state["peak"] <= 10, f"{state['peak']} requests at the backend at once"
    assert elapsed >= 0.7, f"40 x 200 ms with 10 at a time took only {elapsed:.2f}s"


# --------------------------------------------------------------------------
# min_body_rate


def trickle_body(port, source, total, step, every, chunked=False, limit=8.0):
    """Sends a POST head, then the body `step` bytes every `every` seconds.
    Returns (response or None, seconds from the first body byte to the
    answer or close, bytes of body sent)."""
    c = Client(port, source=source, timeout=t(15))
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % total
    c.send(b"POST /upload HTTP/1.1\r\n" + H + b"Content-Type: application/octet-stream\r\n" + framing + b"\r\n")
    sent = 0
    start = time.monotonic()
    try:
        while sent < total and time.monotonic() - start < limit:
            piece = b"x" * min(step, total - sent)
            try:
                c.send(b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece)
            except OSError:
                break
            sent += len(piece)
            r, _, _ = select.select([c.sock], [], [], every)
            if r:
                break
        if sent >= total and chunked:
            try:
                c.send(b"0\r\n\r\n")
            except OSError:
                pass
        try:
            resp = c.read_response()
        except (Closed, OSError):
            resp = None
        return resp, time.monotonic() - start, sent
    finally:
        c.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_min_body_rate_cuts_a_trickle_with_408(make_backend, make_moat, chunked):
    """10 B/s against 512 B/s, grace 1 s: the deadline
    min(last byte + 1 s, start + 1 s + received/512) passes at ~1.02 s."""
    b = make_backend(sha256_body())
    m = make_moat([b], {"limits": {"min_body_rate": 512}, "timeouts": {"client_body": "1s"}})
    resp, elapsed, sent = trickle_body(m.port, "127.0.0.2", 1000, 1, 0.1, chunked=chunked)
    assert resp is not None and resp.status == 408, f"after {elapsed:.2f}s and {sent} bytes: {resp!r}"
    assert 0.8 <= elapsed <= 1.0 + t(1.5), f"cut after {elapsed:.2f}s ({sent} bytes)"
    time.sleep(t(0.2))
    assert not any(r.done for r in b.requests), "the backend got the whole trickled body"


def test_min_body_rate_spares_normal_and_slow_enough_uploads(make_backend, make_moat):
    """Beside a trickle that is cut: a 4 MiB upload at full speed and a
    2 KB/s upload for 2 s (4x the floor, 2x the grace) both succeed."""
    b = make_backend(sha256_body())
    m = make_moat([b], {"limits": {"min_body_rate": 512}, "timeouts": {"client_body": "1s"}})
    out = {}

    def trickle():
        out["trickle"] = trickle_body(m.port, "127.0.0.2", 1000, 1, 0.1)

    def slow_ok():
        out["slow"] = trickle_body(m.port, "127.0.0.3", 4000, 200, 0.1)

    threads = [threading.Thread(target=trickle), threading.Thread(target=slow_ok)]
    for th in threads:
        th.start()
    size = 4 << 20
    with Client(m.port, source="127.0.0.4", timeout=t(20)) as c:
        c.send(b"POST /big HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % size)
        for block in pattern(size, seed=5):
            c.send(block)
        r = c.read_response()
    assert r.status == 200 and b'"sha256": "%s"' % pattern_sha256(size, seed=5).encode() in r.body, r
    for th in threads:
        th.join(t(15))
    tr, te, ts = out["trickle"]
    assert tr is not None and tr.status == 408, (tr, te, ts)
    sr, se, ss = out["slow"]
    assert sr is not None and sr.status == 200 and b'"length": 4000' in sr.body, (sr, se, ss)


# --------------------------------------------------------------------------
# min_send_rate


def backend_gave_up(b):
    return b.conns and all(conn.closed for conn in b.conns)


def moat_side_state(moat_port, client_sock):
    """The TCP state (as /proc/net/tcp numbers it: 1 = ESTABLISHED) of
    moat's end of the IPv4 loopback connection `client_sock`, or None once
    it is gone. moat closing its end shows at once (FIN-WAIT-1 while the
    kernel still holds unsent data for the client), however much of that
    data the client has yet to read."""
    ip, port = client_sock.getsockname()[:2]
    local = f"0100007F:{moat_port:04X}"
    remote = f"{socket.inet_aton(ip)[::-1].hex().upper()}:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[3], 16)
    return None


def moat_closed(moat_port, client_sock):
    return moat_side_state(moat_port, client_sock) != 1


def drain(sock, limit_s):
    """Reads at full speed until EOF/reset or limit_s; returns (bytes, eof)."""
    sock.settimeout(1.0)
    n = 0
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            d = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except (ConnectionResetError, ConnectionAbortedError):
            return n, True
        if not d:
            return n, True
        n += len(d)
    return n, False


def test_min_send_rate_client_that_does_not_read_is_cut(make_backend, make_moat):
    size = 256 << 20
    b = make_backend(huge(size))
    m = make_moat([b], {"limits": {"min_send_rate": 512}, "timeouts": {"client_send": "1s"}})
    c = Client(m.port, source="127.0.0.2", rcvbuf=4096, timeout=t(10))
    try:
        c.send(b"GET /huge HTTP/1.1\r\n" + H + b"\r\n")
        start = time.monotonic()
        assert moat_side_state(m.port, c.sock) == 1
        wait_for(lambda: moat_closed(m.port, c.sock), 1.0 + t(4), interval=0.05,
                 what="moat to close a connection whose client does not read")
        elapsed = time.monotonic() - start
        assert elapsed >= 0.8, f"cut after {elapsed:.2f}s, before client_send"
        wait_for(lambda: backend_gave_up(b), t(3), interval=0.05, what="moat to give up the backend connection")
        n, eof = drain(c.sock, t(20))
        assert eof, f"the client's side never ended ({n} bytes read after the cut)"
        assert n < size, "the whole response arrived"
    finally:
        c.close()


def test_min_send_rate_slow_reader_cut_fast_reader_served(make_backend, make_moat):
    """A client reading 10 bytes every 100 ms (100 B/s against 512 B/s) is
    cut once start + client_send + written/512 is past: at ~1.25 s after
    its writes stall (plus however the kernel's buffers make moat's writes
    come in steps); one reading 16 MiB at full speed at the same time gets
    all of it."""
    size = 64 << 20
    b = make_backend(huge(size, seed=3))
    m = make_moat([b], {"limits": {"min_send_rate": 512}, "timeouts": {"client_send": "1s"}})
    slow_c = Client(m.port, source="127.0.0.2", rcvbuf=4096, timeout=t(10))
    stop = threading.Event()
    got = {"n": 0}

    def slow_reader():
        s = slow_c.sock
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                d = s.recv(10)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                break
            got["n"] += len(d)
            time.sleep(0.1)

    th = threading.Thread(target=slow_reader)
    try:
        slow_c.send(b"GET /slow HTTP/1.1\r\n" + H + b"\r\n")
        start = time.monotonic()
        th.start()
        fast_size = 16 << 20
        n = 0
        h = hashlib.sha256()
        with Client(m.port, source="127.0.0.3", timeout=t(20)) as c:
            c.send(b"GET /fast HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
            # every response is `size` bytes: read the head and the first
            # 16 MiB at full speed, compare with the pattern
            head = c.reader.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            while n < fast_size:
                d = c.reader.read_some(min(1 << 20, fast_size - n))
                assert d, f"the fast reader was cut after {n} bytes"
                h.update(d)
                n += len(d)
        want = hashlib.sha256()
        left = fast_size
        for block in pattern(size, seed=3):
            want.update(block[:left])
            left -= min(left, len(block))
            if not left:
                break
        assert h.hexdigest() == want.hexdigest()
        wait_for(lambda: moat_closed(m.port, slow_c.sock), 1.0 + t(6), interval=0.05,
                 what=f"moat to close the slow reader (it read {got['n']} bytes)")
        elapsed = time.monotonic() - start
        assert elapsed >= 0.8, f"cut after {elapsed:.2f}s"
        assert got["n"] > 0, "the slow reader read nothing: it was not a reader"
    finally:
        stop.set()
        th.join(t(5))
        slow_c.close()


@pytest.mark.parametrize("size", [64 << 10, 1 << 20], ids=["64KiB", "1MiB"])
def test_min_send_rate_slow_reader_of_a_response_the_kernel_holds(make_backend, make_moat, size):
    """The slow-read attack as slowhttptest -X makes it: a small receive
    window, a few bytes read now and then (here 10 bytes every 100 ms), a
    response small enough that moat hands all of it to the kernel at once.
    The client reads far below min_send_rate (100 B/s against 512 B/s), so
    moat must close it within client_send + margin, although none of its
    own writes ever fell short: otherwise each such client holds a
    connection and up to a socket buffer of kernel memory for as long as it
    likes (until keepalive, 75 s here; then the kernel keeps trickling)."""
    b = make_backend(huge(size))
    m = make_moat([b], {"limits": {"min_send_rate": 512}, "timeouts": {"client_send": "1s"}})
    c = Client(m.port, source="127.0.0.2", rcvbuf=4096, timeout=t(10))
    stop = threading.Event()
    got = {"n": 0}

    def slow_reader():
        s = c.sock
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                d = s.recv(10)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                break
            got["n"] += len(d)
            time.sleep(0.1)

    th = threading.Thread(target=slow_reader)
    try:
        c.send(b"GET /small HTTP/1.1\r\n" + H + b"\r\n")
        start = time.monotonic()
        th.start()
        # moat sees what the client's kernel acknowledged, not what the
        # application read: with a 4 KiB receive buffer the window opens in
        # steps of up to 4 KiB, each worth 4096 / 512 = 8 s of credit at
        # min_send_rate. So the bound is the grace (1 s) plus one window's
        # credit, not the grace alone (observed: about 5 s).
        try:
            wait_for(lambda: moat_closed(m.port, c.sock), 1.0 + 8.0 + t(3), interval=0.05, what="")
        except AssertionError:
            raise AssertionError(f"a client reading {size} bytes at 100 B/s still held after "
                                 f"{time.monotonic() - start:.1f}s ({got['n']} bytes read)") from None
        assert got["n"] > 0
    finally:
        stop.set()
        th.join(t(5))
        c.close()


# --------------------------------------------------------------------------
# Slowloris


def test_slowloris_cut_at_client_header_while_others_served(backend, make_moat):
    """40 connections trickle a head one byte per 200 ms; each is cut
    (408 or close) within client_header (1 s) + margin of its first byte,
    while an ordinary client's 30 requests all succeed, each fast."""
    m = make_moat([backend], {"timeouts": {"client_header": "1s"}})
    head = b"GET /slow HTTP/1.1\r\n" + H + b"X-Pad: " + b"p" * 200 + b"\r\n\r\n"
    socks = {}
    for i in range(40):
        s = socket.socket()
        s.settimeout(t(3))
        s.bind((f"127.0.3.{i + 1}", 0))
        s.connect(("127.0.0.1", m.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks[s] = {"pos": 0, "start": None, "end": None, "got": b""}
    stop = threading.Event()

    def attacker():
        deadline = time.monotonic() + t(6)
        while time.monotonic() < deadline and not stop.is_set():
            open_ = [s for s, st in socks.items() if st["end"] is None]
            if not open_:
                return
            for s in open_:
                st = socks[s]
                if st["pos"] < len(head):
                    try:
                        s.send(head[st["pos"]:st["pos"] + 1])
                        if st["start"] is None:
                            st["start"] = time.monotonic()
                        st["pos"] += 1
                    except OSError:
                        st["end"] = time.monotonic()
            r, _, _ = select.select(open_, [], [], 0.2)
            for s in r:
                st = socks[s]
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                st["got"] += d
                if not d:
                    st["end"] = time.monotonic()

    th = threading.Thread(target=attacker)
    th.start()
    latencies = []
    try:
        for i in range(30):
            t0 = time.monotonic()
            assert get_status(m.port, "127.0.0.2", f"/ok{i}") == 200
            latencies.append(time.monotonic() - t0)
            time.sleep(0.05)
    finally:
        th.join(t(10))
        stop.set()
        for s in socks:
            s.close()
    assert max(latencies) < t(0.5), f"ordinary requests slowed down: max {max(latencies):.2f}s"
    lasted = [st["end"] - st["start"] for st in socks.values() if st["end"] and st["start"]]
    assert len(lasted) == 40, f"{40 - len(lasted)} slowloris connections never cut"
    assert max(lasted) <= 1.0 + t(1.0), f"slowloris connections lasted up to {max(lasted):.2f}s"
    for st in socks.values():
        assert st["got"] == b"" or st["got"].startswith(b"HTTP/1.1 408 "), st["got"][:100]
    assert not any(r.target == "/slow" for r in backend.requests)


def test_slowloris_from_one_address_bounded_by_connections_per_ip(backend, make_moat):
    """connections_per_ip 10: of 40 idle connections from one address 30
    are closed at accept; another address is served."""
    m = make_moat([backend], {"limits": {"connections_per_ip": 10}, "timeouts": {"client_header": "5s"}})
    socks = []
    try:
        for _ in range(40):
            s = socket.socket()
            s.settimeout(t(3))
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", m.port))
            s.send(b"GET / HTTP/1.1\r\n")
            socks.append(s)
        time.sleep(t(0.5))
        closed = 0
        for s in socks:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                try:
                    d = s.recv(100)
                except OSError:
                    d = b""
                assert d == b"", f"a refused connection got bytes: {d!r}"
                closed += 1
        assert closed == 30, f"{closed} of 40 closed, expected 30"
        assert get_status(m.port, "127.0.0.3") == 200
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# Descriptors: raised to the hard limit at start, accept paused on EMFILE


def nofile_limits(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return soft, hard
    raise AssertionError("no 'Max open files' in /proc/PID/limits")


def test_nofile_raised_to_the_hard_limit_at_start(backend, make_moat):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no finite hard limit on descriptors here")
    low = min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        m = make_moat([backend])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    got = nofile_limits(m.pid)
    assert got == (str(hard), str(hard)), f"moat runs with {got}, started with ({low}, {hard})"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_emfile_pauses_accept_without_spinning_or_refusing(backend, make_moat):
    """moat's descriptors capped (prlimit on the running process) a few
    above what it uses: clients past the cap wait, unanswered and not
    reset, moat does not spin on accept, and they are served once others
    close."""
    import resource
    m = make_moat([backend], {"workers": 1})
    assert get_status(m.port, "127.0.0.2", "/warm") == 200      # the backend connection, pooled
    used = len(os.listdir(f"/proc/{m.pid}/fd"))
    cap = used + 6
    resource.prlimit(m.pid, resource.RLIMIT_NOFILE, (cap, cap))
    held, waiting = [], None
    try:
        for i in range(20):
            c = Client(m.port, source=f"127.0.4.{i + 1}", timeout=t(1.5))
            c.send(b"GET /held%d HTTP/1.1\r\n" % i + H + b"\r\n")
            try:
                r = c.read_response()
            except (socket.timeout, TimeoutError):
                waiting = c
                break
            assert r.status == 200, f"client {i} past the cap got {r.status} instead of waiting"
            held.append(c)
        assert waiting is not None, f"20 connections served with RLIMIT_NOFILE {cap}: the cap did not bite"
        assert len(held) >= 3, f"only {len(held)} served before the cap"
        cpu0 = cpu_seconds(m.pid)
        time.sleep(1.0)
        spent = cpu_seconds(m.pid) - cpu0
        assert spent < 0.3, f"moat used {spent:.2f}s of CPU in 1s while paused: spinning on accept"
        r, _, _ = select.select([waiting.sock], [], [], 0)
        assert not r, "the waiting client got an answer or a close while moat was out of descriptors"
        for c in held[:3]:
            c.close()
        waiting.sock.settimeout(t(5))
        r = waiting.read_response()
        assert r.status == 200, r
        assert m.alive()
    finally:
        for c in held + ([waiting] if waiting else []):
            c.close()


# --------------------------------------------------------------------------
# routes[].body


def test_route_body_limit_overrides_limits_body(make_backend, make_moat):
    b = make_backend(sha256_body())
    m = make_moat([b], {"limits": {"body": "1MiB"},
                        "routes": [{"path": "/small", "upstream": "app", "body": "1KiB"},
                                   {"path": "/large", "upstream": "app", "body": "4MiB"},
                                   {"upstream": "app"}]})

    def post(target, n):
        with Client(m.port, source="127.0.0.2", timeout=t(10)) as c:
            c.send(b"POST %s HTTP/1.1\r\n" % target.encode() + H + b"Content-Length: %d\r\n\r\n" % n)
            try:
                for block in pattern(n, seed=2):
                    c.send(block)
            except OSError:
                pass   # refused early: moat may close before the body is in
            return c.read_response().status

    assert post("/small", 1000) == 200
    assert post("/small", 2000) == 413
    assert post("/other", 2000) == 200
    assert post("/other", (1 << 20) + 1) == 413
    assert post("/large", 3 << 20) == 200
    assert post("/large", (4 << 20) + 1) == 413
    time.sleep(t(0.1))
    assert all(r.body_len in (1000, 2000, 3 << 20) for r in b.requests if r.done)
