"""Certificates replaced on disk are picked up without a signal.

moat looks at the TLS files of its config (certificates, keys, CA files)
every 5 seconds and reloads when one changed: a renewal by certbot or a
cron job needs no SIGHUP. A broken replacement is refused like a broken
reload and the old certificate stays.
"""
import os
import shutil
import time

from harness import free_port, make_config
from tls_util import http_get, pki, s_client  # noqa: F401

WATCH = 5          # moat's interval
WAIT = WATCH * 3   # generous under ASan


def _replace(src, dst):
    """Atomically, as renewal tools do (a temporary file renamed)."""
    tmp = str(dst) + ".new"
    shutil.copy(src, tmp)
    os.replace(tmp, dst)


def _wait_subject(port, pki, want, deadline):
    r = None
    while time.monotonic() < deadline:
        r = s_client(port, servername="localhost", ca=pki.ca)
        if r.ok and r.subject == want:
            return r
        time.sleep(0.3)
    raise AssertionError(f"still not {want!r}: {r!r}")


def test_replaced_certificate_is_served_without_sighup(make_backend, make_moat, pki, tmp_path):
    b = make_backend()
    site, key = tmp_path / "site.pem", tmp_path / "site.key"
    shutil.copy(pki.ec, site)
    shutil.copy(pki.ec_key, key)
    port = free_port()
    cfg = make_config([b], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                           "tls": {"cert": str(site), "key": str(key)}}]})
    m = make_moat([b], cfg)
    assert s_client(port, servername="localhost").subject == "CN = localhost-ec"
    _replace(pki.ec2_key, key)
    _replace(pki.ec2, site)
    _wait_subject(port, pki, "CN = localhost-ec2", time.monotonic() + WAIT)
    assert "TLS files changed on disk: reloading" in m.errlog


def test_broken_replacement_keeps_the_old_certificate(make_backend, make_moat, pki, tmp_path):
    b = make_backend()
    site, key = tmp_path / "site.pem", tmp_path / "site.key"
    shutil.copy(pki.ec, site)
    shutil.copy(pki.ec_key, key)
    port = free_port()
    cfg = make_config([b], {"listeners": [{"listen": f"127.0.0.1:{port}",
                                           "tls": {"cert": str(site), "key": str(key)}}]})
    m = make_moat([b], cfg)
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    _replace(bad, site)
    deadline = time.monotonic() + WAIT
    while "reload refused" not in m.errlog and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "reload refused" in m.errlog and "site.pem" in m.errlog, m.errlog[-2000:]
    r = s_client(port, servername="localhost", ca=pki.ca, request=http_get())
    assert r.ok and r.subject == "CN = localhost-ec" and r.status == 200, r
    # The fixed files are picked up at the next look.
    _replace(pki.ec2_key, key)
    _replace(pki.ec2, site)
    _wait_subject(port, pki, "CN = localhost-ec2", time.monotonic() + WAIT)
