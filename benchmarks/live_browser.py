"""Live mode in a real browser: seconds from moving t (or the dropout) to the new curves and heatmap.

A real `streamlit run` server, driven by headless Chromium (tests/browserkit.py). Each repeat opens a fresh
session on the bundled sample with its own seed (a link `?seed=N`, so no repeat is served from another's
result), turns nothing else, and times, from the key press on the slider until the page has finished its
run with the progress bar at "done after" and every chart drawn:

1. t 16 -> 8 and 8 -> 4 (the AFM retrained from the session's FM; the FM kept);
2. t 4 -> 8 (trained a moment ago: served from the server's cache of finished jobs);
3. dropout 0.2 -> 0.25 (FM and AFM warm-started from the session's weights).

    python benchmarks/live_browser.py [--repeats 5] [--out benchmarks/results/live_browser]

Writes results.csv and README.md (medians, every run, the CPU and the load average before each run).
Target (issue 17): under 5 s on a 2-core machine with one browser.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browserkit import APP_IDLE, PLOTLY, PLOTLY_DRAWN, PROGRESS, VIEWPORT, Session, launch, serve  # noqa: E402

CHANGES = [  # (what, slider label, key)
    ("t 16 -> 8", "Attention factor t", "ArrowLeft"),
    ("t 8 -> 4", "Attention factor t", "ArrowLeft"),
    ("t 4 -> 8 (trained before: cached)", "Attention factor t", "ArrowRight"),
    ("dropout 0.2 -> 0.25", "Dropout on the interaction layer", "ArrowRight"),
]


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return f"{fields.get('Model name', '?').strip()}, {os.cpu_count()} cores"
    except (OSError, subprocess.CalledProcessError):
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def updated(page, timeout_s: float = 120) -> float:  # noqa: ANN001
    """Wait until the run after a change has finished: "done after" shown, script idle, every chart drawn."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        done = page.locator(PROGRESS).filter(has_text="done after").count() > 0
        idle = page.locator(APP_IDLE).count() == 1
        drawn = page.locator(PLOTLY).count() == page.locator(PLOTLY_DRAWN).count() > 0
        if done and idle and drawn:
            return time.perf_counter()
        page.wait_for_timeout(50)
    raise TimeoutError(f"no update within {timeout_s} s")


def one_repeat(browser, url: str, seed: int) -> list[dict]:  # noqa: ANN001
    context = browser.new_context(viewport=VIEWPORT)
    rows = []
    try:
        page = context.new_page()
        s = Session(page, url)
        s.deadline += 600
        page.goto(f"{url}/?seed={seed}", timeout=60_000)
        s.wait_until_run("Data & model")
        for what, label, key in CHANGES:
            load = os.getloadavg()[0]
            page.get_by_role("slider", name=label).focus()
            pressed = time.perf_counter()
            page.keyboard.press(key)
            page.wait_for_timeout(300)  # the rerun starts; the old "done after" bar goes away
            seconds = updated(page) - pressed
            sidebar = page.locator('[data-testid="stSidebarUserContent"]').inner_text()
            rows.append({"seed": seed, "change": what, "seconds": round(seconds, 2), "load_1min": round(load, 2),
                         "models": sidebar.split("Models:")[-1].split("\n")[0].strip()})  # fmt: skip
            s.wait_until_run("Data & model")
    finally:
        context.close()
    return rows


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (without the optional tabulate package)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "live_browser")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as (url, _), sync_playwright() as pw:
        browser = launch(pw)
        try:
            for n in range(args.repeats):
                rows += one_repeat(browser, url, seed=100 + n)
                print(rows[-len(CHANGES) :], flush=True)
        finally:
            browser.close()
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    summary = frame.groupby("change", sort=False)["seconds"].agg(["median", "min", "max", "count"])
    summary["under 5 s"] = frame.groupby("change", sort=False)["seconds"].apply(lambda s: f"{(s < 5).sum()}/{len(s)}")
    loads = frame["load_1min"]
    text = (
        "# Live mode in a real browser\n\n"
        f"`python benchmarks/live_browser.py --repeats {args.repeats}` on {time.strftime('%Y-%m-%d')}; CPU: {cpu()}; "
        f"1-minute load average before the changes: median {statistics.median(loads):.2f} "
        f"(min {loads.min():.2f}, max {loads.max():.2f}).\n\n"
        "Seconds from the key press on the slider to the page showing the new curves and heatmap "
        "(script finished, every chart drawn). Target: under 5 s.\n\n"
        + markdown(summary.reset_index())
        + "\n\nEvery run: results.csv.\n"
    )
    (args.out / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
