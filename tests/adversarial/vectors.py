"""vectors.py - known request smuggling / desync vectors, as raw bytes.

Each one hides "GET /smuggled" somewhere a lenient or confused parser
would take for a second request. fuzz_socket.py --vectors sends each one
whole, byte by byte and split at random, with and without a FIN, and checks
the backend against refparse.py: /smuggled may reach the backend only when
the client really sent it as a request of its own.
"""

H = b"Host: example.test\r\n"
SMUG = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"
SMUG_CL = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nxxxxx"


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def te_variants():
    return [
        b"Transfer-Encoding: chunked\x0b", b"Transfer-Encoding: \x0bchunked", b"Transfer-Encoding : chunked",
        b"Transfer-Encoding\t: chunked", b"Transfer-encoding: xchunked", b"Transfer-Encoding:\tchunked",
        b"Transfer-Encoding: chunked\t", b" Transfer-Encoding: chunked", b"\tTransfer-Encoding: chunked",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x", b"Transfer-Encoding: x\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", b"Transfer-Encoding: chunked, chunked",
        b"Transfer-Encoding: identity, chunked", b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: \"chunked\"",
        b"Transfer-Encoding: chunk", b"Transfer-Encoding: chunked\x00", b"X: y\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: \xffchunked", b"Transfer-Encoding: chunked\xa0", b"Transfer-Encoding: ch\x00unked",
        b"Transfer-Encoding\x00: chunked", b"Transfer-\x00Encoding: chunked", b"Transfer-Encoding: cHuNkEd",
        b"Transfer-Encoding: chunked;", b"Transfer-Encoding:chunked", b"Transfer-Encoding: chunked,",
        b"Transfer-Encoding: ,chunked", b"Transfer_Encoding: chunked", b"Transfer-Encoding: chunked\r\n ",
        b"X: a\r\n Transfer-Encoding: chunked", b"Transfer-Encoding:\r\n chunked", b"Transfer-Encoding: \r\n",
        b"Transfer-Encoding: chunked\rX: y", b"Transfer-Encoding\r\n: chunked", b"Transfer Encoding: chunked",
        b"Transfer-Encoding: chunked, identity", b"Transfer-Encoding: identity",
        b"Transfer-Encoding: chunked\r\nContent-Length: 0", b"Content-Length: 0\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: \xc2\xa0chunked", b"Transfer-Encoding: chunked;q=0.5",
    ]


def cl_variants():
    n = len(SMUG)
    return [
        b"Content-Length: %d" % n, b"Content-Length: 0%d" % n, b"Content-Length: +%d" % n,
        b"Content-Length: -%d" % n, b"Content-Length: 0x%x" % n, b"Content-Length: %d, %d" % (n, n),
        b"Content-Length: %d\r\nContent-Length: 0" % n, b"Content-Length: 0\r\nContent-Length: %d" % n,
        b"Content-Length: %d\r\nContent-Length: %d" % (n, n), b"Content-Length : %d" % n,
        b"Content-Length:\t%d\t" % n, b"Content-Length: %d\x0b" % n, b"Content-Length: %d.0" % n,
        b"Content-Length: %d abc" % n, b"Content_Length: %d" % n, b"Content-Length: 1%s" % (b"0" * 30),
        b"Content-Length: 4611686018427387904", b"Content-Length: 4611686018427387903",
        b"Content-Length: 18446744073709551616", b"Content-Length: 18446744073709551615",
        b"Content-Length: \xd9\xa5",  # Arabic-Indic digit five
        b"Content-Length: %d\r\n Content-Length: 0" % n, b"Connection: Content-Length\r\nContent-Length: %d" % n,
    ]


def vectors():
    v = []
    # CL.TE and TE.CL
    body = b"0\r\n\r\n" + SMUG
    v.append(b"POST /clte HTTP/1.1\r\n" + H + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body) + body)
    v.append(b"POST /tecl HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
             chunk(SMUG) + b"0\r\n\r\n")
    v.append(b"POST /tecl2 HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
             b"5c\r\n" + SMUG_CL + b"\r\n0\r\n\r\n")
    # TE.TE obfuscations, each with a Content-Length that frames differently
    for te in te_variants():
        v.append(b"POST /tete HTTP/1.1\r\n" + H + te + b"\r\nContent-Length: 4\r\n\r\n" + chunk(SMUG) + b"0\r\n\r\n")
        v.append(b"POST /tete2 HTTP/1.1\r\n" + H + te + b"\r\n\r\n0\r\n\r\n" + SMUG)
        v.append(b"POST /tete3 HTTP/1.1\r\n" + H + te + b"\r\n\r\n" + chunk(SMUG) + b"0\r\n\r\n")
    # Content-Length obfuscations: the body is SMUG
    for cl in cl_variants():
        v.append(b"POST /cl HTTP/1.1\r\n" + H + cl + b"\r\n\r\n" + SMUG)
    # chunk-size tricks
    for size in [b"+5", b"0x5", b"5;", b" 5", b"5 ", b"5\t", b"05", b"00000000000000005", b"0000000000000005",
                 b"ffffffffffffffff", b"10000000000000000", b"4000000000000000", b"3fffffffffffffff",
                 b"5;a\x00", b"5;a=\"b", b"5;a=\"b\"c", b"5 ;a", b"5; a = b ", b"5;a=b;c", b"5;=b",
                 b"5;a==b", b"5\x00", b"-5", b"5_", b"5x", b"\xff5", b"5;\xff", b"5;a=\"\xff\"", b"0x0",
                 b"0;a", b"0 ", b" 0"]:
        v.append(b"POST /cs HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n"
                 b"0\r\n\r\n" + SMUG)
        v.append(b"POST /cs0 HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n\r\n" + SMUG)
    # line endings in chunked bodies
    for body in [b"5\nhello\n0\n\n", b"5\r\nhello\n0\r\n\r\n", b"5\r\nhello\r\n0\n\n", b"5\r\nhello\r\n0\r\n\n",
                 b"5\r\nhello\r\n0\n\r\n", b"5\rhello\r0\r\r", b"5\r\nhello\r\r\n0\r\n\r\n",
                 b"5\r\nhello\r\n0\r\n\r", b"5\r\nhellox\r\n0\r\n\r\n", b"5\r\nhell\r\n0\r\n\r\n",
                 b"3\r\nhello\r\n0\r\n\r\n", b"9\r\nhello\r\n0\r\n\r\n",
                 b"0\r\nContent-Length: 5\r\n\r\n", b"0\r\nTransfer-Encoding: chunked\r\n\r\n",
                 b"0\r\nX: y\nGET /smuggled HTTP/1.1\r\n\r\n", b"0\r\n X: y\r\n\r\n", b"0\r\nX : y\r\n\r\n",
                 b"0\r\nX: y\r\n", b"0\r\nX\r\n\r\n", b"0\r\n:y\r\n\r\n", b"0\r\nX: \x00\r\n\r\n",
                 b"0\r\nHost: evil\r\n\r\n", b"0\r\nX-Ok: 1\r\nX-Ok2: 2\r\n\r\n",
                 b"1\r\nA\r\n" * 50 + b"0\r\n\r\n"]:
        v.append(b"POST /le HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body + SMUG)
    # request lines, absolute form, Host
    v += [
        b"GET http://evil.test/x HTTP/1.1\r\n" + H + b"\r\n" + SMUG,
        b"GET http://evil.test HTTP/1.1\r\n" + H + b"\r\n",
        b"GET http://evil.test?x HTTP/1.1\r\n" + H + b"\r\n",
        b"GET http://user@evil.test/ HTTP/1.1\r\n" + H + b"\r\n",
        b"GET http://evil.test:80@good.test/ HTTP/1.1\r\n" + H + b"\r\n",
        b"GET https://evil.test/ HTTP/1.1\r\n" + H + b"\r\n",
        b"GET HTTP://EVIL.TEST/ HTTP/1.1\r\n" + H + b"\r\n",
        b"GET http:///x HTTP/1.1\r\n" + H + b"\r\n",
        b"GET http://[::1]/x HTTP/1.1\r\n" + H + b"\r\n",
        b"GET http://evil.test/x HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n",
        b"GET /smuggled HTTP/1.1 HTTP/1.1\r\n" + H + b"\r\n",
        b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
        b"GET / HTTP/1.1 \r\n" + H + b"\r\n",
        b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n",
        b"GET / HTTP/1.1\r\n" + H + b"\r\n" + b"GET /admin",
        b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\nGET /admin",
        b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n" + SMUG,
        b"GET / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
        # HTTP/0.9 and friends
        b"GET /\r\n", b"GET /\r\n\r\n", b"GET / \r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/0.9\r\n\r\n",
        b"GET / HTTP/1.2\r\n" + H + b"\r\n", b"GET / HTTP/2.0\r\n" + H + b"\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        # HTTP/1.0 keep-alive edges
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + SMUG,
        b"GET /a HTTP/1.0\r\n\r\n" + SMUG,
        b"GET /a HTTP/1.0\r\nKeep-Alive: 300\r\n\r\n" + SMUG,
        b"GET /a HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n" + SMUG,
        b"GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + SMUG,
        b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
        b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUG,
        b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + SMUG,
        b"GET /a HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n" + SMUG,
        # hop-by-hop games
        b"POST /h HTTP/1.1\r\n" + H + b"Connection: Content-Length\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
        b"POST /h HTTP/1.1\r\n" + H + b"Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk(SMUG) + b"0\r\n\r\n",
        b"GET /h HTTP/1.1\r\n" + H + b"Connection: Host\r\n\r\n",
        b"GET /h HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n" + SMUG,
        b"GET /h HTTP/1.1\r\n" + H + b"Connection: close, keep-alive\r\n\r\n" + SMUG,
        b"GET /h HTTP/1.1\r\n" + H + b"Connection: closed\r\n\r\n" + SMUG,
        # Expect / Upgrade with a request in the body
        b"POST /e HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
        b"POST /e HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n" +
        chunk(SMUG) + b"0\r\n\r\n",
        b"GET /u HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: %d\r\n\r\n"
        % len(SMUG) + SMUG,
        b"GET /u HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + SMUG,
        b"GET /u HTTP/1.1\r\n" + H + b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n" + SMUG,
        b"GET /u HTTP/1.1\r\n" + H + b"Upgrade: websocket, h2c\r\nConnection: Upgrade\r\n\r\n" + SMUG,
        b"GET /u HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\n\r\n" + SMUG,
        b"GET /u HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\n\r\n" + SMUG,
        b"CONNECT example.test:80 HTTP/1.1\r\n" + H + b"\r\n" + SMUG,
        b"CONNECT /x HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
        b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n" + SMUG,
        b"HEAD / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(SMUG) + SMUG,
        b"HEAD / HTTP/1.1\r\n" + H + b"\r\n" + SMUG,
        b"\r\n\r\n\r\n\r\n" + SMUG, b"\r\n\r\n\r\n\r\n\r\n" + SMUG, b"\n" + SMUG, b" " + SMUG,
        b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n\r\n\r\n" + SMUG,
    ]
    # 200 pipelined requests in one write
    v.append((b"GET /p HTTP/1.1\r\n" + H + b"\r\n") * 200)
    return v
