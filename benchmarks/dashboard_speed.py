"""Dashboard timings on this machine, through Streamlit's AppTest (the real page scripts):

1. training AFM and FM on the sample with the default knobs (Data & model's Train button);
2. rendering the Attention page over the whole sample (after one warm-up visit);
3. changing the row on the Explain page.

    python benchmarks/dashboard_speed.py [--repeats 3]

Prints the median and all runs of each. Targets (issue 5): < 15 s, < 2 s, < 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")


def one_session() -> tuple[float, float, float]:
    """(train, attention render, explain row change) seconds for one fresh session."""
    at = AppTest.from_file(APP, default_timeout=300).run()
    train = next(b for b in at.button if b.label == "Train AFM and FM")
    start = time.perf_counter()
    train.click().run()
    t_train = time.perf_counter() - start
    assert not at.exception, at.exception
    at.switch_page("pages/attention.py").run()  # warm-up: the whole sample's explanation gets cached
    start = time.perf_counter()
    at.switch_page("pages/attention.py").run()
    t_attention = time.perf_counter() - start
    at.switch_page("pages/explain.py").run()
    row = next(n for n in at.number_input if "row" in (n.label or "").lower())
    start = time.perf_counter()
    row.set_value(int(row.value) + 1).run()
    t_row = time.perf_counter() - start
    assert not at.exception, at.exception
    return t_train, t_attention, t_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("AFM_RUNS_DIR", tempfile.mkdtemp(prefix="afm-bench-runs-"))
    results: dict[str, list[float]] = {
        "train AFM + FM (default knobs)": [],
        "attention page": [],
        "explain: change row": [],
    }
    for _ in range(args.repeats):
        for name, seconds in zip(results, one_session(), strict=True):
            results[name].append(seconds)
    for name, values in results.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name}: median {statistics.median(values):.2f} s (runs: {runs})")


if __name__ == "__main__":
    main()
