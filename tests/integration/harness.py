"""
harness.py - the pieces the integration suite is built from.

    Backend   a threaded raw-socket HTTP/1.1 server that records the exact
              bytes of every request it receives and counts connections;
              what it answers is a handler function (see the handler
              factories below).
    Moat      one moat process: writes its YAML config, starts MOAT_BIN,
              waits for "ready" and for the port to accept, reloads, stops,
              reads its logs and its RSS, and checks for sanitizer reports.
    Client    a raw-socket HTTP/1 client: sends exact bytes, reads one
              response at a time (Content-Length, chunked, close-delimited,
              1xx), tells when the connection was closed.

Fixtures that create and always clean these up are in conftest.py; test
modules import the classes and helpers from here (importing conftest.py
from a test module is something pytest advises against).

Everything is bounded: every socket has a timeout, every wait a deadline,
every process is stopped by its own PID. Deadlines are multiplied by SLOW
under MOAT_ASAN=1.
"""

import copy
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MOAT_BIN = os.environ.get("MOAT_BIN") or str(REPO / "build" / "moat")
ASAN = os.environ.get("MOAT_ASAN", "") not in ("", "0")
SLOW = 4.0 if ASAN else 1.0

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
SANITIZER_EXIT = 86


def t(seconds):
    """A deadline scaled for the build under test."""
    return seconds * SLOW


def free_port(host="127.0.0.1"):
    """A port nobody listens on right now (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.01, what="condition"):
    """Polls predicate() until it returns a true value; raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# Bytes on the wire


class Closed(Exception):
    """The peer closed (or reset) the connection before the expected bytes."""


class Reader:
    """Buffered reads from a socket. `on_bytes(n)` is told of every byte read."""

    def __init__(self, sock, on_bytes=None):
        self.sock = sock
        self.buf = bytearray()
        self.on_bytes = on_bytes
        self.eof = False

    def _recv(self, n=262144):
        if self.eof:
            return b""
        try:
            data = self.sock.recv(n)
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            self.eof = True
        elif self.on_bytes:
            self.on_bytes(len(data))
        return data

    def fill(self):
        data = self._recv()
        self.buf += data
        return bool(data)

    def read_until(self, delim, limit=1 << 20):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise AssertionError(f"no {delim!r} within {limit} bytes: {bytes(self.buf[:200])!r}")
            start = max(0, len(self.buf) - len(delim) + 1)
            if not self.fill():
                raise Closed(f"closed while waiting for {delim!r}; had {bytes(self.buf[:200])!r}")

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise Closed(f"closed after {len(self.buf)} of {n} bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, n=262144):
        """Up to n bytes: what is buffered, else one recv. b"" at EOF."""
        if self.buf:
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out
        return self._recv(n)

    def read_to_eof(self, sink=None):
        out = bytearray()
        while True:
            data = self.read_some()
            if not data:
                return bytes(out)
            if sink:
                sink(data)
            else:
                out += data


def parse_head(raw):
    """(start line, [(name, value)]) of a head ending in CRLF CRLF."""
    text = raw.decode("latin-1")
    assert text.endswith("\r\n\r\n"), f"head does not end in CRLF CRLF: {raw[-20:]!r}"
    lines = text[:-4].split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        assert sep, f"header line without colon: {line!r}"
        headers.append((name, value.strip(" \t")))
    return lines[0], headers


def header_values(headers, name):
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


def read_chunked(reader, sink, raw_sink=None):
    """Reads a chunked body; data to sink(bytes); every raw byte to raw_sink.
    Returns the trailer fields [(name, value)]."""
    while True:
        line = reader.read_until(b"\r\n", 65536)
        if raw_sink:
            raw_sink(line)
        size_text = line[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise AssertionError(f"bad chunk size line {line!r}")
        if size == 0:
            break
        left = size
        while left:
            data = reader.read_some(min(left, 262144))
            if not data:
                raise Closed(f"closed inside a chunk ({left} of {size} bytes missing)")
            left -= len(data)
            if raw_sink:
                raw_sink(data)
            sink(data)
        crlf = reader.read_exact(2)
        if raw_sink:
            raw_sink(crlf)
        if crlf != b"\r\n":
            raise AssertionError(f"chunk data not followed by CRLF: {crlf!r}")
    trailers = []
    while True:
        line = reader.read_until(b"\r\n", 65536)
        if raw_sink:
            raw_sink(line)
        if line == b"\r\n":
            return trailers
        name, _, value = line[:-2].decode("latin-1").partition(":")
        trailers.append((name, value.strip(" \t")))


def encode_chunked(data, sizes=(), ext=b"", trailers=(), upper=False):
    """Chunked coding of data: chunk sizes from `sizes` (cycled), else one
    chunk; `ext` appended to every size line; trailers as (name, value)."""
    out = bytearray()
    pos = 0
    sizes = list(sizes) or [max(len(data), 1)]
    i = 0
    while pos < len(data):
        n = min(sizes[i % len(sizes)], len(data) - pos)
        i += 1
        out += (b"%X" if upper else b"%x") % n + ext + b"\r\n" + data[pos : pos + n] + b"\r\n"
        pos += n
    out += b"0" + ext + b"\r\n"
    for name, value in trailers:
        out += f"{name}: {value}\r\n".encode("latin-1")
    out += b"\r\n"
    return bytes(out)


def check_canonical_chunked(raw_body):
    """Asserts raw_body is canonical chunked coding (lowercase or uppercase
    hex without leading zeros, no extensions, every chunk non-empty) and
    returns (data, trailer bytes)."""
    pos = 0
    data = bytearray()
    while True:
        eol = raw_body.find(b"\r\n", pos)
        assert eol >= 0, f"chunk size line not terminated at {pos}: {raw_body[pos:pos + 40]!r}"
        size_line = raw_body[pos:eol]
        assert re.fullmatch(rb"0|[1-9a-fA-F][0-9a-fA-F]*", size_line), (
            f"non-canonical chunk size line {size_line!r} (extensions, leading zeros or whitespace)"
        )
        size = int(size_line, 16)
        pos = eol + 2
        if size == 0:
            break
        data += raw_body[pos : pos + size]
        assert raw_body[pos + size : pos + size + 2] == b"\r\n", "chunk data not followed by CRLF"
        pos += size + 2
    trailer = raw_body[pos:]
    assert trailer.endswith(b"\r\n"), f"chunked body does not end in CRLF: {trailer!r}"
    return bytes(data), bytes(trailer)


def build_request(method="GET", target="/", headers=(), body=b"", version="HTTP/1.1",
                  host="example.test", content_length=None):
    """Request bytes. Host first unless host is None; Content-Length added
    for a non-empty body unless headers already frame it."""
    lines = [f"{method} {target} {version}"]
    hs = []
    if host is not None:
        hs.append(("Host", host))
    hs.extend(headers)
    names = {n.lower() for n, _ in hs}
    if content_length is None:
        content_length = bool(body) and not ({"content-length", "transfer-encoding"} & names)
    if content_length:
        hs.append(("Content-Length", str(len(body))))
    for n, v in hs:
        lines.append(f"{n}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------
# Deterministic payloads, generated block by block (never whole in memory)

_BLOCK = 64 * 1024
_BASES = {}


def _base(seed):
    if seed not in _BASES:
        _BASES[seed] = random.Random(seed).randbytes(_BLOCK)
    return _BASES[seed]


def pattern(size, seed=1):
    """Yields `size` bytes in blocks of up to 64 KiB; block i starts with i."""
    base = _base(seed)
    i = 0
    left = size
    while left > 0:
        block = i.to_bytes(8, "big") + base[8:]
        block = block[: min(left, _BLOCK)]
        yield block
        left -= len(block)
        i += 1


def pattern_bytes(size, seed=1):
    return b"".join(pattern(size, seed))


def pattern_sha256(size, seed=1):
    h = hashlib.sha256()
    for block in pattern(size, seed):
        h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------
# Client


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []
        self.raw_head = b""
        self.body = b""
        self.trailers = []
        self.framing = None         # "none", "length", "chunked", "close"
        self.raw_body = None        # the body as it came, for chunked (without a sink)
        self.informational = []     # 1xx responses seen before this one

    def header(self, name):
        values = header_values(self.headers, name)
        return values[0] if values else None

    def header_all(self, name):
        return header_values(self.headers, name)

    def has_header(self, name):
        return bool(header_values(self.headers, name))

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} body={self.body[:200]!r}>"


class Client:
    """One raw TCP connection to moat."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=None, rcvbuf=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout if timeout is not None else t(10))
        if rcvbuf:   # before connect, so that the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            self.sock.bind((source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect((host, port))
        self.reader = Reader(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, n=65536):
        """Raw bytes (after a 101): buffered first, else one recv; b"" at EOF."""
        return self.reader.read_some(n)

    def request(self, method="GET", target="/", headers=(), body=b"", host="example.test",
                version="HTTP/1.1", **read_kw):
        self.send(build_request(method, target, headers, body, version, host))
        return self.read_response(method=method, **read_kw)

    def read_response(self, method="GET", sink=None, skip_1xx=True):
        """Reads one response. 1xx (other than 101) are collected into
        .informational and skipped unless skip_1xx is False. Body bytes go
        to sink(bytes) when given, else into .body."""
        informational = []
        while True:
            resp = Response()
            resp.raw_head = self.reader.read_until(b"\r\n\r\n", 1 << 20)
            start, resp.headers = parse_head(resp.raw_head)
            m = re.fullmatch(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?", start)
            assert m, f"bad status line {start!r}"
            resp.version, resp.status, resp.reason = m.group(1), int(m.group(2)), m.group(3) or ""
            if 100 <= resp.status < 200 and resp.status != 101:
                resp.framing = "none"
                if skip_1xx:
                    informational.append(resp)
                    continue
                return resp
            break
        resp.informational = informational
        body = bytearray()
        out = sink or body.extend
        te = resp.header_all("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if method == "HEAD" or resp.status in (101, 204, 304):
            resp.framing = "none"
        elif te:
            assert te[-1].split(",")[-1].strip().lower() == "chunked", f"response TE {te!r}"
            assert not cl, f"response with both Transfer-Encoding and Content-Length: {resp.headers!r}"
            resp.framing = "chunked"
            raw = bytearray()
            resp.trailers = read_chunked(self.reader, out, None if sink else raw.extend)
            resp.raw_body = bytes(raw)
        elif cl:
            assert len(cl) == 1 and cl[0].isdigit(), f"response Content-Length {cl!r}"
            resp.framing = "length"
            left = int(cl[0])
            while left:
                data = self.reader.read_some(min(left, 262144))
                if not data:
                    raise Closed(f"closed with {left} body bytes missing; head {resp.raw_head!r}")
                out(data)
                left -= len(data)
        else:
            resp.framing = "close"
            self.reader.read_to_eof(out)
        resp.body = bytes(body)
        return resp

    def wait_closed(self, timeout=None):
        """True if the peer closes (FIN or RST) within timeout; bytes that
        arrive meanwhile are kept in .leftover. False on timeout."""
        timeout = t(3) if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.leftover = bytes(self.reader.buf)
        self.reader.buf.clear()
        if self.reader.eof:
            return True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, ConnectionAbortedError):
                return True
            except socket.timeout:
                return False
            if not data:
                return True
            self.leftover += data

    def is_open(self, wait=0.05):
        """True if the connection is still open (no FIN/RST seen within wait)."""
        return not self.wait_closed(wait)


def get(port, target="/", headers=(), host="example.test", **kw):
    """One request on a fresh connection that asks to close."""
    with Client(port) as c:
        return c.request("GET", target, list(headers) + [("Connection", "close")], host=host, **kw)


def curl(args, timeout=None):
    """Runs curl with no proxy and a bound; returns CompletedProcess (bytes)."""
    timeout = timeout or t(30)
    cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout))] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout + 5)


# --------------------------------------------------------------------------
# Backend


class BackendRequest:
    """One request as a backend received it. `raw` is every byte of it as
    it arrived (head + body in its transfer coding)."""

    def __init__(self, backend, conn, head):
        self.backend = backend
        self.conn = conn
        self.raw = bytearray(head)
        self.head = head
        start, self.headers = parse_head(head)
        parts = start.split(" ")
        assert len(parts) == 3, f"bad request line from moat: {start!r}"
        self.method, self.target, self.version = parts
        self.body = bytearray()
        self.body_len = 0
        self.trailers = []
        self.done = False
        te = self.header_all("Transfer-Encoding")
        cl = self.header_all("Content-Length")
        if te:
            self.framing = "chunked"
        elif cl:
            self.framing = "length"
            self.length = int(cl[0])
        else:
            self.framing = "none"

    def header(self, name):
        values = header_values(self.headers, name)
        return values[0] if values else None

    def header_all(self, name):
        return header_values(self.headers, name)

    def has_header(self, name):
        return bool(header_values(self.headers, name))

    @property
    def raw_body(self):
        return bytes(self.raw[len(self.head):])

    def iter_body(self, record=True):
        """Yields the decoded body as it arrives; with record, also keeps
        it in .body and its raw bytes in .raw."""
        if self.done:
            return
        reader = self.conn.reader
        raw_sink = self.raw.extend if record else None
        if self.framing == "length":
            left = self.length
            while left:
                data = reader.read_some(min(left, 262144))
                if not data:
                    raise Closed(f"moat closed with {left} request body bytes missing")
                left -= len(data)
                self.body_len += len(data)
                if record:
                    self.raw += data
                    self.body += data
                yield data
        elif self.framing == "chunked":
            while True:
                line = reader.read_until(b"\r\n", 65536)
                if raw_sink:
                    raw_sink(line)
                try:
                    size = int(line[:-2].split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise AssertionError(f"moat sent a bad chunk size line {line!r}")
                if size == 0:
                    break
                left = size
                while left:
                    data = reader.read_some(min(left, 262144))
                    if not data:
                        raise Closed("moat closed inside a request chunk")
                    left -= len(data)
                    self.body_len += len(data)
                    if record:
                        raw_sink(data)
                        self.body += data
                    yield data
                crlf = reader.read_exact(2)
                if raw_sink:
                    raw_sink(crlf)
            while True:
                line = reader.read_until(b"\r\n", 65536)
                if raw_sink:
                    raw_sink(line)
                if line == b"\r\n":
                    break
                name, _, value = line[:-2].decode("latin-1").partition(":")
                self.trailers.append((name, value.strip(" \t")))
        self.done = True

    def read_body(self):
        for _ in self.iter_body():
            pass
        return bytes(self.body)

    def wants_close(self):
        conn = [v.lower() for v in self.header_all("Connection")]
        if any("close" in v for v in conn):
            return True
        return self.version == "HTTP/1.0" and not any("keep-alive" in v for v in conn)


class BackendConn:
    """The backend's side of one connection from moat."""

    def __init__(self, backend, sock, cid):
        self.backend = backend
        self.sock = sock
        self.id = cid
        self.reader = Reader(sock, backend._count_bytes)
        self.closed = False
        self.close_after = False   # close once this response is sent
        self.upgraded = False      # the handler owns the bytes from here on
        self.nrequests = 0         # requests seen on this connection, this one included

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, n=65536):
        return self.reader.read_some(n)

    def send_response(self, status=200, body=b"", headers=(), reason=None, length=True, req=None):
        """Sends a response with Content-Length (unless length is False or
        headers frame it); the body is left out when req is a HEAD."""
        reason = reason if reason is not None else REASONS.get(status, "Whatever")
        head = f"HTTP/1.1 {status} {reason}\r\n"
        hs = list(headers)
        if length and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in hs):
            hs.append(("Content-Length", str(len(body))))
        for n, v in hs:
            head += f"{n}: {v}\r\n"
        if req is not None and req.method == "HEAD":
            body = b""
        self.send((head + "\r\n").encode("latin-1") + body)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 204: "No Content",
           304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}


class Backend:
    """A threaded HTTP/1.1 origin on 127.0.0.1 (or host) with keep-alive.

    .requests        BackendRequest objects in arrival order
    .raw_requests    their exact bytes
    .connections     connections accepted
    .bytes_received  every byte received on every connection
    .errors          exceptions raised while serving (for diagnostics)
    """

    def __init__(self, handler=None, name="backend", host="127.0.0.1"):
        self.handler = handler or info()
        self.name = name
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.addr = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.requests = []
        self.connections = 0
        self.bytes_received = 0
        self.errors = []
        self.reuse_refused = 0     # see close_on_reuse()
        self.conns = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.threads = []
        self.accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.accept_thread.start()

    @property
    def raw_requests(self):
        with self.cond:
            return [bytes(r.raw) for r in self.requests]

    def _count_bytes(self, n):
        with self.cond:
            self.bytes_received += n
            self.cond.notify_all()

    def wait_requests(self, n, timeout=None):
        """Waits until at least n request heads have arrived."""
        timeout = t(5) if timeout is None else timeout
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.requests) >= n, timeout)
        assert ok, f"backend {self.name} got {len(self.requests)} requests, expected {n}"
        return self.requests[:n]

    def sleep(self, seconds):
        """Sleeps in a handler; returns early when the backend is stopped."""
        self.stopping.wait(seconds)

    def _accept_loop(self):
        cid = 0
        while not self.stopping.is_set():
            r, _, _ = select.select([self.lsock], [], [], 0.05)
            if not r:
                continue
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                continue
            sock.settimeout(t(30))
            cid += 1
            conn = BackendConn(self, sock, cid)
            with self.cond:
                self.connections += 1
                self.conns.append(conn)
                self.cond.notify_all()
            th = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(th)
            th.start()

    def _serve(self, conn):
        try:
            while not conn.closed and not self.stopping.is_set():
                try:
                    head = conn.reader.read_until(b"\r\n\r\n", 1 << 20)
                except Closed:
                    if conn.reader.buf:
                        self.errors.append(f"partial head then close: {bytes(conn.reader.buf[:200])!r}")
                    break
                req = BackendRequest(self, conn, head)
                conn.nrequests += 1
                req.seq = conn.nrequests
                with self.cond:
                    self.requests.append(req)
                    self.cond.notify_all()
                self.handler(req, conn)
                if conn.closed or conn.upgraded:
                    break
                req.read_body()
                if conn.close_after or req.wants_close():
                    break
        except Exception as e:  # moat closed on us, a handler failed...
            self.errors.append(repr(e))
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.accept_thread.join(2)
        self.lsock.close()
        with self.cond:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for th in self.threads:
            th.join(1)


# --------------------------------------------------------------------------
# Backend handlers. Each factory returns handler(req, conn).


def info(status=200, headers=()):
    """Reads the body; answers "<backend name> <method> <target>\\n"."""
    def handler(req, conn):
        req.read_body()
        body = f"{req.backend.name} {req.method} {req.target}\n".encode()
        conn.send_response(status, body, [("Content-Type", "text/plain"),
                                          ("X-Backend", req.backend.name)] + list(headers), req=req)
    return handler


def fixed(status=200, body=b"ok", headers=(("Content-Type", "text/plain"),), reason=None):
    def handler(req, conn):
        req.read_body()
        conn.send_response(status, body, list(headers), reason, req=req)
    return handler


def head_aware(body=b"hello"):
    """GET: body with Content-Length; HEAD: same Content-Length, no body."""
    def handler(req, conn):
        req.read_body()
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode())
        conn.send(head if req.method == "HEAD" else head + body)
    return handler


def echo():
    """Answers 200 with the decoded request body (Content-Length)."""
    def handler(req, conn):
        body = req.read_body()
        conn.send_response(200, body, [("Content-Type", "application/octet-stream")], req=req)
    return handler


def sha256_body(delay_read=0.0):
    """Streams the request body without keeping it; answers JSON with its
    sha256, length and framing. delay_read: seconds before reading it."""
    def handler(req, conn):
        if delay_read:
            req.backend.sleep(delay_read)
        h = hashlib.sha256()
        n = 0
        for data in req.iter_body(record=False):
            h.update(data)
            n += len(data)
        body = json.dumps({"sha256": h.hexdigest(), "length": n, "framing": req.framing,
                           "trailers": req.trailers}).encode()
        conn.send_response(200, body, [("Content-Type", "application/json")])
    return handler


def chunked_response(chunks, trailers=(), ext=b"", headers=()):
    """Answers with the given chunks (bytes each) and trailers."""
    def handler(req, conn):
        req.read_body()
        out = bytearray(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n")
        for n, v in headers:
            out += f"{n}: {v}\r\n".encode()
        if trailers:
            out += ("Trailer: " + ", ".join(n for n, _ in trailers) + "\r\n").encode()
        out += b"\r\n"
        for c in chunks:
            out += b"%x" % len(c) + ext + b"\r\n" + c + b"\r\n"
        out += b"0\r\n"
        for n, v in trailers:
            out += f"{n}: {v}\r\n".encode()
        out += b"\r\n"
        conn.send(bytes(out))
    return handler


def raw_response(data, close=False):
    """Sends exactly `data` as the response; closes after it if close."""
    def handler(req, conn):
        req.read_body()
        conn.send(data)
        if close:
            conn.close()
    return handler


def close_delimited(body):
    """A response with neither Content-Length nor chunked: ends at close."""
    def handler(req, conn):
        req.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
        conn.close()
    return handler


def slow(delay, then=None):
    """Waits `delay` seconds after the request head, then delegates."""
    then = then or fixed(body=b"slow done")

    def handler(req, conn):
        req.backend.sleep(delay)
        then(req, conn)
    return handler


def huge(size, seed=1, chunked=False):
    """Streams `size` bytes of pattern(size, seed) as the response."""
    def handler(req, conn):
        req.read_body()
        if chunked:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for block in pattern(size, seed):
                conn.send(b"%x\r\n" % len(block) + block + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\n\r\n" % size)
            for block in pattern(size, seed):
                conn.send(block)
    return handler


def websocket_echo(greeting=b""):
    """Answers 101 to an Upgrade: websocket, sends greeting, then echoes raw
    bytes until moat closes; closes its side after the client's EOF."""
    def handler(req, conn):
        key = req.header("Sec-WebSocket-Key") or ""
        import base64
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        conn.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode() + greeting)
        conn.upgraded = True
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.send(data)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    return handler


def garbage(data=b"THIS IS NOT HTTP\r\n\r\n"):
    """Sends bytes that are not an HTTP response, then closes."""
    def handler(req, conn):
        req.read_body()
        conn.send(data)
        conn.close()
    return handler


def no_response():
    """Reads the request and closes without a byte of response."""
    def handler(req, conn):
        req.read_body()
        conn.close()
    return handler


def close_after_response(body=b"ok", delay=0.0):
    """Answers (keep-alive, no Connection: close), then closes the
    connection `delay` seconds later, as a backend with a short idle
    timeout does."""
    def handler(req, conn):
        req.read_body()
        conn.send_response(200, body, [("Content-Type", "text/plain")])
        if delay:
            req.backend.sleep(delay)
        conn.close()
    return handler


def close_on_reuse(then=None):
    """Answers the first request of a connection (keep-alive); closes the
    connection without a byte of response when a second request arrives on
    it, as a backend whose idle timeout fired just as moat reused it."""
    then = then or info()

    def handler(req, conn):
        if conn.nrequests > 1:
            req.backend.reuse_refused += 1
            conn.close()
            return
        then(req, conn)
    return handler


def stall_mid_body(total=1000, sent=100):
    """Sends a head announcing `total` bytes, `sent` of them, then stalls."""
    def handler(req, conn):
        req.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total + b"x" * sent)
        req.backend.sleep(t(30))
        conn.close()
    return handler


# --------------------------------------------------------------------------
# Config


_PLAIN = re.compile(r"[A-Za-z0-9_/.][A-Za-z0-9_./:\-]*")
_YAML_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and s.lower() not in _YAML_SPECIAL and not s.endswith(":"):
        return s
    return json.dumps(s)


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (what configs use)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n" + to_yaml(v, indent + 2))
            elif isinstance(v, (dict, list)):
                out.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}\n")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}\n")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                inner = to_yaml(item, indent + 2)
                out.append(f"{pad}- " + inner[indent + 2:])
            elif isinstance(item, list):
                out.append(f"{pad}-\n" + to_yaml(item, indent + 2))
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
    else:
        out.append(f"{pad}{_scalar(obj)}\n")
    return "".join(out)


DEFAULT_CONFIG = {
    "workers": 2,
    "log": {"level": "info", "error": "stderr", "access": "stdout", "format": "json"},
}


def merge(base, extra):
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(backends=(), config=None, port=None):
    """A full config: DEFAULT_CONFIG + config; a listener on 127.0.0.1:port
    unless config names listeners; upstream "app" with the backends and a
    catch-all route to it unless config names upstreams / routes."""
    cfg = merge(DEFAULT_CONFIG, config)
    if "listeners" not in cfg:
        cfg["listeners"] = [{"listen": f"127.0.0.1:{port or free_port()}"}]
    if "upstreams" not in cfg:
        cfg["upstreams"] = {"app": {"servers": [b.addr for b in backends]}}
    if "routes" not in cfg:
        cfg["routes"] = [{"upstream": "app"}]
    # Keys in the order a person would write them.
    order = ["workers", "log", "limits", "timeouts", "proxy", "listeners", "upstreams", "routes"]
    return {k: cfg[k] for k in order if k in cfg} | {k: v for k, v in cfg.items() if k not in order}


def split_listen(text):
    """("127.0.0.1", 8080) from "127.0.0.1:8080"; ("::1", 8080) from "[::1]:8080"."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:]+):(\d+)", text)
    assert m, f"cannot split listen address {text!r}"
    if m.group(1):
        return m.group(1), int(m.group(2))
    return m.group(3), int(m.group(4))


# --------------------------------------------------------------------------
# Moat


def sanitizer_problems(text, rc):
    problems = []
    for marker in SANITIZER_MARKERS:
        if marker in text:
            i = text.index(marker)
            problems.append(f"sanitizer report ({marker}):\n{text[max(0, i - 200): i + 3000]}")
    if rc == SANITIZER_EXIT:
        problems.append(f"moat exited with the sanitizer exit code {SANITIZER_EXIT}")
    return problems


def run_moat(args, timeout=None, cwd=None):
    """Runs MOAT_BIN with args to completion (e.g. -t, --version); fails on
    a sanitizer report. Returns CompletedProcess with text output."""
    assert os.path.exists(MOAT_BIN), f"MOAT_BIN {MOAT_BIN} does not exist (run make)"
    p = subprocess.run([MOAT_BIN] + list(args), capture_output=True, timeout=timeout or t(20),
                       cwd=cwd)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    problems = sanitizer_problems(p.stdout + p.stderr, p.returncode)
    assert not problems, "\n".join(problems)
    return p


class Moat:
    """One moat process. Start with .start(); the fixture calls .finish()."""

    def __init__(self, workdir, argv, config_path=None, listens=(), error_log=None, env=None,
                 name="moat"):
        self.workdir = Path(workdir)
        self.argv = argv
        self.config_path = config_path
        self.listens = list(listens)   # [(host, port)] to check after "ready"
        self.ports = [p for _, p in self.listens]
        self.error_log = error_log
        self.stdout_path = self.workdir / f"{name}.stdout"
        self.stderr_path = self.workdir / f"{name}.stderr"
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.rc = None
        self.observed_exit = False  # the test saw it exit (stop(), wait_exit())

    @property
    def port(self):
        return self.ports[0]

    @property
    def pid(self):
        return self.proc.pid

    def start(self, ready=True):
        assert os.path.exists(MOAT_BIN), f"MOAT_BIN {MOAT_BIN} does not exist (run make)"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, env=self.env)
        if ready:
            self.wait_ready()
        return self

    def _read(self, path):
        try:
            return Path(path).read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    @property
    def stderr(self):
        return self._read(self.stderr_path)

    @property
    def stdout(self):
        return self._read(self.stdout_path)

    @property
    def errlog(self):
        """The error log: stderr, or the configured file."""
        return self._read(self.error_log) if self.error_log else self.stderr

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=None):
        timeout = timeout or t(10)
        deadline = time.monotonic() + timeout
        while "ready" not in self.errlog:
            if not self.alive():
                self.rc = self.proc.wait()
                self.observed_exit = True
                raise AssertionError(f"moat exited with {self.rc} before ready:\n{self.stderr[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"moat not ready after {timeout:.0f}s:\n{self.stderr[-3000:]}")
            time.sleep(0.01)
        for host, port in self.listens:
            while True:
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"moat logged ready but port {port} does not accept")
                    time.sleep(0.01)

    def send_signal(self, sig):
        assert self.alive(), f"moat is not running (rc={self.proc.poll()})"
        os.kill(self.proc.pid, sig)

    def count(self, needle):
        return sum(1 for line in self.errlog.splitlines() if needle in line)

    def reload(self, config=None, text=None, expect="reloaded", timeout=None):
        """Rewrites the config (dict or text) if given, sends SIGHUP, and
        waits for a new "reloaded" or "reload refused" line. Asserts it is
        the expected one; returns the error log written since the signal."""
        if config is not None:
            text = to_yaml(config)
        if text is not None:
            Path(self.config_path).write_text(text)
        before = len(self.errlog)
        ok0, bad0 = self.count("reloaded"), self.count("reload refused")
        self.send_signal(signal.SIGHUP)
        wait_for(lambda: self.count("reloaded") > ok0 or self.count("reload refused") > bad0,
                 timeout or t(10), what="a 'reloaded' or 'reload refused' log line")
        got = "reloaded" if self.count("reloaded") > ok0 else "reload refused"
        assert got == expect, f"expected {expect!r}, moat logged {got!r}:\n{self.errlog[before:]}"
        return self.errlog[before:]

    def wait_exit(self, timeout=None):
        try:
            self.rc = self.proc.wait(timeout or t(10))
        finally:
            self.observed_exit = True
        return self.rc

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends sig; waits for the exit; returns the exit code. Kills it and
        fails if it does not exit in time."""
        timeout = timeout or t(10)
        self.observed_exit = True
        if self.alive():
            os.kill(self.proc.pid, sig)
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.rc = self.proc.wait(5)
            raise AssertionError(f"moat did not exit within {timeout:.0f}s of signal {sig}")
        return self.rc

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def access_lines(self, n, timeout=None):
        """Waits for at least n non-empty lines on stdout; returns them all."""
        def lines():
            ls = [l for l in self.stdout.splitlines() if l.strip()]
            return ls if len(ls) >= n else None
        return wait_for(lines, timeout or t(5), what=f"{n} access log lines on stdout:\n{self.stdout}")

    def access_records(self, n, timeout=None):
        out = []
        for line in self.access_lines(n, timeout):
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"access log line is not JSON: {line!r}")
        return out

    def finish(self):
        """Stops moat if the test did not; returns problems found: an
        unexpected exit, a non-zero exit at teardown, sanitizer reports."""
        problems = []
        if self.proc is None:
            return problems
        if self.alive():
            try:
                rc = self.stop(timeout=t(15))
                if rc != 0:
                    problems.append(f"moat exited with {rc} on SIGTERM at teardown")
            except AssertionError as e:
                problems.append(str(e))
        else:
            rc = self.proc.wait()
            self.rc = rc
            if not self.observed_exit:
                problems.append(f"moat died during the test (exit {rc})")
        text = self.stderr + (self._read(self.error_log) if self.error_log else "")
        problems += sanitizer_problems(text, self.rc)
        if problems:
            problems.append(f"--- moat stderr (last 3000 bytes) ---\n{self.stderr[-3000:]}")
        return problems
