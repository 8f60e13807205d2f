"""Driving the dashboard in a real (headless) Chromium through Playwright: the server, the browser, a
session that waits for Streamlit's script runs and checks a page. Used by tests/test_browser.py and
benchmarks/live_browser.py.

Needs /usr/bin/chromium (Debian's `chromium` package) and the `playwright` Python package; both are
installed by `bash tests/setup.sh`.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# Tests leave the committed screenshots alone; refresh them with AFM_SCREENSHOTS_DIR=docs/screenshots.
SCREENSHOTS = Path(os.environ.get("AFM_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "afm-screenshots")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # without these Chromium phones home at start-up, and the closed CI network refuses it
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FULL_TRAINING = os.environ.get("AFM_E2E_FULL_TRAINING") == "1"  # train with the default knobs (10 epochs)
VIEWPORT = {"width": 1400, "height": 1000}
MAX_SHOT_HEIGHT = 12_000  # px; a taller page is cut there rather than making a huge PNG

# every wait is bounded; the whole test stays well under 5 minutes even on a busy 2-core machine
SERVER_START_S = 60
PAGE_RUN_S = 60  # a page's script run (the explanation pages compute over the whole sample once)
TRAIN_S = 150  # "Train AFM and FM" with 1 epoch, and the 2-training sweep
TEST_BUDGET_S = 270  # from the first page load; every wait below is also cut to what is left of it

# Streamlit's test ids (checked against streamlit 1.67's DOM)
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
STATUS_WIDGET = '[data-testid="stStatusWidget"]'  # the "Running... / Stop" badge, present only while running
MAIN = '[data-testid="stMain"]'  # the scrolling container of the page body
TITLE = '[data-testid="stMain"] h1'
NAV_LINK = '[data-testid="stSidebarNav"] a[data-testid="stSidebarNavLink"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_BOX = '[data-testid="stAlertContentError"]'
INFO_BOX = '[data-testid="stAlertContentInfo"]'
PLOTLY = '[data-testid="stPlotlyChart"]'
PLOTLY_DRAWN = '[data-testid="stPlotlyChart"]:has(.js-plotly-plot .main-svg)'
DATAFRAME = '[data-testid="stDataFrame"]'
PROGRESS = '[data-testid="stProgress"]'
SKELETON = '[data-testid="stSkeleton"]'  # stands in for an element whose code is still loading (plotly, dataframe)

# page title (sidebar link text and h1) -> (screenshot name, what must be on it once it has run)
PAGES = {
    "Data & model": ("01-data-model", (PLOTLY, DATAFRAME)),
    "Attention": ("02-attention", (PLOTLY, DATAFRAME)),
    "Explain a prediction": ("03-explain", (PLOTLY,)),
    "AFM vs FM": ("04-compare", (PLOTLY, DATAFRAME)),
    "Sweeps": ("05-sweeps", (PLOTLY, DATAFRAME)),  # after the small sweep run below
    "How AFM works": ("06-how-afm-works", (DATAFRAME,)),
}


def save_small_png(png: bytes, path: Path, limit: int = 400_000) -> None:
    """The PNG as taken, or, when over `limit` bytes and Pillow is there, a 256-colour one (a third of
    the size; a flat UI looks the same, colour scales get faint bands)."""
    try:
        from PIL import Image
    except ImportError:
        Image = None  # noqa: N806
    if len(png) <= limit or Image is None:
        path.write_bytes(png)
        return
    with Image.open(io.BytesIO(png)) as image:
        flat = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        flat.save(path, format="PNG", optimize=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> str | None:
    """Wait until the server at ``url`` (started as ``proc``) answers its health check: None, or why it did not."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            return f"streamlit exited with {proc.returncode} before serving"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().decode().strip() == "ok":
                    return None
        except OSError:
            pass
        if time.monotonic() > deadline:
            return f"streamlit did not answer /_stcore/health within {timeout_s:.0f} s"
        time.sleep(0.5)


@contextlib.contextmanager
def serve(tmp: Path, env: dict[str, str] | None = None, root: Path = ROOT) -> Iterator[tuple[str, subprocess.Popen]]:
    """The dashboard of the checkout ``root`` (this one by default) served by a `streamlit run` subprocess in
    ``tmp``: (its URL, the process). Always terminated."""
    port = free_port()
    env = {**os.environ, "AFM_RUNS_DIR": str(tmp / "runs"), "PYTHONUNBUFFERED": "1", **(env or {})}
    log_path = tmp / "streamlit.log"
    log = log_path.open("w")
    cmd = [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py",
           "--server.port", str(port), "--server.headless", "true", "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]  # fmt: skip  # pages edited meanwhile must not prompt a rerun
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log_tail() -> str:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])

    try:
        url = f"http://127.0.0.1:{port}"
        problem = wait_healthy(url, proc, SERVER_START_S)
        if problem:
            raise AssertionError(f"{problem}:\n{log_tail()}")
        yield url, proc
        if proc.poll() is not None:
            raise AssertionError(f"streamlit died ({proc.returncode}):\n{log_tail()}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log.close()


def launch(pw: object) -> object:
    """Debian's Chromium, headless, through Playwright (its own browser download is not used)."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000)


class Session:
    """One browser tab on the app, recording the browser's uncaught errors and console errors."""

    def __init__(self, page, url: str) -> None:  # noqa: ANN001 - playwright's Page
        self.page, self.url, self.origin = page, url, urlparse(url).netloc
        self.deadline = time.monotonic() + TEST_BUDGET_S
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda err: self.page_errors.append(str(err)))
        page.on("console", self._console)

    def _console(self, msg) -> None:  # noqa: ANN001 - playwright's ConsoleMessage
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        external = bool(where) and urlparse(where).netloc != self.origin
        network = "net::ERR_" in msg.text or "Failed to load resource" in msg.text
        if external or (network and self.origin not in msg.text and self.origin not in where):
            return  # fonts / CDNs the closed network refuses: not the app's fault
        self.console_errors.append(f"{msg.text} ({where})")

    def left_s(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the browser test ran over its {TEST_BUDGET_S} s budget")
        return left

    def wait_until_run(self, title: str, timeout_s: float = PAGE_RUN_S) -> None:
        """Until the page titled `title` has finished its script run, drawn every element, and stayed so for 1.5 s."""
        page = self.page
        timeout_s = min(timeout_s, self.left_s())
        deadline = time.monotonic() + timeout_s
        steady_since = None
        while True:
            heading = page.locator(TITLE).first.inner_text().strip() if page.locator(TITLE).count() else None
            waiting = {
                "script still running": page.locator(APP_IDLE).count() != 1,
                "status widget shown": page.locator(STATUS_WIDGET).count() != 0,
                "elements still loading": page.locator(SKELETON).count() != 0,
                f"title is {heading!r}": heading != title,
                "plotly not drawn": page.locator(PLOTLY).count() != page.locator(PLOTLY_DRAWN).count(),
            }
            now = time.monotonic()
            steady_since = None if any(waiting.values()) else (steady_since or now)
            if steady_since is not None and now - steady_since >= 1.5:
                return
            if now > deadline:
                why = ", ".join(k for k, v in waiting.items() if v)
                raise AssertionError(f"page {title!r} did not finish running in {timeout_s:.0f} s: {why}")
            page.wait_for_timeout(250)

    def check(self, title: str, expected: tuple[str, ...]) -> None:
        page = self.page
        problems = [f"exception: {t.strip()[:500]}" for t in page.locator(EXCEPTION).all_inner_texts()]
        problems += [f"st.error: {t.strip()[:500]}" for t in page.locator(ERROR_BOX).all_inner_texts()]
        problems += [f"uncaught page error: {e[:500]}" for e in self.page_errors]
        problems += [f"console error: {e[:500]}" for e in self.console_errors]
        assert not problems, f"{title!r}:\n" + "\n".join(problems)
        if "coming soon" in page.locator(MAIN).inner_text().lower():
            return
        missing = [sel for sel in expected if page.locator(sel).count() == 0]
        assert not missing, f"{title!r} has no {missing}"

    def screenshot(self, name: str) -> None:
        """A full-page PNG: the body scrolls inside stMain, so grow the viewport to its height first."""
        page = self.page
        height = page.evaluate(f"() => document.querySelector('{MAIN}').scrollHeight")
        page.set_viewport_size(
            {"width": VIEWPORT["width"], "height": min(max(height, VIEWPORT["height"]), MAX_SHOT_HEIGHT)}
        )
        try:
            page.wait_for_timeout(500)  # let the charts re-layout
            png = page.screenshot(type="png", full_page=True, scale="css", animations="disabled")
        finally:
            page.set_viewport_size(VIEWPORT)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        save_small_png(png, SCREENSHOTS / f"{name}.png")

    def go(self, title: str) -> None:
        self.page.locator(NAV_LINK).filter(has_text=title).first.click()
        self.wait_until_run(title)


LIVE_STATUS = '[data-testid="stCaptionContainer"]:has-text("Live:")'  # the live panel's status line (app/live_panel.py)


def live_status(page) -> str:  # noqa: ANN001 - playwright's Page
    texts = page.locator(LIVE_STATUS).all_inner_texts()
    return texts[0].strip() if texts else ""


def live_change(page, label: str, key: str, timeout_s: float = 120.0) -> dict[str, float | int | list[str]]:  # noqa: ANN001
    """Press ``key`` on the live knob ``label`` and follow the live panel's status line until it settles: seconds
    from the key press to the first redraw from the training in progress ("Live: redraw 1 ..."), to the settled
    picture ("Live: settled after ..."), the redraws seen on the way and the status lines in order."""
    before = live_status(page)
    # every text the status line takes, with the browser's clock, recorded by the page itself (a poll from here
    # could miss a state that lasts a quarter of a second)
    page.evaluate(
        """() => {
            window.__live = [];
            const note = () => {
                const el = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                    .find(e => e.innerText.startsWith('Live:'));
                const text = el ? el.innerText.trim() : '';
                const log = window.__live;
                if (text && (!log.length || log[log.length - 1][1] !== text)) log.push([performance.now(), text]);
            };
            if (window.__liveObserver) window.__liveObserver.disconnect();
            window.__liveObserver = new MutationObserver(note);
            window.__liveObserver.observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )
    thumb = page.get_by_role("slider", name=label)
    thumb.focus()
    pressed = page.evaluate("() => performance.now()")
    started = time.perf_counter()
    page.keyboard.press(key)
    seen: list[str] = []
    first = settled = None
    while time.perf_counter() - started < timeout_s:
        log = page.evaluate("() => window.__live")
        seen = [text for _, text in log]
        for at, text in log:
            if first is None and text.startswith("Live: redraw"):
                first = (at - pressed) / 1000
            if settled is None and text.startswith("Live: settled") and text != before:
                settled = (at - pressed) / 1000
        if settled is not None:
            break
        time.sleep(0.1)
    if settled is None:
        raise AssertionError(f"the live panel did not settle in {timeout_s:.0f} s; status lines: {seen}")
    redraws = len({t.split(" · ")[0] for t in seen if t.startswith("Live: redraw")})
    return {"first_redraw_s": first if first is not None else float("nan"), "settled_s": settled,
            "redraws": redraws, "lines": seen}  # fmt: skip
