"""limits.h2_streams: the concurrent streams an HTTP/2 connection may have
(SETTINGS_MAX_CONCURRENT_STREAMS), advertised in the SETTINGS
moat sends (nghttp2 refuses streams past it: test_h2_conformance.py)."""
from harness import free_port
from tls_util import (SETTINGS_MAX_CONCURRENT_STREAMS, RawH2, echo_json,  # noqa: F401
                      pki)


def test_h2_streams_advertised(make_backend, make_moat):
    b = make_backend(echo_json())
    plain = free_port()
    make_moat([b], {"listeners": [{"listen": f"127.0.0.1:{plain}"}],
                    "limits": {"h2_streams": 7}})
    with RawH2(plain, tls=False) as c:
        c.read_until(lambda fs: c.settings() is not None)
        s = c.settings()
        assert s is not None and s.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 7, s


def test_h2_streams_out_of_range_refused(make_moat, make_backend, tmp_path):
    from harness import make_config, run_moat, to_yaml
    cfg = make_config([], {"listeners": [{"listen": f"127.0.0.1:{free_port()}"}],
                           "upstreams": {"app": {"servers": ["127.0.0.1:9"]}},
                           "limits": {"h2_streams": 0}})
    path = tmp_path / "moat.yaml"
    path.write_text(to_yaml(cfg))
    p = run_moat(["-t", "-c", str(path)])
    assert p.returncode != 0 and "h2_streams" in p.stderr, p.stderr
