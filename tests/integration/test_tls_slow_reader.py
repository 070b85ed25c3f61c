"""Keep-alive HTTP/1.1 clients over TLS that stop reading and read slowly:
pipelined responses of 3 MB arrive whole. (OpenSSL's write retry rule --
after WANT_WRITE, ask again for at least as many bytes -- when moat flushes
a response head alone after offering it gathered with body bytes, is
checked deterministically in tests/unit/tls/tls_test.c,
test_shorter_retry.)"""
import hashlib
import socket
import ssl
import time

from harness import free_port, huge, pattern_sha256, t
from tls_util import pki, tls_listener  # noqa: F401

SIZE = 3_000_000


def _read_response(buf, f):
    while b"\r\n\r\n" not in buf:
        buf += f()
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 200"), head
    n = next(int(l.split(b":")[1]) for l in lines[1:] if l.lower().startswith(b"content-length:"))
    while len(rest) < n:
        rest += f()
    return rest[:n], rest[n:]


def test_pipelined_responses_to_a_slow_tls_reader(make_backend, make_moat, pki):
    b = make_backend(huge(SIZE))
    port = free_port()
    make_moat([b], {"listeners": [tls_listener(port, pki, ("ec",))]})
    ctx = ssl.create_default_context(cafile=pki.ca)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(t(30))
    raw.connect(("127.0.0.1", port))
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        req = b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"
        s.sendall(req * 3)
        time.sleep(1)  # reads nothing: moat's socket fills at a response's head

        def slow():
            time.sleep(0.001)
            d = s.recv(65536)
            assert d, "connection closed early"
            return d

        rest = b""
        for _ in range(3):
            body, rest = _read_response(rest, slow)
            assert hashlib.sha256(body).hexdigest() == pattern_sha256(SIZE), len(body)
