"""An adversarial review of the TLS layer (src/tls/tls.c, src/proxy/tlsconn.c,
the https:// backends of src/proxy/backend.c) with real clients: odd
ClientHellos (split into records, a byte at a time, over 16 KiB), garbage
and alerts, SNI spellings, renegotiation and key updates, resumption across
reloads and listeners, client certificates, OCSP files replaced at run
time, unusual key files, https:// backends that misbehave, and memory over
many handshakes.

Extra certificates beside tls_util's PKI are made here (module fixture
`more`) with the openssl CLI, signed by the same test CAs.
"""

import os
import pty
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import ASAN, MOAT_BIN, Client, free_port, get, make_config, t, to_yaml, wait_for
from tls_util import (OPENSSL, TLSBackend, TLSClient, echo_json, hdrs, http_get, https_curl,  # noqa: F401
                      pki, s_client, server_ctx, tls_listener)


def run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, timeout=60)
    assert p.returncode == 0, f"{args} failed:\n{p.stderr.decode(errors='replace')}"
    return p


class More:
    """Certificates beside the PKI's (all in pki.dir, named review_*)."""

    def __init__(self, pki):
        d = pki.dir
        self.dir = d
        # An expired client certificate of the client CA.
        pki._leaf("review_cexp", "/CN=old-alice/O=Test", ca="client_ca", client=True, expired=True)
        self.cexp, self.cexp_key = pki.p("review_cexp.pem"), pki.p("review_cexp.key")
        # A client certificate whose subject has commas, quotes, UTF-8 and a CR LF.
        run([OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", "review_odd.key"], d)
        subj = '/CN=Zo\u00eb, "q" <x>;y=z\r\nX-Injected: 1/O=A\\+B'
        run([OPENSSL, "req", "-new", "-utf8", "-key", "review_odd.key", "-subj", subj,
             "-out", "review_odd.csr"], d)
        (d / "review_odd.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        run([OPENSSL, "x509", "-req", "-in", "review_odd.csr", "-CA", "client_ca.pem", "-CAkey",
             "client_ca.key", "-days", "30", "-sha256", "-extfile", "review_odd.ext",
             "-CAcreateserial", "-out", "review_odd.pem"], d)
        self.odd, self.odd_key = pki.p("review_odd.pem"), pki.p("review_odd.key")
        # A server certificate with a 4096-bit RSA key.
        run([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096",
             "-out", "review_rsa4k.key"], d)
        run([OPENSSL, "req", "-new", "-key", "review_rsa4k.key", "-subj", "/CN=localhost-rsa4k",
             "-out", "review_rsa4k.csr"], d)
        (d / "review_rsa4k.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                                            "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run([OPENSSL, "x509", "-req", "-in", "review_rsa4k.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-days", "30", "-sha256", "-extfile", "review_rsa4k.ext", "-CAcreateserial",
             "-out", "review_rsa4k.pem"], d)
        self.rsa4k, self.rsa4k_key = pki.p("review_rsa4k.pem"), pki.p("review_rsa4k.key")
        # The key of `ec`, encrypted with a passphrase.
        run([OPENSSL, "pkey", "-in", "ec.key", "-aes-256-cbc", "-passout", "pass:secret",
             "-out", "review_enc.key"], d)
        self.enc_key = pki.p("review_enc.key")
        # The same for the client certificate (upstream mTLS).
        run([OPENSSL, "pkey", "-in", "client.key", "-aes-256-cbc", "-passout", "pass:secret",
             "-out", "review_cenc.key"], d)
        self.cenc_key = pki.p("review_cenc.key")
        # The chain file in the wrong order: the CA first, then the leaf.
        (d / "review_rev_chain.pem").write_text(Path(pki.ca).read_text() + Path(pki.ec).read_text())
        self.rev_chain = pki.p("review_rev_chain.pem")
        # A self-signed server certificate for localhost.
        run([OPENSSL, "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "review_self.key", "-subj", "/CN=localhost-self", "-days", "30",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-out", "review_self.pem"], d)
        self.self_, self.self_key = pki.p("review_self.pem"), pki.p("review_self.key")
        # An OCSP response for ec2 (not for ec).
        pki._ocsp("ec2", "ca", "review_ocsp_ec2")
        self.ocsp_ec2 = pki.p("review_ocsp_ec2.der")


@pytest.fixture(scope="module")
def more(pki):
    return More(pki)


def tls_moat(make_moat, backends, pki, names=("ec",), config=None, env=None, **tls):
    port = free_port()
    cfg = dict(config or {})
    cfg["listeners"] = [tls_listener(port, pki, names, **tls)]
    return make_moat(backends, cfg, env=env)


def ok_request(port, pki, servername="localhost"):
    r = s_client(port, servername=servername, ca=pki.ca, request=http_get())
    assert r.ok and r.status == 200, r
    return r


# --------------------------------------------------------------------------
# ClientHellos on the wire


def client_ctx(ca=None, alpn=("http/1.1",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def records(data):
    """[(type, payload)] of whole TLS records in data."""
    out = []
    pos = 0
    while pos + 5 <= len(data):
        n = int.from_bytes(data[pos + 3:pos + 5], "big")
        out.append((data[pos], data[pos + 5:pos + 5 + n]))
        pos += 5 + n
    assert pos == len(data), "a partial record"
    return out


def refragment(data, size):
    """The handshake bytes of `data` again, in records of `size` bytes."""
    body = b"".join(p for typ, p in records(data) if typ == 22)
    assert len(body) == sum(len(p) for _, p in records(data)), "not only handshake records"
    out = bytearray()
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"\x16\x03\x01" + len(piece).to_bytes(2, "big") + piece
    return bytes(out)


class MemTLS:
    """A TLS client on a socket through ssl.MemoryBIO, so that the bytes of
    its first flight can be rewritten and paced by the test."""

    def __init__(self, port, ctx, servername="localhost"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=t(10))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=servername)

    def handshake(self, first_flight=None):
        first = True
        while True:
            try:
                self.obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            data = self.out.read()
            if data:
                if first and first_flight:
                    first_flight(self.sock, data)
                else:
                    self.sock.sendall(data)
                first = False
            if done:
                return
            chunk = self.sock.recv(65536)
            assert chunk, "moat closed during the handshake"
            self.inc.write(chunk)

    def request(self, raw):
        """Sends raw; returns what came back until the end of one response
        with Content-Length, or EOF."""
        self.obj.write(raw)
        self.sock.sendall(self.out.read())
        got = bytearray()
        while True:
            end = got.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"\r\ncontent-length: *(\d+)", bytes(got[:end]), re.I)
                if m and len(got) >= end + 4 + int(m.group(1)):
                    return bytes(got)
            try:
                got += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return bytes(got)
            chunk = self.sock.recv(65536)
            if not chunk:
                return bytes(got)
            self.inc.write(chunk)

    def close(self):
        self.sock.close()


REQ_CLOSE = b"GET /split HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_clienthello_in_small_records_a_byte_at_a_time(make_backend, make_moat, pki, version):
    b = make_backend()
    m = tls_moat(make_moat, [b], pki)
    ctx = client_ctx(pki.ca)
    ctx.maximum_version = version

    def paced(sock, data):
        wire = refragment(data, 37)
        assert len(records(wire)) > 3
        for i in range(len(wire)):
            sock.send(wire[i:i + 1])
            if i % 8 == 0:
                time.sleep(0.001)

    c = MemTLS(m.port, ctx)
    try:
        c.handshake(paced)
        got = c.request(REQ_CLOSE)
    finally:
        c.close()
    assert got.startswith(b"HTTP/1.1 200 "), got[:200]
    assert b.wait_requests(1)[0].target == "/split"


def test_clienthello_over_16k(make_backend, make_moat, pki):
    """A ClientHello of ~20 KiB (a long ALPN list), in records of 1000 bytes:
    beyond what the fingerprint parser looks at, the handshake goes on."""
    b = make_backend()
    m = tls_moat(make_moat, [b], pki)
    protos = [("x%03d" % i) * 60 for i in range(80)] + ["http/1.1"]
    ctx = client_ctx(pki.ca, alpn=protos)
    sizes = []

    def big(sock, data):
        sizes.append(sum(len(p) for _, p in records(data)))
        sock.sendall(refragment(data, 1000))

    c = MemTLS(m.port, ctx)
    try:
        c.handshake(big)
        assert c.obj.selected_alpn_protocol() == "http/1.1"
        got = c.request(REQ_CLOSE)
    finally:
        c.close()
    assert sizes[0] > 16384, sizes
    assert got.startswith(b"HTTP/1.1 200 "), got[:200]


@pytest.mark.parametrize("junk", [
    b"\x16\x03\x01\x00\x50\x01\x00\x00\x4c\x03\x03" + b"\x00" * 10,        # hello cut short
    b"\x16\x03\x01\x00\x30" + bytes(range(48)),                           # a record of junk
    bytes((i * 37 + 11) % 256 for i in range(300)),                       # not TLS at all
    b"\x15\x03\x03\x00\x02\x02\x28",                                      # an alert first
], ids=["cut", "junk-record", "noise", "alert"])
def test_garbage_then_eof_during_handshake(make_backend, make_moat, pki, junk):
    b = make_backend()
    m = tls_moat(make_moat, [b], pki)
    with Client(m.port, timeout=t(5)) as c:
        c.send(junk)
        c.sock.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        assert c.wait_closed(t(3)), "moat held a half-closed handshake open"
        assert time.monotonic() - t0 < t(3)
    ok_request(m.port, pki)
    assert m.alive()


def test_alerts_and_close_notify_mid_stream(make_backend, make_moat, pki):
    b = make_backend()
    m = tls_moat(make_moat, [b], pki)
    # A plaintext fatal alert after the handshake (TLS 1.3: must be encrypted).
    c = MemTLS(m.port, client_ctx(pki.ca))
    try:
        c.handshake()
        assert c.request(b"GET /1 HTTP/1.1\r\nHost: localhost\r\n\r\n")[:12] == b"HTTP/1.1 200"
    except AssertionError:
        c.close()
        raise
    c.sock.sendall(b"\x15\x03\x03\x00\x02\x02\x28")
    c.sock.settimeout(t(3))
    try:
        while c.sock.recv(4096):   # an alert from moat, then its FIN
            pass
    except ConnectionResetError:
        pass
    c.close()
    # A close_notify between two requests: moat closes too.
    c = TLSClient(m.port, ca=pki.ca)
    assert c.request("GET", "/2", host="localhost").status == 200
    c.sock = c.sock.unwrap()
    c.sock.settimeout(t(3))
    assert c.sock.recv(100) == b""
    c.close()
    ok_request(m.port, pki)


# --------------------------------------------------------------------------
# SNI


def test_sni_spellings(make_backend, make_moat, pki):
    m = tls_moat(make_moat, [make_backend()], pki, names=("ec", "a", "wild"))
    cases = {
        "A.TEST": "CN = a.test",
        "a.test.": "CN = a.test",
        "X.Wild.Test": "CN = wild",
        "x.wild.test.": "CN = wild",
        "a.b.wild.test": "CN = localhost-ec",   # two labels: the default
        ".wild.test": "CN = localhost-ec",
        "127.0.0.1": "CN = localhost-ec",
        None: "CN = localhost-ec",
    }
    for name, subject in cases.items():
        r = s_client(m.port, servername=name, request=http_get())
        assert r.ok and r.subject == subject and r.status == 200, (name, r)


def test_rsa_only_client_against_ecdsa_only_listener(make_backend, make_moat, pki):
    b = make_backend()
    m = tls_moat(make_moat, [b], pki, names=("ec",))
    r = s_client(m.port, servername="localhost", version="1.2", sigalgs="RSA+SHA256",
                 cipher="ECDHE-RSA-AES128-GCM-SHA256", request=http_get())
    assert not r.ok and r.status is None, r
    assert "alert" in r.out, r
    assert b.connections == 0
    ok_request(m.port, pki)


# --------------------------------------------------------------------------
# Renegotiation and key updates (s_client's command letters)


def interactive(port, steps, version, wait_exit=t(5)):
    """s_client (command letters on); steps: bytes to write or a float to
    sleep. Returns its output."""
    args = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
            {"1.2": "-tls1_2", "1.3": "-tls1_3"}[version]]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for s in steps:
            if isinstance(s, float):
                time.sleep(s)
            else:
                p.stdin.write(s)
                p.stdin.flush()
        out, _ = p.communicate(timeout=wait_exit)
    except (subprocess.TimeoutExpired, BrokenPipeError):
        p.kill()
        out, _ = p.communicate()
    return out.decode("utf-8", "replace")


KA = b"GET /ka HTTP/1.1\r\nHost: localhost\r\n\r\n"
LAST = b"GET /last HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def test_renegotiation_refused(make_backend, make_moat, pki):
    b = make_backend()
    m = tls_moat(make_moat, [b], pki)
    out = interactive(m.port, [0.3, KA, 0.4, b"R\n", 0.5, LAST, 0.5], "1.2")
    assert "RENEGOTIATING" in out, out
    assert out.count("HTTP/1.1 200") >= 1, out
    # moat said no (no_renegotiation); the client gave up on its side.
    assert "no renegotiation" in out.lower() or out.count("HTTP/1.1 200") == 1, out
    assert m.alive()
    ok_request(m.port, pki)


@pytest.mark.parametrize("letter", [b"k\n", b"K\n"])
def test_key_update_mid_keepalive(make_backend, make_moat, pki, letter):
    b = make_backend()
    m = tls_moat(make_moat, [b], pki)
    out = interactive(m.port, [0.3, KA, 0.4, letter, 0.3, KA, 0.4, letter, 0.3, LAST, 0.5], "1.3")
    assert "KEYUPDATE" in out, out
    assert out.count("HTTP/1.1 200") == 3, out
    assert [r.target for r in b.requests] == ["/ka", "/ka", "/last"]


# --------------------------------------------------------------------------
# Resumption


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_ticket_resumes_after_reload(make_backend, make_moat, pki, tmp_path, version):
    b = make_backend()
    port = free_port()
    cfg = make_config([b], {"listeners": [tls_listener(port, pki)]})
    m = make_moat([b], cfg)
    sess = tmp_path / "s"
    r = s_client(port, servername="localhost", version=version, sess_out=sess, request=http_get())
    assert r.ok and sess.exists(), r
    m.reload(cfg)
    r = s_client(port, servername="localhost", version=version, sess_in=sess, request=http_get())
    assert r.ok and r.reused and r.status == 200, r


def test_no_ticket_when_tickets_off(make_backend, make_moat, pki, tmp_path):
    m = tls_moat(make_moat, [make_backend()], pki, session_tickets=False)
    for version in ("1.2", "1.3"):
        sess = tmp_path / f"s{version}"
        r = s_client(m.port, servername="localhost", version=version, sess_out=sess,
                     request=http_get(), extra=["-msg"])
        assert r.ok and r.status == 200, r
        assert "NewSessionTicket" not in r.out, (version, r)
        if sess.exists():
            r = s_client(m.port, servername="localhost", version=version, sess_in=sess,
                         request=http_get())
            assert r.ok and not r.reused, (version, r)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_ticket_of_another_listener_does_not_skip_client_auth(make_backend, make_moat, pki, tmp_path,
                                                              version):
    """Ticket keys are process-wide: a session from a listener without
    client certificates must not resume on one that requires them."""
    b = make_backend(echo_json())
    open_port, mtls_port = free_port(), free_port()
    make_moat([b], {"listeners": [tls_listener(open_port, pki),
                                  tls_listener(mtls_port, pki, client_ca=pki.client_ca)]})
    sess = tmp_path / "open"
    r = s_client(open_port, servername="localhost", version=version, sess_out=sess, request=http_get())
    assert r.ok and r.status == 200 and sess.exists(), r
    r = s_client(mtls_port, servername="localhost", version=version, sess_in=sess,
                 request=http_get(path="/no-cert"))
    assert r.status is None and not r.reused, r
    assert [q.target for q in b.requests] == ["/"], "a request without a client certificate got through"
    # A session of the mTLS listener resumes there (and keeps its subject).
    sess2 = tmp_path / "mtls"
    r = s_client(mtls_port, servername="localhost", version=version, sess_out=sess2,
                 cert=pki.client, key=pki.client_key, request=http_get())
    assert r.ok and r.status == 200, r
    r = s_client(mtls_port, servername="localhost", version=version, sess_in=sess2,
                 request=http_get(path="/resumed"))
    assert r.ok and r.reused and r.status == 200, r
    last = b.wait_requests(3)[2]
    assert "CN=alice" in (last.header("X-Client-Cert-Subject") or "").replace(" ", ""), last.headers
    # ... but not on the listener without client certificates, where a
    # client could otherwise carry a verified subject it never proved there.
    r = s_client(open_port, servername="localhost", version=version, sess_in=sess2, request=http_get())
    assert r.ok and not r.reused, r


# --------------------------------------------------------------------------
# Client certificates


def test_mtls_expired_client_certificate(make_backend, make_moat, pki, more):
    b = make_backend()
    for mode in ("required", "optional"):
        m = tls_moat(make_moat, [b], pki, client_ca=pki.client_ca, client_verify=mode)
        r = s_client(m.port, servername="localhost", cert=more.cexp, key=more.cexp_key,
                     request=http_get())
        assert r.status is None, (mode, r)
        assert "expired" in m.errlog, m.errlog[-1000:]
    assert len(b.requests) == 0


@pytest.mark.parametrize("http", ["1.1", "2"])
def test_mtls_unusual_subject_is_one_header_line(make_backend, make_moat, pki, more, http):
    b = make_backend(echo_json())
    m = tls_moat(make_moat, [b], pki, client_ca=pki.client_ca)
    r = https_curl(f"https://localhost:{m.port}/odd", ca=pki.ca, http=http,
                   args=["--cert", more.odd, "--key", more.odd_key])
    assert r.rc == 0 and r.status == 200, r
    req = b.wait_requests(1)[0]
    head = b.raw_requests[0].split(b"\r\n\r\n")[0]
    assert not any(line.lower().startswith(b"x-injected") for line in head.split(b"\r\n")), head
    assert not req.has_header("X-Injected"), req.headers
    v = req.header_all("X-Client-Cert-Subject")
    assert len(v) == 1, req.headers
    assert "\r" not in v[0] and "\n" not in v[0], v
    assert "Zo" in v[0] and "O=A" in v[0], v


# --------------------------------------------------------------------------
# OCSP


def test_ocsp_file_replaced_while_running(make_backend, make_moat, pki, tmp_path):
    f = tmp_path / "staple.der"
    f.write_bytes(b"\x30\x03\x0a\x01\x00junk")
    port = free_port()
    lst = {"listen": f"127.0.0.1:{port}",
           "tls": {"certs": [{"cert": pki.ec_chain, "key": pki.ec_key, "ocsp": str(f)}]}}
    make_moat([make_backend()], {"listeners": [lst]})
    assert s_client(port, servername="localhost", status=True).ocsp == "no response"
    tmp = tmp_path / "staple.der.new"
    shutil.copy(pki.ocsp_ec, tmp)
    os.replace(tmp, f)
    t0 = time.monotonic()
    r = None
    while time.monotonic() - t0 < t(13):
        r = s_client(port, servername="localhost", status=True)
        if r.ocsp == "successful":
            break
        time.sleep(0.5)
    assert r.ocsp == "successful", r


def test_ocsp_for_another_certificate_not_stapled(make_backend, make_moat, pki, more):
    port = free_port()
    lst = {"listen": f"127.0.0.1:{port}",
           "tls": {"certs": [{"cert": pki.ec_chain, "key": pki.ec_key, "ocsp": more.ocsp_ec2}]}}
    m = make_moat([make_backend()], {"listeners": [lst]})
    r = s_client(port, servername="localhost", status=True, request=http_get())
    assert r.ok and r.ocsp == "no response" and r.status == 200, r
    assert "no response for this certificate" in m.errlog, m.errlog


# --------------------------------------------------------------------------
# Key and certificate files


def test_rsa_4096(make_backend, make_moat, pki, more):
    port = free_port()
    lst = {"listen": f"127.0.0.1:{port}", "tls": {"cert": more.rsa4k, "key": more.rsa4k_key}}
    make_moat([make_backend()], {"listeners": [lst]})
    for version in ("1.2", "1.3"):
        r = s_client(port, servername="localhost", version=version, ca=pki.ca, request=http_get())
        assert r.ok and r.status == 200 and r.subject == "CN = localhost-rsa4k", r
        assert "4096" in r.out, r


def run_on_tty(args, timeout):
    """Runs args with a pseudo-terminal as its controlling terminal (as in
    a shell); returns (exit code or None when it had to be killed, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(args[0], args)
        finally:
            os._exit(127)
    out = bytearray()
    deadline = time.monotonic() + timeout
    rc = None
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            out += data
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
    if rc is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)
    return rc, out.decode("utf-8", "replace")


@pytest.mark.parametrize("where", ["listener", "upstream"])
def test_key_with_passphrase_is_a_clear_error_not_a_prompt(pki, more, tmp_path, where):
    port = free_port()
    if where == "listener":
        cfg = make_config([], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                              "tls": {"cert": pki.ec, "key": more.enc_key}}],
                               "upstreams": {"app": {"servers": ["127.0.0.1:9"]}}})
        name = "review_enc.key"
    else:
        cfg = make_config([], {"listeners": [{"listen": f"127.0.0.1:{port}"}],
                               "upstreams": {"app": {"servers": ["https://127.0.0.1:9"],
                                                     "tls": {"ca": pki.ca, "cert": pki.client,
                                                             "key": more.cenc_key}}}})
        name = "review_cenc.key"
    path = tmp_path / "moat.yaml"
    path.write_text(to_yaml(cfg))
    for args in (["-t", "-c", str(path)], ["-c", str(path)]):
        rc, out = run_on_tty([MOAT_BIN] + args, t(8))
        assert rc is not None, f"moat {args} hung (asking for a passphrase?):\n{out}"
        assert rc != 0, out
        assert "pass phrase" not in out.lower(), out
        assert name in out, out


def test_chain_file_in_the_wrong_order(pki, more, tmp_path):
    cfg = make_config([], {"listeners": [{"listen": f"127.0.0.1:{free_port()}",
                                          "tls": {"cert": more.rev_chain, "key": pki.ec_key}}],
                           "upstreams": {"app": {"servers": ["127.0.0.1:9"]}}})
    path = tmp_path / "moat.yaml"
    path.write_text(to_yaml(cfg))
    p = subprocess.run([MOAT_BIN, "-t", "-c", str(path)], capture_output=True, text=True, timeout=t(10))
    assert p.returncode != 0, p
    assert "review_rev_chain.pem" in p.stderr, p.stderr
    assert "order" in p.stderr or "first" in p.stderr, p.stderr


# --------------------------------------------------------------------------
# https:// backends


@pytest.fixture
def tls_backends():
    made = []

    def make(ctx, handler=None, name="tlsb"):
        b = TLSBackend(ctx, handler or echo_json(), name=name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def https_moat(make_moat, port, utls):
    return make_moat([], {"listeners": [{"listen": "127.0.0.1:%d" % free_port()}],
                          "upstreams": {"app": {"servers": [f"https://127.0.0.1:{port}"],
                                                "tls": utls}}})


@pytest.mark.parametrize("case,reason", [
    ("expired", "expired"),
    ("self", "self-signed"),
    ("mismatch", "mismatch"),
])
def test_upstream_bad_certificate(tls_backends, make_moat, pki, more, case, reason):
    cert, key = {"expired": (pki.expired, pki.expired_key), "self": (more.self_, more.self_key),
                 "mismatch": (pki.a, pki.a_key)}[case]
    b = tls_backends(server_ctx(cert, key))
    m = https_moat(make_moat, b.port, {"ca": pki.ca, **({"sni": "localhost"} if case == "mismatch" else {})})
    r = get(m.port, "/x")
    assert r.status == 502, r
    assert str(b.port).encode() not in r.body and b"127.0.0.1" not in r.body, r.body
    wait_for(lambda: m.count("TLS handshake failed") >= 1, t(3), what="the log line")
    time.sleep(0.2)
    lines = [l for l in m.errlog.splitlines() if "TLS handshake failed" in l]
    assert len(lines) == 1, lines
    assert reason in lines[0], lines
    assert len(b.requests) == 0


def test_upstream_verify_off(tls_backends, make_moat, more):
    b = tls_backends(server_ctx(more.self_, more.self_key))
    m = https_moat(make_moat, b.port, {"verify": False})
    assert get(m.port, "/v").status == 200


def test_upstream_closes_without_close_notify(tls_backends, make_moat, pki):
    """The backend drops the TCP connection after each response (no
    close_notify): the pool notices, the next requests are served."""
    def handler(req, conn):
        req.read_body()
        conn.send_response(200, b"ok", [("Content-Type", "text/plain")])
        conn.sock.shutdown(socket.SHUT_RDWR)   # an SSLSocket: TCP only, no alert
        conn.closed = True
        conn.sock.close()

    b = tls_backends(server_ctx(pki.ec, pki.ec_key), handler)
    m = https_moat(make_moat, b.port, {"ca": pki.ca})
    with Client(m.port) as c:
        for i in range(4):
            r = c.request("GET", f"/n{i}")
            assert r.status == 200 and r.body == b"ok", (i, r)
            time.sleep(0.1)
        for i in range(4):   # and back to back
            r = c.request("GET", f"/m{i}")
            assert r.status == 200, (i, r)
    assert b.connections == 8


def test_upstream_requires_client_certificate(tls_backends, make_moat, pki):
    def ctx():
        c = server_ctx(pki.ec, pki.ec_key)
        c.verify_mode = ssl.CERT_REQUIRED
        c.load_verify_locations(pki.client_ca)
        return c

    seen = []

    def handler(req, conn):
        seen.append(conn.sock.getpeercert())
        echo_json()(req, conn)

    b = tls_backends(ctx(), handler)
    m = https_moat(make_moat, b.port, {"ca": pki.ca, "cert": pki.client, "key": pki.client_key})
    r = get(m.port, "/mtls-up")
    assert r.status == 200, r
    assert seen and ("commonName", "alice") in [x for rdn in seen[0]["subject"] for x in rdn], seen
    b2 = tls_backends(ctx(), name="nocert")
    m2 = https_moat(make_moat, b2.port, {"ca": pki.ca})
    assert get(m2.port, "/no").status == 502
    assert len(b2.requests) == 0


# --------------------------------------------------------------------------
# Memory over many handshakes


def test_handshakes_do_not_grow_memory(make_backend, make_moat, pki):
    b = make_backend()
    # Under ASan freed memory sits in a quarantine (256 MiB by default): a small one.
    opts = os.environ.get("ASAN_OPTIONS", "")
    env = {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=8"} if ASAN else None
    m = tls_moat(make_moat, [b], pki, config={"workers": 2}, env=env)
    ctxs = [client_ctx(pki.ca), client_ctx(pki.ca, alpn=("h2", "http/1.1"))]
    ctxs[1].maximum_version = ssl.TLSVersion.TLSv1_2

    def one(i):
        ctx = ctxs[i % 2]
        with socket.create_connection(("127.0.0.1", m.port), timeout=t(10)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                if ctx.maximum_version == ssl.TLSVersion.TLSv1_2:
                    return 0     # handshake only, then close (no close_notify)
                s.sendall(b"GET /m HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                return 1 if data.startswith(b"HTTP/1.1 200") else 0

    n = 2000 if not ASAN else 600
    with ThreadPoolExecutor(8) as ex:
        assert sum(ex.map(one, range(400))) == 200
        before = m.rss_kib()
        assert sum(ex.map(one, range(n))) == n // 2
        after = m.rss_kib()
    slack = 4096 if not ASAN else 16384
    assert after - before < slack, f"RSS {before} -> {after} KiB over {n} handshakes"
