"""Access log: one line per request; JSON by default, combined and common
when configured; to stdout, a file, or off."""

import json
import re
import time

from harness import Client, build_request, free_port, get, slow, t, wait_for

BYTES_KEYS = ("bytes", "bytes_out", "bytes_sent", "body_bytes_sent")


def target_of(rec):
    for k in ("uri", "path", "target", "request_uri"):
        if k in rec:
            return rec[k]
    raise AssertionError(f"no uri/path field in {rec}")


def status_of(rec):
    s = rec["status"]
    assert isinstance(s, int) or (isinstance(s, str) and s.isdigit()), rec
    return int(s)


def bytes_of(rec):
    for k in BYTES_KEYS:
        if k in rec:
            assert isinstance(rec[k], int), rec
            return rec[k]
    raise AssertionError(f"no bytes field ({'/'.join(BYTES_KEYS)}) in {rec}")


def test_json_line_per_request(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"routes": [{"path": "/app/", "upstream": "app"}]})
    with Client(m.port) as c:
        first = c.request("GET", "/app/a?q=1")
        assert first.status == 200
        assert c.request("POST", "/app/b", body=b"x" * 10).status == 200
        assert c.request("GET", "/missing").status == 404
        assert c.request("HEAD", "/app/h").status == 200
    recs = m.access_records(4)
    assert len(recs) == 4, recs
    want = [("GET", "/app/a", 200), ("POST", "/app/b", 200), ("GET", "/missing", 404),
            ("HEAD", "/app/h", 200)]
    for rec, (method, path, status) in zip(recs, want):
        assert rec["method"] == method, rec
        assert target_of(rec).split("?")[0] == path, rec
        assert status_of(rec) == status, rec
        assert isinstance(rec["duration_ms"], (int, float)) and rec["duration_ms"] >= 0, rec
        bytes_of(rec)
    assert target_of(recs[0]) in ("/app/a?q=1", "/app/a")
    # bytes counts at least the body sent
    assert bytes_of(recs[0]) >= len(first.body) > 0


def test_duration_measured(make_backend, make_moat):
    b = make_backend(slow(0.3))
    m = make_moat([b])
    assert get(m.port, "/slow").status == 200
    rec = m.access_records(1)[0]
    assert rec["duration_ms"] >= 250, rec
    assert rec["duration_ms"] < t(5000), rec


def test_every_line_is_valid_json_with_odd_bytes(make_backend, make_moat):
    """Quotes, backslashes and obs-text from the client never break the JSON
    (which must be valid UTF-8, RFC 8259)."""
    b = make_backend()
    m = make_moat([b])
    ascii_targets = ['/q?a="x"&b=\\y', "/%22%5C"]
    statuses = {}
    for target in ascii_targets + ["/caf\xe9"]:
        with Client(m.port) as c:
            c.send(build_request("GET", target, [("User-Agent", 'ua "quoted" \\ back \xe9'),
                                                 ("Referer", "http://r/\xe9\"")]))
            statuses[target] = c.read_response().status
    assert get(m.port, "/last").status == 200
    m.access_lines(1)
    wait_for(lambda: "/last" in m.stdout, t(5), what="the access log line of /last")
    recs = []
    for raw in m.stdout_path.read_bytes().splitlines():
        if not raw.strip():
            continue
        try:
            recs.append(json.loads(raw.decode("utf-8")))
        except ValueError as e:
            raise AssertionError(f"access log line is not valid UTF-8 JSON ({e}): {raw!r}")
    # lines from different connections may come in any order (per-worker logs)
    assert "/last" in [target_of(r) for r in recs]
    for target in ascii_targets:   # served ones are logged as sent
        if statuses[target] == 200:
            assert target in [target_of(r) for r in recs], (target, recs)


def test_combined_format(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"log": {"format": "combined"}})
    with Client(m.port) as c:
        r = c.request("GET", "/c?x=1", [("Referer", "http://ref.example/"), ("User-Agent", "itest/2.0")])
        assert r.status == 200
    line = m.access_lines(1)[0]
    rx = (r'^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
          r'"GET /c\?x=1 HTTP/1\.1" 200 (\d+|-) "http://ref\.example/" "itest/2\.0"$')
    assert re.match(rx, line), line
    assert int(re.match(rx, line).group(1)) == len(r.body)   # %b: body bytes


def test_common_format(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"log": {"format": "common"}})
    assert get(m.port, "/common").status == 200
    line = m.access_lines(1)[0]
    rx = (r'^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
          r'"GET /common HTTP/1\.1" 200 \d+$')
    assert re.match(rx, line), line


def test_access_log_to_file(make_backend, make_moat, tmp_path):
    b = make_backend()
    path = tmp_path / "access.log"
    m = make_moat([b], {"log": {"access": str(path)}})
    assert get(m.port, "/f1").status == 200
    assert get(m.port, "/f2").status == 200

    def lines():
        ls = path.read_text().splitlines() if path.exists() else []
        return ls if len(ls) >= 2 else None

    ls = wait_for(lines, t(5), what="2 lines in the access log file")
    assert sorted(target_of(json.loads(l)) for l in ls) == ["/f1", "/f2"]
    assert m.stdout.strip() == ""


def test_access_log_off(make_backend, make_moat):
    b = make_backend()
    m = make_moat([b], {"log": {"access": "off"}})
    for i in range(3):
        assert get(m.port, f"/{i}").status == 200
    time.sleep(t(0.3))
    assert m.stdout.strip() == ""


def test_error_log_to_file(make_backend, make_moat, tmp_path):
    b = make_backend()
    path = tmp_path / "error.log"
    port = free_port()
    m = make_moat([b], {"log": {"error": str(path)}, "listeners": [{"listen": f"127.0.0.1:{port}"}]},
                  error_log=path)
    assert "ready" in path.read_text()
    assert get(m.port, "/").status == 200


def test_one_line_per_pipelined_and_keepalive_request(moat, backend):
    with Client(moat.port) as c:
        c.send(b"".join(build_request("GET", f"/p{i}") for i in range(5)))
        for _ in range(5):
            assert c.read_response().status == 200
    moat.access_records(5)
    time.sleep(t(0.2))   # and no more than 5
    recs = moat.access_records(5)
    assert [target_of(r) for r in recs] == [f"/p{i}" for i in range(5)]


def test_sigusr1_reopens_access_log(make_backend, make_moat, tmp_path):
    import signal
    b = make_backend()
    path = tmp_path / "access.log"
    m = make_moat([b], {"log": {"access": str(path)}})
    assert get(m.port, "/before").status == 200
    wait_for(lambda: path.exists() and "/before" in path.read_text(), t(5), what="/before logged")
    rotated = tmp_path / "access.log.1"
    path.rename(rotated)
    m.send_signal(signal.SIGUSR1)
    wait_for(path.exists, t(5), what="moat to reopen the access log after SIGUSR1")
    assert get(m.port, "/after").status == 200
    wait_for(lambda: "/after" in path.read_text(), t(5), what="/after in the new file")
    assert "/after" not in rotated.read_text()
