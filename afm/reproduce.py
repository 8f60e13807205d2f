"""Reproduce the AFM paper's experiments on the data we have: ``python -m afm reproduce``.

For each data set (Frappe from a folder you give, else ``$AFM_FRAPPE``, else ``data/frappe`` or ``data/``
where ``python -m afm download frappe`` writes, when present; and the bundled sample) and
each setting (the paper's regression setting: squared loss, RMSE on ±1 labels; and the binary
setting: log loss, AUC), it

1. sweeps dropout (FM and AFM), the attention factor t (AFM) and lambda on W (AFM) and picks each
   model's dropout and AFM's lambda by the *validation* metric (never the test set);
2. trains FM, FM-pretrained AFM and AFM without pre-training with the chosen settings over
   several seeds and reports the test metric, mean ± std (the paper's Table 2);
3. records train and test RMSE (or log loss) per epoch for FM and AFM (the paper's Figure 5).

Frappe protocol: the training file is not available here, so models train on the validation file
with a seeded eighth held out for early stopping, and are tested on the test file. Absolute
numbers therefore differ from the paper's. The sweeps use ``afm.sweeps.run_sweep``, the same code
as the dashboard's Sweeps page.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import datasets, plots
from .data import Dataset, split
from .sweeps import run_sweep, summarise
from .train import Progress, TrainConfig, evaluate, label_range, train_model

SETTINGS = {"regression": "rmse", "binary": "auc"}
LOWER_IS_BETTER = {"rmse": True, "mae": True, "logloss": True, "auc": False}


@dataclass
class Plan:
    """How much to run: ``quick`` is a smoke test (minutes); the full plan is what the docs report."""

    epochs: int
    patience: int
    seeds: tuple[int, ...]
    sweep_seeds: tuple[int, ...]
    dropouts: tuple[float, ...]
    factors: tuple[int, ...]
    lambdas: tuple[float, ...]
    curve_epochs: int
    embed_dim: int = 16
    batch_size: int = 1024
    lr: float = 0.01

    @classmethod
    def quick(cls) -> Plan:
        return cls(2, 1, (0, 1), (0,), (0.0, 0.5), (4, 16), (0.0, 1.0), 3)

    @classmethod
    def full(cls) -> Plan:
        # sized to finish in a few minutes on a 2-core machine (215 s here); widen the grids where time allows
        return cls(10, 2, (0, 1, 2), (0,), (0.0, 0.2, 0.5), (1, 8, 32), (0.0, 0.1, 10.0), 10)


def frappe_parts(root: Path, seed: int = 0) -> dict[str, Dataset]:
    """Frappe: train = validation file minus a seeded eighth (held out as valid), test = test file."""
    parts = datasets.frappe(root)
    if "validation" not in parts or "test" not in parts:
        raise ValueError(f"{root}: needs frappe.validation.libfm and frappe.test.libfm")
    train, valid = split(parts["validation"], [7 / 8, 1 / 8], seed)
    return {"train": train, "valid": valid, "test": parts["test"]}


def sample_parts(task: str, seed: int = 0) -> dict[str, Dataset]:
    return {k: v for k, v in datasets.load_parts("sample", task=task, seed=seed).items() if k != "all"}


def _best(summary: pd.DataFrame, model: str, metric: str) -> Any:
    """The swept value with the best mean validation metric for ``model``."""
    part = summary[summary["model"] == model]
    column = f"valid_{metric}"
    row = part.loc[part[column].idxmin() if LOWER_IS_BETTER[metric] else part[column].idxmax()]
    return row["value"]


def epoch_curves(
    kind: str,
    model_name: str,
    config: TrainConfig,
    train: Dataset,
    test: Dataset,
    metric: str,
    clip_range: tuple[float, float] | None,
) -> list[dict[str, Any]]:
    """Train once and record ``metric`` on the train and test parts after every epoch (the test part
    is only watched, never used to choose anything)."""
    rows: list[dict[str, Any]] = []

    def record(p: Progress) -> None:
        # with pre-training the callback also sees the FM trained first: skip it
        if p.epoch_end and p.model is not None and type(p.model).__name__.lower() == kind:
            for part, data in (("train", train), ("test", test)):
                value = evaluate(p.model, data, config.task, label_range=clip_range)[metric]
                rows.append({"model": model_name, "epoch": p.epoch, "part": part, metric: value})

    train_model(kind, config, train, None, callback=record)
    return rows


def run_dataset(
    name: str,
    parts_for: Callable[[str], dict[str, Dataset]],
    plan: Plan,
    out: Path,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """All experiments on one data set; writes CSVs and figures under ``out``; returns Table 2 rows."""
    rows: list[dict[str, Any]] = []
    for task, metric in SETTINGS.items():
        parts = parts_for(task)
        train, valid, test = parts["train"], parts["valid"], parts["test"]
        tag = f"{name}-{task}"
        base = TrainConfig(
            task=task,
            embed_dim=plan.embed_dim,
            attention_factor=16,
            lr=plan.lr,
            optimizer="adam",
            epochs=plan.epochs,
            batch_size=plan.batch_size,
            patience=plan.patience,
        )
        select_metric = "rmse" if task == "regression" else "logloss"  # what training minimises
        # 1. sweeps on validation (FM-pretrained AFM, as the paper's figures)
        sweeps = {}
        for parameter, values in (
            ("dropout", plan.dropouts),
            ("attention_factor", plan.factors),
            ("l2_attention", plan.lambdas),
        ):
            started = time.perf_counter()
            pretrain = dataclasses.replace(base, pretrain=True)
            frame = run_sweep(parameter, list(values), train, valid, base=pretrain, seeds=plan.sweep_seeds, test=test)
            frame.to_csv(out / f"sweep-{tag}-{parameter}.csv", index=False)
            summary = summarise(frame)
            sweeps[parameter] = summary
            for shown in dict.fromkeys([metric, select_metric]):
                fig = plots.sweep_plot(
                    summary, f"valid_{shown}", title=f"{name}, {task}: validation {shown} vs {parameter}"
                )
                fig.write_html(out / f"sweep-{tag}-{parameter}-{shown}.html", include_plotlyjs="cdn")
            log(f"{tag}: swept {parameter} over {list(values)} in {time.perf_counter() - started:.0f} s")
        # choose on validation only
        fm_dropout = float(_best(sweeps["dropout"], "fm", select_metric))
        afm_dropout = float(_best(sweeps["dropout"], "afm", select_metric))
        afm_lambda = float(_best(sweeps["l2_attention"], "afm", select_metric))
        chosen = {"fm_dropout": fm_dropout, "afm_dropout": afm_dropout, "afm_l2_attention": afm_lambda}
        (out / f"chosen-{tag}.json").write_text(json.dumps(chosen, indent=2) + "\n")
        log(f"{tag}: chosen on validation {chosen}")
        # 2. Table 2 over seeds
        configs = {
            "FM": ("fm", dataclasses.replace(base, dropout=fm_dropout)),
            "AFM (FM-pretrained)": (
                "afm",
                dataclasses.replace(base, dropout=afm_dropout, l2_attention=afm_lambda, pretrain=True),
            ),
            "AFM (no pre-training)": ("afm", dataclasses.replace(base, dropout=afm_dropout, l2_attention=afm_lambda)),
        }
        clip_range = label_range(train, task)
        runs = []
        for model_name, (kind, config) in configs.items():
            for seed in plan.seeds:
                model, history = train_model(kind, dataclasses.replace(config, seed=seed), train, valid)
                metrics = evaluate(model, test, task, label_range=clip_range)
                runs.append({"model": model_name, "seed": seed, "epochs": len(history.epochs), **metrics})
        table = pd.DataFrame(runs)
        table.to_csv(out / f"table2-{tag}-runs.csv", index=False)
        for model_name, part in table.groupby("model", sort=False):
            row = {"dataset": name, "setting": task, "model": model_name, "seeds": len(part)}
            for m in ["rmse", "mae"] if task == "regression" else ["auc", "logloss", "accuracy"]:
                row[f"test_{m}"] = statistics.mean(part[m])
                row[f"test_{m}_std"] = statistics.stdev(part[m]) if len(part) > 1 else 0.0
            rows.append(row)
        log(f"{tag}: Table 2 done ({len(runs)} trainings)")
        # 3. train and test metric per epoch (no early stopping, fixed epochs)
        curves = []
        for model_name, (kind, config) in list(configs.items())[:2]:
            curve_config = dataclasses.replace(config, epochs=plan.curve_epochs, patience=None, seed=0)
            if kind == "afm":
                curve_config = dataclasses.replace(curve_config, pretrain=True, pretrain_epochs=plan.curve_epochs)
            curves += epoch_curves(kind, model_name, curve_config, train, test, select_metric, clip_range)
        curve_frame = pd.DataFrame(curves)
        curve_frame.to_csv(out / f"epochs-{tag}.csv", index=False)
        histories = {
            f"{m} {p}": part.reset_index(drop=True)
            for (m, p), part in curve_frame.groupby(["model", "part"], sort=False)
        }
        plots.learning_curves(histories, select_metric, title=f"{name}, {task}: {select_metric} per epoch").write_html(
            out / f"epochs-{tag}.html", include_plotlyjs="cdn"
        )
        log(f"{tag}: per-epoch curves done")
    return rows


def reproduce(
    out: str | Path,
    *,
    quick: bool = False,
    frappe_root: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run everything; returns the Table 2 frame (also written to ``out/table2.csv``)."""
    plan = Plan.quick() if quick else Plan.full()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    root = Path(frappe_root) if frappe_root else datasets.default_frappe_root()
    if (root / "frappe.validation.libfm").is_file():
        cache: dict[str, dict[str, Dataset]] = {}

        def frappe_for(task: str) -> dict[str, Dataset]:
            if "parts" not in cache:
                cache["parts"] = frappe_parts(root)
            return cache["parts"]

        rows += run_dataset("frappe", frappe_for, plan, out, log)
    else:
        log(f"Frappe skipped: {root} has no frappe.validation.libfm")
    rows += run_dataset("sample", sample_parts, plan, out, log)
    table = pd.DataFrame(rows)
    table.to_csv(out / "table2.csv", index=False)
    seconds = time.perf_counter() - started
    meta = {"quick": quick, "plan": dataclasses.asdict(plan), "seconds": seconds, "date": time.strftime("%Y-%m-%d")}
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"done in {seconds:.0f} s; results in {out}")
    return table
