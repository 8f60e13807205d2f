"""The Sweeps page's time estimate against the sweep's real time, quiet and with both cores busy.

    python benchmarks/sweep_estimate.py [--statistic median|min] [--load none|spin] [--out FILE]

The page's estimate is ``afm.sweeps.estimate_seconds(plan, seconds_per_epoch(...), expected_epochs(...))`` (see
app/sweep_sections.py); this script computes it exactly so on the bundled sample (a dropout sweep of 0, 0.2,
0.4, one seed, the pre-trained models' settings), then runs the sweep (``afm.sweeps.run_sweep``) as the
dashboard's pool runs it on 2 cores (one torch thread per job), and reports the run's seconds over the estimate.
``--load spin``: two processes that each keep a core busy run for the whole measurement, the loaded case of
issue 28 (target: the run within a factor of 1.5 of the estimate). ``--statistic`` picks the rule the timing
uses over its repeats (the median, or the fastest as the page used before).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import afm
import afm.sweeps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statistic", choices=["median", "min"], default="median")
    parser.add_argument("--load", choices=["none", "spin"], default="none")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a job on the dashboard's pool of 2 workers on 2 cores
    parts = afm.datasets.load_parts("sample", task="regression", seed=0)
    _, meta = afm.load_model(afm.datasets.SAMPLE_DIR / "pretrained" / "regression-afm.pt")
    base = afm.TrainConfig.from_dict(meta["config"])
    histories = {k: afm.load_model(afm.datasets.SAMPLE_DIR / "pretrained" / f"regression-{k}.pt")[1]["history"]
                 for k in ("afm", "fm")}  # fmt: skip
    histories = {k: h["epochs"] for k, h in histories.items()}
    values, seeds = [0.0, 0.2, 0.4], (0,)
    spinners = []
    try:
        if args.load == "spin":
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
            time.sleep(2)
        started = time.perf_counter()
        per_epoch = afm.sweeps.seconds_per_epoch(parts["train"], parts["valid"], base, statistic=args.statistic)
        timing_s = time.perf_counter() - started
        steps = afm.sweeps.plan("dropout", values, seeds)
        expected = afm.sweeps.expected_epochs(base, histories)
        estimate = afm.sweeps.estimate_seconds(steps, per_epoch, expected)
        started = time.perf_counter()
        frame = afm.sweeps.run_sweep("dropout", values, parts["train"], parts["valid"], base=base, seeds=seeds)
        actual = time.perf_counter() - started
    finally:
        for p in spinners:
            p.kill()
    epochs = {k: int(frame.loc[frame["model"] == k, "epochs_run"].sum()) for k in ("fm", "afm")}
    report = {
        "load": args.load,
        "statistic": args.statistic,
        "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), ""),
        "cores": os.cpu_count(),
        "timing_s": round(timing_s, 2),
        "per_epoch_s": {k: round(v, 4) for k, v in per_epoch.items()},
        "expected_epochs": expected,
        "epochs_run": epochs,
        "estimate_s": round(estimate, 2),
        "actual_s": round(actual, 2),
        "actual_over_estimate": round(actual / estimate, 2),
    }
    print(json.dumps(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
