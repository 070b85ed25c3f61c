"""On-the-fly compression (issue 6, a route's `compress:`): br / zstd /
gzip chosen by the client's Accept-Encoding, decoded here with zlib,
brotli (python3-brotli) and zstandard (python3-zstandard) and by curl
--compressed; the cases left alone; compression with the cache.
"""

import zlib

import pytest

from cache_util import Origin, assert_hit, assert_miss, cache_config, cstatus, req
from harness import Client, curl, t

try:
    import brotli
except ImportError:     # python3-brotli missing: those tests are skipped
    brotli = None
try:
    import zstandard
except ImportError:
    zstandard = None


def text_body(n=8192):
    """Compressible, deterministic text of n bytes."""
    line = b"<p>moat compresses this paragraph, line %06d of the test page.</p>\n"
    out = bytearray()
    i = 0
    while len(out) < n:
        out += line % i
        i += 1
    return bytes(out[:n])


BODY = text_body()


def decode(coding, data):
    if coding == "gzip":
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    if coding == "br":
        if brotli is None:
            pytest.skip("python3-brotli is not installed")
        return brotli.decompress(data)
    if coding == "zstd":
        if zstandard is None:
            pytest.skip("python3-zstandard is not installed")
        # a streamed frame may not record its content size
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if coding is None:
        return data
    raise AssertionError(f"unknown coding {coding!r}")


def serve(body=BODY, ctype="text/html; charset=utf-8", extra=(), status=200):
    def answer(r, n):
        return status, [("Content-Type", ctype)] + list(extra), body
    return Origin(answer)


def compress_config(compress=True, cache=None):
    cfg = cache_config(route_cache=cache, compress=compress)
    if cache is None:
        del cfg["cache"]
    return cfg


def vary_names(r):
    return [v.strip().lower() for line in r.header_all("Vary") for v in line.split(",") if v.strip()]


def assert_compressed(r, coding, original=BODY):
    assert r.status == 200, r
    assert r.header("Content-Encoding") == coding, r.headers
    assert "accept-encoding" in vary_names(r), r.headers
    assert not r.has_header("Content-Length"), r.headers
    assert not r.has_header("Accept-Ranges"), r.headers
    assert decode(coding, r.body) == original
    assert len(r.body) < len(original), f"{coding}: {len(r.body)} bytes for {len(original)}"


def assert_identity(r, original=BODY):
    assert r.status == 200, r
    assert not r.has_header("Content-Encoding") or r.header("Content-Encoding") == "identity", r.headers
    assert r.body == original


@pytest.fixture
def zmoat(make_backend, make_moat):
    o = serve()
    b = make_backend(o)
    m = make_moat([b], compress_config())
    return m


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_each_coding_decodes_to_original(zmoat, coding):
    r = req(zmoat.port, "/page", [("Accept-Encoding", coding)])
    assert_compressed(r, coding)
    assert r.framing == "chunked", r.framing


@pytest.mark.parametrize("ae,want", [
    ("gzip, br, zstd", "br"),                       # equal q: br, then zstd, then gzip
    ("gzip, zstd", "zstd"),
    ("gzip, deflate", "gzip"),
    ("gzip;q=1, br;q=0.5", "gzip"),
    ("br;q=0.5, zstd;q=0.8, gzip;q=0.1", "zstd"),
    ("br;q=0, gzip", "gzip"),
    ("*", "br"),
    ("*;q=0.5, gzip", "gzip"),
    ("identity", None),
    ("deflate", None),
    ("gzip;q=0, br;q=0, zstd;q=0", None),
])
def test_coding_chosen_by_q_values(zmoat, ae, want):
    r = req(zmoat.port, "/page", [("Accept-Encoding", ae)])
    if want is None:
        assert_identity(r)
        # not compressed because of Accept-Encoding: still varies on it
        assert "accept-encoding" in vary_names(r), r.headers
    else:
        assert_compressed(r, want)


def test_no_accept_encoding_not_compressed(zmoat):
    r = req(zmoat.port, "/page")
    assert_identity(r)
    assert r.header("Content-Length") == str(len(BODY))
    assert "accept-encoding" in vary_names(r), r.headers


def test_curl_compressed(zmoat):
    p = curl(["-s", "--compressed", "-D", "-", f"http://127.0.0.1:{zmoat.port}/page"])
    assert p.returncode == 0, p.stderr
    head, sep, body = p.stdout.partition(b"\r\n\r\n")
    assert sep, p.stdout[:300]
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200"), lines[0]
    fields = {}
    for line in lines[1:]:
        n, _, v = line.partition(":")
        fields.setdefault(n.strip().lower(), []).append(v.strip())
    # curl offers deflate, gzip, br, zstd (as built here): moat picks br or zstd
    assert fields.get("content-encoding") in (["br"], ["zstd"], ["gzip"]), fields
    assert "accept-encoding" in ",".join(fields.get("vary", [])).lower(), fields
    assert body == BODY


def test_strong_etag_becomes_weak(make_backend, make_moat):
    b = make_backend(serve(extra=[("ETag", '"abc123"')]))
    m = make_moat([b], compress_config())
    r = req(m.port, "/page", [("Accept-Encoding", "gzip")])
    assert_compressed(r, "gzip")
    assert r.header("ETag") == 'W/"abc123"', r.headers
    r = req(m.port, "/page")
    assert_identity(r)
    assert r.header("ETag") == '"abc123"', r.headers


def test_weak_etag_stays_weak(make_backend, make_moat):
    b = make_backend(serve(extra=[("ETag", 'W/"w1"')]))
    m = make_moat([b], compress_config())
    r = req(m.port, "/page", [("Accept-Encoding", "gzip")])
    assert_compressed(r, "gzip")
    assert r.header("ETag") == 'W/"w1"', r.headers


def with_control(answer):
    """An Origin answering /control with compressible text/html (so a test
    of what is left alone shows compression is on), else `answer`."""
    def both(r, n):
        if r.target == "/control":
            return 200, [("Content-Type", "text/html")], BODY
        return answer(r, n)
    return Origin(both)


def check_control(m):
    assert_compressed(req(m.port, "/control", [("Accept-Encoding", "gzip")]), "gzip")


def test_no_transform_left_alone(make_backend, make_moat):
    b = make_backend(with_control(lambda r, n: (200, [("Content-Type", "text/html"),
                                                      ("Cache-Control", "no-transform")], BODY)))
    m = make_moat([b], compress_config())
    r = req(m.port, "/page", [("Accept-Encoding", "gzip, br, zstd")])
    assert_identity(r)
    assert r.header("Content-Length") == str(len(BODY))
    check_control(m)


def test_already_encoded_left_alone(make_backend, make_moat):
    gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    encoded = gz.compress(BODY) + gz.flush()
    b = make_backend(with_control(lambda r, n: (200, [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                                                encoded)))
    m = make_moat([b], compress_config())
    check_control(m)
    r = req(m.port, "/page", [("Accept-Encoding", "br, zstd, gzip")])
    assert r.status == 200
    assert r.header_all("Content-Encoding") == ["gzip"], r.headers
    assert r.body == encoded
    assert r.header("Content-Length") == str(len(encoded))


def test_small_body_left_alone(make_backend, make_moat):
    small = text_body(200)      # under the default min_size 256
    b = make_backend(with_control(lambda r, n: (200, [("Content-Type", "text/html")], small)))
    m = make_moat([b], compress_config())
    check_control(m)
    r = req(m.port, "/small", [("Accept-Encoding", "gzip, br")])
    assert_identity(r, small)
    assert r.header("Content-Length") == "200"


def test_min_size_option(make_backend, make_moat):
    body = text_body(2000)
    b = make_backend(serve(body=body))
    m = make_moat([b], compress_config(compress={"min_size": "4KiB"}))
    assert_identity(req(m.port, "/p", [("Accept-Encoding", "gzip")]), body)
    b2 = make_backend(serve(body=text_body(300)))
    m2 = make_moat([b2], compress_config(compress={"min_size": 100}))
    assert_compressed(req(m2.port, "/p", [("Accept-Encoding", "gzip")]), "gzip", text_body(300))


@pytest.mark.parametrize("ctype", ["image/png", "application/octet-stream", "video/mp4"])
def test_type_not_in_list_left_alone(make_backend, make_moat, ctype):
    b = make_backend(with_control(lambda r, n: (200, [("Content-Type", ctype)], BODY)))
    m = make_moat([b], compress_config())
    check_control(m)
    r = req(m.port, "/bin", [("Accept-Encoding", "gzip, br, zstd")])
    assert_identity(r)
    assert r.header("Content-Length") == str(len(BODY))


@pytest.mark.parametrize("ctype", ["text/plain", "application/json", "application/javascript",
                                   "image/svg+xml", "text/css; charset=utf-8", "application/xml"])
def test_default_types_compressed(make_backend, make_moat, ctype):
    b = make_backend(serve(ctype=ctype))
    m = make_moat([b], compress_config())
    assert_compressed(req(m.port, "/x", [("Accept-Encoding", "gzip")]), "gzip")


def test_types_option(make_backend, make_moat):
    b = make_backend(serve(ctype="text/html"))
    m = make_moat([b], compress_config(compress={"types": ["application/json"]}))
    assert_identity(req(m.port, "/x", [("Accept-Encoding", "gzip")]))
    b2 = make_backend(serve(ctype="application/json"))
    m2 = make_moat([b2], compress_config(compress={"types": ["application/json"]}))
    assert_compressed(req(m2.port, "/x", [("Accept-Encoding", "gzip")]), "gzip")


def test_codings_option(make_backend, make_moat):
    b = make_backend(serve())
    m = make_moat([b], compress_config(compress={"codings": ["gzip"]}))
    assert_compressed(req(m.port, "/x", [("Accept-Encoding", "br, zstd, gzip;q=0.1")]), "gzip")


def test_head(zmoat):
    with Client(zmoat.port) as c:
        r = c.request("HEAD", "/page", [("Accept-Encoding", "gzip"), ("Connection", "close")])
        assert r.status == 200
        assert r.header("Content-Encoding") == "gzip", r.headers
        assert "accept-encoding" in vary_names(r), r.headers
        assert not r.has_header("Content-Length"), r.headers
        assert r.body == b""
        assert c.wait_closed(t(2)) and c.leftover == b"", c.leftover[:100]


def test_http10_close_delimited(zmoat):
    with Client(zmoat.port) as c:
        r = c.request("GET", "/page", [("Accept-Encoding", "gzip")], version="HTTP/1.0")
    assert r.framing == "close", (r.framing, r.headers)
    assert not r.has_header("Transfer-Encoding")
    assert_compressed(r, "gzip")


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_large_streamed_response(make_backend, make_moat, coding):
    size = 1 << 20
    big = text_body(size)

    def handler(r, conn):
        r.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % size)
        for i in range(0, size, 65536):
            conn.send(big[i:i + 65536])
    b = make_backend(handler)
    m = make_moat([b], compress_config())
    r = req(m.port, "/large", [("Accept-Encoding", coding)])
    assert_compressed(r, coding, big)
    assert len(r.body) < size // 4


def test_large_chunked_response(make_backend, make_moat):
    size = 1 << 20
    big = text_body(size)

    def handler(r, conn):
        r.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, size, 10000):
            piece = big[i:i + 10000]
            conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
    b = make_backend(handler)
    m = make_moat([b], compress_config())
    r = req(m.port, "/large", [("Accept-Encoding", "gzip")])
    assert_compressed(r, "gzip", big)


def test_compress_and_cache(make_backend, make_moat):
    o = serve(extra=[("Cache-Control", "max-age=60")])
    b = make_backend(o)
    m = make_moat([b], compress_config(cache=True))
    r1 = req(m.port, "/cc", [("Accept-Encoding", "gzip")])
    assert_compressed(r1, "gzip")
    assert_miss(r1, stored=True)
    r2 = req(m.port, "/cc", [("Accept-Encoding", "gzip")])
    assert r2.header("Content-Encoding") == "gzip", r2.headers
    assert_hit(r2)
    assert decode("gzip", r2.body) == BODY
    assert "accept-encoding" in vary_names(r2), r2.headers
    assert o.hits("/cc") == 1
    # another Accept-Encoding is another variant
    r3 = req(m.port, "/cc", [("Accept-Encoding", "br")])
    assert r3.header("Content-Encoding") == "br", r3.headers
    assert decode("br", r3.body) == BODY
    assert not cstatus(r3).hit
    r4 = req(m.port, "/cc", [("Accept-Encoding", "br")])
    assert_hit(r4)
    assert r4.header("Content-Encoding") == "br" and decode("br", r4.body) == BODY
    # and identity too
    r5 = req(m.port, "/cc")
    assert not cstatus(r5).hit
    assert_identity(r5)
    r6 = req(m.port, "/cc")
    assert_hit(r6, BODY)
    assert not r6.has_header("Content-Encoding")
    assert o.hits("/cc") == 3



# --------------------------------------------------------------------------
# Framing and the responses compression must not touch


def test_keep_alive_several_compressed_responses(zmoat):
    with Client(zmoat.port) as c:
        for coding in ("gzip", "br", "zstd", None, "gzip"):
            hs = [("Accept-Encoding", coding)] if coding else []
            r = c.request("GET", "/page", hs)
            if coding:
                assert_compressed(r, coding)
            else:
                assert_identity(r)


def test_close_delimited_backend_compressed(make_backend, make_moat):
    def handler(r, conn):
        r.read_body()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + BODY)
        conn.close()
    b = make_backend(handler)
    m = make_moat([b], compress_config())
    r = req(m.port, "/cd", [("Accept-Encoding", "gzip")])
    assert_compressed(r, "gzip")
    assert r.framing == "chunked"


def test_partial_and_not_modified_untouched(make_backend, make_moat):
    def handler(r, conn):
        r.read_body()
        if r.header("If-None-Match"):
            conn.send_response(304, b"", [("ETag", '"t"')], length=False, req=r)
        elif r.header("Range") == "bytes=0-99":
            conn.send_response(206, BODY[:100], [("Content-Type", "text/html"),
                                                 ("Content-Range", f"bytes 0-99/{len(BODY)}")], req=r)
        else:
            conn.send_response(200, BODY, [("Content-Type", "text/html"), ("ETag", '"t"')], req=r)
    b = make_backend(handler)
    m = make_moat([b], compress_config())
    with Client(m.port) as c:
        r = c.request("GET", "/p", [("Accept-Encoding", "gzip"), ("Range", "bytes=0-99")])
        assert r.status == 206 and r.body == BODY[:100], r
        assert not r.has_header("Content-Encoding"), r.headers
        r = c.request("GET", "/p", [("Accept-Encoding", "gzip"), ("If-None-Match", '"t"')])
        assert r.status == 304 and r.body == b"", r
        assert not r.has_header("Content-Encoding") and not r.has_header("Transfer-Encoding"), r.headers
        # the connection is still in step
        r = c.request("GET", "/p", [("Accept-Encoding", "gzip")])
        assert_compressed(r, "gzip")
