"""The lecture notes in a real browser: headless Chromium over the DevTools protocol.

The site is served from 127.0.0.1; for every chapter the test waits for MathJax to
typeset, then checks that rendered equations exist, that no raw ``$$`` is left in the
text, and that every image has loaded. It saves a screenshot of chapter 01 as
``build/screenshots/01_cosine_from_l2.png``. Chromium is Debian's ``chromium``
(``.ci/run`` installs it); without it the test is skipped, except under CI, where it
fails.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "build" / "screenshots" / "01_cosine_from_l2.png"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class Browser:
    """The few DevTools calls the test needs, over one page's websocket."""

    def __init__(self, executable: str):
        import websocket

        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.process = subprocess.Popen(
            [
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                f"--remote-debugging-port={self.port}",
                "--window-size=1200,1600",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json") as reply:
                    targets = json.load(reply)
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.time() + 30
        while self.evaluate("document.readyState") != "complete":
            if time.time() > deadline:
                raise TimeoutError(url)
            time.sleep(0.1)

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    browser = Browser(chromium_path())
    yield browser
    browser.close()


WAIT_FOR_MATHJAX = """
(async () => {
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  return true;
})()
"""

PAGE_REPORT = """
(() => ({
  equations: document.querySelectorAll('mjx-container').length,
  rawDisplayMath: document.body.innerText.includes('$$'),
  images: document.images.length,
  brokenImages: Array.from(document.images)
    .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
}))()
"""


def test_chapters_typeset_their_math_and_load_their_figures(server, browser):
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    reports = {}
    for chapter in chapters:
        browser.open(f"{server}/notebooks/{chapter}.html")
        browser.evaluate(WAIT_FOR_MATHJAX)
        reports[chapter] = browser.evaluate(PAGE_REPORT)
    for chapter, report in reports.items():
        assert not report["rawDisplayMath"], chapter
        assert report["brokenImages"] == [], chapter
    # every chapter but the set-up one derives something in LaTeX; most draw figures
    assert all(r["equations"] > 0 for c, r in reports.items() if not c.startswith("00"))
    assert reports["01_cosine_from_l2"]["equations"] > 20
    browser.open(f"{server}/api.html")  # the formulas in the docstrings render too
    browser.evaluate(WAIT_FOR_MATHJAX)
    assert browser.evaluate(PAGE_REPORT)["equations"] >= 4
    assert sum(r["images"] > 0 for r in reports.values()) >= 5


def test_screenshot_of_chapter_01(server, browser):
    browser.open(f"{server}/notebooks/01_cosine_from_l2.html")
    browser.evaluate(WAIT_FOR_MATHJAX)
    shot = browser.call("Page.captureScreenshot", format="png")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 20_000  # a rendered page, not a blank one
