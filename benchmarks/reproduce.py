"""Reproduce the AFM paper's experiments on the data we have: Table 2, the sweeps and the per-epoch curves.

    python benchmarks/reproduce.py --out docs/reproduction     # the full plan: about 30 minutes on 2 cores
    python benchmarks/reproduce.py --quick --out /tmp/repro    # the smoke test: about a minute

It runs every ``afm.reproduce.Setting`` (the library's definitions of the grids, the selection and the
curves) on Frappe, when present (``--frappe``, else ``$AFM_FRAPPE``, else ``data/frappe`` or ``data/``, where
``python -m afm download frappe`` writes), and on the bundled sample, in the regression and the binary
setting, and writes into ``--out`` (default runs/reproduce-<time>):

- ``grid-<data>-<setting>.csv``: every training of the grid; ``chosen-<data>-<setting>.json``: the selections;
- ``table2-<data>-<setting>-runs.csv`` and ``table2.csv``: Table 2's runs and rows;
- ``epochs-<data>-<setting>.csv`` / ``.html``: the per-epoch curves (Fig. 5);
- ``sweep-<data>-<setting>-<parameter>-<metric>.html``: dropout, t and lambda against the validation
  metrics (Fig. 3 and 4);
- ``run.json`` (the plan, the time, torch, the kernel) and ``report.md``: the document's tables, written by
  ``reproduce_report.py``, which also refills docs/REPRODUCTION.md from these files.

It prints Table 2 on stdout and its progress on stderr; a bad argument or file is one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from afm import datasets, native, plots
from afm.reproduce import (
    LOSS,
    NAMES,
    REPORTED,
    TASKS,
    Plan,
    Setting,
    Source,
    frappe_source,
    sample_source,
    slice_summary,
    slices,
    table2_runs,
    table2_summary,
)
from afm.runs import runs_dir

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from reproduce_report import write_report  # noqa: E402  (a script beside this one, not a package)

SWEPT = ("dropout", "attention_factor", "l2_attention")


def figure_metrics(task: str, parameter: str) -> list[str]:
    """What the figures of one swept parameter show: the validation loss and reported metrics, and
    (t and lambda) the attention entropy."""
    names = list(dict.fromkeys([LOSS[task], *REPORTED[task]]))
    return names if parameter == "dropout" else [*names, "entropy"]


def written_files(tags: list[tuple[str, str]]) -> set[str]:
    """The names ``reproduce`` writes into its folder for these (dataset, setting) pairs."""
    names = {"table2.csv", "run.json", "report.md"}
    for dataset, task in tags:
        tag = f"{dataset}-{task}"
        names |= {f"grid-{tag}.csv", f"chosen-{tag}.json", f"table2-{tag}-runs.csv"}
        names |= {f"epochs-{tag}.csv", f"epochs-{tag}.html"}
        names |= {f"sweep-{tag}-{p}-{m}.html" for p in SWEPT for m in figure_metrics(task, p)}
    return names


def run_setting(source: Source, task: str, plan: Plan, out: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    setting = Setting(source, task, plan, log)
    tag, loss = setting.tag, setting.loss
    chosen = setting.run()
    grid = pd.DataFrame(setting.rows)
    grid.to_csv(out / f"grid-{tag}.csv", index=False)
    (out / f"chosen-{tag}.json").write_text(json.dumps(chosen, indent=2) + "\n")
    runs = table2_runs(grid, chosen)
    runs.to_csv(out / f"table2-{tag}-runs.csv", index=False)
    for parameter, frame in slices(grid, chosen).items():
        summary = slice_summary(frame)
        if parameter == "l2_attention":  # 0 and 10 on one linear axis: categories instead
            summary["value"] = summary["value"].map(lambda v: f"{v:g}")
        for name in figure_metrics(task, parameter):
            metric, where = ("entropy", "") if name == "entropy" else (f"valid_{name}", "validation ")
            fig = plots.sweep_plot(summary, metric, title=f"{source.name}, {task}: {where}{name} against {parameter}")
            fig.write_html(out / f"sweep-{tag}-{parameter}-{name}.html", include_plotlyjs="cdn")
    started = time.perf_counter()
    curves = setting.curves(chosen)
    curves.to_csv(out / f"epochs-{tag}.csv", index=False)
    histories = {
        f"{m} {p}": part.reset_index(drop=True)
        for (m, p), part in curves[curves["part"] != "valid"].groupby(["model", "part"], sort=False)
    }
    fig = plots.learning_curves(
        histories, loss, title=f"{source.name}, {task}: {NAMES[loss]} per cumulative epoch (seed {plan.seeds[0]})"
    )
    handover = int(curves["handover"].iloc[0])
    fig.add_vline(x=handover + 0.5, line_dash="dot", annotation_text=f"AFM starts from the FM of epoch {handover}")
    fig.write_html(out / f"epochs-{tag}.html", include_plotlyjs="cdn")
    log(f"{tag}: per-epoch curves in {time.perf_counter() - started:.0f} s")
    return table2_summary(runs, source.name, task)


def reproduce(
    out: str | Path,
    *,
    quick: bool = False,
    frappe_root: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run everything; returns the Table 2 frame (also written to ``out/table2.csv``, with the
    document's tables in ``out/report.md``)."""
    # Load (and self-check) the fused kernel before any training: a first use inside evaluate()'s
    # inference mode fails the kernel's checks and leaves the process on the slower PyTorch kernels.
    native.library()
    plan = Plan.quick() if quick else Plan.full()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sources = []
    root = Path(frappe_root) if frappe_root else datasets.default_frappe_root()
    if (root / "frappe.validation.libfm").is_file():
        sources.append(frappe_source(root))
    else:
        log(f"Frappe skipped: {root} has no frappe.validation.libfm")
    sources.append(sample_source())
    rows: list[dict[str, Any]] = []
    for source in sources:
        for task in TASKS:
            rows += run_setting(source, task, plan, out, log)
    table = pd.DataFrame(rows)
    table.to_csv(out / "table2.csv", index=False)
    seconds = time.perf_counter() - started
    meta = {
        "quick": quick,
        "plan": dataclasses.asdict(plan),
        "datasets": {s.name: s.protocol for s in sources},
        "seconds": seconds,
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "kernel": "fused C kernel" if native.library() is not None else "PyTorch kernels",
    }
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    write_report(out)
    log(f"done in {seconds:.0f} s; results in {out}")
    return table


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the AFM paper's experiments (Table 2, dropout / t / lambda sweeps, per-epoch curves) on "
        "Frappe (when present: --frappe, else $AFM_FRAPPE, else data/frappe or data/, where `python -m afm download "
        "frappe` writes) and the bundled sample; writes CSVs, plotly figures and report.md.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test: few values, 2 epochs (about a minute)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/reproduce-<time>)")
    parser.add_argument(
        "--frappe",
        type=Path,
        help="folder with frappe.validation/test.libfm (default $AFM_FRAPPE, else data/frappe or data/: "
        "`python -m afm download frappe` writes data/)",
    )
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The command line: 0 when done, 2 for a bad argument or file (one line on stderr), 130 when interrupted."""
    args = build_parser(prog).parse_args(argv)
    out = args.out or runs_dir(None) / time.strftime("reproduce-%Y%m%d-%H%M%S")
    try:
        table = reproduce(out, quick=args.quick, frappe_root=args.frappe, log=lambda m: print(m, file=sys.stderr))
    except (ValueError, OSError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"reproduce: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reproduce: interrupted", file=sys.stderr)
        return 130
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
