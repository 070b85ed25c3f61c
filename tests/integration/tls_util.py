"""
tls_util.py - helpers of the TLS and HTTP/2 tests (test_tls.py, test_h2.py,
test_grpc.py; issue 4).

    pki             session fixture: a test PKI made with the openssl CLI
                    (import it into the test module: `from tls_util import pki`)
    tls_listener    a listener dict with `tls:` for a config
    s_client        one `openssl s_client` run, its output parsed (SClient)
    https_curl      one curl run (HTTP/1.1, --http2, prior knowledge), parsed
    nghttp          one `nghttp` run
    echo_json       backend handler answering JSON of what the backend received
    TLSBackend      a harness.Backend speaking HTTPS (python ssl)
    H2Client        an HTTP/2 client on a raw (TLS or cleartext) socket, h2's
                    H2Connection for the usual exchanges
    RawH2           raw HTTP/2 frames both ways, for misbehaving clients
    hpack_block     a header block of literal fields (no dynamic table)
    H2Backend       an h2c origin (h2's server side) for h2c:// upstreams

Every process and socket here is bounded by a timeout (scaled by SLOW).
"""

import hashlib
import json
import re
import select
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack

from harness import Backend, Client, Reader, t

OPENSSL = "openssl"


# --------------------------------------------------------------------------
# The PKI


def _run(args, cwd, input=None):
    p = subprocess.run(args, cwd=cwd, capture_output=True, input=input, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({p.returncode}):\n"
                             f"{p.stderr.decode(errors='replace')}")
    return p


class PKI:
    """Paths of the test certificates (PEM). Every leaf is signed by `ca`
    unless said otherwise; the subject CN of each leaf is distinct so that
    s_client's `subject=` tells which one a server sent.

      ca, ca_key            the test CA (EC P-256)
      rsa, rsa_key          CN=localhost-rsa, SAN DNS:localhost, IP:127.0.0.1 (RSA 2048)
      ec, ec_key            CN=localhost-ec, same names (ECDSA P-256)
      ec2, ec2_key          CN=localhost-ec2, same names (the "new" certificate of reload tests)
      a, a_key              CN=a.test, SAN DNS:a.test
      wild, wild_key        CN=wild, SAN DNS:*.wild.test
      other_ca              an unrelated CA
      other, other_key      CN=localhost-other, names of `ec`, signed by other_ca
      expired, expired_key  CN=localhost-expired, names of `ec`, expired in 2001
      client_ca             the CA of client certificates
      client, client_key    CN=alice, O=Test, signed by client_ca (clientAuth)
      rogue, rogue_key      CN=mallory, O=Test, signed by other_ca (clientAuth)
      ocsp_ec               a good OCSP response (DER) for `ec`, signed by ca
      ec_chain              `ec` followed by ca (a chain file, as OCSP stapling needs the issuer)
    """

    def __init__(self, d):
        self.dir = Path(d)
        self._make()

    def p(self, name):
        return str(self.dir / name)

    def _key(self, name, kind="ec"):
        if kind == "rsa":
            _run([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", name], self.dir)
        else:
            _run([OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", name], self.dir)

    def _ca(self, name, cn):
        self._key(f"{name}.key")
        _run([OPENSSL, "req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}/O=Test",
              "-days", "30", "-out", f"{name}.pem", "-sha256",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)

    def _leaf(self, name, subj, sans=None, ca="ca", kind="ec", client=False, expired=False,
              serial=None):
        self._key(f"{name}.key", kind)
        _run([OPENSSL, "req", "-new", "-key", f"{name}.key", "-subj", subj, "-out", f"{name}.csr"],
             self.dir)
        ext = ["basicConstraints=CA:FALSE"]
        if client:
            ext.append("extendedKeyUsage=clientAuth")
        else:
            ext.append("extendedKeyUsage=serverAuth")
        if sans:
            ext.append("subjectAltName=" + ",".join(sans))
        (self.dir / f"{name}.ext").write_text("\n".join(ext) + "\n")
        if expired:
            # `openssl ca` is the one tool that sets dates in the past.
            self._expired(name, ca)
            return
        args = [OPENSSL, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                f"{ca}.key", "-days", "30", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.pem"]
        args += ["-set_serial", str(serial)] if serial else ["-CAcreateserial"]
        _run(args, self.dir)

    def _expired(self, name, ca):
        db = self.dir / f"{name}.db"
        db.mkdir(exist_ok=True)
        (db / "index.txt").write_text("")
        (db / "serial").write_text("1001\n")
        (self.dir / f"{name}.ca.cnf").write_text(
            "[ca]\ndefault_ca=c\n[c]\n"
            f"dir={db}\ndatabase=$dir/index.txt\nserial=$dir/serial\nnew_certs_dir=$dir\n"
            "default_md=sha256\npolicy=p\ncopy_extensions=none\nunique_subject=no\n"
            "[p]\ncommonName=supplied\n")
        _run([OPENSSL, "ca", "-batch", "-config", f"{name}.ca.cnf", "-cert", f"{ca}.pem",
              "-keyfile", f"{ca}.key", "-in", f"{name}.csr", "-out", f"{name}.pem",
              "-startdate", "20000101000000Z", "-enddate", "20010101000000Z",
              "-extfile", f"{name}.ext", "-notext"], self.dir)

    def _ocsp(self, leaf, ca, out):
        """A 'good' OCSP response for leaf, signed by ca itself."""
        serial = _run([OPENSSL, "x509", "-in", f"{leaf}.pem", "-noout", "-serial"],
                      self.dir).stdout.decode().strip().split("=", 1)[1]
        subject = _run([OPENSSL, "x509", "-in", f"{leaf}.pem", "-noout", "-subject",
                        "-nameopt", "compat"], self.dir).stdout.decode().strip().split("=", 1)[1]
        (self.dir / f"{out}.index").write_text(f"V\t301231235959Z\t\t{serial}\tunknown\t{subject}\n")
        _run([OPENSSL, "ocsp", "-issuer", f"{ca}.pem", "-cert", f"{leaf}.pem", "-no_nonce",
              "-reqout", f"{out}.req"], self.dir)
        _run([OPENSSL, "ocsp", "-index", f"{out}.index", "-rsigner", f"{ca}.pem", "-rkey",
              f"{ca}.key", "-CA", f"{ca}.pem", "-reqin", f"{out}.req", "-respout", f"{out}.der",
              "-ndays", "7"], self.dir)

    def _make(self):
        local = ["DNS:localhost", "IP:127.0.0.1"]
        self._ca("ca", "Moat Test CA")
        self._ca("other_ca", "Other CA")
        self._ca("client_ca", "Moat Client CA")
        self._leaf("rsa", "/CN=localhost-rsa", local, kind="rsa")
        self._leaf("ec", "/CN=localhost-ec", local)
        self._leaf("ec2", "/CN=localhost-ec2", local)
        self._leaf("a", "/CN=a.test", ["DNS:a.test"])
        self._leaf("wild", "/CN=wild", ["DNS:*.wild.test"])
        self._leaf("other", "/CN=localhost-other", local, ca="other_ca")
        self._leaf("expired", "/CN=localhost-expired", local, expired=True)
        self._leaf("client", "/CN=alice/O=Test", ca="client_ca", client=True)
        self._leaf("rogue", "/CN=mallory/O=Test", ca="other_ca", client=True)
        self._ocsp("ec", "ca", "ocsp_ec")
        names = ["ca", "other_ca", "client_ca", "rsa", "ec", "ec2", "a", "wild", "other",
                 "expired", "client", "rogue"]
        for n in names:
            setattr(self, n, self.p(f"{n}.pem"))
            setattr(self, f"{n}_key", self.p(f"{n}.key"))
        self.ocsp_ec = self.p("ocsp_ec.der")
        # The chain file a server is usually given: the leaf, then its issuer.
        (self.dir / "ec_chain.pem").write_text(Path(self.ec).read_text() + Path(self.ca).read_text())
        self.ec_chain = self.p("ec_chain.pem")

    def pair(self, name, ocsp=None):
        """{cert:, key:} of a leaf, for `tls.certs`."""
        d = {"cert": getattr(self, name), "key": getattr(self, f"{name}_key")}
        if ocsp:
            d["ocsp"] = ocsp
        return d


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


def tls_listener(port, pki, names=("ec",), **tls):
    """A listener dict: `tls: {certs: [...], **tls}` on 127.0.0.1:port."""
    cfg = {"certs": [pki.pair(n) for n in names]}
    cfg.update(tls)
    return {"listen": f"127.0.0.1:{port}", "tls": cfg}


# --------------------------------------------------------------------------
# openssl s_client


class SClient:
    """One s_client run. .ok: the handshake completed (a cipher was agreed);
    .subject: the peer certificate's subject line ("CN = localhost-ec");
    .protocol ("TLSv1.3"), .cipher, .alpn (None when none), .reused,
    .verify_ok, .ocsp ("no response" / "successful" / None), .out (stdout +
    stderr, for messages), .http (what the server answered on stdin's
    request, if any)."""

    def __init__(self, p):
        self.rc = p.returncode
        self.stdout = p.stdout.decode("utf-8", "replace")
        self.stderr = p.stderr.decode("utf-8", "replace")
        self.out = self.stdout + "\n" + self.stderr
        out = self.stdout
        m = re.search(r"^subject=(.*)$", out, re.M)
        self.subject = m.group(1).strip() if m else None
        m = re.search(r"^issuer=(.*)$", out, re.M)
        self.issuer = m.group(1).strip() if m else None
        m = re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", out, re.M)
        self.reused = bool(m and m.group(1) == "Reused")
        self.protocol = m.group(2).rstrip(",") if m else None
        self.cipher = m.group(3) if m else None
        self.ok = bool(m and self.cipher not in ("(NONE)", "0000"))
        m = re.search(r"^ALPN protocol: (\S+)", out, re.M)
        self.alpn = m.group(1) if m else None
        m = re.search(r"Verify return code: (\d+)", out)
        self.verify_ok = bool(m and m.group(1) == "0")
        if "OCSP response: no response sent" in out:
            self.ocsp = "no response"
        else:
            m = re.search(r"OCSP Response Status: (\w+)", out)
            self.ocsp = m.group(1) if m else None
        m = re.search(r"^Peer signature type: (\S+)", out, re.M)
        self.sig_type = m.group(1) if m else None
        m = re.search(r"^Server Temp Key: (.*)$", out, re.M)
        self.temp_key = m.group(1) if m else None
        i = out.find("HTTP/1.")
        self.http = out[i:] if i >= 0 else ""

    @property
    def status(self):
        m = re.match(r"HTTP/1\.\d (\d{3})", self.http)
        return int(m.group(1)) if m else None

    def __repr__(self):
        return (f"<SClient ok={self.ok} proto={self.protocol} cipher={self.cipher} "
                f"subject={self.subject!r} alpn={self.alpn} reused={self.reused} rc={self.rc}>\n"
                f"{self.out[-2500:]}")


def s_client(port, servername=None, alpn=None, version=None, sess_out=None, sess_in=None,
             status=False, cert=None, key=None, sigalgs=None, cipher=None, ciphersuites=None,
             ca=None, request=None, host="127.0.0.1", extra=(), timeout=None):
    """Runs `openssl s_client` against host:port and returns an SClient.

    version: "1.0" / "1.1" / "1.2" / "1.3" (-tls1 ... -tls1_3).
    request: text sent after the handshake (e.g. an HTTP/1.1 request with
    Connection: close); s_client then waits for the server to close
    (-ign_eof), which also collects TLS 1.3 session tickets for sess_out.
    Without a request stdin is empty, and s_client ends right after the
    handshake (after a short pause, to read tickets)."""
    args = [OPENSSL, "s_client", "-connect", f"{host}:{port}", "-showcerts"]
    if servername:
        args += ["-servername", servername]
    else:
        args += ["-noservername"]
    if alpn:
        args += ["-alpn", alpn]
    if version:
        args += [{"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2", "1.3": "-tls1_3"}[version]]
    if sess_out:
        args += ["-sess_out", str(sess_out)]
    if sess_in:
        args += ["-sess_in", str(sess_in)]
    if status:
        args += ["-status"]
    if cert:
        args += ["-cert", cert, "-key", key]
    if sigalgs:
        args += ["-sigalgs", sigalgs]
    if cipher:
        args += ["-cipher", cipher]
    if ciphersuites is not None:
        args += ["-ciphersuites", ciphersuites]
    if ca:
        args += ["-CAfile", ca]
    args += list(extra)
    timeout = timeout or t(10)
    if request is None:
        # Keep stdin open a moment so that s_client reads what follows the
        # handshake (TLS 1.3 tickets, an alert for a missing client cert).
        p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            time.sleep(0.3)
            out, err = p.communicate(b"", timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        return SClient(subprocess.CompletedProcess(args, p.returncode, out, err))
    args += ["-ign_eof"]
    try:
        p = subprocess.run(args, input=request.encode() if isinstance(request, str) else request,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        p = subprocess.CompletedProcess(args, -9, e.stdout or b"", e.stderr or b"")
    return SClient(p)


def http_get(host="localhost", path="/", extra=""):
    """An HTTP/1.1 GET that asks to close, for s_client(request=...)."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"


# --------------------------------------------------------------------------
# curl and nghttp


class CurlResult:
    def __init__(self, p, head_text, body):
        self.rc = p.returncode
        self.stderr = p.stderr.decode("utf-8", "replace")
        w = p.stdout.decode().split()
        self.status = int(w[0]) if w and w[0].isdigit() else None
        self.http_version = w[1] if len(w) > 1 else None
        self.body = body
        self.headers = []
        # The last head (after 1xx ones).
        blocks = [b for b in head_text.split("\r\n\r\n") if b.strip()]
        if blocks:
            for line in blocks[-1].split("\r\n")[1:]:
                n, sep, v = line.partition(":")
                if sep:
                    self.headers.append((n.strip().lower(), v.strip()))

    def header(self, name):
        vs = [v for n, v in self.headers if n == name.lower()]
        return vs[0] if vs else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<curl rc={self.rc} {self.status} HTTP/{self.http_version} {self.headers!r} "
                f"body={self.body[:300]!r} stderr={self.stderr[-500:]!r}>")


def https_curl(url, ca=None, http="1.1", resolve=(), args=(), data=None, timeout=None):
    """Runs curl on url. http: "1.1", "2" (ALPN), "2pk" (prior knowledge).
    resolve: ["name:port:127.0.0.1", ...]. data: bytes sent as POST body.
    Returns a CurlResult: .status, .http_version ("1.1", "2"), .headers
    (lowercase names), .body."""
    timeout = timeout or t(20)
    with tempfile.TemporaryDirectory() as d:
        hfile, bfile, dfile = Path(d, "h"), Path(d, "b"), Path(d, "d")
        cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout)),
               "-D", str(hfile), "-o", str(bfile), "-w", "%{http_code} %{http_version}"]
        cmd += {"1.1": ["--http1.1"], "2": ["--http2"], "2pk": ["--http2-prior-knowledge"]}[http]
        if ca:
            cmd += ["--cacert", ca]
        for r in resolve:
            cmd += ["--resolve", r]
        if data is not None:
            dfile.write_bytes(data)
            cmd += ["--data-binary", f"@{dfile}"]
        cmd += list(args) + [url]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
        head = hfile.read_bytes().decode("latin-1") if hfile.exists() else ""
        body = bfile.read_bytes() if bfile.exists() else b""
        return CurlResult(p, head, body)


def nghttp(url, args=(), timeout=None):
    """Runs `nghttp -v` (prior knowledge for http://); returns
    (CompletedProcess with text, [status of each response])."""
    timeout = timeout or t(20)
    cmd = ["nghttp", "-v", "-t", str(int(timeout))] + list(args) + [url]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    statuses = [int(s) for s in re.findall(r"recv \(stream_id=\d+\) :status: (\d{3})", p.stdout)]
    return p, statuses


# --------------------------------------------------------------------------
# Backends


def echo_json():
    """Answers 200 with JSON: method, target, version, headers (as a list
    of [name, value] in arrival order), body length and sha256."""
    def handler(req, conn):
        body = req.read_body()
        out = json.dumps({"method": req.method, "target": req.target, "version": req.version,
                          "headers": [[n, v] for n, v in req.headers], "framing": req.framing,
                          "length": len(body), "sha256": hashlib.sha256(body).hexdigest()}).encode()
        conn.send_response(200, out, [("Content-Type", "application/json")], req=req)
    return handler


def hdrs(echo, name):
    """Values of field `name` in an echo_json answer (dict)."""
    return [v for n, v in echo["headers"] if n.lower() == name.lower()]


class TLSBackend(Backend):
    """harness.Backend over TLS: every accepted connection is wrapped in
    `ctx` (server side) first; a failed handshake is counted in
    .handshake_errors and the connection dropped."""

    def __init__(self, ctx, handler=None, name="tls", host="127.0.0.1"):
        self.ssl_ctx = ctx
        self.handshake_errors = []
        self.server_names = []     # SNI of every handshake (None: none sent)
        ctx.sni_callback = lambda sock, name, c: self.server_names.append(name)
        super().__init__(handler, name=name, host=host)

    def _serve(self, conn):
        try:
            conn.sock = self.ssl_ctx.wrap_socket(conn.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.handshake_errors.append(repr(e))
            try:
                conn.sock.close()
            except OSError:
                pass
            conn.closed = True
            return
        conn.reader = Reader(conn.sock, self._count_bytes)
        super()._serve(conn)


class TLSClient(Client):
    """harness.Client over TLS (ALPN http/1.1 by default): send exact bytes,
    read HTTP/1 responses, keep the connection alive."""

    def __init__(self, port, ca=None, servername="localhost", alpn=("http/1.1",), cert=None,
                 key=None, host="127.0.0.1", timeout=None):
        super().__init__(port, host=host, timeout=timeout)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca:
            ctx.load_verify_locations(ca)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        if cert:
            ctx.load_cert_chain(cert, key)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=servername)
        self.reader = Reader(self.sock)

    def peer_subject(self):
        """The server certificate's subject as {field: value}."""
        der = self.sock.getpeercert(binary_form=True)
        p = subprocess.run([OPENSSL, "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                           capture_output=True, timeout=10)
        return p.stdout.decode().strip()


def server_ctx(cert, key, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


# --------------------------------------------------------------------------
# HTTP/2, client side


def client_socket(port, tls=True, ca=None, servername="localhost", alpn=("h2",), timeout=None,
                  host="127.0.0.1", rcvbuf=None):
    """A connected socket to moat: TLS (ALPN alpn, verified against ca when
    given) or cleartext. rcvbuf: SO_RCVBUF set before connecting (a client
    that reads slowly keeps a small window)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout or t(10))
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not tls:
        return sock
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    s = ctx.wrap_socket(sock, server_hostname=servername)
    return s


class H2Response:
    def __init__(self, stream_id):
        self.stream_id = stream_id
        self.headers = []
        self.data = bytearray()
        self.trailers = []
        self.ended = False
        self.reset = None   # error code of a RST_STREAM

    @property
    def status(self):
        for n, v in self.headers:
            if n == b":status":
                return int(v)
        return None

    def header(self, name):
        name = name.encode() if isinstance(name, str) else name
        for n, v in self.headers:
            if n == name:
                return v.decode()
        return None

    def trailer(self, name):
        name = name.encode() if isinstance(name, str) else name
        for n, v in self.trailers:
            if n == name:
                return v.decode()
        return None

    def __repr__(self):
        return (f"<H2Response {self.stream_id} {self.headers!r} trailers={self.trailers!r} "
                f"data={bytes(self.data[:200])!r} ended={self.ended} reset={self.reset}>")


class H2Client:
    """An HTTP/2 client with h2's H2Connection on a socket from
    client_socket(). .request() sends one request; .response() /
    .responses() read until streams end. .goaway: the GOAWAY event seen."""

    def __init__(self, port, tls=True, authority="localhost", **kw):
        self.sock = client_socket(port, tls=tls, **kw)
        self.scheme = "https" if tls else "http"
        self.authority = authority
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.goaway = None
        self.remote_settings = {}
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method="GET", path="/", headers=(), body=None, end=True, authority=None):
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":scheme", self.scheme),
              (":authority", authority or self.authority), (":path", path)] + list(headers)
        self.streams[sid] = H2Response(sid)
        self.conn.send_headers(sid, hs, end_stream=(body is None and end))
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        pos = 0
        while True:
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0 and pos < len(body):
                self.flush()
                self._pump()
                continue
            chunk = body[pos:pos + window]
            pos += len(chunk)
            last = pos >= len(body)
            self.conn.send_data(sid, chunk, end_stream=(end and last))
            self.flush()
            if last:
                return

    def _pump(self, timeout=None):
        """Reads once from the socket and handles the events; returns False
        at EOF."""
        self.sock.settimeout(timeout or t(10))
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        events = self.conn.receive_data(data)
        for ev in events:
            self._event(ev)
        self.flush()
        return True

    def _event(self, ev):
        sid = getattr(ev, "stream_id", None)
        st = self.streams.get(sid) if sid else None
        if isinstance(ev, h2.events.ResponseReceived) and st:
            st.headers = list(ev.headers)
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            pass
        elif isinstance(ev, h2.events.TrailersReceived) and st:
            st.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if st:
                st.data += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = ev.error_code
            st.ended = True
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value

    def wait_settings(self):
        """Reads until the server's SETTINGS arrived; returns them."""
        deadline = time.monotonic() + t(10)
        while not self.remote_settings and time.monotonic() < deadline:
            if not self._pump():
                break
        return self.remote_settings

    def response(self, sid, timeout=None):
        deadline = time.monotonic() + (timeout or t(10))
        st = self.streams[sid]
        while not st.ended:
            if time.monotonic() > deadline:
                raise AssertionError(f"stream {sid} did not end: {st!r}")
            if not self._pump():
                raise AssertionError(f"connection closed before stream {sid} ended: {st!r} "
                                     f"goaway={self.goaway}")
        return st

    def get(self, path="/", headers=(), timeout=None, **kw):
        return self.response(self.request("GET", path, headers, **kw), timeout=timeout)


def h2_get(port, tls=True, path="/", headers=(), **kw):
    """One GET on a new HTTP/2 connection; returns the H2Response."""
    with H2Client(port, tls=tls, **kw) as c:
        return c.get(path, headers)


# Raw frames, for clients that misbehave on purpose.

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM, PROTOCOL_ERROR, NO_ERROR, CANCEL = 0xB, 0x1, 0x0, 0x8
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3


def frame(ftype, flags, sid, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack("!I", sid) + payload


def _hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_block(headers):
    """A header block of 'literal without indexing, new name' fields: the
    same bytes may be sent any number of times (no dynamic table)."""
    out = bytearray()
    for n, v in headers:
        n = n.encode() if isinstance(n, str) else n
        v = v.encode() if isinstance(v, str) else v
        out += b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v
    return bytes(out)


def request_block(path="/", scheme="https", authority="localhost", method="GET", extra=()):
    return hpack_block([(":method", method), (":scheme", scheme), (":authority", authority),
                        (":path", path)] + list(extra))


class RawH2:
    """An HTTP/2 connection driven frame by frame. Sends the preface and an
    empty SETTINGS on open. .frames(): frames read so far as (type, flags,
    stream, payload); .goaway(): the GOAWAY (last_stream, error) if one came."""

    def __init__(self, port, tls=True, **kw):
        self.sock = client_socket(port, tls=tls, **kw)
        self.buf = bytearray()
        self.got = []
        self.eof = False
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        """Sends bytes; False if the peer has already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.eof = True
            return False

    def _read(self, timeout):
        if self.eof:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            r = True
        else:
            r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, ConnectionAbortedError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.buf[9:9 + n])
            del self.buf[:9 + n]
            self.got.append((ftype, flags, sid, payload))
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
        return True

    def read_until(self, pred, timeout=None):
        """Reads frames until pred(frames) is true, EOF or timeout; returns
        pred's last value."""
        deadline = time.monotonic() + (timeout or t(5))
        while True:
            v = pred(self.got)
            if v or self.eof:
                return v
            left = deadline - time.monotonic()
            if left <= 0:
                return v
            self._read(min(left, 0.5))

    def drain(self, timeout=None):
        """Reads until EOF or timeout."""
        return self.read_until(lambda fs: False, timeout)

    def goaway(self):
        for ftype, _, _, payload in self.got:
            if ftype == GOAWAY:
                last, err = struct.unpack("!II", payload[:8])
                return last & 0x7FFFFFFF, err
        return None

    def settings(self):
        """The server's first SETTINGS as {id: value}."""
        for ftype, flags, _, payload in self.got:
            if ftype == SETTINGS and not flags & ACK:
                return {struct.unpack("!H", payload[i:i + 2])[0]: struct.unpack("!I", payload[i + 2:i + 6])[0]
                        for i in range(0, len(payload), 6)}
        return None

    def headers_of(self, sid):
        """The decoded header blocks (HEADERS + CONTINUATION) of stream sid."""
        out = []
        block = b""
        for ftype, flags, s, payload in self.got:
            if s != sid or ftype not in (HEADERS, CONTINUATION):
                continue
            if ftype == HEADERS:
                pad = 0
                if flags & PADDED:
                    pad = payload[0]
                    payload = payload[1:]
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                if pad:
                    payload = payload[:-pad]
            block += payload
            if flags & END_HEADERS:
                out.append(self.decoder.decode(block, raw=True))
                block = b""
        return out

    def status_of(self, sid):
        for hs in self.headers_of(sid):
            for n, v in hs:
                if n == b":status":
                    return int(v)
        return None

    def reset_of(self, sid):
        for ftype, _, s, payload in self.got:
            if ftype == RST_STREAM and s == sid:
                return struct.unpack("!I", payload)[0]
        return None


# --------------------------------------------------------------------------
# HTTP/2, server side: an h2c origin


class H2Backend:
    """An h2c origin (h2 over TLS with ssl_ctx) on 127.0.0.1, h2's server side. For every
    request it calls handler(req) -> (headers, data, trailers) where req is
    a dict {headers: [(name, value)] as str, body: bytes, stream_id}; data
    may be b"" and trailers None. Received requests are kept in .requests."""

    def __init__(self, handler, name="h2b", ssl_ctx=None):
        self.handler = handler
        self.name = name
        self.ssl_ctx = ssl_ctx        # h2 over TLS (an h2:// server) when given
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self.errors = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.socks = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            r, _, _ = select.select([self.lsock], [], [], 0.05)
            if not r:
                continue
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                continue
            with self.cond:
                self.connections += 1
                self.socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=cfg)
        conn.initiate_connection()
        pending = {}
        try:
            sock.settimeout(t(30))
            if self.ssl_ctx:
                sock = self.ssl_ctx.wrap_socket(sock, server_side=True)
            sock.sendall(conn.data_to_send())
            while not self.stopping.is_set():
                data = sock.recv(65536)
                if not data:
                    break
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        pending[ev.stream_id] = {"headers": list(ev.headers), "body": bytearray(),
                                                 "stream_id": ev.stream_id}
                    elif isinstance(ev, h2.events.DataReceived):
                        if ev.stream_id in pending:
                            pending[ev.stream_id]["body"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        req = pending.pop(ev.stream_id, None)
                        if req is None:
                            continue
                        req["body"] = bytes(req["body"])
                        with self.cond:
                            self.requests.append(req)
                            self.cond.notify_all()
                        headers, body, trailers = self.handler(req)
                        conn.send_headers(ev.stream_id, headers,
                                          end_stream=not body and not trailers)
                        if body:
                            conn.send_data(ev.stream_id, body, end_stream=not trailers)
                        if trailers:
                            conn.send_headers(ev.stream_id, trailers, end_stream=True)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        break
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
        except Exception as e:  # moat closed, a protocol error...
            self.errors.append(repr(e))
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def wait_requests(self, n, timeout=None):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.requests) >= n, timeout or t(5))
        assert ok, f"h2 backend got {len(self.requests)} requests, expected {n}"
        return self.requests[:n]

    def stop(self):
        self.stopping.set()
        self.thread.join(2)
        self.lsock.close()
        with self.cond:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def header_dict(headers):
    """{name: [values]} of (name, value) pairs (str or bytes)."""
    out = {}
    for n, v in headers:
        n = n.decode() if isinstance(n, bytes) else n
        v = v.decode() if isinstance(v, bytes) else v
        out.setdefault(n.lower(), []).append(v)
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def moat_alive_h2(port, tls=True, **kw):
    """An ordinary GET on a new connection gets 200 (after an attack)."""
    r = h2_get(port, tls=tls, **kw)
    assert r.status == 200, r
    return r


