"""HTTP/2 conformance of moat's server side, case by case as h2spec checks
it (its "http2", "hpack" and "generic" groups, as far as they apply to a
server), over h2c with prior knowledge on a cleartext listener.

Each case sends exactly the frames it needs on a raw socket (frames built
by hand, header blocks by python3-h2's hpack encoder or by hand where the
representation matters) and reads frames back with a small parser. What
counts as a pass follows RFC 9113 and h2spec:

  - connection error: GOAWAY with one of the codes, then the connection
    closes (h2spec also passes a bare close; we want the GOAWAY);
  - stream error: RST_STREAM with one of the codes on that stream, or a
    connection error with one of them (h2spec accepts both); a stream
    error leaves the connection serving (a PING is answered);
  - after every case that ends a connection, a new connection gets a
    response (moat is alive and serving).

One moat (two workers) and one backend serve the whole module; each case
uses its own request path, so "never forwarded" can be checked on the
backend.
"""

import struct
import socket
import time

import pytest
from hpack import Decoder, Encoder
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from harness import MOAT_BIN, Backend, Moat, free_port, make_config, t, to_yaml

# Frame types, flags, settings and error codes (RFC 9113 §6, §7, §11).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIO = 0x4, 0x8, 0x20
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = range(10)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HUFF = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def frame(ftype, flags, sid, payload=b"", length=None):
    """One frame as bytes; `length` overrides the length field, `sid` is
    written as given (the reserved bit included)."""
    n = len(payload) if length is None else length
    return struct.pack("!I", n)[1:] + bytes([ftype, flags]) + struct.pack("!I", sid) + payload


def settings(*pairs):
    return b"".join(struct.pack("!HI", k, v) for k, v in pairs)


def rst(code):
    return struct.pack("!I", code)


def wu(incr):
    return struct.pack("!I", incr)


def hint(value, prefix, first=0):
    """An HPACK integer (RFC 7541 §5.1) with a `prefix`-bit prefix."""
    top = (1 << prefix) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hstr(s, huffman=False):
    s = s.encode() if isinstance(s, str) else s
    if huffman:
        s = HUFF.encode(s)
        return hint(len(s), 7, 0x80) + s
    return hint(len(s), 7) + s


def lit(name, value, kind=0x00, huffman=False):
    """A literal field with a new name: kind 0x40 incremental indexing,
    0x00 without indexing, 0x10 never indexed."""
    return bytes([kind]) + hstr(name, huffman) + hstr(value, huffman)


def lit_idx(index, value, kind=0x00, huffman=False):
    """A literal field whose name is table entry `index`."""
    prefix = 6 if kind == 0x40 else 4
    return hint(index, prefix, kind) + hstr(value, huffman)


def request(path, method="GET", extra=(), scheme="http", authority="localhost"):
    return [(":method", method), (":scheme", scheme), (":path", path),
            (":authority", authority)] + list(extra)


class Frame:
    def __init__(self, ftype, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = ftype, flags, sid, payload
        self.headers = None    # the decoded block, on the frame that ended it

    def __repr__(self):
        extra = f" {self.headers}" if self.headers is not None else ""
        return f"<{self.type} flags={self.flags:#x} sid={self.sid} len={len(self.payload)}" \
               f" {self.payload[:16].hex()}{extra}>"


class Conn:
    """A client connection frame by frame. With handshake, the preface and
    our SETTINGS are sent, the server's SETTINGS acknowledged and the ACK
    of ours awaited (as h2spec does before each case)."""

    def __init__(self, port, local_settings=(), handshake=True, preface=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=t(5))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = Encoder()
        self.dec = Decoder()
        self.dec.max_header_list_size = 1 << 20
        self.buf = bytearray()
        self.frames = []
        self.used = []         # frames response() has taken
        self.eof = False
        self.block = bytearray()
        self.server_settings = None
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0, settings(*local_settings)))
        if handshake:
            self.wait(lambda f: f.type == SETTINGS and f.flags & ACK, what="SETTINGS ACK")
            assert self.server_settings is not None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, *parts):
        try:
            self.sock.sendall(b"".join(parts))
        except OSError:
            self.eof = True

    def hblock(self, headers):
        return self.enc.encode(headers)

    def next(self, timeout):
        """The next frame, or None at EOF (self.eof) or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    f = Frame(self.buf[3], self.buf[4],
                              int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                              bytes(self.buf[9:9 + n]))
                    del self.buf[:9 + n]
                    self._seen(f)
                    return f
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                data = b""
            if not data:
                self.eof = True
            self.buf += data

    def _seen(self, f):
        self.frames.append(f)
        if f.type == SETTINGS and not f.flags & ACK:
            if self.server_settings is None:
                self.server_settings = {struct.unpack("!H", f.payload[i:i + 2])[0]:
                                        struct.unpack("!I", f.payload[i + 2:i + 6])[0]
                                        for i in range(0, len(f.payload) - 5, 6)}
            self.send(frame(SETTINGS, ACK, 0))
        if f.type in (HEADERS, CONTINUATION):
            p = f.payload
            if f.type == HEADERS:
                pad = 0
                if f.flags & PADDED:
                    pad, p = p[0], p[1:]
                if f.flags & PRIO:
                    p = p[5:]
                p = p[:len(p) - pad]
            self.block += p
            if f.flags & END_HEADERS:
                f.headers = [(n.decode(), v.decode()) for n, v in self.dec.decode(bytes(self.block), raw=True)]
                self.block.clear()

    def wait(self, pred, timeout=None, what="frame"):
        """Reads until a frame matches pred; fails at EOF, timeout or an
        unexpected GOAWAY."""
        deadline = time.monotonic() + (timeout or t(3))
        while True:
            f = self.next(max(0.0, deadline - time.monotonic()))
            if f is None:
                raise AssertionError(f"waiting for {what}: {'EOF' if self.eof else 'timeout'};"
                                     f" got {self.frames[-8:]}")
            if pred(f):
                return f
            if f.type == GOAWAY:
                raise AssertionError(f"waiting for {what}: GOAWAY {goaway_str(f)}")

    def quiet(self, timeout):
        """Frames that arrive within `timeout` (none expected, usually)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.next(max(0.0, deadline - time.monotonic()))
            if f is None:
                return got
            got.append(f)


def goaway_str(f):
    last, code = struct.unpack("!II", f.payload[:8])
    return f"last={last & 0x7FFFFFFF} code={code:#x} debug={f.payload[8:]!r}"


class Resp:
    def __init__(self):
        self.status = None
        self.headers = []
        self.body = bytearray()
        self.trailers = []
        self.data_frames = []


def response(c, sid, timeout=None, window=True):
    """Reads stream sid's response to its end; fails on RST_STREAM, GOAWAY
    or EOF. With window, every DATA frame is acknowledged."""
    r = Resp()
    seen = [f for f in c.frames if f.sid == sid and f not in c.used]
    while True:
        f = seen.pop(0) if seen else c.wait(lambda f: f.sid == sid or (f.sid == 0 and f.type == GOAWAY),
                                            timeout, what=f"response on stream {sid}")
        c.used.append(f)
        if f.type == RST_STREAM:
            raise AssertionError(f"stream {sid} reset: {struct.unpack('!I', f.payload)[0]:#x}")
        if f.headers is not None:
            if r.status is None or any(n == ":status" for n, _ in f.headers) and r.status < 200:
                r.headers = f.headers
                r.status = int(dict(f.headers)[":status"])
            else:
                r.trailers = f.headers
        if f.type == DATA:
            r.body += f.payload
            r.data_frames.append(len(f.payload))
            if window and f.payload:
                c.send(frame(WINDOW_UPDATE, 0, 0, wu(len(f.payload))),
                       frame(WINDOW_UPDATE, 0, sid, wu(len(f.payload))))
        if f.type in (HEADERS, DATA) and f.flags & END_STREAM:
            return r


def alive(port):
    """A new connection is served (moat survived the case)."""
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/alive"))))
        assert response(c, 1).status == 200


def conn_error(c, port, *codes, goaway=None):
    """Connection error: GOAWAY with one of codes, then close."""
    deadline = time.monotonic() + t(3)
    while True:
        f = goaway or c.next(max(0.0, deadline - time.monotonic()))
        if f is None:
            raise AssertionError(f"expected GOAWAY {[hex(x) for x in codes]}: "
                                 f"{'closed without GOAWAY' if c.eof else 'timeout'}; got {c.frames[-8:]}")
        if f.type == GOAWAY:
            code = struct.unpack("!I", f.payload[4:8])[0]
            assert code in codes, f"GOAWAY {goaway_str(f)}, expected {[hex(x) for x in codes]}"
            break
    c.quiet(t(3))
    assert c.eof, "GOAWAY sent, but the connection stays open"
    alive(port)
    return f


def stream_error(c, port, sid, *codes):
    """Stream error on sid (RST_STREAM with one of codes), or a connection
    error with one of them. Returns "stream" or "connection"."""
    deadline = time.monotonic() + t(3)
    while True:
        f = c.next(max(0.0, deadline - time.monotonic()))
        if f is None:
            raise AssertionError(f"expected RST_STREAM/GOAWAY {[hex(x) for x in codes]} on {sid}: "
                                 f"{'EOF' if c.eof else 'timeout'}; got {c.frames[-8:]}")
        if f.type == RST_STREAM and f.sid == sid:
            code = struct.unpack("!I", f.payload)[0]
            assert code in codes, f"RST_STREAM {code:#x} on {sid}, expected {[hex(x) for x in codes]}"
            ping_ok(c)
            return "stream"
        if f.type == GOAWAY:
            conn_error(c, port, *codes, goaway=f)
            return "connection"


def ping_ok(c, data=b"pingpong"):
    c.send(frame(PING, 0, 0, data))
    f = c.wait(lambda f: f.type == PING and f.flags & ACK, what="PING ACK")
    assert f.payload == data, f


def never_forwarded(srv, path):
    time.sleep(0.05)
    assert not [r for r in srv.backend.requests if r.target == path], f"{path} reached the backend"


def backend_request(srv, path):
    for _ in range(int(t(3) / 0.02)):
        got = [r for r in srv.backend.requests if r.target == path]
        if got:
            return got[-1]
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached the backend")


def handler(req, conn):
    """Answers "<method> <target> <body length>\\n" plus 32 bytes (enough
    for the flow-control cases); /empty answers 204."""
    body = req.read_body()
    if req.target == "/empty":
        conn.send_response(204, b"", [], req=req)
        return
    out = f"{req.method} {req.target} {len(body)}\n".encode() + b"0123456789abcdef" * 2
    conn.send_response(200, out, [("Content-Type", "text/plain")], req=req)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    b = Backend(handler, name="conf")
    port = free_port()
    cfg = make_config([b], {"listeners": [{"listen": f"127.0.0.1:{port}"}]})
    work = tmp_path_factory.mktemp("h2conf")
    path = work / "moat.yaml"
    path.write_text(to_yaml(cfg))
    m = Moat(work, [MOAT_BIN, "-c", str(path)], config_path=path, listens=[("127.0.0.1", port)],
             name="moat")
    m.backend = b
    try:
        m.start()
        yield m
    finally:
        problems = m.finish()
        b.stop()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def port(srv):
    yield srv.port
    assert srv.alive(), "moat died"


def open_stream(c, sid, path, method="POST", extra=()):
    """HEADERS without END_STREAM: the stream is open."""
    c.send(frame(HEADERS, END_HEADERS, sid, c.hblock(request(path, method, extra))))


# ==========================================================================
# §3.5 Connection preface


def test_3_5_preface_answered_with_settings(port):
    c = Conn(port, handshake=False)
    with c:
        f = c.next(t(3))
        assert f is not None and f.type == SETTINGS and not f.flags & ACK, f
        assert f.sid == 0 and len(f.payload) % 6 == 0
        c.wait(lambda f: f.type == SETTINGS and f.flags & ACK)
        assert c.server_settings.get(S_MAX_CONCURRENT_STREAMS) == 100, c.server_settings


@pytest.mark.parametrize("data", [b"INVALID CONNECTION PREFACE\r\n\r\n",
                                  b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0)],
                         ids=["garbage", "bad-tail"])
def test_3_5_invalid_preface_closes(port, data):
    """Not the preface: on a cleartext listener this is HTTP/1.1 then
    (an error answer) or a GOAWAY; either way the connection ends."""
    with socket.create_connection(("127.0.0.1", port), timeout=t(3)) as s:
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + t(3)
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                d = b""
            if not d:
                break
            got += d
        else:
            pytest.fail(f"connection still open after an invalid preface: {got[:200]!r}")
        assert got == b"" or got.startswith(b"HTTP/1.1 4") or got.startswith(b"HTTP/1.1 5") \
            or got[3] in (SETTINGS, GOAWAY), got[:200]
    alive(port)


def test_3_5_preface_not_followed_by_settings(port):
    """The preface must be followed by SETTINGS (§3.4): PROTOCOL_ERROR."""
    c = Conn(port, handshake=False, preface=False)
    with c:
        c.send(PREFACE + frame(PING, 0, 0, b"\0" * 8))
        conn_error(c, port, PROTOCOL_ERROR)


# ==========================================================================
# §4.1 Frame format


def test_4_1_unknown_frame_type_ignored(port):
    with Conn(port) as c:
        c.send(frame(0x20, 0, 0, b"\0" * 8), frame(0xFF, 0xFF, 1, b"x" * 20))
        ping_ok(c)
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/4.1.1"))))
        assert response(c, 1).status == 200


def test_4_1_undefined_flags_ignored(port):
    with Conn(port) as c:
        c.send(frame(PING, 0x16, 0, b"flagflag"))
        f = c.wait(lambda f: f.type == PING)
        assert f.flags == ACK and f.payload == b"flagflag", f
        # HEADERS with undefined flags (0x2, 0x10, 0x40, 0x80) too
        c.send(frame(HEADERS, END_STREAM | END_HEADERS | 0xD2, 1, c.hblock(request("/4.1.2"))))
        assert response(c, 1).status == 200


def test_4_1_reserved_bit_ignored(port):
    with Conn(port) as c:
        c.send(frame(PING, 0, 0x80000000, b"reserved"))
        f = c.wait(lambda f: f.type == PING)
        assert f.flags == ACK and f.payload == b"reserved", f
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 0x80000001, c.hblock(request("/4.1.3"))))
        assert response(c, 1).status == 200


# ==========================================================================
# §4.2 Frame size


def test_4_2_data_of_max_frame_size(srv, port):
    with Conn(port) as c:
        open_stream(c, 1, "/4.2.1", extra=[("content-length", "16384")])
        c.send(frame(DATA, END_STREAM, 1, b"d" * 16384))
        r = response(c, 1)
        assert r.status == 200 and r.body.startswith(b"POST /4.2.1 16384\n"), r.body


def test_4_2_data_over_max_frame_size(port):
    with Conn(port) as c:
        assert c.server_settings.get(S_MAX_FRAME_SIZE, 16384) == 16384
        open_stream(c, 1, "/4.2.2")
        c.send(frame(DATA, END_STREAM, 1, b"d" * 16385))
        stream_error(c, port, 1, FRAME_SIZE_ERROR)


def test_4_2_headers_over_max_frame_size(srv, port):
    with Conn(port) as c:
        block = _static_get("/4.2.3") + lit("x-big", "b" * 16500)
        assert len(block) > 16384
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        conn_error(c, port, FRAME_SIZE_ERROR)
    never_forwarded(srv, "/4.2.3")


# ==========================================================================
# §4.3 Header compression


@pytest.mark.parametrize("block", [b"\x82\x86\x84\x40", b"\x82\x86\x00\x85abc", b"\x80", b"\xbf",
                                   b"\x82\x86\x7f\x11\x01v"],
                         ids=["truncated", "string-past-end", "index-0", "index-past-table",
                              "name-index-past-table"])
def test_4_3_invalid_header_block(port, block):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        conn_error(c, port, COMPRESSION_ERROR)


def test_4_3_priority_inside_header_block(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM, 1, c.hblock(request("/4.3.2"))),
               frame(PRIORITY, 0, 1, struct.pack("!IB", 0, 15)))
        conn_error(c, port, PROTOCOL_ERROR)


def test_4_3_headers_of_other_stream_inside_header_block(port):
    with Conn(port) as c:
        b1 = c.hblock(request("/4.3.3"))
        c.send(frame(HEADERS, END_STREAM, 1, b1), frame(HEADERS, END_STREAM | END_HEADERS, 3, b1))
        conn_error(c, port, PROTOCOL_ERROR)


# ==========================================================================
# §5.1 Stream states


@pytest.mark.parametrize("f", [frame(DATA, END_STREAM, 1, b"test"),
                               frame(RST_STREAM, 0, 1, rst(CANCEL)),
                               frame(WINDOW_UPDATE, 0, 1, wu(100)),
                               frame(CONTINUATION, END_HEADERS, 1, b"\x82\x86\x84")],
                         ids=["DATA", "RST_STREAM", "WINDOW_UPDATE", "CONTINUATION"])
def test_5_1_idle_stream(port, f):
    with Conn(port) as c:
        c.send(f)
        conn_error(c, port, PROTOCOL_ERROR)


def _half_closed_then(c, kind, path):
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request(path))))
    if kind == "DATA":
        c.send(frame(DATA, END_STREAM, 1, b"test"))
    elif kind == "HEADERS":
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock([("x-trailer", "1")])))
    else:
        c.send(frame(CONTINUATION, END_HEADERS, 1, c.hblock([("x-trailer", "1")])))


@pytest.mark.parametrize("kind", ["DATA", "HEADERS", "CONTINUATION"])
def test_5_1_half_closed_remote(port, kind):
    with Conn(port) as c:
        _half_closed_then(c, kind, f"/5.1.hc.{kind}")
        codes = (STREAM_CLOSED, PROTOCOL_ERROR) if kind == "CONTINUATION" else (STREAM_CLOSED,)
        stream_error(c, port, 1, *codes)


@pytest.mark.parametrize("end_stream", [False, True], ids=["open", "half-closed"])
@pytest.mark.parametrize("kind", ["DATA", "HEADERS", "CONTINUATION"])
def test_5_1_closed_after_rst_stream(srv, port, kind, end_stream):
    with Conn(port) as c:
        path = f"/5.1.rst.{kind}.{end_stream}"
        c.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), 1,
                     c.hblock(request(path, "POST"))),
               frame(RST_STREAM, 0, 1, rst(CANCEL)))
        if kind == "DATA":
            c.send(frame(DATA, END_STREAM, 1, b"test"))
        elif kind == "HEADERS":
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock([("x-trailer", "1")])))
        else:
            c.send(frame(CONTINUATION, END_HEADERS, 1, c.hblock([("x-trailer", "1")])))
        codes = (STREAM_CLOSED, PROTOCOL_ERROR) if kind == "CONTINUATION" else (STREAM_CLOSED,)
        stream_error(c, port, 1, *codes)


@pytest.mark.parametrize("kind", ["DATA", "HEADERS", "CONTINUATION"])
def test_5_1_closed_after_exchange(port, kind):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request(f"/5.1.closed.{kind}"))))
        assert response(c, 1).status == 200
        if kind == "DATA":
            c.send(frame(DATA, END_STREAM, 1, b"test"))
        elif kind == "HEADERS":
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/5.1.again"))))
        else:
            c.send(frame(CONTINUATION, END_HEADERS, 1, c.hblock([("x-trailer", "1")])))
        codes = (STREAM_CLOSED, PROTOCOL_ERROR) if kind == "CONTINUATION" else (STREAM_CLOSED,)
        stream_error(c, port, 1, *codes)


def test_5_1_priority_on_closed_stream_allowed(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/5.1.prio"))))
        assert response(c, 1).status == 200
        c.send(frame(PRIORITY, 0, 1, struct.pack("!IB", 0, 15)))
        ping_ok(c)


def test_5_1_1_even_stream_id(srv, port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 2, c.hblock(request("/5.1.1.even"))))
        conn_error(c, port, PROTOCOL_ERROR)
    never_forwarded(srv, "/5.1.1.even")


def test_5_1_1_decreasing_stream_id(srv, port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 5, c.hblock(request("/5.1.1.a"))))
        assert response(c, 5).status == 200
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, c.hblock(request("/5.1.1.b"))))
        conn_error(c, port, PROTOCOL_ERROR)
    never_forwarded(srv, "/5.1.1.b")


def test_5_1_1_skipped_ids_are_closed(srv, port):
    """Ids may be skipped (1, then 7); a skipped id is closed for good,
    even one a PRIORITY frame had made known (idle): HEADERS on it later
    is PROTOCOL_ERROR. (nghttp2 alone ignores such a HEADERS; h2s keeps
    the ranges of skipped ids.)"""
    with Conn(port) as c:
        c.send(frame(PRIORITY, 0, 5, struct.pack("!IB", 0, 15)),
               frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/5.1.1.s1"))))
        assert response(c, 1).status == 200
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 7, c.hblock(request("/5.1.1.s7"))))
        assert response(c, 7).status == 200
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 5, c.hblock(request("/5.1.1.s5"))))
        conn_error(c, port, PROTOCOL_ERROR)
    never_forwarded(srv, "/5.1.1.s5")


def test_5_1_1_trailers_on_known_stream_not_an_error(srv, port):
    """A later HEADERS on a stream that did open (trailers) is no new
    stream: it ends the request, while a newer stream runs."""
    with Conn(port) as c:
        open_stream(c, 1, "/5.1.1.t1")
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, c.hblock(request("/5.1.1.t3"))))
        assert response(c, 3).status == 200
        c.send(frame(DATA, 0, 1, b"ab"),
               frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock([("x-t", "1")])))
        r = response(c, 1)
        assert r.status == 200 and r.body.startswith(b"POST /5.1.1.t1 2\n"), r.body


def test_5_1_2_over_max_concurrent_streams(port):
    with Conn(port) as c:
        n = c.server_settings[S_MAX_CONCURRENT_STREAMS]
        # all in one write: the server has answered none when the last arrives
        c.send(*[frame(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1, c.hblock(request(f"/5.1.2/{i}")))
                 for i in range(n + 1)])
        stream_error(c, port, 2 * n + 1, REFUSED_STREAM, PROTOCOL_ERROR)


# ==========================================================================
# §5.3 Priority (deprecated by RFC 9113, but self-dependency is still an error)


def test_5_3_headers_depends_on_itself(srv, port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS | PRIO, 1,
                     struct.pack("!IB", 1, 15) + c.hblock(request("/5.3.1"))))
        stream_error(c, port, 1, PROTOCOL_ERROR)
    never_forwarded(srv, "/5.3.1")


def test_5_3_priority_depends_on_itself(port):
    with Conn(port) as c:
        c.send(frame(PRIORITY, 0, 1, struct.pack("!IB", 1, 15)))
        stream_error(c, port, 1, PROTOCOL_ERROR)


# ==========================================================================
# §5.4 Error handling


def test_5_4_connection_error_goaway_then_close(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/5.4.1"))))
        assert response(c, 1).status == 200
        c.send(frame(PING, 0, 3, b"\0" * 8))      # PING on a stream: connection error
        g = conn_error(c, port, PROTOCOL_ERROR)
        last = struct.unpack("!I", g.payload[:4])[0]
        assert last == 1, f"GOAWAY last-stream-id {last}, stream 1 was processed"


# ==========================================================================
# §5.5 Extensions


def test_5_5_unknown_extension_frame_ignored(port):
    with Conn(port) as c:
        c.send(frame(0x16, 0, 0, b"ext"), frame(0x16, 0x1, 3, b"ext"))
        ping_ok(c)


def test_5_5_unknown_frame_inside_header_block(srv, port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM, 1, c.hblock(request("/5.5.2"))), frame(0x16, 0, 1, b"ext"))
        conn_error(c, port, PROTOCOL_ERROR)
    never_forwarded(srv, "/5.5.2")


# ==========================================================================
# §6.1 DATA


def test_6_1_data_on_stream_0(port):
    with Conn(port) as c:
        c.send(frame(DATA, 0, 0, b"test"))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_1_data_on_half_closed_remote(port):
    with Conn(port) as c:
        _half_closed_then(c, "DATA", "/6.1.2")
        stream_error(c, port, 1, STREAM_CLOSED)


def test_6_1_data_pad_length_too_big(port):
    with Conn(port) as c:
        open_stream(c, 1, "/6.1.3", extra=[("content-length", "4")])
        c.send(frame(DATA, END_STREAM | PADDED, 1, b"\x06test"))
        conn_error(c, port, PROTOCOL_ERROR)


@pytest.mark.parametrize("pad", [0, 1, 255])
def test_6_1_data_with_padding(srv, port, pad):
    """generic 3.1: DATA, several DATA, DATA with padding."""
    path = f"/6.1.pad{pad}"
    with Conn(port) as c:
        open_stream(c, 1, path, extra=[("content-length", "8")])
        c.send(frame(DATA, PADDED, 1, bytes([pad]) + b"abcd" + b"\0" * pad),
               frame(DATA, END_STREAM | PADDED, 1, bytes([0]) + b"efgh"))
        r = response(c, 1)
        assert r.status == 200 and r.body.startswith(f"POST {path} 8\n".encode()), r.body
    assert backend_request(srv, path).body == b"abcdefgh"


# ==========================================================================
# §6.2 HEADERS


def test_6_2_priority_inside_header_block(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM, 1, c.hblock(request("/6.2.1"))),
               frame(PRIORITY, 0, 3, struct.pack("!IB", 0, 15)))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_2_headers_on_stream_0(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 0, c.hblock(request("/6.2.3"))))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_2_headers_pad_length_too_big(srv, port):
    with Conn(port) as c:
        block = c.hblock(request("/6.2.4"))
        c.send(frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1, bytes([len(block) + 1]) + block))
        conn_error(c, port, PROTOCOL_ERROR)
    never_forwarded(srv, "/6.2.4")


@pytest.mark.parametrize("pad,prio", [(0, False), (10, False), (0, True), (5, True)],
                         ids=["plain", "padded", "priority", "padded-priority"])
def test_6_2_headers_padding_and_priority(port, pad, prio):
    """generic 3.2: HEADERS with padding, with priority."""
    with Conn(port) as c:
        flags = END_STREAM | END_HEADERS | (PADDED if pad else 0) | (PRIO if prio else 0)
        p = (bytes([pad]) if pad else b"") + (struct.pack("!IB", 0x80000000, 200) if prio else b"") \
            + c.hblock(request(f"/6.2.p{pad}{prio}")) + b"\0" * pad
        c.send(frame(HEADERS, flags, 1, p))
        assert response(c, 1).status == 200


# ==========================================================================
# §6.3 PRIORITY


def test_6_3_priority_on_stream_0(port):
    with Conn(port) as c:
        c.send(frame(PRIORITY, 0, 0, struct.pack("!IB", 1, 15)))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_3_priority_wrong_length(port):
    with Conn(port) as c:
        c.send(frame(PRIORITY, 0, 1, struct.pack("!I", 0)))
        stream_error(c, port, 1, FRAME_SIZE_ERROR)


@pytest.mark.parametrize("dep", [0, 0x80000000, 3], ids=["default", "exclusive", "on-idle"])
def test_6_3_priority_accepted(port, dep):
    """generic 2 / 3.3: PRIORITY on idle, open and closed streams."""
    with Conn(port) as c:
        c.send(frame(PRIORITY, 0, 1, struct.pack("!IB", dep, 15)),
               frame(PRIORITY, 0, 7, struct.pack("!IB", dep, 100)))
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.3.ok"))),
               frame(PRIORITY, 0, 1, struct.pack("!IB", 0, 1)))
        assert response(c, 1).status == 200
        ping_ok(c)


# ==========================================================================
# §6.4 RST_STREAM


def test_6_4_rst_stream_on_stream_0(port):
    with Conn(port) as c:
        c.send(frame(RST_STREAM, 0, 0, rst(CANCEL)))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_4_rst_stream_on_idle_stream(port):
    with Conn(port) as c:
        c.send(frame(RST_STREAM, 0, 1, rst(CANCEL)))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_4_rst_stream_wrong_length(port):
    with Conn(port) as c:
        open_stream(c, 1, "/6.4.3")
        c.send(frame(RST_STREAM, 0, 1, b"\0\0\0"))
        conn_error(c, port, FRAME_SIZE_ERROR)


def test_6_4_rst_stream_on_open_stream(port):
    """generic 3.4: the stream ends, the connection goes on."""
    with Conn(port) as c:
        open_stream(c, 1, "/6.4.ok")
        c.send(frame(RST_STREAM, 0, 1, rst(CANCEL)))
        ping_ok(c)
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, c.hblock(request("/6.4.after"))))
        assert response(c, 3).status == 200


# ==========================================================================
# §6.5 SETTINGS


@pytest.mark.parametrize("f,code", [
    (frame(SETTINGS, ACK, 0, b"\0" * 6), FRAME_SIZE_ERROR),
    (frame(SETTINGS, 0, 1, settings((S_MAX_CONCURRENT_STREAMS, 100))), PROTOCOL_ERROR),
    (frame(SETTINGS, 0, 0, b"\0\x03\0"), FRAME_SIZE_ERROR),
    (frame(SETTINGS, 0, 0, settings((S_ENABLE_PUSH, 2))), PROTOCOL_ERROR),
    (frame(SETTINGS, 0, 0, settings((S_INITIAL_WINDOW_SIZE, 1 << 31))), FLOW_CONTROL_ERROR),
    (frame(SETTINGS, 0, 0, settings((S_MAX_FRAME_SIZE, 16383))), PROTOCOL_ERROR),
    (frame(SETTINGS, 0, 0, settings((S_MAX_FRAME_SIZE, 1 << 24))), PROTOCOL_ERROR),
], ids=["ack-with-payload", "stream-1", "length-3", "enable-push-2", "initial-window-2^31",
        "max-frame-16383", "max-frame-2^24"])
def test_6_5_invalid_settings(port, f, code):
    with Conn(port) as c:
        c.send(f)
        conn_error(c, port, code)


def test_6_5_settings_acknowledged_unknown_ignored(port):
    with Conn(port) as c:
        n = len(c.frames)
        c.send(frame(SETTINGS, 0, 0, settings((0xFF, 1), (0x4242, 0xFFFFFFFF))))
        c.wait(lambda f: f.type == SETTINGS and f.flags & ACK and c.frames.index(f) >= n)
        ping_ok(c)


def test_6_5_every_valid_setting(port):
    """generic 3.5: each setting at a valid value, then a request."""
    with Conn(port, local_settings=[(S_HEADER_TABLE_SIZE, 8192), (S_ENABLE_PUSH, 0),
                                    (S_MAX_CONCURRENT_STREAMS, 0), (S_INITIAL_WINDOW_SIZE, 65535),
                                    (S_MAX_FRAME_SIZE, (1 << 24) - 1),
                                    (S_MAX_HEADER_LIST_SIZE, 1 << 20)]) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.5.all"))))
        assert response(c, 1).status == 200


def test_6_5_header_table_size_0_honoured(port):
    """Our SETTINGS_HEADER_TABLE_SIZE 0: the server's encoder must not use
    its dynamic table (a decoder with no table decodes every response)."""
    with Conn(port, local_settings=[(S_HEADER_TABLE_SIZE, 0)]) as c:
        c.dec.max_allowed_table_size = 0
        c.dec.header_table_size = 0
        for sid in (1, 3, 5):
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, sid, c.hblock(request("/6.5.ht0"))))
            r = response(c, sid)
            assert r.status == 200 and dict(r.headers).get("content-type") == "text/plain", r.headers


# ==========================================================================
# §6.7 PING


def test_6_7_ping_echoed(port):
    with Conn(port) as c:
        ping_ok(c, b"\x01\x02\x03\x04\x05\x06\x07\x08")


def test_6_7_ping_ack_not_answered(port):
    with Conn(port) as c:
        c.send(frame(PING, ACK, 0, b"unsolici"))
        ping_ok(c, b"expected")
        assert not [f for f in c.frames if f.type == PING and f.payload == b"unsolici"]


def test_6_7_ping_on_stream(port):
    with Conn(port) as c:
        c.send(frame(PING, 0, 1, b"\0" * 8))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_7_ping_wrong_length(port):
    with Conn(port) as c:
        c.send(frame(PING, 0, 0, b"\0" * 6))
        conn_error(c, port, FRAME_SIZE_ERROR)


# ==========================================================================
# §6.8 GOAWAY


def test_6_8_goaway_on_stream(port):
    with Conn(port) as c:
        c.send(frame(GOAWAY, 0, 1, struct.pack("!II", 0, NO_ERROR)))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_8_goaway_from_client_closes(port):
    """generic 3.8: the client's GOAWAY with no stream open ends it."""
    with Conn(port) as c:
        c.send(frame(GOAWAY, 0, 0, struct.pack("!II", 0, NO_ERROR)))
        c.quiet(t(3))
        assert c.eof, c.frames[-5:]
    alive(port)


def test_6_8_goaway_from_client_open_stream_finishes(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.8.fin"))),
               frame(GOAWAY, 0, 0, struct.pack("!II", 0, NO_ERROR)))
        assert response(c, 1).status == 200
        c.quiet(t(3))
        assert c.eof


# ==========================================================================
# §6.9 WINDOW_UPDATE and flow control


def test_6_9_window_update_0_on_connection(port):
    with Conn(port) as c:
        c.send(frame(WINDOW_UPDATE, 0, 0, wu(0)))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_9_window_update_0_on_stream(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.9.2"))),
               frame(WINDOW_UPDATE, 0, 1, wu(0)))
        stream_error(c, port, 1, PROTOCOL_ERROR)


def test_6_9_window_update_wrong_length(port):
    with Conn(port) as c:
        c.send(frame(WINDOW_UPDATE, 0, 0, b"\0\0\x01"))
        conn_error(c, port, FRAME_SIZE_ERROR)


def test_6_9_window_updates_accepted(port):
    """generic 3.9: WINDOW_UPDATE on the connection and on a stream."""
    with Conn(port) as c:
        c.send(frame(WINDOW_UPDATE, 0, 0, wu(1000)),
               frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.9.ok"))),
               frame(WINDOW_UPDATE, 0, 1, wu(1000)))
        assert response(c, 1).status == 200


def test_6_9_1_initial_window_1(port):
    """Window 1: DATA frames of one byte, one per WINDOW_UPDATE."""
    with Conn(port, local_settings=[(S_INITIAL_WINDOW_SIZE, 1)]) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.9.1.1"))))
        body = b""
        f = c.wait(lambda f: f.sid == 1 and f.type == DATA, what="first DATA")
        for i in range(5):
            assert len(f.payload) == 1 and not f.flags & END_STREAM, f
            body += f.payload
            assert not [g for g in c.quiet(0.1) if g.type == DATA], "DATA beyond the window"
            c.send(frame(WINDOW_UPDATE, 0, 1, wu(1)))
            f = c.wait(lambda f: f.sid == 1 and f.type == DATA, what="DATA after WINDOW_UPDATE")
        assert len(f.payload) == 1
        body += f.payload
        c.send(frame(WINDOW_UPDATE, 0, 1, wu(1000)))
        r = response(c, 1, window=False)
        assert r.body.startswith(body) and r.data_frames[:6] == [1] * 6, r.data_frames
        assert r.body.startswith(b"GET /6.9.1.1 0\n"), r.body


def test_6_9_1_connection_window_overflow(port):
    with Conn(port) as c:
        c.send(frame(WINDOW_UPDATE, 0, 0, wu(0x7FFFFFFF)))
        conn_error(c, port, FLOW_CONTROL_ERROR)


def test_6_9_1_stream_window_overflow(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.9.1.3"))),
               frame(WINDOW_UPDATE, 0, 1, wu(0x7FFFFFFF)))
        stream_error(c, port, 1, FLOW_CONTROL_ERROR)


def test_6_9_2_initial_window_changed_after_headers(port):
    with Conn(port, local_settings=[(S_INITIAL_WINDOW_SIZE, 0)]) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.9.2.1"))))
        c.wait(lambda f: f.sid == 1 and f.type == HEADERS, what="response HEADERS")
        assert not [g for g in c.quiet(0.2) if g.type == DATA], "DATA with a window of 0"
        c.send(frame(SETTINGS, 0, 0, settings((S_INITIAL_WINDOW_SIZE, 1))))
        f = c.wait(lambda f: f.sid == 1 and f.type == DATA, what="DATA after the window opened")
        assert len(f.payload) == 1, f


def test_6_9_2_negative_window(port):
    """Window 3, 3 bytes sent, window set to 1: -2. Two more bytes of
    WINDOW_UPDATE bring it to 0 (nothing sent), one more lets a byte go."""
    with Conn(port, local_settings=[(S_INITIAL_WINDOW_SIZE, 3)]) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/6.9.2.2"))))
        got = 0
        while got < 3:
            f = c.wait(lambda f: f.sid == 1 and f.type == DATA, what="DATA")
            got += len(f.payload)
        assert got == 3
        c.send(frame(SETTINGS, 0, 0, settings((S_INITIAL_WINDOW_SIZE, 1))))
        c.send(frame(WINDOW_UPDATE, 0, 1, wu(2)))
        assert not [g for g in c.quiet(0.2) if g.type == DATA], "DATA with a window of -2 + 2"
        c.send(frame(WINDOW_UPDATE, 0, 1, wu(1)))
        f = c.wait(lambda f: f.sid == 1 and f.type == DATA, what="DATA")
        assert len(f.payload) == 1, f


# ==========================================================================
# §6.10 CONTINUATION


def test_6_10_continuations(srv, port):
    """generic 3.10: HEADERS + CONTINUATION frames, and an empty one."""
    with Conn(port) as c:
        block = c.hblock(request("/6.10.1", extra=[("x-c", "v" * 100)]))
        c.send(frame(HEADERS, END_STREAM, 1, block[:10]), frame(CONTINUATION, 0, 1, block[10:50]),
               frame(CONTINUATION, 0, 1, b""), frame(CONTINUATION, END_HEADERS, 1, block[50:]))
        assert response(c, 1).status == 200
    assert backend_request(srv, "/6.10.1").header("x-c") == "v" * 100


def test_6_10_continuation_then_other_frame(port):
    with Conn(port) as c:
        block = c.hblock(request("/6.10.2"))
        c.send(frame(HEADERS, 0, 1, block[:5]), frame(CONTINUATION, 0, 1, block[5:]),
               frame(DATA, END_STREAM, 1, b"test"))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_10_continuation_on_stream_0(port):
    with Conn(port) as c:
        block = c.hblock(request("/6.10.3"))
        c.send(frame(HEADERS, END_STREAM, 1, block[:5]), frame(CONTINUATION, END_HEADERS, 0, block[5:]))
        conn_error(c, port, PROTOCOL_ERROR)


def test_6_10_continuation_after_end_headers(port):
    with Conn(port) as c:
        block = c.hblock(request("/6.10.4"))
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block),
               frame(CONTINUATION, END_HEADERS, 1, c.hblock([("x-more", "1")])))
        conn_error(c, port, PROTOCOL_ERROR, STREAM_CLOSED)


def test_6_10_continuation_after_continuation_end_headers(port):
    with Conn(port) as c:
        block = c.hblock(request("/6.10.5"))
        c.send(frame(HEADERS, END_STREAM, 1, block[:5]), frame(CONTINUATION, END_HEADERS, 1, block[5:]),
               frame(CONTINUATION, END_HEADERS, 1, c.hblock([("x-more", "1")])))
        conn_error(c, port, PROTOCOL_ERROR, STREAM_CLOSED)


def test_6_10_continuation_after_data(port):
    with Conn(port) as c:
        open_stream(c, 1, "/6.10.6")
        c.send(frame(DATA, 0, 1, b"test"), frame(CONTINUATION, END_HEADERS, 1, c.hblock([("x-more", "1")])))
        conn_error(c, port, PROTOCOL_ERROR)


# ==========================================================================
# §8.1 HTTP request / response exchange (and generic 4)


def test_8_1_get(srv, port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                     c.hblock(request("/8.1.get?x=1", extra=[("user-agent", "h2conf")]))))
        r = response(c, 1)
        assert r.status == 200 and r.body.startswith(b"GET /8.1.get?x=1 0\n"), r.body
        assert dict(r.headers).get("content-type") == "text/plain", r.headers
        assert not [n for n, _ in r.headers if n in ("connection", "transfer-encoding", "keep-alive")]
    req = backend_request(srv, "/8.1.get?x=1")
    assert req.header("Host") == "localhost" and req.header("User-Agent") == "h2conf", req.headers


def test_8_1_head_and_204(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(request("/8.1.head", "HEAD"))),
               frame(HEADERS, END_STREAM | END_HEADERS, 3, c.hblock(request("/empty"))))
        r1, r3 = response(c, 1), response(c, 3)
        assert r1.status == 200 and r1.body == b"" and r3.status == 204 and r3.body == b""
        assert not [f for f in c.frames if f.type == DATA and f.payload], c.frames


def test_8_1_post(srv, port):
    with Conn(port) as c:
        open_stream(c, 1, "/8.1.post", extra=[("content-length", "10")])
        c.send(frame(DATA, 0, 1, b"01234"), frame(DATA, END_STREAM, 1, b"56789"))
        r = response(c, 1)
        assert r.status == 200 and r.body.startswith(b"POST /8.1.post 10\n"), r.body
    assert backend_request(srv, "/8.1.post").body == b"0123456789"


def test_8_1_post_with_trailers(srv, port):
    with Conn(port) as c:
        open_stream(c, 1, "/8.1.trailers", extra=[("te", "trailers")])
        c.send(frame(DATA, 0, 1, b"test"),
               frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock([("x-trailer", "yes")])))
        r = response(c, 1)
        assert r.status == 200 and r.body.startswith(b"POST /8.1.trailers 4\n"), r.body
    req = backend_request(srv, "/8.1.trailers")
    assert req.body == b"test" and ("x-trailer", "yes") in [(n.lower(), v) for n, v in req.trailers], \
        req.trailers


def test_8_1_trailers_without_end_stream(srv, port):
    with Conn(port) as c:
        open_stream(c, 1, "/8.1.1")
        c.send(frame(DATA, 0, 1, b"test"), frame(HEADERS, END_HEADERS, 1, c.hblock([("x-trailer", "1")])))
        stream_error(c, port, 1, PROTOCOL_ERROR)


def test_8_1_data_after_end_stream(port):
    with Conn(port) as c:
        _half_closed_then(c, "DATA", "/8.1.es-data")
        stream_error(c, port, 1, STREAM_CLOSED)


# ==========================================================================
# §8.1.2 (RFC 9113 §8.2, §8.3) header fields: malformed requests are stream
# errors of type PROTOCOL_ERROR and never forwarded


MALFORMED = {
    "uppercase-name": lambda p: request(p, extra=[("X-Upper", "v")]),
    "pseudo-after-regular": lambda p: [(":method", "GET"), (":scheme", "http"), ("x-a", "b"),
                                       (":path", p), (":authority", "localhost")],
    "unknown-pseudo": lambda p: request(p, extra=[(":foo", "bar")]),
    "response-pseudo": lambda p: request(p, extra=[(":status", "200")]),
    "connection": lambda p: request(p, extra=[("connection", "keep-alive")]),
    "keep-alive": lambda p: request(p, extra=[("keep-alive", "timeout=5")]),
    "transfer-encoding": lambda p: request(p, extra=[("transfer-encoding", "chunked")]),
    "upgrade": lambda p: request(p, extra=[("upgrade", "websocket")]),
    "te-not-trailers": lambda p: request(p, extra=[("te", "trailers, deflate")]),
    "empty-path": lambda p: [(":method", "GET"), (":scheme", "http"), (":path", ""),
                             (":authority", "localhost"), ("x-p", p)],
    "missing-method": lambda p: [(":scheme", "http"), (":path", p), (":authority", "localhost")],
    "missing-scheme": lambda p: [(":method", "GET"), (":path", p), (":authority", "localhost")],
    "missing-path": lambda p: [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
                               ("x-p", p)],
    "duplicate-method": lambda p: request(p, extra=[(":method", "GET")]),
    "duplicate-scheme": lambda p: request(p, extra=[(":scheme", "http")]),
    "duplicate-path": lambda p: request(p, extra=[(":path", p)]),
    "path-not-origin-form": lambda p: [(":method", "GET"), (":scheme", "http"),
                                       (":path", "x" + p), (":authority", "localhost")],
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_8_1_2_malformed_request(srv, port, case):
    path = f"/8.1.2.{case}"
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock(MALFORMED[case](path))))
        stream_error(c, port, 1, PROTOCOL_ERROR)
    never_forwarded(srv, path)
    never_forwarded(srv, "x" + path)


def test_8_1_2_pseudo_header_in_trailers(port):
    with Conn(port) as c:
        open_stream(c, 1, "/8.1.2.trailer-pseudo")
        c.send(frame(DATA, 0, 1, b"test"),
               frame(HEADERS, END_STREAM | END_HEADERS, 1, c.hblock([(":method", "POST")])))
        stream_error(c, port, 1, PROTOCOL_ERROR)


@pytest.mark.parametrize("sizes", [[4], [2, 2]], ids=["single-DATA", "multiple-DATA"])
def test_8_1_2_content_length_mismatch(port, sizes):
    with Conn(port) as c:
        open_stream(c, 1, "/8.1.2.cl", extra=[("content-length", "1")])
        frames = [frame(DATA, END_STREAM if i == len(sizes) - 1 else 0, 1, b"x" * n)
                  for i, n in enumerate(sizes)]
        c.send(*frames)
        stream_error(c, port, 1, PROTOCOL_ERROR)


def test_8_1_2_content_length_more_than_data(port):
    with Conn(port) as c:
        open_stream(c, 1, "/8.1.2.cl-short", extra=[("content-length", "10")])
        c.send(frame(DATA, END_STREAM, 1, b"12345"))
        stream_error(c, port, 1, PROTOCOL_ERROR)


def test_8_1_2_te_trailers_allowed(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                     c.hblock(request("/8.1.2.te", extra=[("te", "trailers")]))))
        assert response(c, 1).status == 200


# ==========================================================================
# §8.2 (RFC 9113 §8.4) server push


def test_8_2_push_promise_from_client(port):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_HEADERS, 1, c.hblock(request("/8.2", "POST"))),
               frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack("!I", 2) + c.hblock(request("/pushed"))))
        conn_error(c, port, PROTOCOL_ERROR)


# ==========================================================================
# HPACK (RFC 7541): representations, and decoding errors as
# COMPRESSION_ERROR


def _static_get(path):
    # :method GET (2), :scheme http (6), :path as a literal with name 4
    return b"\x82\x86" + lit_idx(4, path) + lit_idx(1, "localhost")


@pytest.mark.parametrize("kind,huffman", [(0x40, False), (0x00, False), (0x10, False),
                                          (0x40, True), (0x00, True), (0x10, True)],
                         ids=["incremental", "without-indexing", "never-indexed",
                              "incremental-huffman", "without-indexing-huffman",
                              "never-indexed-huffman"])
def test_hpack_literal_representations(srv, port, kind, huffman):
    path = f"/hpack.{kind}.{huffman}"
    with Conn(port) as c:
        block = b"\x82\x86" + lit_idx(4, path, kind, huffman) + lit_idx(1, "localhost", kind, huffman) \
            + lit("x-new-name", "new value", kind, huffman) \
            + lit_idx(58, "h2conf-agent", kind, huffman)    # 58: user-agent
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        assert response(c, 1).status == 200
        req = backend_request(srv, path)
        assert req.header("x-new-name") == "new value" and req.header("user-agent") == "h2conf-agent"
        if kind == 0x40:
            # the dynamic table now holds (newest first) user-agent, x-new-name,
            # localhost, path: index them
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, b"\x82\x86" + bytes([0x80 | 65, 0x80 | 64,
                                                                                   0x80 | 63, 0x80 | 62])))
            assert response(c, 3).status == 200
            assert len([r for r in srv.backend.requests if r.target == path]) == 2
            req = [r for r in srv.backend.requests if r.target == path][1]
            assert req.header("x-new-name") == "new value" and req.header("user-agent") == "h2conf-agent"


def test_hpack_table_size_updates(srv, port):
    """Size updates at the start of a block (0, then 4096: two are
    allowed) empty the dynamic table."""
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, _static_get("/hpack.tsu") + lit("x-a", "1", 0x40)))
        assert response(c, 1).status == 200
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, b"\x20" + hint(4096, 5, 0x20)
                     + _static_get("/hpack.tsu2") + lit("x-b", "2", 0x40) + bytes([0x80 | 62])))
        assert response(c, 3).status == 200
        assert backend_request(srv, "/hpack.tsu2").header_all("x-b") == ["2", "2"]


@pytest.mark.parametrize("block", [
    _static_get("/hpack.bad") + hint(4097, 5, 0x20),
    hint(4097, 5, 0x20) + _static_get("/hpack.bad"),
    _static_get("/hpack.bad") + b"\x00\x01x\x82\x1f\xff",     # 'a' + padding over 7 bits
    _static_get("/hpack.bad") + b"\x00\x01x\x81\x18",         # padding not all ones
    _static_get("/hpack.bad") + b"\x00\x01x\x84\xff\xff\xff\xff",   # EOS in the string
    _static_get("/hpack.bad") + b"\x80",
], ids=["size-update-at-end", "size-update-over-limit", "huffman-long-padding",
        "huffman-bad-padding", "huffman-eos", "index-0"])
def test_hpack_invalid(srv, port, block):
    with Conn(port) as c:
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        conn_error(c, port, COMPRESSION_ERROR)
    never_forwarded(srv, "/hpack.bad")
