"""The client certificate's field (X-Client-Cert-Subject, or a TLS
listener's `client_header`) is moat's alone: a client's own field of that
name is removed on every listener, cleartext ones (and h2c) included, so a
backend that trusts it behind an mTLS listener cannot be fooled through
another listener."""
import json

import pytest

from harness import free_port, get
from tls_util import echo_json, hdrs, https_curl, pki, tls_listener  # noqa: F401


@pytest.mark.parametrize("http", ["1.1", "2pk"])
def test_forged_cert_fields_removed_on_cleartext(make_backend, make_moat, pki, http):
    b = make_backend(echo_json())
    tls_port, plain = free_port(), free_port()
    make_moat([b], {"listeners": [
        tls_listener(tls_port, pki, ("ec",), client_ca=pki.ca, client_verify="optional",
                     client_header="X-SSL-Subject"),
        {"listen": f"127.0.0.1:{plain}"}]})
    r = https_curl(f"http://127.0.0.1:{plain}/x", http=http,
                   args=["-H", "X-Client-Cert-Subject: CN=admin", "-H", "X-SSL-Subject: CN=admin",
                         "-H", "x-ssl-subject: CN=root"])
    assert r.rc == 0 and r.status == 200, r
    echo = json.loads(r.body)
    assert hdrs(echo, "x-client-cert-subject") == [] and hdrs(echo, "x-ssl-subject") == [], echo


def test_default_cert_field_removed_without_tls(make_backend, make_moat):
    b = make_backend(echo_json())
    m = make_moat([b], {})
    r = get(m.port, "/x", headers=[("X-Client-Cert-Subject", "CN=admin")])
    assert r.status == 200
    assert hdrs(json.loads(r.body), "x-client-cert-subject") == [], r.body
