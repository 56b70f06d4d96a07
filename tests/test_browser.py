"""The lecture notes in a real browser: headless Chromium over the DevTools protocol.

The site is served from 127.0.0.1; for every chapter the test waits for MathJax to
typeset, then checks that rendered equations exist, that no raw ``$$`` is left in the
text, that every image has loaded, and that the site asked its server for no file it
does not have (the trimmed MathJax included). In chapter 01 it clicks a code cell's
copy button and reads the clipboard, opens a folded solution, and fetches the two
downloads under the title. It saves a screenshot of chapter 01 as
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
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tripletlab.distributed_demo import free_port

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


MISSING: list[str] = []  # paths the browser asked for that the site does not have


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site quietly and records every 404."""

    def log_message(self, *args) -> None:
        pass

    def send_error(self, code, message=None, explain=None):
        if code == 404 and not self.path.startswith("/favicon.ico"):
            MISSING.append(self.path)
        super().send_error(code, message, explain)


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(Handler, directory=str(site))
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

    def click(self, selector: str) -> None:
        """A real mouse click (a user gesture, as the clipboard requires) on the centre of
        the first element matching ``selector``, scrolled into view."""
        box = self.evaluate(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()"""
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

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


def test_the_site_asks_for_no_file_it_does_not_have(server, browser):
    MISSING.clear()
    for page in ("index.html", "notebooks/01_cosine_from_l2.html", "api.html", "contract.html"):
        browser.open(f"{server}/{page}")
        browser.evaluate(WAIT_FOR_MATHJAX)
    assert MISSING == []


def test_a_code_cell_copies_its_code_to_the_clipboard(server, browser):
    browser.open(f"{server}/notebooks/01_cosine_from_l2.html")
    browser.call(
        "Browser.grantPermissions",
        origin=server,
        permissions=["clipboardReadWrite", "clipboardSanitizedWrite"],
    )
    counts = browser.evaluate(
        """(() => ({inputs: document.querySelectorAll('div.cell_input button.copybtn').length,
        outputs: document.querySelectorAll('div.cell_output button.copybtn').length}))()"""
    )
    assert counts["inputs"] > 10 and counts["outputs"] == 0
    # the first cell that is not folded: the one after the set-up cell
    target = "div.cell:not(.tag_hide-input) div.cell_input"
    code = browser.evaluate(f"document.querySelector('{target} pre').innerText")
    browser.evaluate(f"document.querySelector('{target}').dispatchEvent(new Event('mouseover'))")
    browser.click(f"{target} button.copybtn")
    time.sleep(0.3)
    assert (
        browser.evaluate(f"document.querySelector('{target} button.copybtn').dataset.tooltip")
        == "Copied!"
    )
    copied = browser.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == code.strip() and "\n" in copied.strip()


def test_solutions_and_the_set_up_cell_are_folded(server, browser):
    browser.open(f"{server}/notebooks/01_cosine_from_l2.html")
    report = browser.evaluate(
        """(() => Array.from(document.querySelectorAll('details')).map(d => ({
        summary: d.querySelector('summary').innerText.trim(), open: d.open,
        shown: d.querySelector('pre').checkVisibility()})))()"""
    )
    summaries = [r["summary"] for r in report]
    assert summaries[0].startswith("Show the set-up cell")
    assert summaries.count("Show the solution") == 3
    assert all(not r["open"] and not r["shown"] for r in report)  # folded: the code is hidden
    solution = "div.tag_solution details"
    browser.click(f"{solution} summary")
    opened = browser.evaluate(
        f"""(() => {{ const d = document.querySelector('{solution}');
        return [d.open, d.querySelector('pre').checkVisibility(),
        d.querySelector('pre').innerText]; }})()"""
    )
    assert opened[0] and opened[1] and "=" in opened[2]
    browser.open(f"{server}/notebooks/00_setup.html")
    assert "Show the set-up cell" not in browser.evaluate("document.body.innerText")


def test_each_chapter_offers_its_notebook_and_its_py_source(server, browser):
    browser.open(f"{server}/notebooks/01_cosine_from_l2.html")
    fetched = browser.evaluate(
        """(async () => {
        const links = Array.from(document.querySelectorAll('a.download')).map(a => a.href);
        const bodies = await Promise.all(links.map(async href => {
            const reply = await fetch(href); return [href, reply.status, await reply.text()];
        }));
        return bodies; })()"""
    )
    by_suffix = {href.rsplit(".", 1)[1]: (status, body) for href, status, body in fetched}
    assert set(by_suffix) == {"ipynb", "py"}
    assert by_suffix["py"][0] == 200 and by_suffix["ipynb"][0] == 200
    source = by_suffix["py"][1]
    assert source.startswith("# ---\n# jupyter:") and "\n# %%\n" in source
    assert source == (ROOT / "notebooks" / "01_cosine_from_l2.py").read_text()
    notebook = json.loads(by_suffix["ipynb"][1])  # the notebook as committed, not as staged
    assert notebook["nbformat"] == 4 and any(cell.get("outputs") for cell in notebook["cells"])
    assert by_suffix["ipynb"][1] == (ROOT / "notebooks" / "01_cosine_from_l2.ipynb").read_text()


def test_screenshot_of_chapter_01(server, browser):
    browser.open(f"{server}/notebooks/01_cosine_from_l2.html")
    browser.evaluate(WAIT_FOR_MATHJAX)
    shot = browser.call("Page.captureScreenshot", format="png")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 20_000  # a rendered page, not a blank one
