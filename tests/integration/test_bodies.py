"""Bodies: Content-Length and chunked both ways, canonical re-chunking,
trailers, Expect: 100-continue, streaming (never buffered whole) with
sha256 checked end to end and moat's RSS watched."""

import hashlib
import json
import os
import threading
import time

from harness import (ASAN, Client, build_request, check_canonical_chunked, chunked_response,
                     close_delimited, curl, echo, encode_chunked, fixed, huge, pattern,
                     pattern_bytes, pattern_sha256, raw_response, sha256_body, t)

MiB = 1024 * 1024


def test_post_1mib_content_length(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b])
    data = pattern_bytes(MiB, seed=3)
    with Client(m.port) as c:
        r = c.request("POST", "/up", [("Content-Type", "application/octet-stream")], body=data)
    assert r.status == 200
    assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(data).hexdigest()
    req = b.requests[0]
    assert req.header_all("Content-Length") == [str(MiB)]
    assert not req.has_header("Transfer-Encoding")
    assert req.raw_body == data


def test_chunked_request_reencoded_canonically(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b])
    data = pattern_bytes(300_000, seed=4)
    body = encode_chunked(data, sizes=[1, 4096, 65536, 7, 100_000], ext=b";name=value;flag",
                          upper=True)
    body = b"000" + body   # the first size line becomes "0001;...": leading zeros too
    with Client(m.port) as c:
        c.send(build_request("POST", "/chunked", [("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
    assert r.status == 200
    assert r.body == data
    req = b.requests[0]
    assert req.header_all("Transfer-Encoding") == ["chunked"]
    assert not req.has_header("Content-Length")
    decoded, trailer = check_canonical_chunked(req.raw_body)
    assert decoded == data
    assert trailer == b"\r\n"


def test_chunked_request_trailers_forwarded(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b])
    body = encode_chunked(b"hello world", sizes=[5], trailers=[("X-Checksum", "abc123"),
                                                              ("X-Other", "v")])
    with Client(m.port) as c:
        c.send(build_request("POST", "/t", [("Transfer-Encoding", "chunked"), ("Trailer", "X-Checksum")])
               + body)
        r = c.read_response()
    assert (r.status, r.body) == (200, b"hello world")
    req = b.requests[0]
    assert req.trailers == [("X-Checksum", "abc123"), ("X-Other", "v")]
    decoded, trailer = check_canonical_chunked(req.raw_body)
    assert decoded == b"hello world"
    assert trailer == b"X-Checksum: abc123\r\nX-Other: v\r\n\r\n"


def test_empty_chunked_request(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(build_request("POST", "/e", [("Transfer-Encoding", "chunked")]) + b"0\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"")
        assert c.request("GET", "/after").status == 200   # framing kept in step
    assert b.requests[0].raw_body == b"0\r\n\r\n"
    assert [q.target for q in b.requests] == ["/e", "/after"]


def test_content_length_zero_request(moat, backend):
    with Client(moat.port) as c:
        r = c.request("POST", "/z", [("Content-Length", "0")])
        assert r.status == 200
        assert c.request("GET", "/after").status == 200
    assert backend.requests[0].header_all("Content-Length") == ["0"]
    assert backend.requests[0].raw_body == b""


def test_chunked_response_with_trailers_reencoded(make_backend, make_moat):
    chunks = [b"first ", b"second ", b"x" * 70000]
    b = make_backend(chunked_response(chunks, trailers=[("X-Digest", "sha-256=abc")], ext=b";e=1"))
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/", [("TE", "trailers")])
        assert r.status == 200
        assert r.framing == "chunked"
        assert r.body == b"".join(chunks)
        assert r.trailers == [("X-Digest", "sha-256=abc")]
        decoded, _ = check_canonical_chunked(r.raw_body)
        assert decoded == r.body
        assert c.request("GET", "/again").status == 200


def test_chunked_response_leading_zeros_canonicalised(make_backend, make_moat):
    b = make_backend(raw_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"0005;x=\"q s\"\r\nhello\r\n00A\r\n0123456789\r\n000\r\n\r\n"))
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/")
    assert (r.status, r.body) == (200, b"hello0123456789")
    check_canonical_chunked(r.raw_body)


def test_close_delimited_response(make_backend, make_moat):
    data = pattern_bytes(200_000, seed=5)
    b = make_backend(close_delimited(data))
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/cd")
        assert r.status == 200
        assert r.body == data
        if r.framing != "close":   # re-framed (chunked): the client connection lives on
            b.handler = fixed(body=b"next")
            assert c.request("GET", "/next").body == b"next"


def test_no_body_statuses(make_backend, make_moat):
    """204 and 304 have no body even when they carry Content-Length."""
    responses = iter([
        b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 100\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast",
    ])

    def handler(req, conn):
        req.read_body()
        conn.send(next(responses))

    b = make_backend(handler)
    m = make_moat([b])
    with Client(m.port) as c:
        r = c.request("GET", "/204")
        assert (r.status, r.body) == (204, b"")
        r = c.request("GET", "/304", [("If-None-Match", '"v1"')])
        assert (r.status, r.body) == (304, b"")
        r = c.request("GET", "/200")
        assert (r.status, r.body) == (200, b"last")


def test_expect_100_continue_answered_by_moat(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(b"PUT /x HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.raw_head == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.send(b"0123456789")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"0123456789")
        # and again on the same connection
        c.send(b"PUT /y HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        assert c.read_response(skip_1xx=False).status == 100
        c.send(b"abc")
        assert c.read_response().body == b"abc"
    for req in b.requests:
        assert not req.has_header("Expect")
    assert b.requests[0].raw == (
        b"PUT /x HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n"
        b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.test\r\n"
        b"Forwarded: for=127.0.0.1;host=example.test;proto=http\r\n\r\n0123456789")


def test_expect_100_continue_chunked(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        assert c.read_response(skip_1xx=False).status == 100
        c.send(b"3\r\nabc\r\n0\r\n\r\n")
        r = c.read_response()
    assert (r.status, r.body) == (200, b"abc")
    assert not b.requests[0].has_header("Expect")


def test_expect_100_continue_over_body_limit_gets_413_not_100(make_backend, make_moat):
    b = make_backend(echo())
    m = make_moat([b], {"limits": {"body": "1KiB"}})
    with Client(m.port) as c:
        c.send(b"POST /big HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5000\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status == 413
    time.sleep(t(0.2))
    assert b.bytes_received == 0


def test_curl_expect_100_continue(make_backend, make_moat, tmp_path):
    b = make_backend(sha256_body())
    m = make_moat([b])
    f = tmp_path / "upload.bin"
    with open(f, "wb") as out:
        for block in pattern(2 * MiB, seed=6):
            out.write(block)
    start = time.monotonic()
    # with a long expect timeout, a missing 100 Continue shows as a stall
    p = curl(["-H", "Expect: 100-continue", "--expect100-timeout", "30", "--data-binary", f"@{f}",
              "-o", "-", "-w", "\n%{http_code}", f"http://127.0.0.1:{m.port}/upload"], timeout=t(25))
    elapsed = time.monotonic() - start
    assert p.returncode == 0, p.stderr
    body, code = p.stdout.rsplit(b"\n", 1)
    assert code == b"200"
    assert json.loads(body)["sha256"] == pattern_sha256(2 * MiB, seed=6)
    assert elapsed < t(5), f"took {elapsed:.1f}s: 100 Continue not sent promptly?"
    assert not b.requests[0].has_header("Expect")


def test_curl_data_binary_and_chunked_upload(make_backend, make_moat, tmp_path):
    b = make_backend(sha256_body())
    m = make_moat([b])
    f = tmp_path / "upload.bin"
    f.write_bytes(pattern_bytes(MiB, seed=7))
    want = pattern_sha256(MiB, seed=7)
    for extra, framing in ((["-H", "Expect:"], "length"),
                           (["-H", "Expect:", "-H", "Transfer-Encoding: chunked"], "chunked")):
        p = curl(extra + ["--data-binary", f"@{f}", "-o", "-", f"http://127.0.0.1:{m.port}/u"])
        assert p.returncode == 0, p.stderr
        got = json.loads(p.stdout)
        assert (got["sha256"], got["length"], got["framing"]) == (want, MiB, framing)


def test_request_body_streamed_not_buffered(make_backend, make_moat):
    """The backend gets the first half of a body while the client has not
    sent the second half yet."""
    b = make_backend(sha256_body())
    m = make_moat([b])
    data = pattern_bytes(400_000, seed=8)
    with Client(m.port) as c:
        c.send(build_request("POST", "/s", body=b"", content_length=False,
                             headers=[("Content-Length", str(len(data)))]) + data[:200_000])
        deadline = time.monotonic() + t(5)
        while b.bytes_received < 200_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.bytes_received >= 200_000, (
            f"backend got {b.bytes_received} bytes of the first 200000: request body buffered?")
        c.send(data[200_000:])
        r = c.read_response()
    assert json.loads(r.body)["sha256"] == hashlib.sha256(data).hexdigest()


def test_response_body_streamed_not_buffered(make_backend, make_moat):
    """The client gets the first part of a response while the backend has
    not sent the rest yet."""
    go_on = threading.Event()

    def handler(req, conn):
        req.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nfirst-half")
        go_on.wait(t(10))
        conn.send(b"secondhalf")

    b = make_backend(handler)
    m = make_moat([b])
    with Client(m.port) as c:
        c.send(build_request("GET", "/"))
        head = c.reader.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert c.reader.read_exact(10) == b"first-half"
        go_on.set()
        assert c.reader.read_exact(10) == b"secondhalf"


# ---- 100 MiB ---------------------------------------------------------------

BIG = 100 * MiB
RSS_GROWTH_MAX_KIB = 64 * 1024


def _asan_env():
    # Under ASan, freed memory sits in a quarantine (256 MiB by default)
    # that would count against the RSS bound; keep it small for these tests.
    if not ASAN:
        return None
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=8"}


class RssWatch:
    """Samples moat's VmRSS every 20 ms while running; .growth_kib."""

    def __init__(self, m):
        self.m = m
        self.base = m.rss_kib()
        self.peak = self.base
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.m.rss_kib())
            except (OSError, AssertionError):
                return

    def done(self):
        self.stop.set()
        self.th.join(2)
        self.peak = max(self.peak, self.m.rss_kib())
        return self.peak - self.base


def _big_moat(make_backend, make_moat, handler):
    def h(req, conn):
        if req.target == "/warmup":
            return fixed()(req, conn)
        return handler(req, conn)

    b = make_backend(h)
    m = make_moat([b], env=_asan_env())
    with Client(m.port) as c:   # warm up: buffers and pools allocated
        assert c.request("GET", "/warmup").status == 200
    b.requests.clear()
    return b, m


def _upload(m, chunked):
    start = time.monotonic()
    watch = RssWatch(m)
    with Client(m.port, timeout=t(20)) as c:
        if chunked:
            c.send(build_request("POST", "/big", [("Transfer-Encoding", "chunked")]))
            small = [1, 1000, 3, 32768 + 7]
            for i, block in enumerate(pattern(BIG, seed=9)):
                # each 64 KiB block as a small chunk and the rest: odd sizes, few syscalls
                k = min(small[i % len(small)], len(block))
                out = b"%x\r\n" % k + block[:k] + b"\r\n"
                if k < len(block):
                    out += b"%x\r\n" % (len(block) - k) + block[k:] + b"\r\n"
                c.send(out)
            c.send(b"0\r\n\r\n")
        else:
            c.send(build_request("POST", "/big", [("Content-Length", str(BIG))]))
            for block in pattern(BIG, seed=9):
                c.send(block)
        r = c.read_response()
    growth = watch.done()
    return r, growth, time.monotonic() - start


def test_100mib_request_content_length(make_backend, make_moat):
    b, m = _big_moat(make_backend, make_moat, sha256_body(delay_read=0.5))
    r, growth, elapsed = _upload(m, chunked=False)
    assert r.status == 200
    got = json.loads(r.body)
    assert (got["sha256"], got["length"], got["framing"]) == (pattern_sha256(BIG, seed=9), BIG, "length")
    assert b.requests[0].header_all("Content-Length") == [str(BIG)]
    assert growth < RSS_GROWTH_MAX_KIB, f"moat RSS grew by {growth} KiB for a 100 MiB body"
    assert elapsed < t(30), f"100 MiB upload took {elapsed:.1f}s"


def test_100mib_request_chunked(make_backend, make_moat):
    b, m = _big_moat(make_backend, make_moat, sha256_body(delay_read=0.5))
    r, growth, elapsed = _upload(m, chunked=True)
    assert r.status == 200
    got = json.loads(r.body)
    assert (got["sha256"], got["length"], got["framing"]) == (pattern_sha256(BIG, seed=9), BIG, "chunked")
    assert growth < RSS_GROWTH_MAX_KIB, f"moat RSS grew by {growth} KiB for a 100 MiB body"
    assert elapsed < t(30), f"100 MiB chunked upload took {elapsed:.1f}s"


def _download(m):
    start = time.monotonic()
    watch = RssWatch(m)
    h = hashlib.sha256()
    with Client(m.port, timeout=t(20)) as c:
        c.send(build_request("GET", "/big"))
        time.sleep(0.5)   # the backend writes; moat must hold back, not buffer it all
        n = [0]

        def sink(data):
            h.update(data)
            n[0] += len(data)

        r = c.read_response(sink=sink)
    growth = watch.done()
    return r, n[0], h.hexdigest(), growth, time.monotonic() - start


def test_100mib_response_content_length(make_backend, make_moat):
    b, m = _big_moat(make_backend, make_moat, huge(BIG, seed=10))
    r, n, digest, growth, elapsed = _download(m)
    assert r.status == 200
    assert r.header("Content-Length") == str(BIG)
    assert (n, digest) == (BIG, pattern_sha256(BIG, seed=10))
    assert growth < RSS_GROWTH_MAX_KIB, f"moat RSS grew by {growth} KiB for a 100 MiB response"
    assert elapsed < t(30), f"100 MiB download took {elapsed:.1f}s"


def test_100mib_response_chunked(make_backend, make_moat):
    b, m = _big_moat(make_backend, make_moat, huge(BIG, seed=11, chunked=True))
    r, n, digest, growth, elapsed = _download(m)
    assert r.status == 200
    assert r.framing == "chunked"
    assert (n, digest) == (BIG, pattern_sha256(BIG, seed=11))
    assert growth < RSS_GROWTH_MAX_KIB, f"moat RSS grew by {growth} KiB for a 100 MiB response"
    assert elapsed < t(30), f"100 MiB chunked download took {elapsed:.1f}s"
