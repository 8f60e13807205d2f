"""AFM against FM on real data with the same tuning budget: ``python benchmarks/afm_vs_fm.py``.

Protocol (issue 12), for each setting (binary: log loss, AUC; regression: squared loss, RMSE on the
±1 labels, as the paper):

- data: Frappe's validation file split 80/20 (seed 0) into train and valid; Frappe's test file is the
  test set, used once, after selection, and never to choose anything;
- each model gets the same budget: ``--budget`` configurations drawn at random (seeded) from its own
  knob space, each trained once (seed 0) with early stopping on the validation loss (patience 3, at most
  ``--max-epochs`` epochs; a run that reaches the cap is flagged), the configuration with the best
  validation loss (log loss or RMSE) is selected;
- the selected configuration of each model is trained with 3 seeds; the table gives test metrics,
  mean ± std, and the attention entropy over log P (1 = uniform attention) for the AFM rows.

Models:
- ``FM``: lr, dropout, batch size.
- ``AFM (FM start)``: the exact FM start (``AFM.from_fm``: predictions equal the FM's before training),
  from the FM that FM's own search selected, trained with the same seed; its knobs are those of the
  attention phase (lr, dropout, attention dropout, lambda on W, t, batch size). It therefore also
  uses the FM's training: the comparison says whether attention improves on the FM it starts from.
- ``AFM (fresh start)``: AFM from random weights (p_init "ones" or "normal" is one of its knobs).

Writes ``trials-<setting>.csv`` (every configuration tried, with its validation loss), ``table.csv``
and ``table.md`` into ``--out`` (default ``benchmarks/results/afm_vs_fm``).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import afm
from afm.model import AFM, FM
from afm.train import evaluate, fit

HERE = Path(__file__).resolve().parent
DEFAULT_FRAPPE = Path(os.environ.get("AFM_FRAPPE", HERE.parent.parent / "shared" / "data" / "frappe"))
SEEDS = (0, 1, 2)
EMBED_DIM = 16  # the same k for every model
SPACES: dict[str, dict[str, list[Any]]] = {
    "FM": {
        "lr": [0.001, 0.003, 0.01, 0.03],
        "dropout": [0.0, 0.1, 0.2, 0.3, 0.5],
        "batch_size": [256, 1024],
    },
    "AFM (FM start)": {
        "lr": [0.0001, 0.0003, 0.001, 0.003],
        "dropout": [0.0, 0.1, 0.2, 0.3, 0.5],
        "attention_dropout": [0.0, 0.1, 0.3],
        "l2_attention": [0.0, 0.0001, 0.001, 0.01],
        "attention_factor": [8, 16, 32],
        "batch_size": [256, 1024],
    },
    "AFM (fresh start)": {
        "lr": [0.001, 0.003, 0.01, 0.03],
        "dropout": [0.0, 0.1, 0.2, 0.3, 0.5],
        "attention_dropout": [0.0, 0.1, 0.3],
        "l2_attention": [0.0, 0.0001, 0.001, 0.01],
        "attention_factor": [8, 16, 32],
        "batch_size": [256, 1024],
        "p_init": ["ones", "normal"],
    },
}
LOSS = {"binary": "logloss", "regression": "rmse"}
REPORT = {"binary": ["auc", "logloss"], "regression": ["rmse", "mae"]}


def draw(space: dict[str, list[Any]], budget: int, seed: int) -> list[dict[str, Any]]:
    """``budget`` distinct configurations drawn uniformly from the grid ``space`` (seeded)."""
    grid = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    return random.Random(seed).sample(grid, min(budget, len(grid)))


def attention_entropy(model: AFM, data: afm.Dataset) -> float:
    """Mean over rows of the attention's entropy divided by log P (1 means uniform attention)."""
    exp = afm.explain_dataset(model, data)
    a = exp.attention.double().clamp_min(1e-30)
    return float((-(a * a.log()).sum(1)).mean() / math.log(a.shape[1]))


class Runner:
    def __init__(self, task: str, parts: dict[str, afm.Dataset], max_epochs: int, patience: int) -> None:
        self.task, self.parts, self.max_epochs, self.patience = task, parts, max_epochs, patience
        self.fm_cache: dict[tuple[Any, ...], FM] = {}

    def _fit(self, model: AFM | FM, knobs: dict[str, Any], seed: int) -> dict[str, Any]:
        started = time.perf_counter()
        history = fit(
            model,
            self.parts["train"],
            self.parts["valid"],
            task=self.task,
            epochs=self.max_epochs,
            batch_size=knobs["batch_size"],
            lr=knobs["lr"],
            optimizer="adam",
            l2_attention=knobs.get("l2_attention", 0.0),
            seed=seed,
            patience=self.patience,
        )
        best = history.best or {}
        return {
            "valid_loss": best.get(f"valid_{LOSS[self.task]}", float("nan")),
            "best_epoch": history.best_epoch,
            "epochs_run": len(history.epochs),
            "hit_cap": len(history.epochs) == self.max_epochs and history.stopped == "completed",
            "seconds": time.perf_counter() - started,
        }

    def fm(self, knobs: dict[str, Any], seed: int) -> tuple[FM, dict[str, Any]]:
        train = self.parts["train"]
        model = FM(train.n_features, train.n_fields, EMBED_DIM, knobs["dropout"], seed=seed)
        return model, self._fit(model, knobs, seed)

    def train(self, name: str, knobs: dict[str, Any], seed: int, fm_knobs: dict[str, Any] | None) -> tuple[Any, dict]:
        train = self.parts["train"]
        if name == "FM":
            return self.fm(knobs, seed)
        if name == "AFM (fresh start)":
            model = AFM(
                train.n_features,
                train.n_fields,
                EMBED_DIM,
                knobs["attention_factor"],
                knobs["dropout"],
                knobs["attention_dropout"],
                seed=seed,
                p_init=knobs["p_init"],
            )
            return model, self._fit(model, knobs, seed)
        assert fm_knobs is not None
        key = (tuple(sorted(fm_knobs.items())), seed)
        if key not in self.fm_cache:  # the selected FM, trained with this seed, once
            self.fm_cache[key] = self.fm(fm_knobs, seed)[0]
        model = AFM.from_fm(
            copy.deepcopy(self.fm_cache[key]),
            knobs["attention_factor"],
            knobs["dropout"],
            knobs["attention_dropout"],
            seed=seed,
        )
        return model, self._fit(model, knobs, seed)


def run_setting(task: str, parts: dict[str, afm.Dataset], args: argparse.Namespace, out: Path) -> list[dict]:
    runner = Runner(task, parts, args.max_epochs, args.patience)
    loss = LOSS[task]
    trials, selected = [], {}
    for m, name in enumerate(SPACES):
        fm_knobs = selected.get("FM")
        for i, knobs in enumerate(draw(SPACES[name], args.budget, seed=100 + m)):
            _, result = runner.train(name, knobs, 0, fm_knobs)
            trials.append({"setting": task, "model": name, "trial": i, **knobs, **result})
            print(
                f"{task} {name} trial {i + 1}/{args.budget} {knobs}: valid {loss} {result['valid_loss']:.4f}"
                f" ({result['epochs_run']} epochs{', CAP' if result['hit_cap'] else ''}, {result['seconds']:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        frame = pd.DataFrame([t for t in trials if t["model"] == name])
        selected[name] = {k: _plain(frame.loc[frame["valid_loss"].idxmin(), k]) for k in SPACES[name]}
    pd.DataFrame(trials).to_csv(out / f"trials-{task}.csv", index=False)
    rows = []
    clip = afm.label_range(parts["train"], task)
    for name in SPACES:
        runs = []
        for seed in SEEDS:
            model, result = runner.train(name, selected[name], seed, selected["FM"])
            metrics = evaluate(model, parts["test"], task, label_range=clip)
            entropy = attention_entropy(model, parts["test"]) if isinstance(model, AFM) else float("nan")
            runs.append({**metrics, **result, "entropy": entropy})
        row: dict[str, Any] = {"setting": task, "model": name, "seeds": len(runs), "selected": selected[name]}
        for metric in REPORT[task]:
            values = [r[metric] for r in runs]
            row[f"test_{metric}"], row[f"test_{metric}_std"] = statistics.mean(values), statistics.stdev(values)
        row["valid_loss"] = statistics.mean(r["valid_loss"] for r in runs)
        row["entropy_over_log_p"] = statistics.mean(r["entropy"] for r in runs)
        row["epochs"] = "/".join(str(r["epochs_run"]) for r in runs)
        row["hit_cap"] = any(r["hit_cap"] for r in runs)
        rows.append(row)
        print(f"{task} {name}: {row}", file=sys.stderr, flush=True)
    return rows


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def markdown(table: pd.DataFrame) -> str:
    lines = []
    for task, part in table.groupby("setting", sort=False):
        metrics = REPORT[task]
        lines.append(f"\n**{task}** (selected on validation {LOSS[task]}; test, 3 seeds, mean ± std)\n")
        head = ["model", *[f"test {m}" for m in metrics], f"valid {LOSS[task]}", "entropy / log P", "epochs"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for _, r in part.iterrows():
            cells = [r["model"]]
            cells += [f"{r[f'test_{m}']:.4f} ± {r[f'test_{m}_std']:.4f}" for m in metrics]
            cells += [f"{r['valid_loss']:.4f}"]
            cells += ["—" if math.isnan(r["entropy_over_log_p"]) else f"{r['entropy_over_log_p']:.3f}"]
            cells += [str(r["epochs"]) + (" (cap)" if r["hit_cap"] else "")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("\nSelected configurations:\n")
        for _, r in part.iterrows():
            lines.append(f"- {r['model']}: `{r['selected']}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frappe", type=Path, default=DEFAULT_FRAPPE, help="folder with frappe.validation/test.libfm")
    parser.add_argument("--budget", type=int, default=20, help="configurations per model (20)")
    parser.add_argument("--max-epochs", type=int, default=100, help="epoch cap (100)")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs (3)")
    parser.add_argument("--settings", default="binary,regression", help="binary, regression or both")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "afm_vs_fm")
    args = parser.parse_args()
    if not (args.frappe / "frappe.validation.libfm").is_file():
        sys.exit(f"{args.frappe}: no frappe.validation.libfm (give --frappe or AFM_FRAPPE)")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files = afm.datasets.frappe(args.frappe)
    train, valid = afm.split(files["validation"], [0.8, 0.2], seed=0)
    parts = {"train": train, "valid": valid, "test": files["test"]}
    rows = []
    for task in args.settings.split(","):
        rows += run_setting(task, parts, args, args.out)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "table.csv", index=False)
    text = markdown(table)
    cpu = afm.native.cpu_description() if hasattr(afm, "native") and hasattr(afm.native, "cpu_description") else ""
    footer = (
        f"\n{args.budget} configurations per model, epoch cap {args.max_epochs}, patience {args.patience}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads {cpu}; "
        f"{time.perf_counter() - started:.0f} s, {time.strftime('%Y-%m-%d')}.\n"
    )
    (args.out / "table.md").write_text(text + footer)
    print(text + footer)


if __name__ == "__main__":
    main()
