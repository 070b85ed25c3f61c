"""TLS termination (issue 4): HTTPS listeners, certificates by SNI and key
type, protocol versions and ciphers, ALPN, session resumption, OCSP
stapling, reload of certificates, client certificates (mTLS), HSTS, the
redirect to HTTPS, and TLS towards backends (https:// servers).

Certificates come from the session fixture `pki` (tls_util.PKI, made with
the openssl CLI); clients are openssl s_client, curl and python's ssl.
"""

import hashlib
import shutil

import pytest

from harness import Client, free_port, get, make_config, run_moat, to_yaml
from tls_util import (TLSBackend, TLSClient, echo_json, hdrs, http_get, https_curl, pki,  # noqa: F401
                      s_client, server_ctx, tls_listener)


def tls_moat(make_moat, backends, pki, names=("ec",), listeners=(), config=None, **tls):
    """moat with one TLS listener (certificates `names` of pki, more `tls`
    keys) first, then `listeners`. Returns (moat, config dict)."""
    port = free_port()
    cfg = dict(config or {})
    cfg["listeners"] = [tls_listener(port, pki, names, **tls)] + list(listeners)
    full = make_config(backends, cfg)
    m = make_moat(backends, cfg)
    return m, full


def url(m, path="/", host="localhost"):
    return f"https://{host}:{m.port}{path}"


def get_ok(m, pki, path="/", **kw):
    r = https_curl(url(m, path), ca=pki.ca, **kw)
    assert r.rc == 0 and r.status == 200, r
    return r


# --------------------------------------------------------------------------
# HTTPS through curl


@pytest.mark.parametrize("http", ["1.1", "2"])
def test_https_get(make_backend, make_moat, pki, http):
    b = make_backend(echo_json())
    m, _ = tls_moat(make_moat, [b], pki)
    r = get_ok(m, pki, "/hello?x=1", http=http)
    assert r.http_version == http, r
    e = r.json()
    assert e["method"] == "GET" and e["target"] == "/hello?x=1", e
    assert e["version"] == "HTTP/1.1"
    assert hdrs(e, "Host") == [f"localhost:{m.port}"], e
    assert hdrs(e, "X-Forwarded-Proto") == ["https"], e


@pytest.mark.parametrize("http", ["1.1", "2"])
def test_https_post(make_backend, make_moat, pki, http):
    b = make_backend(echo_json())
    m, _ = tls_moat(make_moat, [b], pki)
    body = bytes(range(256)) * 400   # 100 KiB
    r = get_ok(m, pki, "/up", http=http, data=body,
               args=["-H", "Content-Type: application/octet-stream"])
    assert r.http_version == http
    e = r.json()
    assert e["method"] == "POST" and e["length"] == len(body), e
    assert e["sha256"] == hashlib.sha256(body).hexdigest()


def test_one_line_mode_serves_https_h2_and_http11(make_backend, make_moat, pki):
    b = make_backend(echo_json())
    port = free_port()
    make_moat(argv=["proxy", "--from", f"127.0.0.1:{port}", "--to", f"http://{b.addr}",
                        "--cert", pki.ec, "--key", pki.ec_key],
                  listens=[("127.0.0.1", port)])
    for http in ("2", "1.1"):
        r = https_curl(f"https://localhost:{port}/one", ca=pki.ca, http=http)
        assert r.rc == 0 and r.status == 200 and r.http_version == http, r
    assert b.wait_requests(2)


def test_plaintext_to_tls_port_and_stalled_handshake(make_backend, make_moat, pki):
    """Cleartext HTTP on the TLS port is not served; a client that stalls
    inside its handshake holds up nobody."""
    b = make_backend()
    m, _ = tls_moat(make_moat, [b], pki)
    with Client(m.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.wait_closed(5), "moat kept a cleartext connection on its TLS port open"
        assert b"200 OK" not in c.leftover
    with Client(m.port, timeout=5) as stalled:
        stalled.send(b"\x16\x03\x01\x00\xc8\x01")   # the start of a ClientHello
        for _ in range(3):
            get_ok(m, pki, http="2")
    assert len(b.requests) == 3


# --------------------------------------------------------------------------
# Which certificate


def test_sni_exact_wildcard_and_default(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki, names=("ec", "a", "wild"))
    cases = {
        "localhost": "CN = localhost-ec",
        "a.test": "CN = a.test",
        "x.wild.test": "CN = wild",
        "other.wild.test": "CN = wild",
        "unknown.test": "CN = localhost-ec",     # unknown name: the default (first)
        "deep.x.wild.test": "CN = localhost-ec",  # a wildcard covers one label only
        "wild.test": "CN = localhost-ec",
        None: "CN = localhost-ec",               # no SNI at all
    }
    for name, subject in cases.items():
        r = s_client(m.port, servername=name, ca=pki.ca)
        assert r.ok, (name, r)
        assert r.subject == subject, (name, r)
    r = s_client(m.port, servername="a.test", ca=pki.ca,
                 extra=["-verify_hostname", "a.test", "-verify_return_error"])
    assert r.ok and r.verify_ok, r


def test_sni_certificate_served_to_curl(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki, names=("ec", "a", "wild"))
    for host in ("a.test", "api.wild.test"):
        r = https_curl(f"https://{host}:{m.port}/", ca=pki.ca, http="2",
                       resolve=[f"{host}:{m.port}:127.0.0.1"])
        assert r.rc == 0 and r.status == 200, (host, r)


def test_ecdsa_or_rsa_by_client_sigalgs(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki, names=("rsa", "ec"))
    for version in ("1.2", "1.3"):
        r = s_client(m.port, servername="localhost", version=version, ca=pki.ca)
        assert r.ok and r.subject == "CN = localhost-ec", (version, r)
        r = s_client(m.port, servername="localhost", version=version, ca=pki.ca,
                     sigalgs="RSA-PSS+SHA256")
        assert r.ok and r.subject == "CN = localhost-rsa", (version, r)
    # The RSA certificate first in the list changes nothing for an ECDSA-able client.
    r = s_client(m.port, servername="unknown.test", ca=pki.ca)
    assert r.ok and r.subject == "CN = localhost-ec", r


# --------------------------------------------------------------------------
# Versions, ciphers, ALPN


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_old_versions_refused(make_backend, make_moat, pki, version):
    b = make_backend()
    m, _ = tls_moat(make_moat, [b], pki, names=("rsa", "ec"))
    # SECLEVEL=0 so that the client really offers the old version.
    r = s_client(m.port, servername="localhost", version=version, cipher="DEFAULT@SECLEVEL=0",
                 request=http_get())
    assert not r.ok and r.status is None, r
    assert "no protocols available" not in r.out, f"the client did not offer TLS {version}: {r}"
    assert b.connections == 0


def test_cbc_only_cipher_list_refused(make_backend, make_moat, pki):
    b = make_backend()
    m, _ = tls_moat(make_moat, [b], pki, names=("rsa", "ec"))
    for cipher in ("AES128-SHA", "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA384", "AES256-GCM-SHA384"):
        r = s_client(m.port, servername="localhost", version="1.2", cipher=cipher,
                     request=http_get())
        assert not r.ok and r.status is None, (cipher, r)
    # TLS 1.2 with the defaults still works, with an ECDHE AEAD suite.
    r = s_client(m.port, servername="localhost", version="1.2", ca=pki.ca, request=http_get())
    assert r.ok and r.status == 200, r
    assert r.cipher.startswith("ECDHE-") and ("GCM" in r.cipher or "CHACHA" in r.cipher), r
    assert b.connections == 1


def test_min_version_13(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki, min_version="1.3")
    r = s_client(m.port, servername="localhost", version="1.2", request=http_get())
    assert not r.ok and r.status is None, r
    r = s_client(m.port, servername="localhost", version="1.3", ca=pki.ca, request=http_get())
    assert r.ok and r.protocol == "TLSv1.3" and r.status == 200, r


def test_configured_ciphers(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305",
                    ciphersuites="TLS_CHACHA20_POLY1305_SHA256")
    r = s_client(m.port, servername="localhost", version="1.2")
    assert r.ok and r.cipher == "ECDHE-ECDSA-CHACHA20-POLY1305", r
    r = s_client(m.port, servername="localhost", version="1.3")
    assert r.ok and r.cipher == "TLS_CHACHA20_POLY1305_SHA256", r
    r = s_client(m.port, servername="localhost", version="1.2", cipher="ECDHE-ECDSA-AES128-GCM-SHA256")
    assert not r.ok, r


def test_alpn(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki)
    assert s_client(m.port, servername="localhost", alpn="h2").alpn == "h2"
    assert s_client(m.port, servername="localhost", alpn="http/1.1").alpn == "http/1.1"
    assert s_client(m.port, servername="localhost", alpn="h2,http/1.1").alpn == "h2"
    assert s_client(m.port, servername="localhost", alpn="http/1.1,h2").alpn == "h2"
    r = s_client(m.port, servername="localhost", request=http_get())   # no ALPN: HTTP/1.1
    assert r.ok and r.alpn is None and r.status == 200, r


def test_h2_off_offers_http11_only(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki, h2=False)
    r = s_client(m.port, servername="localhost", alpn="h2,http/1.1")
    assert r.ok and r.alpn == "http/1.1", r
    r = https_curl(url(m), ca=pki.ca, http="2")
    assert r.rc == 0 and r.status == 200 and r.http_version == "1.1", r


# --------------------------------------------------------------------------
# Resumption


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_session_resumption(make_backend, make_moat, pki, tmp_path, version):
    m, _ = tls_moat(make_moat, [make_backend()], pki)
    sess = tmp_path / f"sess{version}"
    r = s_client(m.port, servername="localhost", version=version, sess_out=sess, request=http_get())
    assert r.ok and not r.reused and r.status == 200, r
    assert sess.exists() and sess.stat().st_size > 0, "no session saved (no ticket received?)"
    r = s_client(m.port, servername="localhost", version=version, sess_in=sess, request=http_get())
    assert r.ok and r.reused and r.status == 200, r


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_session_resumption_across_workers(make_backend, make_moat, pki, tmp_path, version):
    m, _ = tls_moat(make_moat, [make_backend()], pki, config={"workers": 4})
    sess = tmp_path / f"sess{version}"
    r = s_client(m.port, servername="localhost", version=version, sess_out=sess, request=http_get())
    assert r.ok and r.status == 200, r
    reused = []
    for _ in range(8):
        r = s_client(m.port, servername="localhost", version=version, sess_in=sess,
                     request=http_get())
        assert r.ok and r.status == 200, r
        reused.append(r.reused)
    assert all(reused), f"resumed: {reused} (tickets not shared by the workers?)"


def test_session_tickets_off(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki, session_tickets=False)
    r = s_client(m.port, servername="localhost", version="1.2", request=http_get())
    assert r.ok and r.status == 200, r
    assert "TLS session ticket lifetime hint" not in r.out, r
    r = s_client(m.port, servername="localhost", version="1.3", request=http_get())
    assert r.ok and r.status == 200, r


# --------------------------------------------------------------------------
# OCSP


def test_ocsp_no_staple_without_config(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki)
    r = s_client(m.port, servername="localhost", status=True)
    assert r.ok and r.ocsp == "no response", r


def test_ocsp_staple(make_backend, make_moat, pki):
    port = free_port()
    lst = {"listen": f"127.0.0.1:{port}",
           "tls": {"certs": [{"cert": pki.ec_chain, "key": pki.ec_key, "ocsp": pki.ocsp_ec}]}}
    make_moat([make_backend()], {"listeners": [lst]})
    for version in ("1.2", "1.3"):
        r = s_client(port, servername="localhost", status=True, version=version)
        assert r.ok and r.ocsp == "successful", (version, r)
        assert "Cert Status: good" in r.out, r
    r = s_client(port, servername="localhost")   # not asked for: not sent
    assert r.ok and r.ocsp is None, r


def test_ocsp_file_not_a_response_not_stapled(make_backend, make_moat, pki, tmp_path):
    bad = tmp_path / "bad_ocsp.der"
    bad.write_bytes(b"\x30\x03\x0a\x01\x00" + b"junk")
    port = free_port()
    lst = {"listen": f"127.0.0.1:{port}",
           "tls": {"certs": [{"cert": pki.ec_chain, "key": pki.ec_key, "ocsp": str(bad)}]}}
    m = make_moat([make_backend()], {"listeners": [lst]})
    r = s_client(port, servername="localhost", status=True, request=http_get())
    assert r.ok and r.ocsp == "no response" and r.status == 200, r
    assert "bad_ocsp.der" in m.errlog, m.errlog


# --------------------------------------------------------------------------
# Reload


def test_reload_new_certificate(make_backend, make_moat, pki, tmp_path):
    b = make_backend()
    site, key = tmp_path / "site.pem", tmp_path / "site.key"
    shutil.copy(pki.ec, site)
    shutil.copy(pki.ec_key, key)
    port = free_port()
    cfg = make_config([b], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                           "tls": {"cert": str(site), "key": str(key)}}]})
    m = make_moat([b], cfg)
    assert s_client(port, servername="localhost").subject == "CN = localhost-ec"
    with TLSClient(port, ca=pki.ca) as c:
        assert c.request("GET", "/before", host="localhost").status == 200
        shutil.copy(pki.ec2, site)
        shutil.copy(pki.ec2_key, key)
        m.reload(cfg)
        r = s_client(port, servername="localhost", ca=pki.ca)
        assert r.ok and r.subject == "CN = localhost-ec2", r
        # The connection made before the reload goes on.
        assert c.request("GET", "/after", host="localhost").status == 200
    with TLSClient(port, ca=pki.ca) as c:
        assert "localhost-ec2" in c.peer_subject()


def test_reload_with_broken_certificate_refused(make_backend, make_moat, pki, tmp_path):
    b = make_backend()
    site, key = tmp_path / "site.pem", tmp_path / "site.key"
    shutil.copy(pki.ec, site)
    shutil.copy(pki.ec_key, key)
    port = free_port()
    cfg = make_config([b], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                           "tls": {"cert": str(site), "key": str(key)}}]})
    m = make_moat([b], cfg)
    site.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    log = m.reload(cfg, expect="reload refused")
    assert "site.pem" in log, log
    r = s_client(port, servername="localhost", ca=pki.ca, request=http_get())
    assert r.ok and r.subject == "CN = localhost-ec" and r.status == 200, r
    # A key that does not belong to the certificate: refused too.
    shutil.copy(pki.ec2, site)
    log = m.reload(cfg, expect="reload refused")
    assert "site.pem" in log or "site.key" in log, log
    r = s_client(port, servername="localhost", ca=pki.ca, request=http_get())
    assert r.ok and r.subject == "CN = localhost-ec" and r.status == 200, r


def test_start_with_missing_certificate_fails(make_moat, make_backend, pki, tmp_path):
    port = free_port()
    cfg = {"listeners": [{"listen": f"127.0.0.1:{port}",
                          "tls": {"cert": str(tmp_path / "nope.pem"), "key": pki.ec_key}}]}
    with pytest.raises(AssertionError) as e:
        make_moat([make_backend()], cfg)
    assert "nope.pem" in str(e.value)


# --------------------------------------------------------------------------
# Client certificates


def client_cert_request(extra=""):
    return http_get(path="/mtls", extra=extra)


def test_mtls_required(make_backend, make_moat, pki):
    b = make_backend(echo_json())
    m, _ = tls_moat(make_moat, [b], pki, client_ca=pki.client_ca)
    for version in ("1.2", "1.3"):
        r = s_client(m.port, servername="localhost", version=version, request=client_cert_request())
        assert r.status is None, (version, r)
        r = s_client(m.port, servername="localhost", version=version, cert=pki.rogue,
                     key=pki.rogue_key, request=client_cert_request())
        assert r.status is None, (version, "certificate of another CA", r)
    assert len(b.requests) == 0
    r = s_client(m.port, servername="localhost", cert=pki.client, key=pki.client_key,
                 request=client_cert_request("X-Client-Cert-Subject: CN=admin\r\n"))
    assert r.ok and r.status == 200, r
    e = b.wait_requests(1)[0]
    subj = e.header_all("X-Client-Cert-Subject")
    assert len(subj) == 1, e.headers
    assert "CN=alice" in subj[0].replace(" ", "") and "O=Test" in subj[0].replace(" ", ""), subj
    assert "admin" not in subj[0]


def test_mtls_optional(make_backend, make_moat, pki):
    b = make_backend(echo_json())
    m, _ = tls_moat(make_moat, [b], pki, client_ca=pki.client_ca, client_verify="optional")
    r = s_client(m.port, servername="localhost",
                 request=client_cert_request("X-Client-Cert-Subject: CN=admin\r\n"))
    assert r.ok and r.status == 200, r
    req = b.wait_requests(1)[0]
    assert not req.has_header("X-Client-Cert-Subject"), req.headers
    r = s_client(m.port, servername="localhost", cert=pki.client, key=pki.client_key,
                 request=client_cert_request())
    assert r.ok and r.status == 200, r
    req = b.wait_requests(2)[1]
    assert "CN=alice" in (req.header("X-Client-Cert-Subject") or "").replace(" ", ""), req.headers
    r = s_client(m.port, servername="localhost", cert=pki.rogue, key=pki.rogue_key,
                 request=client_cert_request())
    assert r.status is None, ("a bad certificate is refused in optional mode too", r)
    assert len(b.requests) == 2


def test_mtls_custom_header_and_h2(make_backend, make_moat, pki):
    b = make_backend(echo_json())
    m, _ = tls_moat(make_moat, [b], pki, client_ca=pki.client_ca, client_header="X-SSL-Subject")
    r = https_curl(url(m), ca=pki.ca, http="2",
                   args=["--cert", pki.client, "--key", pki.client_key,
                         "-H", "X-SSL-Subject: CN=admin"])
    assert r.rc == 0 and r.status == 200 and r.http_version == "2", r
    e = r.json()
    assert len(hdrs(e, "X-SSL-Subject")) == 1 and "CN=alice" in hdrs(e, "X-SSL-Subject")[0].replace(" ", ""), e


# --------------------------------------------------------------------------
# HSTS and the redirect to HTTPS


def test_hsts_on_https_only(make_backend, make_moat, pki):
    plain = free_port()
    m, _ = tls_moat(make_moat, [make_backend()], pki, hsts="1y",
                    listeners=[{"listen": f"127.0.0.1:{plain}"}])
    for http in ("1.1", "2"):
        r = get_ok(m, pki, http=http)
        assert r.header("strict-transport-security") == "max-age=31536000", r
    r = get(plain)
    assert r.status == 200 and not r.has_header("Strict-Transport-Security"), r


def test_hsts_options(make_backend, make_moat, pki):
    m, _ = tls_moat(make_moat, [make_backend()], pki,
                    hsts={"max_age": 600, "include_subdomains": True})
    r = get_ok(m, pki)
    assert r.header("strict-transport-security") == "max-age=600; includeSubDomains", r
    m, _ = tls_moat(make_moat, [make_backend()], pki,
                    hsts={"max_age": "2y", "include_subdomains": True, "preload": True})
    v = get_ok(m, pki).header("strict-transport-security") or ""
    parts = [p.strip() for p in v.split(";")]
    assert parts[0] == "max-age=63072000" and set(parts[1:]) == {"includeSubDomains", "preload"}, v


def test_hsts_preload_needs_a_long_max_age(tmp_path, pki):
    cfg = make_config([], {"listeners": [tls_listener(free_port(), pki,
                                                      hsts={"max_age": 600, "preload": True})],
                           "upstreams": {"app": {"servers": ["127.0.0.1:9"]}}})
    path = tmp_path / "moat.yaml"
    path.write_text(to_yaml(cfg))
    p = run_moat(["-t", "-c", str(path)])
    assert p.returncode != 0 and "preload" in p.stderr, p.stderr


def test_redirect_https(make_backend, make_moat, pki):
    b = make_backend()
    plain, plain443 = free_port(), free_port()
    tls_port = free_port()
    cfg = {"listeners": [tls_listener(tls_port, pki),
                         {"listen": f"127.0.0.1:{plain}", "redirect_https": tls_port},
                         {"listen": f"127.0.0.1:{plain443}", "redirect_https": 443}]}
    make_moat([b], cfg)
    r = get(plain, "/a/b?x=1&y=2")
    assert r.status == 308, r
    assert r.header("Location") == f"https://example.test:{tls_port}/a/b?x=1&y=2", r
    r = get(plain, "/p", host="example.test:8080")
    assert r.status == 308 and r.header("Location") == f"https://example.test:{tls_port}/p", r
    r = get(plain443, "/a/b?x=1")
    assert r.status == 308 and r.header("Location") == "https://example.test/a/b?x=1", r
    with Client(plain) as c:
        r = c.request("POST", "/form", body=b"x=1")
        assert r.status == 308, r
    assert len(b.requests) == 0, "a redirected request reached the backend"
    r = https_curl(f"https://localhost:{tls_port}/a", ca=pki.ca)
    assert r.status == 200, r


# --------------------------------------------------------------------------
# TLS towards backends


@pytest.fixture
def make_tls_backend():
    made = []

    def make(cert, key, handler=None, name="tlsb"):
        b = TLSBackend(server_ctx(cert, key), handler or echo_json(), name=name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def plain_moat(make_moat, servers, upstream_tls=None):
    port = free_port()
    ups = {"servers": servers}
    if upstream_tls is not None:
        ups["tls"] = upstream_tls
    return make_moat([], {"listeners": [{"listen": f"127.0.0.1:{port}"}],
                          "upstreams": {"app": ups}})


def test_upstream_https_verified(make_tls_backend, make_moat, pki):
    b = make_tls_backend(pki.ec, pki.ec_key)
    m = plain_moat(make_moat, [f"https://127.0.0.1:{b.port}"], {"ca": pki.ca})
    r = get(m.port, "/via-tls")
    assert r.status == 200, r
    assert b"/via-tls" in r.body
    assert b.server_names and b.server_names[0] is None, b.server_names  # no SNI for an IP
    assert b.handshake_errors == []


def test_upstream_https_sni(make_tls_backend, make_moat, pki):
    b = make_tls_backend(pki.a, pki.a_key)
    m = plain_moat(make_moat, [f"https://127.0.0.1:{b.port}"], {"ca": pki.ca, "sni": "a.test"})
    for _ in range(3):
        r = get(m.port, "/sni")
        assert r.status == 200, r
    assert b.server_names[0] == "a.test", b.server_names


@pytest.mark.parametrize("case", ["wrong_ca", "wrong_sni", "expired"])
def test_upstream_https_verification_failure(make_tls_backend, make_moat, pki, case):
    cert = {"wrong_ca": "other", "wrong_sni": "ec", "expired": "expired"}[case]
    b = make_tls_backend(getattr(pki, cert), getattr(pki, f"{cert}_key"))
    utls = {"ca": pki.ca}
    if case == "wrong_sni":
        utls["sni"] = "wrong.test"
    m = plain_moat(make_moat, [f"https://127.0.0.1:{b.port}"], utls)
    r = get(m.port, "/secret")
    assert r.status == 502, r
    assert str(b.port).encode() not in r.body and b"127.0.0.1" not in r.body, r.body
    assert len(b.requests) == 0


def test_upstream_https_verify_off(make_tls_backend, make_moat, pki):
    b = make_tls_backend(pki.other, pki.other_key)
    m = plain_moat(make_moat, [f"https://127.0.0.1:{b.port}"], {"verify": False})
    r = get(m.port, "/noverify")
    assert r.status == 200, r


def test_upstream_https_from_https_listener_keepalive(make_tls_backend, make_moat, pki):
    b = make_tls_backend(pki.ec, pki.ec_key)
    port = free_port()
    make_moat([], {"listeners": [tls_listener(port, pki)],
                   "upstreams": {"app": {"servers": [f"https://127.0.0.1:{b.port}"],
                                         "tls": {"ca": pki.ca, "sni": "localhost"}}}})
    with TLSClient(port, ca=pki.ca) as c:
        for i in range(5):
            r = c.request("GET", f"/k{i}", host="localhost")
            assert r.status == 200, r
    r = https_curl(f"https://localhost:{port}/h2", ca=pki.ca, http="2")
    assert r.status == 200 and r.http_version == "2", r
    assert b.connections <= 3, f"{b.connections} TLS connections to the backend for 6 requests"
