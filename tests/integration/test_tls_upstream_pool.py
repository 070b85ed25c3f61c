"""Idle backend connections are reused only for requests of the same kind:
two upstreams naming one address with different TLS settings (SNI,
verification, CA, client certificate) or schemes never share a pooled
connection (a request under strict verification rode a connection made
without it)."""
from harness import free_port, get
from tls_util import TLSBackend, echo_json, pki, server_ctx  # noqa: F401


def test_pooled_tls_conn_not_shared_across_tls_settings(make_moat, pki):
    b = TLSBackend(server_ctx(pki.ec, pki.ec_key), echo_json(), name="tlsb")
    try:
        port = free_port()
        addr = f"https://127.0.0.1:{b.port}"
        m = make_moat([], {"workers": 1, "listeners": [{"listen": f"127.0.0.1:{port}"}],
                           "upstreams": {
                               "lax": {"servers": [addr], "tls": {"verify": False, "sni": "lax.example"}},
                               "strict": {"servers": [addr], "tls": {"ca": pki.ca, "sni": "wrong.example"}}},
                           "routes": [{"path": "/lax", "upstream": "lax"},
                                      {"path": "/strict", "upstream": "strict"}]})
        assert get(m.port, "/lax").status == 200
        # the lax connection now waits in the pool; the strict upstream must
        # make its own, whose verification fails (the name does not match)
        r = get(m.port, "/strict")
        assert r.status == 502, r
        assert get(m.port, "/lax").status == 200
    finally:
        b.stop()
