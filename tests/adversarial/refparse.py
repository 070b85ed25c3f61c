"""refparse.py - an independent, strict model of what moat should do with
a byte stream from one client connection (docs/internals/h1-parser.md,
docs/security.md), used as the oracle of the socket fuzzer.

parse_stream(data, eof) -> (requests, end) where requests are the complete,
valid requests the client sent in full, in order, each a Req with what the
backend must receive (method, target, body, trailers, host), and end is one
of:
    ("done",)          every byte consumed, connection kept open
    ("close",)         a request asked to close; moat closes after its response
    ("again",)         the last request (head or body) is incomplete
    ("error", status)  the next request is refused with `status` (or, for a
                       bad chunked body, the backend may see its head and a
                       truncated body, never a complete request)
"""

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
VALUE = frozenset([0x09] + list(range(0x20, 0x7F)) + list(range(0x80, 0x100)))
TARGET = frozenset(range(0x21, 0x7F))
HOSTCH = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]")
CL_MAX = 1 << 62

REQUEST_LINE_MAX = 8 * 1024
HEADER_SIZE_MAX = 32 * 1024
HEADER_COUNT_MAX = 100

TRAILER_DENY = {
    "content-length", "transfer-encoding", "host", "connection", "keep-alive",
    "te", "trailer", "upgrade", "proxy-connection", "expect", "content-type",
    "content-encoding", "content-range", "authorization", "set-cookie", "cookie",
    "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
}

AGAIN = "again"


class Bad(Exception):
    def __init__(self, status, method=None):
        self.status = status
        self.method = method    # set when the head parsed and the proxy refused it


class Req:
    def __init__(self):
        self.method = b""
        self.target = b""        # as sent
        self.fwd_target = b""    # what the backend must see
        self.minor = 1
        self.headers = []        # [(name bytes, value bytes)]
        self.host = None
        self.fwd_host = None     # None: moat substitutes the upstream's name
        self.framing = "none"
        self.content_length = 0
        self.body = b""
        self.trailers = []       # forwarded trailer lines (bytes, without CRLF)
        self.keepalive = True
        self.expect = False
        self.upgrade = False
        self.start = 0
        self.head_end = 0
        self.end = 0

    def __repr__(self):
        return f"<Req {self.method!r} {self.fwd_target!r} body={len(self.body)}>"


def list_has(v, tok):
    for el in v.split(b","):
        if el.strip(b" \t").lower() == tok:
            return True
    return False


def parse_cl(v):
    if not v or any(c < 0x30 or c > 0x39 for c in v):
        return None
    x = int(v)
    return x if x <= CL_MAX else None


def parse_head(d, pos):
    """Returns (Req, position after the head) or AGAIN; raises Bad."""
    n = len(d)
    start = pos
    hlim = start + HEADER_SIZE_MAX

    def need(i, lim, status):
        # byte i is needed: past the limit -> status; past the data -> AGAIN
        if i >= lim:
            raise Bad(status)
        if i >= n:
            return True
        return False

    i = pos
    for k in range(5):
        if need(i, hlim, 431):
            return AGAIN
        if d[i] != 0x0D:
            break
        if k == 4:
            raise Bad(400)
        if need(i + 1, hlim, 431):
            return AGAIN
        if d[i + 1] != 0x0A:
            raise Bad(400)
        i += 2
    rl_lim = min(hlim, i + REQUEST_LINE_MAX)
    rl_status = 414 if i + REQUEST_LINE_MAX <= hlim else 431
    r = Req()
    r.start = start
    # method
    m0 = i
    while True:
        if need(i, rl_lim, rl_status):
            return AGAIN
        if d[i] in TCHAR:
            i += 1
            continue
        break
    if i == m0 or d[i] != 0x20:
        raise Bad(400)
    r.method = d[m0:i]
    i += 1
    t0 = i
    while True:
        if need(i, rl_lim, rl_status):
            return AGAIN
        if d[i] in TARGET:
            i += 1
            continue
        break
    if i == t0 or d[i] != 0x20:
        raise Bad(400)
    r.target = d[t0:i]
    i += 1
    pat = b"HTTP/0.0"
    for k in range(len(pat)):
        if need(i, rl_lim, rl_status):
            return AGAIN
        c = d[i]
        ok = (0x30 <= c <= 0x39) if pat[k] == 0x30 else c == pat[k]
        if not ok:
            raise Bad(400)
        i += 1
    major, minor = d[i - 3] - 0x30, d[i - 1] - 0x30
    for k, want in enumerate(b"\r\n"):
        if need(i, rl_lim, rl_status):
            return AGAIN
        if d[i] != want:
            raise Bad(400)
        i += 1
    if major != 1 or minor > 1:
        raise Bad(505)
    r.minor = minor
    # fields
    cl_fields = 0
    cl_bad = False
    cl = 0
    te_fields = 0
    te_chunked = te_other = 0
    te_empty = te_last = False
    host_fields = 0
    host_bad = False
    flags = set()
    while True:
        if need(i, hlim, 431):
            return AGAIN
        c = d[i]
        if c == 0x0D:
            if need(i + 1, hlim, 431):
                return AGAIN
            if d[i + 1] != 0x0A:
                raise Bad(400)
            i += 2
            break
        if c not in TCHAR:
            raise Bad(400)
        if len(r.headers) >= HEADER_COUNT_MAX:
            raise Bad(431)
        n0 = i
        while True:
            if need(i, hlim, 431):
                return AGAIN
            if d[i] in TCHAR:
                i += 1
                continue
            break
        if d[i] != 0x3A:
            raise Bad(400)
        name = d[n0:i]
        i += 1
        while i < min(n, hlim) and d[i] in (0x20, 0x09):
            i += 1
        v0 = i
        while i < min(n, hlim) and d[i] in VALUE:
            i += 1
        v1 = i
        for want in b"\r\n":
            if need(i, hlim, 431):
                return AGAIN
            if d[i] != want:
                raise Bad(400)
            i += 1
        while v1 > v0 and d[v1 - 1] in (0x20, 0x09):
            v1 -= 1
        value = d[v0:v1]
        r.headers.append((name, value))
        ln = name.lower()
        if ln == b"te" and list_has(value, b"trailers"):
            flags.add("te_trailers")
        elif ln == b"host":
            if host_fields == 0:
                r.host = value
            host_fields += 1
            if any(ch not in HOSTCH for ch in value):
                host_bad = True
        elif ln == b"expect" and list_has(value, b"100-continue"):
            flags.add("expect")
        elif ln == b"upgrade":
            flags.add("upgrade")
        elif ln == b"connection":
            for tok in (b"close", b"keep-alive", b"upgrade"):
                if list_has(value, tok):
                    flags.add("conn_" + tok.decode())
        elif ln == b"content-length":
            v = parse_cl(value)
            if v is None:
                cl_bad = True
            elif cl_fields == 0:
                cl = v
            cl_fields += 1
        elif ln == b"transfer-encoding":
            te_fields += 1
            for el in value.split(b","):
                el = el.strip(b" \t")
                if not el:
                    te_empty = True
                    te_last = False
                elif el.lower() == b"chunked":
                    te_chunked += 1
                    te_last = True
                else:
                    te_other += 1
                    te_last = False
    r.head_end = i
    # framing (RFC 9112 6.3, strictly)
    if host_fields > 1 or host_bad:
        raise Bad(400)
    if r.minor == 1 and host_fields == 0:
        raise Bad(400)
    if cl_fields > 1 or cl_bad:
        raise Bad(400)
    if te_fields:
        if cl_fields or r.minor == 0 or te_empty or te_chunked != 1 or not te_last:
            raise Bad(400)
        if te_other:
            raise Bad(501)
        r.framing = "chunked"
    elif cl_fields == 1:
        r.framing = "length"
        r.content_length = cl
    r.flags = flags
    if r.minor == 1:
        r.keepalive = "conn_close" not in flags
    else:
        r.keepalive = "conn_keep-alive" in flags and "conn_close" not in flags
    r.upgrade = ("upgrade" in flags and "conn_upgrade" in flags and
                 not any(n.lower() == b"upgrade" and list_has(v, b"h2c") for n, v in r.headers))
    req_done = r.framing == "none" or (r.framing == "length" and r.content_length == 0)
    r.expect = "expect" in flags and not req_done
    # proxy-level checks (txn.c): moat's answer then knows the method (HEAD)
    try:
        proxy_checks(r)
    except Bad as e:
        e.method = r.method
        raise
    return r, i


def proxy_checks(r):
    if r.method == b"CONNECT":
        raise Bad(405)
    tgt = r.target
    low = tgt.lower()
    auth = None
    if len(tgt) > 7 and low.startswith(b"http://"):
        rest = tgt[7:]
    elif len(tgt) > 8 and low.startswith(b"https://"):
        rest = tgt[8:]
    else:
        rest = None
    if rest is not None:
        k = 0
        while k < len(rest) and rest[k] not in b"/?":
            k += 1
        auth = rest[:k]
        if k < len(rest) and rest[k] == 0x3F:
            raise Bad(400)
        path = rest[k:] or b"/"
        if not auth or any(ch not in HOSTCH for ch in auth):
            raise Bad(400)
        r.fwd_target = path
        r.fwd_host = auth
    else:
        if tgt[0] != 0x2F and tgt != b"*":
            raise Bad(400)
        r.fwd_target = tgt
        r.fwd_host = r.host


class Chunked:
    """Port of src/http/chunked.c's rules (not its code)."""

    def __init__(self):
        self.max_line = 4096
        self.max_trailer = 16384

    def decode(self, d, i):
        """Decodes from d[i:]; returns (data, trailers, end) or AGAIN;
        raises Bad(400)."""
        n = len(d)
        data = bytearray()
        trailers = []
        while True:
            # size line
            line_len = 0
            digits = 0
            size = 0
            state = "size"
            ext = "name0"
            while True:
                if i >= n:
                    return AGAIN
                c = d[i]
                i += 1
                if state == "lf":
                    if c != 0x0A:
                        raise Bad(400)
                    break
                if c != 0x0D:
                    line_len += 1
                    if line_len > self.max_line:
                        raise Bad(400)
                if state == "ext":
                    ext = self._ext(ext, c)
                    if ext == "cr":
                        state = "lf"
                    continue
                if state == "bws":
                    if c == 0x3B:
                        state, ext = "ext", "name0"
                    elif c not in (0x20, 0x09):
                        raise Bad(400)
                    continue
                hv = int(chr(c), 16) if chr(c) in "0123456789abcdefABCDEF" else -1
                if hv >= 0:
                    if digits == 16 or size > (CL_MAX - hv) // 16:
                        raise Bad(400)
                    size = size * 16 + hv
                    digits += 1
                    continue
                if digits == 0:
                    raise Bad(400)
                if c == 0x0D:
                    state = "lf"
                elif c == 0x3B:
                    state, ext = "ext", "name0"
                elif c in (0x20, 0x09):
                    state = "bws"
                else:
                    raise Bad(400)
            if size == 0:
                break
            if n - i < size:
                return AGAIN
            data += d[i:i + size]
            i += size
            for want in b"\r\n":
                if i >= n:
                    return AGAIN
                if d[i] != want:
                    raise Bad(400)
                i += 1
        total = 0
        while True:
            if i >= n:
                return AGAIN
            if d[i] == 0x0D:
                if i + 1 >= n:
                    return AGAIN
                if d[i + 1] != 0x0A:
                    raise Bad(400)
                return bytes(data), trailers, i + 2
            # trailer line
            k = 0
            st = "name"
            room = self.max_trailer - total if total < self.max_trailer else 0
            while True:
                if k >= room:
                    raise Bad(400)
                if i + k >= n:
                    return AGAIN
                c = d[i + k]
                if st == "name":
                    if c in TCHAR:
                        k += 1
                        continue
                    if c == 0x3A and k > 0:
                        st = "value"
                        k += 1
                        continue
                    raise Bad(400)
                if st == "value":
                    if c in VALUE and c != 0x7F:
                        k += 1
                        continue
                    if c == 0x0D:
                        st = "lf"
                        k += 1
                        continue
                    raise Bad(400)
                if c == 0x0A:
                    k += 1
                    break
                raise Bad(400)
            line = d[i:i + k - 2]
            total += k
            i += k
            name = line.split(b":", 1)[0].lower().decode("latin-1")
            if name not in TRAILER_DENY:
                trailers.append(line)

    @staticmethod
    def _ext(st, c):
        ws = c in (0x20, 0x09)
        tch = c in TCHAR
        vch = ws or (c >= 0x21 and c != 0x7F)
        if st == "name0":
            if ws:
                return st
            if not tch:
                raise Bad(400)
            return "name"
        if st == "quoted":
            if c == 0x22:
                return "val_end"
            if c == 0x5C:
                return "qpair"
            if not vch:
                raise Bad(400)
            return st
        if st == "qpair":
            if not vch:
                raise Bad(400)
            return "quoted"
        if st == "val0":
            if ws:
                return st
            if c == 0x22:
                return "quoted"
            if tch:
                return "token"
            raise Bad(400)
        if st == "name":
            if tch:
                return st
        elif st == "name_bws":
            if ws:
                return st
            if c not in (0x3D, 0x3B):
                raise Bad(400)
        elif st == "token":
            if tch:
                return st
            if c == 0x3D:
                raise Bad(400)
        elif st == "val_end":
            if c == 0x3D:
                raise Bad(400)
        elif st == "val_bws":
            if ws:
                return st
            if c != 0x3B:
                raise Bad(400)
        # end of a name or value
        if c == 0x3B:
            return "name0"
        if c == 0x3D and st in ("name", "name_bws"):
            return "val0"
        if ws:
            return "name_bws" if st == "name" else "val_bws"
        if c == 0x0D and st != "name_bws":
            return "cr"
        raise Bad(400)


def parse_stream(d):
    reqs = []
    pos = 0
    while True:
        try:
            h = parse_head(d, pos)
        except Bad as e:
            return reqs, ("error", e.status, e.method)
        if h is AGAIN:
            return reqs, ("again",) if pos < len(d) else ("done",)
        r, i = h
        if r.framing == "length":
            if len(d) - i < r.content_length:
                r.partial = True
                return reqs + [r], ("again",)
            r.body = d[i:i + r.content_length]
            i += r.content_length
        elif r.framing == "chunked":
            try:
                res = Chunked().decode(d, i)
            except Bad as e:
                r.partial = True
                return reqs + [r], ("error", e.status, None)
            if res is AGAIN:
                r.partial = True
                return reqs + [r], ("again",)
            r.body, r.trailers, i = res
        r.partial = False
        r.end = i
        reqs.append(r)
        pos = i
        if not r.keepalive:
            return reqs, ("close",)


# ---------------------------------------------------------------- responses

class Resp:
    def __init__(self):
        self.status = 0
        self.minor = 1
        self.headers = []
        self.framing = "none"
        self.body = b""
        self.trailers = []
        self.interim = []      # statuses of the 1xx heads before it
        self.end = 0


def parse_response_head(d, pos, is_head):
    """(Resp, end of head) or AGAIN; raises Bad(502)."""
    n = len(d)
    hlim = pos + HEADER_SIZE_MAX
    i = pos

    def need(k):
        if k >= hlim:
            raise Bad(502)
        return k >= n

    pat = b"HTTP/0.0"
    for k in range(len(pat)):
        if need(i):
            return AGAIN
        c = d[i]
        ok = (0x30 <= c <= 0x39) if pat[k] == 0x30 else c == pat[k]
        if not ok:
            raise Bad(502)
        i += 1
    major, minor = d[i - 3] - 0x30, d[i - 1] - 0x30
    if need(i):
        return AGAIN
    if d[i] != 0x20:
        raise Bad(502)
    i += 1
    status = 0
    for k in range(3):
        if need(i):
            return AGAIN
        c = d[i]
        if c < (0x31 if k == 0 else 0x30) or c > 0x39:
            raise Bad(502)
        status = status * 10 + c - 0x30
        i += 1
    if need(i):
        return AGAIN
    if d[i] == 0x20:
        i += 1
        while i < min(n, hlim) and d[i] in VALUE:
            i += 1
    for want in b"\r\n":
        if need(i):
            return AGAIN
        if d[i] != want:
            raise Bad(502)
        i += 1
    if major != 1 or minor > 1:
        raise Bad(502)
    r = Resp()
    r.status = status
    r.minor = minor
    cl_fields = te_fields = te_chunked = te_other = 0
    cl_bad = te_empty = te_last = False
    cl = 0
    while True:
        if need(i):
            return AGAIN
        c = d[i]
        if c == 0x0D:
            if need(i + 1):
                return AGAIN
            if d[i + 1] != 0x0A:
                raise Bad(502)
            i += 2
            break
        if c not in TCHAR:
            raise Bad(502)
        if len(r.headers) >= HEADER_COUNT_MAX:
            raise Bad(502)
        n0 = i
        while True:
            if need(i):
                return AGAIN
            if d[i] in TCHAR:
                i += 1
                continue
            break
        if d[i] != 0x3A:
            raise Bad(502)
        name = d[n0:i]
        i += 1
        while i < min(n, hlim) and d[i] in (0x20, 0x09):
            i += 1
        v0 = i
        while i < min(n, hlim) and d[i] in VALUE:
            i += 1
        v1 = i
        for want in b"\r\n":
            if need(i):
                return AGAIN
            if d[i] != want:
                raise Bad(502)
            i += 1
        while v1 > v0 and d[v1 - 1] in (0x20, 0x09):
            v1 -= 1
        value = d[v0:v1]
        r.headers.append((name, value))
        ln = name.lower()
        if ln == b"content-length":
            v = parse_cl(value)
            if v is None:
                cl_bad = True
            elif cl_fields == 0:
                cl = v
            cl_fields += 1
        elif ln == b"transfer-encoding":
            te_fields += 1
            for el in value.split(b","):
                el = el.strip(b" \t")
                if not el:
                    te_empty, te_last = True, False
                elif el.lower() == b"chunked":
                    te_chunked += 1
                    te_last = True
                else:
                    te_other += 1
                    te_last = False
    if cl_fields > 1 or cl_bad:
        raise Bad(502)
    if is_head or 100 <= status <= 199 or status in (204, 304):
        r.framing = "none"
    elif te_fields:
        if cl_fields or minor == 0:
            raise Bad(502)
        if not (te_chunked == 1 and te_last and te_other == 0 and not te_empty):
            raise Bad(502)
        r.framing = "chunked"
    elif cl_fields == 1:
        r.framing = "length"
        r.content_length = cl
    else:
        r.framing = "close"
    return r, i


def parse_response(d, is_head, eof):
    """What the client must get for backend bytes d (all of them, then a
    close when eof): ("ok", Resp) with the final response and its decoded
    body, ("bad-head",) when no valid final head (502), ("bad-body", Resp)
    when the head was valid but the body is malformed or cut short (the
    client then sees a head and a close), ("again",) when more is needed."""
    pos = 0
    interim = []
    while True:
        try:
            h = parse_response_head(d, pos, is_head)
        except Bad:
            return ("bad-head",)
        if h is AGAIN:
            return ("bad-head",) if eof else ("again",)
        r, i = h
        if 100 <= r.status <= 199 and r.status != 101:
            interim.append(r.status)
            pos = i
            continue
        r.interim = interim
        break
    if r.status == 101:
        return ("bad-head",)   # not an upgrade request
    if r.framing == "none":
        r.end = i
        return ("ok", r)
    if r.framing == "length":
        if len(d) - i < r.content_length:
            return ("bad-body", r) if eof else ("again",)
        r.body = d[i:i + r.content_length]
        r.end = i + r.content_length
        return ("ok", r)
    if r.framing == "close":
        if not eof:
            return ("again",)
        r.body = d[i:]
        r.end = len(d)
        return ("ok", r)
    try:
        res = Chunked().decode(d, i)
    except Bad:
        return ("bad-body", r)
    if res is AGAIN:
        return ("bad-body", r) if eof else ("again",)
    r.body, r.trailers, r.end = res
    return ("ok", r)
