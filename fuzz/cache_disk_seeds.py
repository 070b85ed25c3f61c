#!/usr/bin/env python3
"""cache_disk_seeds.py - writes the seed corpus of cache_disk_fuzz
(fuzz/corpus/cache_disk/): cache files in the layout of
src/mod/cache/disk.c (60-byte little-endian header, then key, vkey, head,
tags, body; meta_crc = zlib crc32 of header bytes 0..52 and the strings),
valid ones and a few near misses. Run from the repository root:
    python3 fuzz/cache_disk_seeds.py
"""
import os
import struct
import zlib

MAGIC = b"MOATC\x00\x01\x00"
OUT = "fuzz/corpus/cache_disk"


def image(key, vkey=b"", head=b"", tags=b"", body=b"", req=1700000000, resp=1700000001,
          version=1, body_len=None, lens=None, crc_fix=True):
    kl, vl, hl, tl = lens if lens else (len(key), len(vkey), len(head), len(tags))
    bl = len(body) if body_len is None else body_len
    hdr = MAGIC + struct.pack("<IIIIIQqq", version, kl, vl, hl, tl, bl, req, resp)
    assert len(hdr) == 52
    strings = key + vkey + head + tags
    crc = zlib.crc32(hdr + strings) if crc_fix else 0x12345678
    hdr += struct.pack("<II", crc, zlib.crc32(body))
    return hdr + strings + body


HEAD = (b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/plain\r\n"
        b"ETag: \"v1\"\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n\r\n")
VHEAD = (b"HTTP/1.1 200 OK\r\nCache-Control: public, s-maxage=300\r\nVary: Accept-Encoding\r\n"
         b"Vary: Accept-Language\r\nContent-Encoding: gzip\r\n\r\n")

SEEDS = {
    "empty_strings": image(b""),
    "plain": image(b"example.com/a", head=HEAD, body=b"hello, world\n"),
    "vary_tags": image(b"example.com/v?x=1", vkey=b"accept-encoding:br,gzip,identity\naccept-language\n",
                       head=VHEAD, tags=b"news\nfront\n", body=bytes(range(256))),
    "no_body": image(b"example.com/204", head=b"HTTP/1.1 204 No Content\r\n\r\n"),
    "negative_times": image(b"k", head=HEAD, req=-1, resp=-2, body=b"x"),
    "bad_crc": image(b"example.com/a", head=HEAD, body=b"body", crc_fix=False),
    "version2": image(b"example.com/a", head=HEAD, version=2),
    "torn": image(b"example.com/a", head=HEAD, body=b"0123456789")[:-4],
    "long_body_len": image(b"example.com/a", head=HEAD, body=b"abc", body_len=1 << 40),
    "huge_key_len": image(b"example.com/a", lens=(1 << 20, 0, 0, 0)),
    "short": MAGIC + b"\x01\x00\x00\x00",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
