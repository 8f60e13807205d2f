"""Load benchmark (issue 15): a Criteo-sized table through the CLI and the dashboard, and 8 sessions at once.

    python benchmarks/load.py --quick                   # smoke version: small sizes, 2 sessions (a few minutes)
    python benchmarks/load.py                           # the real thing: run it on an otherwise idle machine
    python benchmarks/load.py --only dashboard,bomb     # some stages; data and checkpoints are reused from --work

Stages (in this order):

- data: a seeded Criteo-like table (label + 13 log-normal count columns I1..I13 + 26 Zipf categorical
  columns C1..C26 with vocabularies up to 100k; the label depends on C1, C5, I1 and the pair C2 x C3) as
  Parquet (zstd) and CSV; its first 820k rows as the "upload" table (under the 50 MB upload cap); and a
  "Parquet bomb" of 200M rows x 2 int64 columns that the reader must refuse from its metadata.
- dashboard: ``streamlit run app/streamlit_app.py`` driven by headless Chromium through Playwright: upload
  the 820k table, "Use this data", upload AFM and FM checkpoints (trained with the CLI on that table first),
  open the Attention page; the server's peak RSS and the seconds until the heatmap is drawn.
- bomb: upload the Parquet bomb to a fresh server: a plain message, server RSS under 1.5 GB.
- concurrent: 8 browser sessions press "Train AFM and FM" on the sample at once (identical settings, then 8
  different seeds through the URL), with the health check's latency every 0.25 s (from a process of its
  own); and the same 8 trainings one after another in one process (``afm.train_pair``) for comparison.
  Besides each session's click-to-trained time as its browser shows it, the stage records the server's own
  side (``AFM_TRACE_JOBS=1``: from the run that submits to the progress bar's last message) and the CPU
  seconds the browsers and the server used meanwhile: the browsers share the server's cores here, where in
  a class they run on the students' machines. ``--nice-browsers`` puts them at nice 19, autogroups
  included, from their launch on (page loads too), so that they take what the server leaves. The health
  result says what the server did around its slowest check (``/proc`` schedstat and stat, sampled every
  20 ms): whether the event loop was working or waiting, runnable, for a CPU. Before the clicks
  each tab scrolls to the Train button and waits for the figures below it to be drawn, as a student about
  to press it sees the page (``--cold-tabs``: click at once, so that the click's scroll draws the figures
  and loads plotly.js).
- cli: ``python -m afm train`` (1 epoch), ``explain`` and ``predict --out`` on the whole table, each with
  its wall time and peak RSS (the child's own maximum from wait4, and /proc polling of it and its
  children); a command past --cli-timeout or --rss-cap-gb is killed and reported so.

Each figure is written with the machine's load average at the time (``uptime``) to ``--out``
(results.json, results.csv, results.md; rows of stages not run are kept from earlier runs).
Needs pyarrow, playwright and /usr/bin/chromium (as tests/test_browser.py); Linux (/proc) for RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browserkit import CHROMIUM, CHROMIUM_ARGS, free_port, wait_healthy  # noqa: E402  (the server and browser set-up the tests use)

NICE_BROWSERS = False  # --nice-browsers
COLD_TABS = False  # --cold-tabs

# ---------------------------------------------------------------------------- what the script clicks
# Visible texts of the dashboard (the pages may change: keep every one here). Regexes where marked.
UI = {
    "data_page": "Data & model",  # sidebar link and page title
    "attention_page": "Attention",
    "upload_source": "upload a CSV/Parquet table",  # "Data source" radio option
    "table_uploader": "Table (CSV or Parquet)",  # file uploader label
    "use_data": "Use this data",  # form button
    "data_loaded": re.compile(r"Loaded .* rows"),  # st.success after "Use this data"
    "models_expander": "Load a saved run or upload a checkpoint",
    "checkpoint_uploader": "Checkpoint (.pt) saved by afm",
    "use_checkpoint": "Use this checkpoint",
    "checkpoint_loaded": re.compile(r"Loaded (AFM|FM)"),
    "train": "Train AFM and FM",
    "finished": re.compile(r"\b(done|stopped|failed|error) after \d"),  # the progress bar once the job has ended
    "trained": "done after",  # ... when it ended well
}
# Streamlit's own test ids (streamlit 1.67's DOM, as tests/test_browser.py)
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
STATUS_WIDGET = '[data-testid="stStatusWidget"]'
NAV_LINK = '[data-testid="stSidebarNav"] a[data-testid="stSidebarNavLink"]'
TITLE = '[data-testid="stMain"] h1'
FILE_UPLOADER = '[data-testid="stFileUploader"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_BOX = '[data-testid="stAlertContentError"]'
PLOTLY_CHART = '[data-testid="stPlotlyChart"]'
PLOTLY_DRAWN = f"{PLOTLY_CHART}:has(.js-plotly-plot .main-svg)"
PROGRESS = '[data-testid="stProgress"]'
RADIO_OPTION = '[data-testid="stRadio"] label'


@dataclass(frozen=True)
class Sizes:
    rows: int  # the big table (cli stage)
    upload_rows: int  # the table uploaded to the dashboard
    vocab_max: int  # the largest categorical vocabulary
    sessions: int  # browser sessions at once
    url: str  # extra URL settings of the concurrent sessions ("" = the defaults)
    timeout_s: int  # per browser wait, and per CLI command unless --cli-timeout


FULL = Sizes(rows=1_000_000, upload_rows=820_000, vocab_max=100_000, sessions=8, url="", timeout_s=300)
QUICK = Sizes(rows=20_000, upload_rows=16_400, vocab_max=2_000, sessions=2, url="epochs=1", timeout_s=180)
BOMB_ROWS = 200_000_000
UPLOAD_CAP_MB = 50
STAGES = ("data", "dashboard", "bomb", "concurrent", "cli")  # the order they run in


# ---------------------------------------------------------------------------- data


def zipf_ranks(rng: np.random.Generator, n: int, vocab: int, exponent: float) -> np.ndarray:
    """``n`` ranks in 0..vocab-1 with P(rank r) proportional to 1 / (r + 1)^exponent (rank 0 the commonest)."""
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1) ** exponent)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n)), vocab - 1)


def criteo_like(rows: int, seed: int = 0, vocab_max: int = 100_000) -> pd.DataFrame:
    """A Criteo-shaped table: I1..I13 (int64 log-normal counts), C1..C26 (8-hex-digit tokens, Zipf with
    vocabularies from 4 to ``vocab_max``, 2% missing in every third column) and ``label`` (0/1, last).

    logit = -1.6 + 0.9 [C1 is its commonest value] - 0.7 [C5 is its commonest] + 0.35 z(log(1 + I1))
    + 1.2 s2(C2) s3(C3), with s2, s3 random signs of each value: the pair C2 x C3 is an interaction that no
    sum of per-field effects can fit (about 28% positives).
    """
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for j in range(13):
        counts = np.floor(rng.lognormal(mean=0.5 + 0.25 * j, sigma=1.0 + 0.05 * j, size=rows))
        columns[f"I{j + 1}"] = counts.astype(np.int64)
    vocabs = np.geomspace(4, vocab_max, 26).round().astype(int)
    ranks = {}
    for j, vocab in enumerate(vocabs):
        r = zipf_ranks(rng, rows, int(vocab), exponent=1.05 + 0.01 * (j % 5))
        ranks[j + 1] = r
        tokens = np.char.mod("%08x", rng.choice(2**32, size=int(vocab), replace=False)).astype(object)
        values = tokens[r]
        if j % 3 == 2:
            values[rng.random(rows) < 0.02] = None
        columns[f"C{j + 1}"] = pd.array(values, dtype="str")
    signs2, signs3 = rng.choice([-1.0, 1.0], vocabs[1]), rng.choice([-1.0, 1.0], vocabs[2])
    i1 = np.log1p(columns["I1"])
    logit = (
        -1.6
        + 0.9 * (ranks[1] == 0)
        - 0.7 * (ranks[5] == 0)
        + 0.35 * (i1 - i1.mean()) / (i1.std() + 1e-9)
        + 1.2 * signs2[ranks[2]] * signs3[ranks[3]]
    )
    columns["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(columns)


def write_bomb(path: Path, rows: int = BOMB_ROWS, chunk: int = 10_000_000) -> None:
    """``rows`` x 2 int64 columns (a slow count, zstd): a few MB on disk, 3.2 GB once read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"a": np.arange(chunk, dtype=np.int64) // 1000, "label": np.zeros(chunk, dtype=np.int64)})
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for start in range(0, rows, chunk):
            writer.write_table(table.slice(0, min(chunk, rows - start)), row_group_size=chunk)


def make_data(work: Path, sizes: Sizes, results: Results) -> dict[str, Path]:
    paths = {
        "big": work / f"criteo-like-{sizes.rows}.parquet",
        "big_csv": work / f"criteo-like-{sizes.rows}.csv",
        "upload": work / f"criteo-like-upload-{sizes.upload_rows}.parquet",
        "bomb": work / "parquet-bomb.parquet",
    }
    if all(p.is_file() for p in paths.values()):
        return paths
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    frame = criteo_like(sizes.rows, seed=0, vocab_max=sizes.vocab_max)
    frame.to_parquet(paths["big"], compression="zstd", index=False)
    frame.to_csv(paths["big_csv"], index=False)
    frame.head(sizes.upload_rows).to_parquet(paths["upload"], compression="zstd", index=False)
    write_bomb(paths["bomb"])
    seconds = time.perf_counter() - started
    mb = {k: p.stat().st_size / 2**20 for k, p in paths.items()}
    results.add("data", "generate and write all tables", seconds, "s", note=f"{sizes.rows:,} x 39 fields")
    results.add("data", "big table, Parquet zstd", mb["big"], "MB", note=f"CSV {mb['big_csv']:.0f} MB")
    results.add("data", f"upload table ({sizes.upload_rows:,} rows), Parquet zstd", mb["upload"], "MB",
                target=f"< {UPLOAD_CAP_MB} MB (upload cap)", met=mb["upload"] < UPLOAD_CAP_MB)  # fmt: skip
    results.add("data", f"Parquet bomb ({BOMB_ROWS:,} rows x 2 int64)", mb["bomb"], "MB")
    results.add("data", "positive labels", float(frame["label"].mean()), "fraction")
    return paths


# ---------------------------------------------------------------------------- measuring


def load_now() -> str:
    """The load averages, as ``uptime`` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def status_bytes(pid: int, field: str) -> int:
    """A memory line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in bytes; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    """Bytes resident in process ``pid`` and all its descendants now (0 when it is gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += status_bytes(p, "VmRSS")
        todo += _children(p)  # none once it is gone
    return total


def own_peak(pid: int) -> int:
    """Bytes: process ``pid``'s own peak RSS (VmHWM), 0 when unknown."""
    return status_bytes(pid, "VmHWM")


class Poller:
    """Calls ``poll()`` every ``every`` s in a thread of its own, from construction until ``stop()``."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def poll(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RSSPoller(Poller):
    """The peak of ``tree_rss(pid)``, polled every ``every`` s in a thread; ``over`` is called past ``cap``."""

    def __init__(self, pid: int, every: float = 0.1, cap: int | None = None, over: Any = None) -> None:
        self.pid, self.cap, self.over, self.peak = pid, cap, over, 0
        super().__init__(every)

    def poll(self) -> None:
        rss = tree_rss(self.pid)
        self.peak = max(self.peak, rss)
        if self.cap and rss > self.cap and self.over:
            self.over()

    def stop(self) -> int:
        super().stop()
        return self.peak


class SchedSampler(Poller):
    """The scheduler's account of a process, every ``every`` s in a thread: the seconds its main thread has
    run on a CPU and waited, runnable, for one (``/proc/PID/task/PID/schedstat``), and the CPU seconds of the
    whole process, threads that have ended included (``cpu_seconds``, from ``/proc/PID/stat``).
    ``account(start, end)`` says how a window went. A health check that waits while the event loop waits for
    a CPU is the kernel's choice of what runs, not work in the server."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        # (epoch s before the read, epoch s after it, main thread's ran s, its waited s, process CPU s)
        self.pid, self.samples = pid, []
        super().__init__(every)

    def poll(self) -> None:
        before = time.time()
        try:
            ran, waited, _ = Path(f"/proc/{self.pid}/task/{self.pid}/schedstat").read_text().split()
        except (OSError, ValueError):
            return
        process = cpu_seconds([self.pid])
        self.samples.append((before, time.time(), int(ran) / 1e9, int(waited) / 1e9, process))

    def account(self, start: float, end: float) -> dict[str, float] | None:
        """Seconds over [start, end] (epoch s), from the last sample read wholly before ``start`` to the first
        begun after ``end``; ``window`` is that outer span: the main thread's run and wait, and the process's
        CPU seconds. None when the window has no sample on both sides."""
        before = [s for s in self.samples if s[1] <= start]
        after = [s for s in self.samples if s[0] >= end]
        if not before or not after:
            return None
        a, b = before[-1], after[0]
        return {
            "window": b[1] - a[0],
            "main_ran": b[2] - a[2],
            "main_waited": b[3] - a[3],
            "all_ran": b[4] - a[4],
        }


def run_measured(cmd: list[str], timeout_s: float, cap_bytes: int, log: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time, peak RSS (max of wait4's ru_maxrss and /proc polling of its tree), exit
    status, and why it was stopped (over ``timeout_s`` or over ``cap_bytes`` resident: killed)."""
    killed: list[str] = []
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def kill(why: str) -> None:
            if not killed:
                killed.append(why)
                os.killpg(proc.pid, signal.SIGKILL)

        poller = RSSPoller(proc.pid, 0.2, cap_bytes, lambda: kill(f"killed over {cap_bytes / 2**30:.0f} GB"))
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout_s:
                kill(f"killed after {timeout_s:.0f} s")
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        peak = max(poller.stop(), usage.ru_maxrss * 1024)
    return {"wall_s": wall, "peak_rss": peak, "rc": proc.returncode, "killed": killed[0] if killed else "",
            "tail": log.read_text(errors="replace")[-600:]}  # fmt: skip


class Results:
    """Rows of (stage, figure, value, unit, target, met, load, note), merged with earlier runs' other stages."""

    def __init__(self, out: Path, quick: bool) -> None:
        self.out, self.quick, self.rows = out, quick, []
        self.stages_run: set[str] = set()

    def add(self, stage: str, figure: str, value: float, unit: str, target: str = "", met: bool | None = None,
            note: str = "") -> None:  # fmt: skip
        row = {"stage": stage, "figure": figure, "value": round(float(value), 3), "unit": unit, "target": target,
               "met": "" if met is None else ("yes" if met else "NO"), "load": load_now(), "note": note,
               "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}  # fmt: skip
        self.rows.append(row)
        self.stages_run.add(stage)
        print(f"[{stage}] {figure}: {row['value']} {unit}  {target} {row['met']}  ({row['load']}) {note}", flush=True)

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        old = []
        if (self.out / "results.json").is_file():
            old = [r for r in json.loads((self.out / "results.json").read_text()) if r["stage"] not in self.stages_run]
        rows = sorted(old + self.rows, key=lambda r: STAGES.index(r["stage"]))
        (self.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
        frame = pd.DataFrame(rows)
        frame.to_csv(self.out / "results.csv", index=False)
        lines = [f"# Load benchmark{' (--quick)' if self.quick else ''}", "",
                 f"`python benchmarks/load.py{' --quick' if self.quick else ''}`; CPU-only machine, "
                 f"{os.cpu_count()} cores; load = `uptime`'s 1/5/15-minute load averages when the figure was taken.",
                 "", "| stage | figure | value | target | met? | load | note |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for r in rows:
            value = f"{r['value']:,.3g} {r['unit']}" if abs(r["value"]) < 1000 else f"{r['value']:,.0f} {r['unit']}"
            note = str(r["note"]).replace("|", "/")
            lines.append(
                f"| {r['stage']} | {r['figure']} | {value} | {r['target']} | {r['met']} | {r['load']} | {note} |"
            )
        (self.out / "results.md").write_text("\n".join(lines) + "\n")


GB = 2**30


# ---------------------------------------------------------------------------- cli


def cli_stage(
    paths: dict[str, Path], work: Path, sizes: Sizes, results: Results, cap: int, timeouts: dict[str, float]
) -> None:
    afm_cmd = [sys.executable, "-m", "afm"]
    data = ["--data", str(paths["big"]), "--label", "label"]
    ckpt, pred = work / "big-afm.pt", work / "big-predictions.csv"
    commands = {
        "train": [
            *afm_cmd,
            "train",
            *data,
            "--model",
            "afm",
            "--epochs",
            "1",
            "--out",
            str(ckpt),
            "--no-run",
            "--quiet",
        ],  # fmt: skip
        "explain": [*afm_cmd, "explain", "--checkpoint", str(ckpt), *data],
        "predict": [*afm_cmd, "predict", "--checkpoint", str(ckpt), *data, "--out", str(pred)],
    }
    peaks = {}
    for name, cmd in commands.items():
        r = run_measured(cmd, timeouts[name], cap, work / f"cli-{name}.log")
        ok = r["rc"] == 0
        peaks[name] = r["peak_rss"]
        note = f"exit {r['rc']}" + (f", {r['killed']}" if r["killed"] else "")
        if not ok and r["tail"].strip():
            note += ": " + " ".join(r["tail"].split())[-240:]
        if name == "predict":  # what it wrote, finished or not (a killed run leaves its temporary file)
            written = sum(f.stat().st_size for f in work.glob(f"*{pred.name}*"))
            note += f"; CSV {written / 2**20:,.0f} MB written"
            for f in work.glob(f".{pred.name}.*.tmp"):
                f.unlink()
        target, met = (
            ("", None) if name == "train" else ("<= 1.5x train's", ok and r["peak_rss"] <= 1.5 * peaks["train"])
        )
        results.add("cli", f"`{name}` on {sizes.rows:,} x 39: wall", r["wall_s"], "s", note=note)
        results.add("cli", f"`{name}` on {sizes.rows:,} x 39: peak RSS", r["peak_rss"] / GB, "GB", target, met, note)
    pred.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- dashboard


@contextmanager
def streamlit_server(work: Path, name: str) -> Iterator[tuple[str, RSSPoller, subprocess.Popen]]:
    """A ``streamlit run`` server on a free port: (URL, its RSS poller, the process). Always stopped."""
    port = free_port()
    runs = Path(tempfile.mkdtemp(prefix="afm-load-runs-"))
    env = {**os.environ, "AFM_RUNS_DIR": str(runs), "PYTHONUNBUFFERED": "1", "AFM_TRACE_JOBS": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]  # fmt: skip
    log = (work / f"server-{name}.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    poller = RSSPoller(proc.pid, 0.1)
    url = f"http://127.0.0.1:{port}"
    try:
        problem = wait_healthy(url, proc, 90)
        if problem:
            raise RuntimeError(f"{problem}; see {log.name}")
        yield url, poller, proc
    finally:
        poller.peak = max(poller.stop(), own_peak(proc.pid))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


async def wait_idle(page: Any, title: str, timeout_s: float) -> None:
    """Until the page titled ``title`` has finished its script run and stayed so for 1 s."""
    deadline, steady = time.monotonic() + timeout_s, None
    while True:
        heading = (await page.locator(TITLE).first.inner_text()).strip() if await page.locator(TITLE).count() else ""
        idle = (await page.locator(APP_IDLE).count() == 1 and await page.locator(STATUS_WIDGET).count() == 0
                and heading == title)  # fmt: skip
        now = time.monotonic()
        steady = (steady or now) if idle else None
        if steady is not None and now - steady >= 1.0:
            return
        if now > deadline:
            raise TimeoutError(f"page {title!r} did not finish its run in {timeout_s:.0f} s (title {heading!r})")
        await page.wait_for_timeout(200)


async def wait_drawn(page: Any, title: str, timeout_s: float) -> None:
    """Until the page titled ``title`` has finished its run with every plotly chart drawn (at least one). A chart
    of the page before stays in the DOM, faded, until the new run ends: waiting for any drawn chart right after
    the click measured the old page's (0.08 s in one run)."""
    deadline = time.monotonic() + timeout_s
    while True:
        heading = (await page.locator(TITLE).first.inner_text()).strip() if await page.locator(TITLE).count() else ""
        charts, drawn = await page.locator(PLOTLY_CHART).count(), await page.locator(PLOTLY_DRAWN).count()
        if heading == title and await page.locator(APP_IDLE).count() == 1 and 0 < charts == drawn:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"page {title!r} did not draw its charts in {timeout_s:.0f} s (title {heading!r})")
        await page.wait_for_timeout(50)


async def problems(page: Any) -> list[str]:
    """Exceptions and st.error boxes on the page, one line each."""
    found = [f"exception: {t}" for t in await page.locator(EXCEPTION).all_inner_texts()]
    found += [f"error: {t}" for t in await page.locator(ERROR_BOX).all_inner_texts()]
    return [" ".join(f.split())[:300] for f in found]


async def upload(page: Any, uploader_label: str, path: Path) -> None:
    box = page.locator(FILE_UPLOADER).filter(has_text=uploader_label).first
    await box.locator('input[type="file"]').set_input_files(str(path))


async def open_expander(page: Any, text: str) -> None:
    """Open the expander titled ``text`` (a click on its summary) unless it is open already."""
    expander = page.locator('[data-testid="stExpander"]').filter(has=page.locator("summary", has_text=text)).first
    if not await expander.locator("details[open]").count():
        await expander.locator("summary").first.click()
    await expander.locator("details[open]").wait_for()


async def choose_upload_source(page: Any, timeout_s: float) -> None:
    await page.locator(RADIO_OPTION).filter(has_text=UI["upload_source"]).first.click()
    await wait_idle(page, UI["data_page"], timeout_s)


async def dashboard_session(url: str, paths: dict[str, Path], ckpts: dict[str, Path], timeout_s: float,
                            shot: Path) -> dict:  # fmt: skip
    """Upload the table, use it, load both checkpoints, open Attention: seconds of each step (as far as it got)
    and the errors on the page, or the step that failed."""
    from playwright.async_api import async_playwright

    times: dict[str, float] = {}
    errors: list[str] = []
    step = "open the app"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
        page.set_default_timeout(timeout_s * 1000)
        try:
            await page.goto(url + "/", timeout=timeout_s * 1000)
            await wait_idle(page, UI["data_page"], timeout_s)
            start = time.perf_counter()
            step = "upload the table"
            await choose_upload_source(page, timeout_s)
            await upload(page, UI["table_uploader"], paths["upload"])
            await page.get_by_role("button", name=UI["use_data"]).wait_for()
            times["table uploaded and read (form shown)"] = time.perf_counter() - start
            step = "use the table"
            await page.get_by_role("button", name=UI["use_data"]).click()
            await page.get_by_text(UI["data_loaded"]).first.wait_for()
            await wait_idle(page, UI["data_page"], timeout_s)
            times["table in use (after 'Use this data')"] = time.perf_counter() - start
            for kind in ("afm", "fm"):
                step = f"load the {kind.upper()} checkpoint"
                await open_expander(page, UI["models_expander"])
                await upload(page, UI["checkpoint_uploader"], ckpts[kind])
                await page.wait_for_timeout(500)
                await wait_idle(page, UI["data_page"], timeout_s)
                await open_expander(page, UI["models_expander"])  # the upload's rerun can close it again
                await page.get_by_role("button", name=UI["use_checkpoint"]).click()
                await page.get_by_text(re.compile(rf"Loaded {kind.upper()}\b")).first.wait_for()
                await wait_idle(page, UI["data_page"], timeout_s)
            times["AFM and FM checkpoints loaded"] = time.perf_counter() - start
            errors += await problems(page)
            step = "open the Attention page"
            clicked = time.perf_counter()
            await page.locator(NAV_LINK).filter(has_text=UI["attention_page"]).first.click()
            await wait_drawn(page, UI["attention_page"], timeout_s)
            times["Attention page: heatmap shown"] = time.perf_counter() - clicked
            times["upload to heatmap, in all"] = time.perf_counter() - start
            await wait_idle(page, UI["attention_page"], timeout_s)
            errors += await problems(page)
        except Exception as err:  # noqa: BLE001 - a benchmark reports a failure as a figure
            errors += await problems(page)
            errors.append(f"{step}: {type(err).__name__}: {' '.join(str(err).split())[:240]}")
        finally:
            await page.screenshot(path=str(shot), full_page=True)
            await browser.close()
    return {"times": times, "errors": errors}


def train_checkpoints(paths: dict[str, Path], work: Path, sizes: Sizes, results: Results, cap: int) -> dict:
    ckpts = {k: work / f"upload-{k}.pt" for k in ("afm", "fm")}
    for kind, ckpt in ckpts.items():
        if ckpt.is_file():
            continue
        cmd = [sys.executable, "-m", "afm", "train", "--data", str(paths["upload"]), "--label", "label", "--model",
               kind, "--epochs", "1", "--out", str(ckpt), "--no-run", "--quiet"]  # fmt: skip
        r = run_measured(cmd, 3 * sizes.timeout_s, cap, work / f"cli-train-upload-{kind}.log")
        if r["rc"] != 0:
            raise RuntimeError(f"training {kind} on the upload table failed: {r['killed']} {r['tail']}")
        results.add("dashboard", f"(setup) CLI train {kind.upper()} on the upload table: wall", r["wall_s"], "s",
                    note=f"peak RSS {r['peak_rss'] / GB:.2f} GB")  # fmt: skip
    return ckpts


def dashboard_stage(paths: dict[str, Path], work: Path, sizes: Sizes, results: Results, cap: int) -> None:
    ckpts = train_checkpoints(paths, work, sizes, results, cap)
    with streamlit_server(work, "dashboard") as (url, poller, _):
        out = asyncio.run(dashboard_session(url, paths, ckpts, sizes.timeout_s, work / "dashboard.png"))
    peak = poller.peak / GB
    errors = "; ".join(out["errors"]) or "no error"
    for figure, seconds in out["times"].items():
        target, met = ("< 60 s", seconds < 60) if figure.startswith("Attention") else ("", None)
        results.add("dashboard", figure, seconds, "s", target, met, note=f"{sizes.upload_rows:,} rows uploaded")
    if "Attention page: heatmap shown" not in out["times"]:
        results.add("dashboard", "Attention page: heatmap shown", float("nan"), "s", "< 60 s", False, errors)
    results.add("dashboard", "server peak RSS (upload, checkpoints, Attention)", peak, "GB", "< 3 GB", peak < 3,
                errors)  # fmt: skip


async def bomb_session(url: str, bomb: Path, timeout_s: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            page.set_default_timeout(timeout_s * 1000)
            await page.goto(url + "/", timeout=timeout_s * 1000)
            await wait_idle(page, UI["data_page"], timeout_s)
            await choose_upload_source(page, timeout_s)
            start = time.perf_counter()
            await upload(page, UI["table_uploader"], bomb)
            await page.locator(f"{ERROR_BOX}, {EXCEPTION}").first.wait_for()
            seconds = time.perf_counter() - start
            await wait_idle(page, UI["data_page"], timeout_s)
            return {"seconds": seconds, "errors": await problems(page)}
        finally:
            await browser.close()


def bomb_stage(paths: dict[str, Path], work: Path, sizes: Sizes, results: Results) -> None:
    with streamlit_server(work, "bomb") as (url, poller, _):
        try:
            out = asyncio.run(bomb_session(url, paths["bomb"], sizes.timeout_s))
        except Exception as err:  # noqa: BLE001
            out = {"seconds": float("nan"), "errors": [f"no message: {type(err).__name__}: {str(err)[:200]}"]}
    message = "; ".join(out["errors"])
    plain = len(out["errors"]) == 1 and out["errors"][0].startswith("error: ") and "budget" in message
    results.add("bomb", "Parquet bomb upload: seconds to the message", out["seconds"], "s", "a plain message",
                plain, message)  # fmt: skip
    results.add("bomb", "server peak RSS (Parquet bomb)", poller.peak / GB, "GB", "< 1.5 GB", poller.peak < 1.5 * GB)


# ---------------------------------------------------------------------------- concurrent sessions


PROBE = """
import sys, time, urllib.request
url, out = sys.argv[1], open(sys.argv[2], "w", buffering=1)
while True:
    start, at = time.perf_counter(), time.time()
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
        ok = 1
    except OSError:
        ok = 0
    took = time.perf_counter() - start
    out.write(f"{took:.4f} {ok} {at:.3f}\\n")
    time.sleep(max(0.0, 0.25 - took))
"""


class HealthProbe:
    """GET /_stcore/health every 0.25 s from a process of its own (in this process the answer would wait
    for Playwright's event loop, which drives 8 pages): the slowest answer and the failures."""

    def __init__(self, url: str, log: Path) -> None:
        self.log, self.latencies, self.failures, self.times = log, [], 0, []
        self._proc = subprocess.Popen([sys.executable, "-c", PROBE, f"{url}/_stcore/health", str(log)])

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait()
        for line in self.log.read_text().splitlines():
            took, ok, at = line.split()
            self.latencies.append(float(took))
            self.times.append(float(at))  # when it was sent (epoch seconds)
            self.failures += ok == "0"

    def slowest_at(self, origin: float) -> float:
        """When the slowest check was sent, in seconds after ``origin`` (epoch seconds; negative: before)."""
        return self.slowest()[0] - origin if self.latencies else float("nan")

    def slowest(self) -> tuple[float, float]:
        """(when it was sent in epoch seconds, how long it took) of the slowest check."""
        i = int(np.argmax(self.latencies))
        return self.times[i], self.latencies[i]


def browser_pids() -> list[int]:
    """The live Chromium processes (browser, renderers, GPU and utility processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and "chrom" in (entry / "comm").read_text():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def deprioritize_browsers() -> int:
    """Nice 19 for every Chromium process and its autogroup (Linux puts each session, and Playwright starts
    the browser in sessions of its own, in an autogroup that shares the CPU with the others as one: a
    process's nice alone does not rank it against the server). Returns how many processes it reached."""
    reached = 0
    for pid in browser_pids():
        try:
            os.setpriority(os.PRIO_PROCESS, pid, 19)
            Path(f"/proc/{pid}/autogroup").write_text("19")
            reached += 1
        except OSError:
            continue
    return reached


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` have used so far (0 for those gone)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def scheduling(sched: SchedSampler, probe: HealthProbe) -> str:
    """What the server's threads did while its slowest health check waited (``SchedSampler.account``)."""
    if not probe.latencies:
        return "no checks"
    sent, took = probe.slowest()
    acc = sched.account(sent, sent + took)
    if acc is None:
        return "no scheduler samples around the slowest check"
    return (
        f"over {acc['window']:.2f} s around it the server's event loop ran {acc['main_ran']:.3f} s and waited "
        f"{acc['main_waited']:.3f} s runnable for a CPU; the whole server used {acc['all_ran']:.2f} CPU s"
    )


def server_trace(log: Path) -> list[float]:
    """The server's own "asked to shown" seconds per followed job (``AFM_TRACE_JOBS`` lines of its log)."""
    found = re.findall(r"afm-trace .*asked_to_shown=([0-9.]+)", log.read_text(errors="replace"))
    return [float(x) for x in found]


async def at_train_button(page: Any, timeout_s: float) -> None:
    """Scroll to the Train button and wait until the figures below it are drawn: the state of a student about
    to press it. Streamlit draws a plotly chart only once it nears the viewport, so without this the click's
    own scroll made each tab load plotly.js (4.7 MB of script) and draw the page's figures inside the timed
    interval (8 tabs on 2 cores: 2 s of one tab's script profile was plotly.js's module evaluation alone).
    Ends once the tab has been idle (``requestIdleCallback``) twice after the figures appeared."""
    await page.get_by_role("button", name=UI["train"]).scroll_into_view_if_needed()
    charts, start = page.locator(PLOTLY_CHART), time.monotonic()
    while (await charts.count() == 0 and time.monotonic() - start < 5.0) or (
        await page.locator(PLOTLY_DRAWN).count() < await charts.count()
    ):
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"the figures below the Train button were not drawn in {timeout_s:.0f} s")
        await page.wait_for_timeout(200)
    for _ in range(2):  # drawn is not done: wait until the tab's main thread has had nothing to do, twice
        await page.evaluate("() => new Promise(done => requestIdleCallback(() => done(), {timeout: 10000}))")
        await page.wait_for_timeout(500)


async def train_sessions(url: str, queries: list[str], timeout_s: float, meter: Any = None) -> list[dict]:
    """Open one browser context per query, wait until all are idle, press Train in all at once; per session
    the seconds from its click to "done in", and its errors. ``meter()`` is called just before the clicks and
    once all sessions are done (before the browsers close)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        if NICE_BROWSERS:  # before the pages open: their renderers join the browser's autogroup, at nice 19
            deprioritize_browsers()
        try:
            pages = []
            for _ in queries:
                page = await (await browser.new_context()).new_page()
                page.set_default_timeout(timeout_s * 1000)
                errors: list[str] = []
                page.on("pageerror", lambda err, errors=errors: errors.append(f"page error: {err}"))
                pages.append((page, errors))
            await asyncio.gather(
                *(p.goto(f"{url}/?{q}", timeout=timeout_s * 1000) for (p, _), q in zip(pages, queries, strict=True))
            )
            await asyncio.gather(*(wait_idle(p, UI["data_page"], timeout_s) for p, _ in pages))
            if not COLD_TABS:
                await asyncio.gather(*(at_train_button(p, timeout_s) for p, _ in pages))

            async def one(page: Any, errors: list[str]) -> dict:
                start = time.perf_counter()
                try:
                    await page.get_by_role("button", name=UI["train"]).click()
                    ended = page.locator(PROGRESS).filter(has_text=UI["finished"]).first
                    await ended.wait_for(timeout=timeout_s * 1000)
                    seconds = time.perf_counter() - start
                    text = (await ended.inner_text()).strip()
                    if UI["trained"] not in text:
                        errors.append(f"training ended: {text}")
                        seconds = float("nan")
                    await wait_idle(page, UI["data_page"], timeout_s)
                except Exception as err:  # noqa: BLE001
                    seconds = float("nan")
                    errors.append(f"{type(err).__name__}: {' '.join(str(err).split())[:200]}")
                return {"seconds": seconds, "errors": errors + await problems(page)}

            if meter is not None:
                meter()
            done = await asyncio.gather(*(one(p, e) for p, e in pages))
            if meter is not None:
                meter()
            return done
        finally:
            await browser.close()


SEQUENTIAL = """
import json, sys, time
import afm
seeds = json.loads(sys.argv[1]); extra = json.loads(sys.argv[2])
parts = afm.datasets.load_parts("sample", task="regression", seed=0)
out = []
for seed in seeds:
    start = time.perf_counter()
    afm.train_pair(afm.TrainConfig(seed=seed, **extra), parts["train"], parts.get("valid"))
    out.append(time.perf_counter() - start)
print(json.dumps(out))
"""


def url_settings(query: str) -> dict[str, Any]:
    return {k: int(v) for k, v in (kv.split("=") for kv in query.split("&") if kv)}


def concurrent_stage(work: Path, sizes: Sizes, results: Results, cap: int) -> None:
    n = sizes.sessions
    extra = url_settings(sizes.url)
    base = "&".join(f"{k}={v}" for k, v in extra.items())
    variants = {
        "identical settings": [base] * n,
        "different seeds": ["&".join(filter(None, [base, f"seed={s + 1}"])) for s in range(n)],
    }
    # the same trainings one after another in one process, for comparison (seed 0 x n, then seeds 1..n)
    sequential = {}
    for name, seeds in (("identical settings", [0] * n), ("different seeds", list(range(1, n + 1)))):
        cmd = [sys.executable, "-c", SEQUENTIAL, json.dumps(seeds), json.dumps(extra)]
        r = run_measured(cmd, sizes.timeout_s * 2, cap, work / f"sequential-{name.replace(' ', '-')}.log")
        times = json.loads(r["tail"].strip().splitlines()[-1]) if r["rc"] == 0 else []
        sequential[name] = sum(times) if times else float("nan")
        results.add("concurrent", f"{n} trainings one after another, one process ({name}): total", sequential[name],
                    "s", note="each " + ", ".join(f"{t:.1f}" for t in times) + f" s; peak RSS "
                    f"{r['peak_rss'] / GB:.2f} GB; exit {r['rc']}")  # fmt: skip
    for name, queries in variants.items():
        tag = f"concurrent-{name.replace(' ', '-')}"
        with streamlit_server(work, tag) as (url, poller, proc):
            probe, sched = HealthProbe(url, work / f"health-{tag}.log"), SchedSampler(proc.pid)
            started, started_at = time.perf_counter(), time.time()
            marks: list[tuple[float, float, float]] = []  # (epoch s, browsers' CPU s, server's CPU s) at clicks, end

            def meter(server: int = proc.pid, marks: list = marks) -> None:
                marks.append((time.time(), cpu_seconds(browser_pids()), cpu_seconds([server])))

            try:
                sessions = asyncio.run(train_sessions(url, queries, sizes.timeout_s, meter))
            except Exception as err:  # noqa: BLE001
                sessions = [{"seconds": float("nan"), "errors": [f"{type(err).__name__}: {str(err)[:200]}"]}]
            wall = time.perf_counter() - started
            probe.stop()
            sched.stop()
        phase, browsers_cpu, server_cpu = np.subtract(marks[1], marks[0]) if len(marks) == 2 else [np.nan] * 3
        seconds = [s["seconds"] for s in sessions]
        errors = [e for s in sessions for e in s["errors"]]
        worst = max(seconds) if not any(np.isnan(seconds)) else float("nan")
        label = f"{n} sessions, {name}"
        results.add("concurrent", f"{label}: slowest session, click to trained", worst, "s",
                    f"< {sequential[name]:.0f} s (sequential)", bool(worst < sequential[name]),
                    "each " + ", ".join(f"{s:.1f}" for s in seconds) + " (seen in the browser; "
                    + ("cold tabs" if COLD_TABS else "tabs scrolled to Train, figures drawn") + ")")  # fmt: skip
        traced = server_trace(work / f"server-{tag}.log")
        results.add("concurrent", f"{label}: slowest session, server side (Train to result sent)",
                    max(traced, default=float("nan")), "s", note="each " + ", ".join(f"{s:.1f}" for s in traced)
                    + " (AFM_TRACE_JOBS: the run that submits, to the progress bar's last message)")  # fmt: skip
        results.add("concurrent", f"{label}: CPU seconds of the browsers, clicks to all trained", browsers_cpu, "s",
                    note=f"server: {server_cpu:.1f} CPU s; {phase:.1f} s wall, {os.cpu_count()} cores")  # fmt: skip
        results.add("concurrent", f"{label}: errors", len(errors), "", "0", not errors, "; ".join(errors)[:400])
        health = max(probe.latencies, default=float("nan"))
        origin = marks[0][0] if marks else started_at  # the slowest check's time is given from the clicks
        results.add("concurrent", f"{label}: slowest health check", health, "s", "< 1 s",
                    bool(health < 1 and not probe.failures),
                    f"{len(probe.latencies)} checks, {probe.failures} failed (from a process of its own); the slowest "
                    f"sent {probe.slowest_at(origin):+.1f} s from the clicks (the stage began at "
                    f"{started_at - origin:+.1f} s); {scheduling(sched, probe)}; "
                    + ("browsers at nice 19" if NICE_BROWSERS else "browsers at equal priority"))  # fmt: skip
        results.add("concurrent", f"{label}: server peak RSS", poller.peak / GB, "GB",
                    note=f"whole stage {wall:.0f} s (page loads included)")  # fmt: skip


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 sessions: a smoke test")
    parser.add_argument("--only", default=",".join(STAGES), help=f"comma-separated stages ({','.join(STAGES)})")
    parser.add_argument("--work", type=Path, help="where data, checkpoints and logs go (default: a temp folder "
                        "named after the sizes, reused by later runs)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/load[/quick])")
    parser.add_argument("--rss-cap-gb", type=float, default=14.0, help="a CLI command resident past this is killed")
    parser.add_argument("--cli-timeout", type=float, help="seconds each CLI command may run (default 900; 180 quick)")
    parser.add_argument("--predict-timeout", type=float, help="seconds `predict` may run (default --cli-timeout)")
    parser.add_argument("--nice-browsers", action="store_true", help="run the browsers at nice 19 from their "
                        "launch, autogroups included: on one small machine they compete with the server they test, "
                        "where in a class they run on the students' laptops")  # fmt: skip
    parser.add_argument("--cold-tabs", action="store_true", help="concurrent: press Train without first scrolling "
                        "to it, so that each click also loads plotly.js and draws the page's figures")  # fmt: skip
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    stages = [s for s in STAGES if s in args.only.split(",")]
    work = args.work or Path(tempfile.gettempdir()) / f"afm-load-{sizes.rows}"
    work.mkdir(parents=True, exist_ok=True)
    global NICE_BROWSERS, COLD_TABS
    NICE_BROWSERS, COLD_TABS = args.nice_browsers, args.cold_tabs
    out = args.out or ROOT / "benchmarks" / "results" / "load" / ("quick" if args.quick else "")
    results = Results(out, args.quick)
    cap = int(args.rss_cap_gb * GB)
    print(f"work folder {work}; results to {out}; {load_now()}", flush=True)
    try:
        paths = make_data(work, sizes, results)
        for stage in stages:
            if stage == "cli":
                cli_timeout = args.cli_timeout or (180 if args.quick else 900)
                timeouts = {
                    "train": cli_timeout,
                    "explain": cli_timeout,
                    "predict": args.predict_timeout or cli_timeout,
                }
                cli_stage(paths, work, sizes, results, cap, timeouts)
            elif stage == "dashboard":
                dashboard_stage(paths, work, sizes, results, cap)
            elif stage == "bomb":
                bomb_stage(paths, work, sizes, results)
            elif stage == "concurrent":
                concurrent_stage(work, sizes, results, cap)
            results.write()
    finally:
        results.write()


if __name__ == "__main__":
    main()
