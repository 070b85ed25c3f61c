"""HSTS on every answer of a TLS listener with `hsts`: the backend's, moat's
own (an error page, a redirect-free 404) and the cache's (a hit)."""
import pytest

from harness import free_port, make_config
from tls_util import https_curl, pki, tls_listener  # noqa: F401


def _moat(make_moat, backends, pki, **cfg):
    port = free_port()
    conf = dict(cfg)
    conf["listeners"] = [tls_listener(port, pki, ("ec",), hsts="1y")]
    return make_moat(backends, conf), port


@pytest.mark.parametrize("http", ["1.1", "2"])
def test_hsts_on_moats_own_answer(make_backend, make_moat, pki, http):
    b = make_backend()
    m, port = _moat(make_moat, [b], pki, routes=[{"path": "/app", "upstream": "app"}])
    r = https_curl(f"https://localhost:{port}/nowhere", ca=pki.ca, http=http)
    assert r.rc == 0 and r.status == 404, r
    assert r.header("strict-transport-security") == "max-age=31536000", r


@pytest.mark.parametrize("http", ["1.1", "2"])
def test_hsts_on_a_cache_hit(make_backend, make_moat, pki, http):
    b = make_backend()
    m, port = _moat(make_moat, [b], pki, cache={"memory": "16MiB"},
                    routes=[{"upstream": "app", "cache": {"default_ttl": "60s"}}])
    u = f"https://localhost:{port}/c"
    first = https_curl(u, ca=pki.ca, http=http)
    assert first.rc == 0 and first.status == 200, first
    hit = https_curl(u, ca=pki.ca, http=http)
    assert hit.rc == 0 and hit.status == 200 and "hit" in (hit.header("cache-status") or ""), hit
    assert hit.header("strict-transport-security") == "max-age=31536000", hit
