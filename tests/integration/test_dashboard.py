"""The admin dashboard (src/proxy/dashboard.html, served at GET / of the
admin listener) in a real browser: Debian's headless Chromium driven by
Selenium (chromium, chromium-driver, python3-selenium; scripts/deps.sh
installs them). Without them these tests fail, saying what to install:
they are never skipped.

The page is checked the way a person would look at it: it loads with no
console error, shows every server of the upstream with its state, its
request counter follows the traffic sent through moat (~10 req/s from a
thread), refusals show up by reason, and a bearer token is asked for once.
A screenshot of the page under traffic is saved to build/dashboard.png
(and beside the test's files) for people to look at.

Every wait is bounded; the browser is quit at teardown.
"""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from harness import REPO, Client, free_port, get, t, wait_for

CHROMIUM = os.environ.get("MOAT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("MOAT_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
HEADLESS_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")
INSTALL_HINT = ("install Debian's chromium, chromium-driver and python3-selenium "
                "(as root: sh scripts/deps.sh test)")
SCREENSHOT = REPO / "build" / "dashboard.png"
DASHBOARD_SRC = REPO / "src" / "proxy" / "dashboard.html"


class Browser:
    """A headless Chromium session. .logs keeps every browser console
    entry read so far (get_log empties Chromium's buffer on each read)."""

    def __init__(self, driver):
        self.driver = driver
        self.logs = []

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def read_logs(self):
        self.logs += self.driver.get_log("browser")
        return self.logs

    def assert_no_console_errors(self, allow=()):
        """Fails on a SEVERE console entry (a script error, a failed load)
        unless its message contains one of `allow`."""
        bad = [e for e in self.read_logs()
               if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allow)]
        assert not bad, "console errors in the dashboard:\n" + "\n".join(
            f"  {e.get('source')}: {e.get('message')}" for e in bad)

    def screenshot(self, path, width=1366):
        """A screenshot of the whole page (the window grown to its height)."""
        height = self.js("return Math.ceil(document.documentElement.scrollHeight)")
        self.driver.set_window_size(width, min(int(height) + 140, 4000))
        time.sleep(0.3)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path)), f"could not save a screenshot to {path}"


@pytest.fixture
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        pytest.fail(f"python3-selenium is missing ({e}): {INSTALL_HINT}", pytrace=False)
    for what, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            pytest.fail(f"{what} not found at {path}: {INSTALL_HINT}", pytrace=False)
    opts = webdriver.ChromeOptions()
    for flag in HEADLESS_FLAGS + ("--window-size=1366,900", "--hide-scrollbars", "--no-first-run",
                                  "--lang=en-US"):
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as e:   # WebDriverException, or a driver that never came up
        pytest.fail(f"headless Chromium did not start ({type(e).__name__}: {e}); {INSTALL_HINT}",
                    pytrace=False)
    driver.set_page_load_timeout(t(20))
    driver.set_script_timeout(t(10))
    try:
        yield Browser(driver)
    finally:
        driver.quit()


def start_with_admin(make_moat, backends, admin=None, config=None):
    """moat in front of `backends` with an admin listener on a free port;
    returns (moat, admin base URL) once the admin port accepts."""
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
    wait_for(accepts, t(10), what=f"the admin listener on 127.0.0.1:{port}")
    return m, f"http://127.0.0.1:{port}/"


def servers_shown(browser, upstream="app"):
    """{address: state} of the rows the page shows for `upstream`."""
    rows = browser.js(
        "var u = document.querySelector('[data-upstream=\"' + CSS.escape(arguments[0]) + '\"]');"
        "if (!u) return null;"
        "return Array.prototype.map.call(u.querySelectorAll('[data-server]'),"
        "  function (e) { return [e.getAttribute('data-server'), e.getAttribute('data-state')]; });",
        upstream)
    return dict(rows or [])


def wait(predicate, timeout, what):
    """wait_for, polling every 0.2 s, whose failure says what the page
    shows at the deadline: `what` is a function returning that text."""
    try:
        return wait_for(predicate, timeout, interval=0.2)
    except AssertionError:
        raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what()}") from None


def shown_number(browser, element_id):
    """The data-value of #element_id as a float, None while empty."""
    v = browser.js("var e = document.getElementById(arguments[0]);"
                   "return e ? e.getAttribute('data-value') : null;", element_id)
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        raise AssertionError(f"#{element_id} has a data-value that is not a number: {v!r}")


class Traffic(threading.Thread):
    """GET requests through moat at about `rate` per second, each on a
    fresh connection, until stop() or `seconds` have passed."""

    def __init__(self, port, rate=10.0, seconds=8.0):
        super().__init__(daemon=True)
        self.port, self.interval, self.seconds = port, 1.0 / rate, seconds
        self.sent = 0
        self.started = time.monotonic()
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        self.started = time.monotonic()
        end = self.started + self.seconds
        next_at = time.monotonic()
        while not self.halt.is_set() and time.monotonic() < end:
            try:
                r = get(self.port, f"/dash/{self.sent}")
                if r.status != 200:
                    self.errors.append(f"status {r.status}")
            except Exception as e:   # reported by the test, not lost in the thread
                self.errors.append(repr(e))
            self.sent += 1
            next_at += self.interval
            self.halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self):
        self.halt.set()
        self.join(t(10))
        assert not self.is_alive(), "the traffic thread did not stop"


def test_dashboard_page_is_embedded_and_self_contained(make_backend, make_moat):
    """GET / of the admin is the page of the source tree, byte for byte, as
    HTML; it references nothing outside itself (no CDN, no fonts)."""
    b = make_backend(name="app")
    _, url = start_with_admin(make_moat, [b])
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with Client(port) as c:
        r = c.request("GET", "/", [("Connection", "close")], host=f"127.0.0.1:{port}")
    assert r.status == 200, r
    assert (r.header("Content-Type") or "").lower().startswith("text/html"), r.headers
    assert r.body == DASHBOARD_SRC.read_bytes(), "GET / does not serve src/proxy/dashboard.html as built"
    text = r.body.decode("utf-8")
    for needle in ('src="http', "src='http", 'href="http', "href='http", "src=\"//", "href=\"//",
                   "@import", "url(http", "url(//"):
        assert needle not in text, f"the dashboard loads something from outside itself: {needle!r}"


def test_dashboard_live(browser, make_backend, make_moat, tmp_path):
    """The page shows both servers up, its request counter climbs with the
    traffic and ends at what was sent, the rate is about what is sent, and
    nothing goes to the console."""
    a, b = make_backend(name="a"), make_backend(name="b")
    m, url = start_with_admin(make_moat, [a, b])
    browser.driver.get(url)
    assert "moat" in browser.driver.title.lower(), browser.driver.title

    want = {a.addr: "up", b.addr: "up"}
    wait(lambda: servers_shown(browser) == want, t(10),
         lambda: f"servers {want} on the page (shown: {servers_shown(browser)})")
    wait(lambda: shown_number(browser, "requests-total") is not None, t(10),
         lambda: "#requests-total to show a number")
    start_total = shown_number(browser, "requests-total")
    assert start_total == 0, f"no traffic yet, but the page shows {start_total} requests"

    traffic = Traffic(m.port, rate=10, seconds=t(12))
    traffic.start()
    try:
        seen = [start_total]

        def climbed(times):
            v = shown_number(browser, "requests-total")
            if v is not None and v != seen[-1]:
                assert v > seen[-1], f"#requests-total went back from {seen[-1]} to {v}"
                seen.append(v)
            return len(seen) > times
        # three rises, one per poll: the counter follows the traffic
        wait(lambda: climbed(3), t(8),
             lambda: f"#requests-total to rise three times (seen {seen})")

        rates = []

        def rate_near_ten():
            r = shown_number(browser, "request-rate")
            rates.append(r)
            return r is not None and 5 <= r <= 15
        wait(rate_near_ten, t(8),
             lambda: f"#request-rate near 10 req/s (shown {rates[-10:]})")
        # a few more seconds of chart for the people who look at the screenshot
        traffic.halt.wait(max(0.0, traffic.started + t(8) - time.monotonic()))
        browser.screenshot(SCREENSHOT)
    finally:
        traffic.stop()
    assert not traffic.errors, f"requests through moat failed: {traffic.errors[:5]}"
    assert traffic.sent >= 20, f"only {traffic.sent} requests sent"

    # after the traffic: the total is exactly what was sent, split over both servers
    wait(lambda: shown_number(browser, "requests-total") == traffic.sent, t(5),
         lambda: f"#requests-total to show {traffic.sent} (shows {shown_number(browser, 'requests-total')})")
    per_server = browser.js(
        "return Array.prototype.map.call(document.querySelectorAll('[data-upstream=\"app\"] [data-server]'),"
        " function (e) { return e.querySelector('[data-field=\"requests\"]').textContent; });")
    counts = [int(x.replace(",", "")) for x in per_server]
    assert sum(counts) == traffic.sent and all(c > 0 for c in counts), (
        f"servers show {per_server} requests; {traffic.sent} were sent round robin")

    # latency from the histogram: a number of milliseconds, p50 <= p99
    p50, p99 = shown_number(browser, "latency-p50"), shown_number(browser, "latency-p99")
    assert p50 is not None and p99 is not None, f"latency not shown (p50 {p50}, p99 {p99})"
    assert 0 < p50 <= p99 < 10000, f"latency p50 {p50} ms, p99 {p99} ms"
    assert shown_number(browser, "error-rate") == 0, "no request failed, yet an error rate is shown"

    shutil.copy(SCREENSHOT, tmp_path / "dashboard.png")
    browser.assert_no_console_errors()


def test_dashboard_shows_a_down_server(browser, make_backend, make_moat):
    """A server that fails its health checks is shown "down", the others
    "up"."""
    a = make_backend(name="a")
    dead = f"127.0.0.1:{free_port()}"
    check = {"path": "/healthz", "interval": "200ms", "timeout": "150ms", "rise": 1, "fall": 1}
    _, url = start_with_admin(make_moat, [], config={
        "upstreams": {"app": {"servers": [a.addr, dead], "health_check": check}}})
    browser.driver.get(url)
    want = {a.addr: "up", dead: "down"}
    wait(lambda: servers_shown(browser) == want, t(10),
         lambda: f"servers {want} on the page (shown: {servers_shown(browser)})")
    badge = browser.js("return document.querySelector('[data-server=\"' + CSS.escape(arguments[0]) +"
                       " '\"] .badge').textContent", dead)
    assert badge.strip() == "down", badge
    browser.assert_no_console_errors()


def test_dashboard_shows_refusals(browser, make_backend, make_moat):
    """Requests moat refuses itself appear under their reason, with the
    count and its change."""
    b = make_backend(name="app")
    m, url = start_with_admin(make_moat, [b])
    browser.driver.get(url)
    wait(lambda: shown_number(browser, "requests-total") is not None, t(10),
         lambda: "#requests-total to show a number")
    assert browser.js("return document.querySelectorAll('#refusals tbody tr').length") == 0
    for _ in range(3):
        with Client(m.port) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: abc\r\n\r\nhello")
            assert c.read_response().status == 400

    def row():
        return browser.js(
            "var r = document.querySelector('#refusals tr[data-reason=\"bad_request\"]');"
            "return r && [r.querySelector('[data-field=\"total\"]').getAttribute('data-value'),"
            "             r.querySelector('[data-field=\"change\"]').textContent];")
    wait(lambda: (row() or [None])[0] == "3", t(8),
         lambda: f"a bad_request refusal row with total 3 (shown: {row()})")
    # the change over the last minute: +3, or "—" if the page has no sample that old yet
    assert row()[1] in ("+3", "—"), row()
    assert not b.requests, "a refused request reached the backend"
    browser.assert_no_console_errors()


def test_dashboard_asks_for_the_token_once(browser, make_backend, make_moat):
    """With admin.token set, the page asks for it, keeps it for the tab
    (sessionStorage) and sends it: a reload does not ask again."""
    b = make_backend(name="app")
    _, url = start_with_admin(make_moat, [b], admin={"token": "s3cret-T0ken"})
    browser.driver.get(url)
    wait_for(lambda: browser.js("return document.getElementById('auth-dialog').open"), t(10),
             interval=0.2, what="the token dialog")
    assert servers_shown(browser) == {}, "servers shown before the token was given"

    field = browser.driver.find_element("id", "auth-token")
    field.send_keys("wrong")
    field.submit()
    wait_for(lambda: "refused" in browser.js("return document.getElementById('auth-error').textContent"),
             t(10), interval=0.2, what="'token refused' after a wrong token")

    field = browser.driver.find_element("id", "auth-token")
    field.send_keys("s3cret-T0ken")
    field.submit()
    want = {b.addr: "up"}
    wait(lambda: servers_shown(browser) == want, t(10),
         lambda: f"servers {want} after the token (shown: {servers_shown(browser)})")
    assert browser.js("return sessionStorage.getItem('moat.admin.token')") == "s3cret-T0ken"

    browser.driver.refresh()
    wait(lambda: servers_shown(browser) == want, t(10),
         lambda: "servers shown after a reload, without asking again")
    assert not browser.js("return document.getElementById('auth-dialog').open")
    # the two answers to requests without (or with a wrong) token are the only errors
    browser.assert_no_console_errors(allow=("401",))
