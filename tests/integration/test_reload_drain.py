"""A reload keeps long-lived connections on the config they started with
until they end or timeouts.drain passes; then they are closed."""

import time

from harness import make_config, t, websocket_echo
from test_upgrade import open_tunnel


def echo_once(c, payload=b"ping"):
    c.send(payload)
    got = b""
    while len(got) < len(payload):
        data = c.recv()
        assert data, "tunnel closed"
        got += data
    return got


def test_tunnel_survives_reload_within_drain(make_backend, make_moat):
    b = make_backend(websocket_echo())
    cfg = {"timeouts": {"drain": "30s"}}
    m = make_moat([b], cfg)
    with open_tunnel(m.port) as c:
        assert echo_once(c) == b"ping"
        m.reload(make_config([b], {"timeouts": {"drain": "30s"}, "proxy": {"hide_headers": ["x-a"]}},
                             port=m.port))
        time.sleep(t(0.5))
        assert echo_once(c, b"after reload") == b"after reload"


def test_tunnel_closed_when_old_generation_drain_ends(make_backend, make_moat):
    b = make_backend(websocket_echo())
    m = make_moat([b], {"timeouts": {"drain": "1s"}})
    with open_tunnel(m.port) as c:
        assert echo_once(c) == b"ping"
        m.reload(make_config([b], {"timeouts": {"drain": "1s"}, "proxy": {"hide_headers": ["x-a"]}},
                             port=m.port))
        assert echo_once(c, b"still open") == b"still open"
        start = time.monotonic()
        assert c.wait_closed(t(5)), "tunnel of the replaced generation was not closed"
        assert time.monotonic() - start < t(3)
    assert "was replaced" in m.errlog
