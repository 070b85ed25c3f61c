"""`moat proxy --from ADDR --to URL [--to URL...] [--workers N]`."""

import signal

import pytest

from harness import Client, free_port, run_moat, t


def proxy(make_moat, backends, workers=1):
    port = free_port()
    argv = ["proxy", "--from", f"127.0.0.1:{port}"]
    for b in backends:
        argv += ["--to", f"http://{b.addr}"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    return make_moat(argv=argv, listens=[("127.0.0.1", port)])


def test_round_robin_over_to(make_backend, make_moat):
    a, b = make_backend(name="a"), make_backend(name="b")
    m = proxy(make_moat, [a, b])
    with Client(m.port) as c:
        seen = [c.request("GET", f"/{i}").header("X-Backend") for i in range(10)]
    assert sorted(seen) == ["a"] * 5 + ["b"] * 5, seen
    assert all(seen[i] != seen[i + 1] for i in range(9)), f"not round robin: {seen}"


def test_three_backends_round_robin(make_backend, make_moat):
    bs = [make_backend(name=n) for n in ("x", "y", "z")]
    m = proxy(make_moat, bs)
    with Client(m.port) as c:
        seen = [c.request("GET", "/").header("X-Backend") for _ in range(9)]
    assert {n: seen.count(n) for n in "xyz"} == {"x": 3, "y": 3, "z": 3}, seen


def test_forwards_like_config_mode(make_backend, make_moat):
    b = make_backend()
    m = proxy(make_moat, [b])
    with Client(m.port) as c:
        c.send(b"GET /p HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n")
        r = c.read_response()
    assert (r.status, r.body) == (200, b"b1 GET /p\n")
    assert b.raw_requests == [
        b"GET /p HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n"
        b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.test\r\n"
        b"Forwarded: for=127.0.0.1;host=example.test;proto=http\r\n\r\n"]


def test_access_log_on_stdout(make_backend, make_moat):
    b = make_backend()
    m = proxy(make_moat, [b])
    with Client(m.port) as c:
        for path in ("/one", "/two", "/three"):
            assert c.request("GET", path).status == 200
    lines = m.access_lines(3)
    assert len(lines) == 3, lines
    for line, path in zip(lines, ("/one", "/two", "/three")):
        assert path in line and "200" in line and "GET" in line, line


def test_default_workers(make_backend, make_moat):
    b = make_backend()
    m = proxy(make_moat, [b], workers=None)
    with Client(m.port) as c:
        assert c.request("GET", "/").status == 200


def test_sigterm_exit_0(make_backend, make_moat):
    b = make_backend()
    m = proxy(make_moat, [b], workers=2)
    with Client(m.port) as c:
        assert c.request("GET", "/").status == 200
    assert m.stop(signal.SIGTERM) == 0


def test_dead_backend_502_hides_address(make_moat):
    dead = free_port()
    port = free_port()
    m = make_moat(argv=["proxy", "--from", f"127.0.0.1:{port}", "--to", f"http://127.0.0.1:{dead}"],
                  listens=[("127.0.0.1", port)])
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert r.status == 502
    assert str(dead).encode() not in r.raw_head + r.body
    assert b"127.0.0.1" not in r.raw_head + r.body


@pytest.mark.parametrize("args", [
    ["proxy", "--from", "127.0.0.1:{port}"],                                # no --to
    ["proxy", "--from", "127.0.0.1:{port}", "--to", "ftp://127.0.0.1:21"],  # not http
    ["proxy", "--from", "127.0.0.1:{port}", "--to", "http://"],             # no host
    ["proxy", "--from", "nowhere", "--to", "http://127.0.0.1:1"],           # bad listen address
    ["proxy", "--from", "127.0.0.1:{port}", "--to", "http://127.0.0.1:1", "--workers", "zero"],
    ["proxy", "--to", "http://127.0.0.1:1"],                                # no --from
])
def test_bad_arguments_refused(args):
    port = free_port()
    p = run_moat([a.replace("{port}", str(port)) for a in args], timeout=t(10))
    assert p.returncode != 0, p.stdout + p.stderr
    assert p.stderr.strip(), "no error message"
    assert "ready" not in p.stderr
