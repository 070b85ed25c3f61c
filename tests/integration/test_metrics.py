"""GET /metrics of the admin listener (src/proxy/metrics.c), read with a
small parser of the Prometheus text format 0.0.4 written here: every line
must be a valid HELP, TYPE or sample line (label values with their
escapes), each family declared once with its samples together, no series
twice, histograms cumulative with _count equal to the +Inf bucket. Then
the counters must move exactly as requests flow through a real backend,
refusals be counted by reason, failures and health changes show, label
values survive escaping, and counters outlive a reload.
"""

import math
import re
import signal
import socket
import time

from harness import Client, get, make_config, run_moat, t, to_yaml, wait_for
from harness import free_port

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# --------------------------------------------------------------------------
# The parser


class Family:
    def __init__(self, name):
        self.name = name
        self.type = None
        self.help = None
        self.samples = []          # (sample name, labels dict, value)


def parse_value(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    assert re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text), f"{where}: bad value {text!r}"
    return float(text)


def parse_labels(s, i, where):
    """Parses '{a="x",b="y"}' starting at s[i] == '{'; returns (dict, index after '}')."""
    assert s[i] == "{"
    i += 1
    labels = {}
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        assert m, f"{where}: bad label name at {s[i:]!r}"
        name = m.group(0)
        i = m.end()
        assert s[i:i + 2] == '="', f"{where}: expected =\" after label {name!r}"
        i += 2
        value = []
        while True:
            assert i < len(s), f"{where}: unterminated label value"
            c = s[i]
            if c == "\\":
                nxt = s[i + 1]
                assert nxt in '\\"n', f"{where}: bad escape \\{nxt} in a label value"
                value.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                assert c != "\n", f"{where}: raw newline in a label value"
                value.append(c)
                i += 1
        assert name not in labels, f"{where}: label {name!r} twice"
        labels[name] = "".join(value)
        if s[i] == ",":
            i += 1
        else:
            assert s[i] == "}", f"{where}: expected , or }} after a label, got {s[i:]!r}"


def parse_exposition(text):
    """{family name: Family}, in order; asserts the format's rules."""
    assert text.endswith("\n"), "the exposition does not end with a newline"
    families = {}
    order = []
    current = None
    closed = set()
    seen = set()

    def family_of(sample_name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name[: -len(suffix)]
            if sample_name.endswith(suffix) and base in families and families[base].type in (
                    "histogram", "summary"):
                return families[base]
        return families.get(sample_name)

    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert NAME.fullmatch(name), f"{where}: bad metric name"
                fam = families.get(name)
                if fam is None:
                    assert name not in closed, f"{where}: family {name} declared again later"
                    fam = families[name] = Family(name)
                    order.append(name)
                    if current and current is not fam:
                        closed.add(current.name)
                    current = fam
                if parts[1] == "HELP":
                    assert fam.help is None, f"{where}: HELP twice"
                    doc = parts[3] if len(parts) > 3 else ""
                    assert re.fullmatch(r"([^\\\n]|\\\\|\\n)*", doc), f"{where}: bad escape in HELP"
                    fam.help = doc
                else:
                    assert fam.type is None, f"{where}: TYPE twice"
                    assert not fam.samples, f"{where}: TYPE after samples"
                    assert len(parts) == 4 and parts[3] in TYPES, f"{where}: bad TYPE"
                    fam.type = parts[3]
            continue
        m = NAME.match(line)
        assert m, f"{where}: no metric name"
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        rest = line[i:]
        assert rest.startswith(" "), f"{where}: no space before the value"
        fields = rest.strip(" ").split(" ")
        assert 1 <= len(fields) <= 2, f"{where}: expected a value and an optional timestamp"
        value = parse_value(fields[0], where)
        if len(fields) == 2:
            assert re.fullmatch(r"-?\d+", fields[1]), f"{where}: bad timestamp"
        fam = family_of(name)
        assert fam is not None, f"{where}: sample of an undeclared family"
        assert fam is current, f"{where}: sample away from its family's block"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"{where}: series repeated"
        seen.add(key)
        fam.samples.append((name, labels, value))
    return {name: families[name] for name in order}


def check_rules(fams):
    """moat's own rules over a parsed exposition."""
    for name, fam in fams.items():
        assert name.startswith("moat_"), name
        assert fam.type in ("counter", "gauge", "histogram"), (name, fam.type)
        assert fam.help, f"{name} has no HELP"
        if fam.type == "counter":
            assert name.endswith("_total"), f"counter {name} does not end in _total"
        if fam.type == "histogram":
            assert name.endswith("_seconds"), f"histogram {name} is not in seconds"
            check_histogram(fam)
        for sname, labels, v in fam.samples:
            assert not math.isnan(v), (sname, labels)
            if fam.type == "counter":
                assert v >= 0 and v == int(v), (sname, labels, v)


def check_histogram(fam):
    series = {}
    for sname, labels, v in fam.samples:
        base = {k: x for k, x in labels.items() if k != "le"}
        key = tuple(sorted(base.items()))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname == fam.name + "_bucket":
            assert "le" in labels, (sname, labels)
            s["buckets"].append((parse_value(labels["le"], sname), v))
        elif sname == fam.name + "_sum":
            s["sum"] = v
        elif sname == fam.name + "_count":
            s["count"] = v
        else:
            raise AssertionError(f"{sname} in histogram {fam.name}")
    assert series, f"histogram {fam.name} has no series"
    for key, s in series.items():
        les = [le for le, _ in s["buckets"]]
        assert les == sorted(les) and len(set(les)) == len(les), (fam.name, key, les)
        assert les and les[-1] == math.inf, f"{fam.name}{key}: no +Inf bucket"
        counts = [c for _, c in s["buckets"]]
        assert all(a <= b for a, b in zip(counts, counts[1:])), f"{fam.name}{key}: not cumulative: {counts}"
        assert s["count"] == counts[-1], f"{fam.name}{key}: _count {s['count']} != +Inf bucket {counts[-1]}"
        assert s["sum"] is not None and s["sum"] >= 0, (fam.name, key)


def value(fams, name, **labels):
    """The value of the one sample `name` with exactly these labels."""
    for fam in fams.values():
        for sname, ls, v in fam.samples:
            if sname == name and ls == labels:
                return v
    raise AssertionError(f"no sample {name}{labels}")


def samples(fams, name):
    return [(ls, v) for fam in fams.values() for sname, ls, v in fam.samples if sname == name]


# --------------------------------------------------------------------------
# Helpers


def start(make_moat, backends=(), config=None, admin=None):
    port = free_port()
    cfg = dict(config or {})
    cfg["admin"] = dict({"listen": f"127.0.0.1:{port}"}, **(admin or {}))
    m = make_moat(backends, cfg)

    def accepts():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(accepts, t(10), what="the admin port")
    return m, port


def scrape(port, token=None):
    hs = [("Connection", "close")]
    if token:
        hs.append(("Authorization", f"Bearer {token}"))
    with Client(port) as c:
        r = c.request("GET", "/metrics", hs, host=f"127.0.0.1:{port}")
    assert r.status == 200, r
    assert r.header("Content-Type") == CONTENT_TYPE, r.headers
    fams = parse_exposition(r.body.decode("utf-8"))
    check_rules(fams)
    return fams


def scrape_until(port, predicate, what, timeout=None):
    last = {}

    def probe():
        last["f"] = scrape(port)
        return last["f"] if predicate(last["f"]) else None
    return wait_for(probe, timeout or t(5), what=what)


EXPECTED = {
    "moat_http_requests_total": "counter",
    "moat_http_request_duration_seconds": "histogram",
    "moat_http_request_bytes_total": "counter",
    "moat_http_response_bytes_total": "counter",
    "moat_upstream_response_duration_seconds": "histogram",
    "moat_upstream_retries_total": "counter",
    "moat_upstream_failures_total": "counter",
    "moat_upstream_ejections_total": "counter",
    "moat_upstream_health_transitions_total": "counter",
    "moat_upstream_server_up": "gauge",
    "moat_upstream_server_active_requests": "gauge",
    "moat_upstream_server_requests_total": "counter",
    "moat_connections_active": "gauge",
    "moat_connections_accepted_total": "counter",
    "moat_tls_handshakes_total": "counter",
    "moat_tls_resumed_total": "counter",
    "moat_h2_connections_total": "counter",
    "moat_h2_streams_total": "counter",
    "moat_refusals_total": "counter",
    "moat_config_generation": "gauge",
    "moat_config_loaded_timestamp_seconds": "gauge",
    "moat_build_info": "gauge",
    "moat_uptime_seconds": "gauge",
}


# --------------------------------------------------------------------------
# Tests


def test_parser_refuses_bad_lines():
    good = ('# HELP moat_x_total A "thing" \\\\ with\\n escapes.\n# TYPE moat_x_total counter\n'
            'moat_x_total{a="q\\"uo\\\\te\\nnl",b=""} 3\nmoat_x_total 4 1700000000000\n')
    fams = parse_exposition(good)
    assert samples(fams, "moat_x_total") == [({"a": 'q"uo\\te\nnl', "b": ""}, 3.0), ({}, 4.0)]
    for bad in ('# TYPE moat_x_total counter\nmoat_x_total{a="x} 1\n',
                '# TYPE moat_x_total counter\nmoat_x_total{a="\\t"} 1\n',
                '# TYPE moat_x_total counter\nmoat_x_total{1a="x"} 1\n',
                '# TYPE moat_x_total counter\nmoat_x_total one\n',
                '# TYPE moat_x_total counter\nmoat_x_total 1\nmoat_x_total 2\n',
                'moat_undeclared 1\n',
                '# TYPE moat_x_total counter\n# TYPE moat_y gauge\nmoat_y 1\nmoat_x_total 1\n',
                '# TYPE moat_x_total counter\nmoat_x_total 1'):
        try:
            parse_exposition(bad)
        except AssertionError:
            continue
        raise AssertionError(f"the parser took {bad!r}")


def test_exposition_valid_and_complete(backend, make_moat):
    m, port = start(make_moat, [backend])
    for i in range(3):
        assert get(m.port, f"/{i}").status == 200
    fams = scrape(port)
    assert {n: f.type for n, f in fams.items()} == EXPECTED
    assert value(fams, "moat_build_info", version=run_moat(["--version"]).stdout.split()[1]) == 1
    assert value(fams, "moat_config_generation") == 1
    assert abs(value(fams, "moat_config_loaded_timestamp_seconds") - time.time()) < 60
    assert 0 <= value(fams, "moat_uptime_seconds") < 60
    assert value(fams, "moat_upstream_server_up", upstream="app", server=backend.addr) == 1
    assert value(fams, "moat_upstream_server_active_requests", upstream="app", server=backend.addr) == 0
    for to in ("up", "down"):
        assert value(fams, "moat_upstream_health_transitions_total", upstream="app", server=backend.addr,
                     to=to) == 0
    reasons = {ls["reason"] for ls, _ in samples(fams, "moat_refusals_total")}
    assert {"bad_request", "no_route", "no_server", "overload", "backend_error", "backend_timeout",
            "timeout", "body_too_large", "headers_too_large", "uri_too_long"} <= reasons
    codes = {ls["code"] for ls, _ in samples(fams, "moat_http_requests_total")}
    assert codes == {"1xx", "2xx", "3xx", "4xx", "5xx"}
    # le bounds in seconds
    les = [ls["le"] for ls, _ in samples(fams, "moat_http_request_duration_seconds_bucket")]
    assert les[0] == "0.0005" and les[-2] == "10" and les[-1] == "+Inf"
    # HEAD: the head only
    with Client(port) as c:
        r = c.request("HEAD", "/metrics", [("Connection", "close")])
    assert r.status == 200 and r.body == b"" and int(r.header("Content-Length")) > 1000


def test_counters_move_exactly(make_backend, make_moat):
    a, b = make_backend(name="a"), make_backend(name="b")
    m, port = start(make_moat, [a, b])
    route = dict(route="*/", upstream="app")
    f0 = scrape(port)
    n = 7
    for i in range(n):
        assert get(m.port, f"/x/{i}").status == 200

    def moved(f):
        return value(f, "moat_http_requests_total", code="2xx", **route) - \
            value(f0, "moat_http_requests_total", code="2xx", **route) >= n
    f1 = scrape_until(port, moved, f"{n} more 2xx on the route")

    def delta(name, **ls):
        return value(f1, name, **ls) - value(f0, name, **ls)
    assert delta("moat_http_requests_total", code="2xx", **route) == n
    for code in ("1xx", "3xx", "4xx", "5xx"):
        assert delta("moat_http_requests_total", code=code, **route) == 0
    assert delta("moat_http_request_duration_seconds_count", route="*/") == n
    assert delta("moat_http_request_duration_seconds_bucket", route="*/", le="+Inf") == n
    assert delta("moat_http_request_duration_seconds_sum", route="*/") > 0
    assert delta("moat_upstream_response_duration_seconds_count", upstream="app") == n
    assert delta("moat_http_request_bytes_total", route="*/") >= n * len("GET /x/0 HTTP/1.1\r\n")
    body_bytes = sum(len(f"a GET /x/{i}\n") for i in range(n))
    assert delta("moat_http_response_bytes_total", route="*/") == body_bytes
    per_server = [delta("moat_upstream_server_requests_total", upstream="app", server=s.addr) for s in (a, b)]
    assert sum(per_server) == n and per_server == [len(a.requests), len(b.requests)]
    accepted = delta("moat_connections_accepted_total")
    assert n <= accepted <= n + 1       # +1: the harness's readiness probe, accepted late
    assert delta("moat_upstream_retries_total", upstream="app") == 0


def test_refusals_by_reason(backend, make_moat):
    cfg = {"routes": [{"host": "known.test", "upstream": "app"}]}
    m, port = start(make_moat, [backend], config=cfg)
    f0 = scrape(port)
    with Client(m.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert c.read_response().status == 400
    assert get(m.port, "/", host="other.test").status == 404
    assert get(m.port, "/", host="known.test").status == 200

    def done(f):
        return value(f, "moat_refusals_total", reason="bad_request") - \
            value(f0, "moat_refusals_total", reason="bad_request") == 1 and \
            value(f, "moat_refusals_total", reason="no_route") - value(f0, "moat_refusals_total",
                                                                       reason="no_route") == 1
    f1 = scrape_until(port, done, "one bad_request and one no_route refusal")
    for ls, v in samples(f1, "moat_refusals_total"):
        if ls["reason"] not in ("bad_request", "no_route"):
            assert v == value(f0, "moat_refusals_total", **ls), ls
    assert value(f1, "moat_http_requests_total", route="known.test/", upstream="app", code="2xx") == 1


def test_label_values_escaped(backend, make_moat):
    path = '/q"uo\\te/'
    cfg = {"routes": [{"path": path, "upstream": "app"}, {"upstream": "app"}]}
    m, port = start(make_moat, [backend], config=cfg)
    assert get(m.port, '/q"uo\\te/x').status == 200
    f = scrape_until(port, lambda f: value(f, "moat_http_requests_total", route="*" + path, upstream="app",
                                           code="2xx") == 1, "the request on the route with quotes")
    with Client(port) as c:
        raw = c.request("GET", "/metrics", [("Connection", "close")]).body.decode()
    assert 'route="*/q\\"uo\\\\te/"' in raw
    assert value(f, "moat_http_requests_total", route="*/", upstream="app", code="2xx") == 0


def test_failures_and_health(make_backend, make_moat):
    dead = free_port()

    def handler(req, conn):
        req.read_body()
        if req.target == "/health":
            conn.send_response(500, b"sick")
        else:
            conn.send_response(200, b"ok")
    sick = make_backend(name="sick", handler=handler)
    cfg = {"upstreams": {
        "app": {"servers": [f"127.0.0.1:{dead}"], "retry": {"attempts": 0}},
        "checked": {"servers": [sick.addr],
                    "health_check": {"path": "/health", "interval": "100ms", "timeout": "100ms",
                                     "fall": 1, "rise": 1}}},
        "routes": [{"path": "/checked/", "upstream": "checked"}, {"upstream": "app"}]}
    m, port = start(make_moat, config=cfg)
    assert get(m.port, "/x").status in (502, 503)

    # the request is counted when its txn ends, just after the client got
    # the answer: wait for that too (the health check may already be down)
    def done(f):
        return value(f, "moat_upstream_failures_total", upstream="app", kind="connect") >= 1 and \
            value(f, "moat_upstream_server_up", upstream="checked", server=sick.addr) == 0 and \
            value(f, "moat_http_requests_total", route="*/", upstream="app", code="5xx") >= 1
    f = scrape_until(port, done, "a connect failure, the sick server down and the 5xx counted")
    assert value(f, "moat_upstream_failures_total", upstream="app", kind="other") == 0
    assert value(f, "moat_upstream_health_transitions_total", upstream="checked", server=sick.addr,
                 to="down") == 1
    assert value(f, "moat_upstream_health_transitions_total", upstream="checked", server=sick.addr,
                 to="up") == 0
    refused = sum(v for ls, v in samples(f, "moat_refusals_total")
                  if ls["reason"] in ("backend_error", "no_server"))
    assert refused >= 1
    assert value(f, "moat_http_requests_total", route="*/", upstream="app", code="5xx") == 1


def test_counters_survive_reload(backend, make_moat):
    m, port = start(make_moat, [backend])
    for i in range(3):
        assert get(m.port, f"/{i}").status == 200
    scrape_until(port, lambda f: value(f, "moat_http_requests_total", route="*/", upstream="app",
                                       code="2xx") == 3, "3 requests")
    cfg = make_config([backend], {"admin": {"listen": f"127.0.0.1:{port}"}}, port=m.port)
    m.reload(cfg)
    f = scrape(port)
    assert value(f, "moat_config_generation") == 2
    assert value(f, "moat_http_requests_total", route="*/", upstream="app", code="2xx") == 3
    assert get(m.port, "/4").status == 200
    scrape_until(port, lambda f: value(f, "moat_http_requests_total", route="*/", upstream="app",
                                       code="2xx") == 4, "the 4th request counted after the reload")


def test_metrics_need_the_token(backend, make_moat):
    m, port = start(make_moat, [backend], admin={"token": "tok"})
    with Client(port) as c:
        r = c.request("GET", "/metrics", [("Connection", "close")])
    assert r.status == 401
    assert "moat_build_info" in scrape(port, token="tok")
