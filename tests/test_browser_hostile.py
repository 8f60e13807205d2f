"""Hostile uploads through a real browser: a real `streamlit run` server, headless Chromium uploading each file
through the dashboard's table uploader, the server's resident memory polled every 0.1 s.

Each file gets a plain message on the page (no traceback), the server stays under 1.5 GB, and once the tab is
closed the server's CPU returns to idle within seconds (no script run or job of that tab is left running).
The last test closes a tab while a long training runs, and measures the same return to idle.

Needs /usr/bin/chromium and playwright (``bash tests/setup.sh``); Linux (/proc) for memory and CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browserkit import CHROMIUM, EXCEPTION, VIEWPORT, Session, launch, serve  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: `bash tests/setup.sh` installs it"),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="memory and CPU are read from /proc (Linux)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: `bash tests/setup.sh`")

SERVER_LIMIT_GB = 1.5
IDLE_WITHIN_S = 15.0  # after the tab closes, the server's CPU is idle within this (the grace is 5 s)
IDLE_CPU = 0.05  # CPU seconds per second: "idle"
ERROR_BOX = '[data-testid="stAlertContentError"]'
SUCCESS_BOX = '[data-testid="stAlertContentSuccess"]'
RADIO_OPTION = '[data-testid="stRadio"] label'
UPLOADER = '[data-testid="stFileUploader"]'
# knobs in a link for a training of minutes on the sample: 200 epochs of small batches at a learning rate so small
# that every epoch still improves (no early stop); about 0.5 s an epoch for each model on this machine
LONG_TRAINING = "epochs=200&patience=20&batch_size=32&lr=0.0001&recipe=scratch&scratch_lr=0.0001&seed=7"


def rss_gb(pid: int) -> float:
    with open(f"/proc/{pid}/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process so far (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Watch:
    """The server's peak resident memory, sampled every 0.1 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_gb(self.pid))
            except OSError:
                return
            time.sleep(0.1)

    def reset(self) -> None:
        self.peak = rss_gb(self.pid)


def seconds_to_idle(pid: int, within_s: float = IDLE_WITHIN_S) -> float:
    """Seconds until a whole second in which the server used less than IDLE_CPU of a core (fails past within_s)."""
    began = time.monotonic()
    while time.monotonic() - began < within_s:
        before = cpu_s(pid)
        time.sleep(1.0)
        if cpu_s(pid) - before < IDLE_CPU:
            return time.monotonic() - began
    raise AssertionError(f"the server still used CPU {within_s:.0f} s after the tab closed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Watch]]:
    with serve(tmp_path_factory.mktemp("streamlit-hostile")) as (url, proc):
        yield url, proc.pid, Watch(proc.pid)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()


# ---------------------------------------------------------------------------- the files (written in a child
# process, so that the test process does not keep their memory)

MAKERS = {
    "huge-string.parquet": """
        import numpy as np, pyarrow as pa, pyarrow.parquet as pq
        d = pa.DictionaryArray.from_arrays(pa.array(np.zeros(8, dtype=np.int32)), pa.array(["x" * (256 << 20)]))
        pq.write_table(pa.table({"text": d, "y": pa.array(np.ones(8))}), PATH, compression="zstd")
    """,
    "wide.csv": """
        with open(PATH, "w") as out:
            out.write(",".join(f"c{i}" for i in range(100_000)) + "\\n")
            for _ in range(10):
                out.write(",".join(["1"] * 100_000) + "\\n")
    """,
    "wide.parquet": """
        import numpy as np, pyarrow as pa, pyarrow.parquet as pq
        column = pa.array(np.ones(10, dtype=np.int8))
        pq.write_table(pa.table({f"c{i}": column for i in range(100_000)}), PATH, compression="zstd")
    """,
    "one-line.csv": """
        with open(PATH, "w") as out:
            out.write("," * (46 << 20) + "\\n")
    """,
    "long-name.csv": """
        with open(PATH, "w") as out:
            out.write("n" * (45 << 20) + ",y\\n1,0\\n2,1\\n")
    """,
    "rows-10m.csv": """
        import numpy as np
        rng = np.random.default_rng(0)
        lines = np.char.add(np.char.add(rng.integers(0, 10, 10_000_000).astype("U1"), ","),
                            rng.integers(0, 2, 10_000_000).astype("U1"))
        with open(PATH, "w") as out:
            out.write("a,y\\n")
            out.write("\\n".join(lines.tolist()) + "\\n")
    """,
}


def make(name: str, folder: Path) -> Path:
    path = folder / name
    code = f"PATH = {str(path)!r}\n" + textwrap.dedent(MAKERS[name])
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    return path


@pytest.mark.parametrize("name", list(MAKERS))
def test_a_hostile_upload_gets_a_plain_message_in_little_memory(
    server: tuple[str, int, Watch],
    browser,  # noqa: ANN001
    name: str,
    tmp_path: Path,
) -> None:
    url, pid, watch = server
    path = make(name, tmp_path)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        s = Session(page, url)
        page.goto(url + "/", timeout=60_000)
        s.wait_until_run("Data & model")
        watch.reset()
        page.locator(RADIO_OPTION).filter(has_text="upload a CSV/Parquet table").first.click()
        s.wait_until_run("Data & model")
        box = page.locator(UPLOADER).filter(has_text="Table (CSV or Parquet)").first
        box.locator('input[type="file"]').set_input_files(str(path))
        s.wait_until_run("Data & model", timeout_s=120)
        use = page.get_by_role("button", name="Use this data")
        if use.count():  # read within the budgets: it may be used
            use.click()
            s.wait_until_run("Data & model", timeout_s=120)
        assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).all_inner_texts()
        errors = page.locator(ERROR_BOX).all_inner_texts()
        said = errors + page.locator(SUCCESS_BOX).all_inner_texts()
        assert said, f"{name}: no message on the page"
        if errors:  # a refusal names the file and the setting that refused it, in one plain sentence
            assert any(name in text and "AFM_MAX_" in text for text in errors), errors
            assert not any("Traceback" in text or "/work/" in text for text in errors), errors
        print(f"{name}: {path.stat().st_size / 2**20:.1f} MB; {said[0][:160]!r}; server peak {watch.peak:.2f} GB")
        assert watch.peak < SERVER_LIMIT_GB, f"{name}: the server reached {watch.peak:.2f} GB"
    finally:
        context.close()
    idle = seconds_to_idle(pid)
    print(f"{name}: server idle {idle:.1f} s after the tab closed")


def test_a_closed_tab_stops_its_training(server: tuple[str, int, Watch], browser) -> None:  # noqa: ANN001
    """A training of many epochs started, the tab closed: the server's CPU is idle again within seconds (the job
    nobody waits for any more is stopped after the grace)."""
    url, pid, _ = server
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        s = Session(page, url)
        page.goto(url + "/?" + LONG_TRAINING, timeout=60_000)
        s.wait_until_run("Data & model")
        page.get_by_role("button", name="Train AFM and FM").first.click()
        page.locator('[data-testid="stProgress"]').first.wait_for(timeout=60_000)
        time.sleep(2.0)
        before = cpu_s(pid)
        time.sleep(1.0)
        assert cpu_s(pid) - before > 0.3, "the training did not start"
    finally:
        context.close()
    idle = seconds_to_idle(pid)
    print(f"training: server idle {idle:.1f} s after the tab closed")
