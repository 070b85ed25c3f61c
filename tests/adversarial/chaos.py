#!/usr/bin/python3
"""chaos.py - bounded concurrency chaos for use-after-free hunting under
ASan: clients that vanish (FIN or RST) at random points of a request or a
response, backends that delay, close, reset, answer early or half, an
upstream with a dead server and retries, and SIGHUP reloads meanwhile.

    /usr/bin/python3 tests/adversarial/chaos.py [--seconds 60] [--threads 12] [--bin PATH]

Checks: moat alive, no sanitizer report, and after the storm an ordinary
request still succeeds and the RSS is back near where it started.
"""

import argparse
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

H = b"Host: example.test\r\n"


def backend_handler(req, conn):
    rnd = random.Random()
    mode = req.target.split("/")[1] if req.target.count("/") >= 1 else ""
    try:
        if mode == "early":           # answer before reading the body, keep-alive
            conn.send_response(200, b"early", [("Content-Type", "text/plain")])
            return
        if mode == "reset":
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        req.read_body()
        if mode == "slow":
            req.backend.sleep(rnd.random() * 0.3)
        if mode == "half":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"h" * rnd.randrange(1, 5000))
            conn.close()
            return
        if mode == "big":
            n = rnd.choice([100000, 1000000])
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            left = n
            while left:
                k = min(left, 16384)
                conn.send(b"%x\r\n" % k + b"b" * k + b"\r\n")
                left -= k
            conn.send(b"0\r\nX-T: 1\r\n\r\n")
            return
        if mode == "close":
            conn.send(b"HTTP/1.1 200 OK\r\n\r\nclose-delimited")
            conn.close()
            return
        if mode == "ws":
            conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            conn.upgraded = True
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                conn.send(d)
            return
        conn.send_response(200, b"ok " + req.target.encode(), [("Content-Type", "text/plain")], req=req)
    except OSError:
        pass


def client_once(port, rnd):
    mode = rnd.choice(["plain", "early", "reset", "slow", "half", "big", "close", "ws", "plain", "slow"])
    method = rnd.choice([b"GET", b"POST", b"HEAD"])
    body = b""
    headers = H
    if method == b"POST" or mode == "early":
        method = b"POST"
        if rnd.random() < 0.5:
            body = b"x" * rnd.choice([10, 5000, 200000])
            headers += b"Content-Length: %d\r\n" % len(body)
        else:
            data = b"y" * rnd.choice([10, 5000, 200000])
            body = b"".join(b"%x\r\n" % len(data[i:i + 3000]) + data[i:i + 3000] + b"\r\n"
                            for i in range(0, len(data), 3000)) + b"0\r\n\r\n"
            headers += b"Transfer-Encoding: chunked\r\n"
        if rnd.random() < 0.2:
            headers += b"Expect: 100-continue\r\n"
    if mode == "ws":
        method, body = b"GET", b""
        headers += b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    req = method + b" /" + mode.encode() + b"/x HTTP/1.1\r\n" + headers + b"\r\n" + body
    if rnd.random() < 0.3:
        req = req * rnd.randrange(2, 4)   # pipelined copies
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
        fate = rnd.random()
        cut = rnd.randrange(len(req) + 1) if fate < 0.4 else len(req)
        s.sendall(req[:cut])
        if mode == "ws" and cut == len(req):
            s.sendall(b"ping" * rnd.randrange(1, 1000))
        if fate < 0.2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST
            s.close()
            return
        if fate < 0.3:
            s.shutdown(socket.SHUT_WR)
        want = rnd.choice([0, 100, 10000, 1 << 30])
        s.settimeout(0.5)   # until a close, or half a second of silence
        got = 0
        while got < want:
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
            if rnd.random() < 0.01:
                time.sleep(0.05)
        if rnd.random() < 0.5:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, socket.timeout):
        pass
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--bin", default=None)
    args = ap.parse_args()
    if args.bin:
        os.environ["MOAT_BIN"] = os.path.abspath(args.bin)
    import common
    import harness
    dead = harness.free_port()
    be = harness.Backend(backend_handler, name="app")
    be2 = harness.Backend(backend_handler, name="app2")
    cfg = {"workers": 2,
           "timeouts": {"client_header": "2s", "client_body": "2s", "client_send": "2s", "keepalive": "2s",
                        "backend_first_byte": "2s", "backend_idle": "2s", "backend_connect": "500ms"},
           "upstreams": {"app": {"servers": [be.addr, be2.addr, f"127.0.0.1:{dead}"],
                                 "retry": {"attempts": 2}}}}
    rig = common.Rig(config=cfg, backend=be)
    rss0 = rig.moat.rss_kib()
    stop = time.monotonic() + args.seconds
    count = [0]
    lock = threading.Lock()

    def worker(k):
        rnd = random.Random(k)
        while time.monotonic() < stop:
            client_once(rig.port, rnd)
            with lock:
                count[0] += 1

    ths = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(args.threads)]
    for th in ths:
        th.start()
    problems = []
    reloads = 0
    while time.monotonic() < stop:
        time.sleep(2)
        if not rig.moat.alive():
            problems.append(f"moat died: rc={rig.moat.proc.poll()}")
            break
        try:
            os.kill(rig.moat.pid, signal.SIGHUP)
            reloads += 1
        except OSError:
            pass
        p = rig.problems()
        if p:
            problems += p
            break
        print(f"{count[0]} exchanges, {reloads} reloads, rss {rig.moat.rss_kib()} KiB", flush=True)
    for th in ths:
        th.join(10)
    time.sleep(3)
    try:
        r = harness.get(rig.port, "/plain/after")
        if r.status != 200:
            problems.append(f"after the storm: {r.status}")
    except Exception as e:
        problems.append(f"after the storm: {e!r}")
    rss1 = rig.moat.rss_kib()
    print(f"rss {rss0} -> {rss1} KiB after {count[0]} exchanges", flush=True)
    problems += rig.stop()
    be2.stop()
    if problems:
        print("PROBLEMS:\n" + "\n".join(problems)[:6000])
        sys.exit(1)
    print("no problems")


if __name__ == "__main__":
    main()
