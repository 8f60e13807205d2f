"""Is the FM-started AFM's gain attention? A control: ``python benchmarks/fm_start_control.py``.

For the sample (both labels) and Frappe binary (validation file split 80/20, seed 0; test file): train
an FM with the defaults (afm.TrainConfig), then from its best weights (a) an AFM that starts exactly
at it (AFM.from_fm) and (b) the same FM, continued; both with the default ``finetune_lr``. If (a) and
(b) end alike, the AFM's gain over the FM is the second, slower phase of training, not attention.
Prints validation and test loss and the AFM's attention entropy over log P (1 = uniform), and writes them
to ``--out`` (default ``benchmarks/results``): ``fm_start_control.csv`` (one row per data set),
``fm_start_control.md`` (the printed table) and ``fm_start_control.json`` (the defaults used, CPU, date,
wall time, torch version). docs/REPRODUCTION.md and docs/defaults.md render their table from the CSV
(``benchmarks/render_tables.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import afm
from afm.model import AFM, FM

HERE = Path(__file__).resolve().parent
FRAPPE = Path(os.environ.get("AFM_FRAPPE", Path(__file__).resolve().parents[2] / "shared" / "data" / "frappe"))


def entropy(model: AFM, data: afm.Dataset) -> float:
    a = afm.explain_dataset(model, data).attention.double().clamp_min(1e-30)
    return float((-(a * a.log()).sum(1)).mean() / math.log(a.shape[1]))


def cpu_model() -> str:
    """``lscpu``'s model name (benchmarks/afm_vs_fm.py's helper)."""
    sys.path.insert(0, str(HERE))
    from afm_vs_fm import cpu_model as model

    return model()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for fm_start_control.*")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    d = afm.TrainConfig()
    sets = {f"sample-{t}": afm.datasets.load_parts("sample", task=t) for t in ("regression", "binary")}
    if (FRAPPE / "frappe.validation.libfm").is_file():
        files = afm.datasets.frappe(FRAPPE)
        train, valid = afm.split(files["validation"], [0.8, 0.2], seed=0)
        sets["frappe-binary"] = {"train": train, "valid": valid, "test": files["test"]}
    else:
        print(f"Frappe skipped: no {FRAPPE}/frappe.validation.libfm", file=sys.stderr)
    lines = [
        "| data | loss | FM | FM continued | AFM from FM | AFM entropy / log P |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    for name, parts in sets.items():
        train, valid, test = parts["train"], parts["valid"], parts["test"]
        fm = FM(d.model_config("fm", train))
        history = afm.fit(fm, train, valid)
        task, loss = history.task, history.monitor
        clip = afm.label_range(train, task)
        continued = copy.deepcopy(fm)
        afm.fit(continued, train, valid, lr=d.finetune_lr)
        model = AFM.from_fm(copy.deepcopy(fm), d.attention_factor, d.dropout, d.attention_dropout, seed=d.seed)
        afm.fit(model, train, valid, lr=d.finetune_lr)
        row = {"data": name, "task": task, "loss": loss}
        for key, m in (("fm", fm), ("continued", continued), ("afm", model)):
            for part, data in (("valid", valid), ("test", test)):
                row[f"{key}_{part}"] = afm.evaluate(m, data, task, label_range=clip)[loss]
        row["afm_entropy_over_log_p"] = entropy(model, test)
        rows.append(row)
        scores = [f"{row[f'{k}_valid']:.4f} / {row[f'{k}_test']:.4f}" for k in ("fm", "continued", "afm")]
        cells = [name, f"valid / test {loss}", *scores, f"{row['afm_entropy_over_log_p']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out / "fm_start_control.csv", index=False)
    (args.out / "fm_start_control.md").write_text("\n".join(lines) + "\n")
    run = {
        "protocol": "seed 0, afm.TrainConfig() defaults: FM, then (a) AFM.from_fm and (b) the FM continued, "
        "both at finetune_lr; sample: afm.datasets.load_parts; Frappe binary: validation file split 80/20 "
        "(seed 0), test file",
        "defaults": {
            k: getattr(d, k)
            for k in ("lr", "finetune_lr", "batch_size", "dropout", "attention_factor", "attention_dropout")
        }
        | {k: getattr(d, k) for k in ("embed_dim", "epochs", "patience", "optimizer", "seed")},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "python benchmarks/fm_start_control.py",
    }
    (args.out / "fm_start_control.json").write_text(json.dumps(run, indent=2) + "\n")


if __name__ == "__main__":
    main()
