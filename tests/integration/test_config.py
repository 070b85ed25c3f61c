"""`moat -t`: validation with every error as FILE:LINE:COL: message;
`moat -c` refuses to start on a bad config; `moat --version`."""

import re

import pytest

from harness import Client, run_moat, t

GOOD = """\
workers: 2
log:
  level: info
  error: stderr
  access: stdout
  format: json
limits:
  request_line: 8KiB
  header_size: 32KiB
  header_count: 100
  body: 0
  connections: 16384
timeouts:
  client_header: 10s
  client_body: 60s
  keepalive: 75s
  client_send: 60s
  backend_connect: 5s
  backend_first_byte: 60s
  backend_idle: 60s
  drain: 30s
proxy:
  trusted_proxies: [127.0.0.2]
  hide_headers: [x-debug]
  preserve_host: true
listeners:
  - listen: 127.0.0.1:8080
upstreams:
  app:
    servers: [127.0.0.1:3000, { address: 127.0.0.1:3001, weight: 2 }]
    keepalive: 32
routes:
  - host: "*.example.com"
    path: /api/
    upstream: app
    strip_headers: [x-internal]
  - upstream: app
"""


def where(text, token, occurrence=1):
    """1-based (line, column) of the n-th occurrence of token in text."""
    pos = -1
    for _ in range(occurrence):
        pos = text.index(token, pos + 1)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def check(tmp_path, text, name="moat.yaml"):
    path = tmp_path / name
    path.write_text(text)
    p = run_moat(["-t", "-c", str(path)])
    return p, str(path), p.stdout + p.stderr


def test_valid_config_ok(tmp_path):
    p, _, out = check(tmp_path, GOOD)
    assert p.returncode == 0, out
    assert "configuration OK" in out


def test_minimal_config_ok(tmp_path):
    text = "listeners:\n  - listen: 127.0.0.1:8080\nupstreams:\n  app:\n    servers: [127.0.0.1:3000]\n" \
           "routes:\n  - upstream: app\n"
    p, _, out = check(tmp_path, text)
    assert p.returncode == 0, out
    assert "configuration OK" in out


def test_workers_auto_and_other_log_formats_ok(tmp_path):
    for fmt in ("json", "combined", "common"):
        text = GOOD.replace("workers: 2", "workers: auto").replace("format: json", f"format: {fmt}")
        text = text.replace("access: stdout", f"access: {tmp_path}/access.log")
        p, _, out = check(tmp_path, text)
        assert p.returncode == 0, f"{fmt}: {out}"
        assert "configuration OK" in out


def test_unknown_top_level_key(tmp_path):
    text = GOOD.replace("workers: 2\n", "workers: 2\nwrokers: 3\n")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    line, col = where(text, "wrokers")
    assert f"{path}:{line}:{col}: " in out, out
    assert "wrokers" in out
    assert "configuration OK" not in out


def test_unknown_nested_key(tmp_path):
    text = GOOD.replace("  keepalive: 75s\n", "  keepalive: 75s\n  client_heder: 5s\n")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    line, col = where(text, "client_heder")
    assert col == 3
    assert f"{path}:{line}:{col}: " in out, out


@pytest.mark.parametrize("value", ["10 parsecs", "abc", "-5s", "10x", "1.5.s"])
def test_bad_duration(tmp_path, value):
    text = GOOD.replace("client_header: 10s", f"client_header: {value}")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    line, col = where(text, value)
    assert f"{path}:{line}:{col}: " in out, f"expected {path}:{line}:{col}: in\n{out}"


def test_bad_size(tmp_path):
    text = GOOD.replace("header_size: 32KiB", "header_size: lots")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    line, col = where(text, "lots")
    assert f"{path}:{line}:{col}: " in out, out


def test_unknown_upstream(tmp_path):
    text = GOOD.replace("  - upstream: app\n", "  - upstream: nope\n")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    line, col = where(text, "nope")
    assert f"{path}:{line}:{col}: " in out, out
    assert "nope" in out


def test_yaml_syntax_error(tmp_path):
    text = GOOD.replace("log:\n  level: info", "log: @bad\n  level: info")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    line, col = where(text, "@bad")
    assert (line, col) == (2, 6)
    assert f"{path}:{line}:{col}: " in out, out


def test_yaml_unclosed_flow_sequence(tmp_path):
    text = GOOD.replace("servers: [127.0.0.1:3000, { address: 127.0.0.1:3001, weight: 2 }]",
                        "servers: [127.0.0.1:3000")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    assert re.search(re.escape(path) + r":\d+:\d+: ", out), out


def test_every_error_reported(tmp_path):
    text = GOOD.replace("workers: 2\n", "workers: 2\nwrokers: 3\n") \
               .replace("client_body: 60s", "client_body: soon") \
               .replace("  - upstream: app\n", "  - upstream: nope\n")
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    for token in ("wrokers", "soon", "nope"):
        line, col = where(text, token)
        assert f"{path}:{line}:{col}: " in out, f"{token}: {path}:{line}:{col} missing in\n{out}"
    # one line per error
    assert len(re.findall(re.escape(path) + r":\d+:\d+: ", out)) >= 3


@pytest.mark.parametrize("old,new,token", [
    ("listen: 127.0.0.1:8080", "listen: 127.0.0.1:99999", "127.0.0.1:99999"),
    ("listen: 127.0.0.1:8080", "listen: not-an-address", "not-an-address"),
    ("workers: 2", "workers: many", "many"),
    ("header_count: 100", "header_count: -1", "-1"),
    ("preserve_host: true", "preserve_host: perhaps", "perhaps"),
    ("format: json", "format: xml", "xml"),
    ("weight: 2", "weight: heavy", "heavy"),
])
def test_bad_values(tmp_path, old, new, token):
    text = GOOD.replace(old, new)
    p, path, out = check(tmp_path, text)
    assert p.returncode == 1, out
    line, col = where(text, token)
    assert f"{path}:{line}:{col}: " in out, f"expected {path}:{line}:{col}: in\n{out}"


def test_missing_file(tmp_path):
    p = run_moat(["-t", "-c", str(tmp_path / "nope.yaml")])
    assert p.returncode == 1
    assert "nope.yaml" in p.stdout + p.stderr


def test_run_with_bad_config_refuses_to_start(tmp_path, make_moat):
    text = GOOD.replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:@PORT@") \
               .replace("client_header: 10s", "client_header: 10 parsecs")
    m = make_moat(text=text, ready=False)
    rc = m.wait_exit(t(10))
    assert rc != 0
    line, col = where(text, "10 parsecs")
    assert f"{m.config_path}:{line}:{col}: " in m.stderr, m.stderr
    assert "ready" not in m.stderr
    with pytest.raises(OSError):
        Client(m.port)


def test_full_example_config_runs(tmp_path, make_backend, make_moat):
    b = make_backend()
    b2 = make_backend(name=b.name)  # a second address (duplicates are an error), same answers
    text = GOOD.replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:@PORT@") \
               .replace("127.0.0.1:3000, { address: 127.0.0.1:3001, weight: 2 }",
                        f"{b.addr}, {{ address: {b2.addr}, weight: 2 }}")
    m = make_moat(text=text)
    with Client(m.port) as c:
        r = c.request("GET", "/api/x", host="www.example.com")
        assert (r.status, r.body) == (200, b"b1 GET /api/x\n")


def test_version():
    p = run_moat(["--version"])
    assert p.returncode == 0
    assert re.search(r"moat\b.*\d+\.\d+", p.stdout + p.stderr), p.stdout + p.stderr
