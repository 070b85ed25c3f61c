"""The disk store of the cache (issue 6, `cache.disk`): objects written in
the background survive a restart of moat on the same directory; a file
whose bytes were changed is never served.
"""

import os
import time

from cache_util import Origin, assert_hit, assert_miss, cache_config, counted, cstatus, req
from harness import pattern_bytes, t, wait_for


def disk_config(tmp_path, **store):
    d = tmp_path / "cache"
    d.mkdir(exist_ok=True)
    s = {"memory": "16MiB", "disk": str(d), "disk_size": "64MiB"}
    s.update(store)
    return d, cache_config(store=s)


def files_under(d):
    out = []
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
    return out


def files_holding(d, needle):
    """Files under d whose bytes contain needle."""
    out = []
    for p in files_under(d):
        with open(p, "rb") as f:
            if needle in f.read():
                out.append(p)
    return out


def wait_written(d, needle):
    """Waits until some file under d holds needle (the body was written by
    the background writer); returns those files."""
    return wait_for(lambda: files_holding(d, needle), t(10), interval=0.05,
                    what=f"a file under {d} holding {needle[:30]!r}")


def test_disk_store_survives_restart(tmp_path, make_backend, make_moat):
    body = b"persistent object " * 50
    o = counted(body, cc="max-age=600")
    b = make_backend(o)
    d, cfg = disk_config(tmp_path)
    m1 = make_moat([b], cfg)
    r = req(m1.port, "/disk/a")
    assert_miss(r)
    want = r.body
    assert_hit(req(m1.port, "/disk/a"), want)
    wait_written(d, want)
    assert m1.stop() == 0

    m2 = make_moat([b], cfg)
    r = req(m2.port, "/disk/a")
    assert r.status == 200, r
    assert_hit(r, want)
    assert int(r.header("Age")) >= 0
    assert o.hits("/disk/a") == 1, "the restarted moat asked the backend"
    # a URL never stored is still a miss
    assert_miss(req(m2.port, "/disk/other"))


def test_disk_store_large_object_survives_restart(tmp_path, make_backend, make_moat):
    size = 600 * 1024
    big = pattern_bytes(size, seed=3)
    hits = [0]

    def handler(r, conn):
        r.read_body()
        hits[0] += 1
        conn.send_response(200, big, [("Content-Type", "application/octet-stream"),
                                      ("Cache-Control", "max-age=600")], req=r)
    b = make_backend(handler)
    d, cfg = disk_config(tmp_path)
    m1 = make_moat([b], cfg)
    r = req(m1.port, "/disk/big")
    assert r.status == 200 and r.body == big
    wait_written(d, big[-4096:])
    assert m1.stop() == 0
    m2 = make_moat([b], cfg)
    r = req(m2.port, "/disk/big")
    assert r.status == 200 and len(r.body) == size and r.body == big
    assert cstatus(r).hit, cstatus(r)
    assert hits[0] == 1


def flip(path, positions):
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        for p in positions:
            if 0 <= p < len(data):
                data[p] ^= 0x5A
        f.seek(0)
        f.write(data)


def test_corrupted_disk_file_never_served(tmp_path, make_backend, make_moat):
    body = b"the genuine body, byte for byte " * 20
    o = counted(body, cc="max-age=600")
    b = make_backend(o)
    d, cfg = disk_config(tmp_path)
    m1 = make_moat([b], cfg)
    r = req(m1.port, "/disk/c")
    assert_miss(r)
    want = r.body
    wait_written(d, want)
    assert m1.stop() == 0

    files = files_under(d)
    assert files, f"nothing under {d}"
    for p in files:
        with open(p, "rb") as f:
            data = f.read()
        i = data.find(want)
        if i >= 0:
            # inside the body: only a checksum of the body catches this
            flip(p, [i + len(want) // 2])
        else:
            flip(p, [len(data) // 2, len(data) - 1])
    assert not files_holding(d, want)

    m2 = make_moat([b], cfg)
    r = req(m2.port, "/disk/c")
    assert r.status == 200, r
    assert r.body == body + b" #2", r.body[:200]
    assert not cstatus(r).hit, cstatus(r)
    assert o.hits("/disk/c") == 2
    # what was fetched again is stored again
    time.sleep(0.1)
    assert_hit(req(m2.port, "/disk/c"), body + b" #2")


def test_corrupted_metadata_and_truncated_files(tmp_path, make_backend, make_moat):
    """Files whose header bytes were flipped, or cut short, are dropped at
    start-up or at the first read; the GETs become misses with the right
    bodies and moat keeps running."""
    o = counted(b"object body " * 40, cc="max-age=600")
    b = make_backend(o)
    d, cfg = disk_config(tmp_path)
    m1 = make_moat([b], cfg)
    bodies = {}
    for p in ("/disk/m1", "/disk/m2"):
        r = req(m1.port, p)
        assert_miss(r)
        bodies[p] = r.body
        wait_written(d, p.encode())
    assert m1.stop() == 0
    for p in files_under(d):
        with open(p, "rb") as f:
            data = f.read()
        if b"/disk/m1" in data:
            flip(p, range(0, 16))                   # the fixed header
        elif b"/disk/m2" in data:
            with open(p, "r+b") as f:
                f.truncate(len(data) - 7)           # the body's tail
    m2 = make_moat([b], cfg)
    for p in ("/disk/m1", "/disk/m2"):
        r = req(m2.port, p)
        assert r.status == 200 and not cstatus(r).hit, (p, r)
        assert r.body == bodies[p].replace(b"#1", b"#2"), r.body[-20:]
    assert o.hits() == 4


def test_vary_variants_survive_restart(tmp_path, make_backend, make_moat):
    def answer(r, n):
        return 200, [("Content-Type", "text/plain"), ("Cache-Control", "max-age=600"), ("Vary", "X-Lang")], \
            f"lang {r.header('X-Lang')} #{n}".encode()
    o = Origin(answer)
    b = make_backend(o)
    d, cfg = disk_config(tmp_path)
    m1 = make_moat([b], cfg)
    for lang, fwd in (("en", "uri-miss"), ("fr", "vary-miss")):
        assert_miss(req(m1.port, "/disk/v", [("X-Lang", lang)]), fwd=fwd)
        wait_written(d, f"lang {lang} #".encode())
    assert m1.stop() == 0
    m2 = make_moat([b], cfg)
    assert_hit(req(m2.port, "/disk/v", [("X-Lang", "fr")]), b"lang fr #2")
    assert_hit(req(m2.port, "/disk/v", [("X-Lang", "en")]), b"lang en #1")
    assert_miss(req(m2.port, "/disk/v", [("X-Lang", "de")]), fwd="vary-miss")
    assert o.hits() == 3
