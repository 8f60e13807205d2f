"""Hyper-parameter sweeps: the paper's figures (metric against dropout, t, lambda) as DataFrames.

The dashboard's Sweeps page calls ``run_sweep``: one knob at a time, everything else as its base
config. ``python -m afm reproduce`` (``afm.reproduce``) instead selects t, lambda and dropout jointly
over a grid and draws the paper's one-knob figures as cuts through it, so its numbers and a sweep's
agree only where the settings do.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .data import Dataset
from .train import TrainConfig, evaluate, label_range, train_model

# Which models a sweep of each parameter concerns (t and lambda only exist in AFM).
# The type each sweepable knob has in TrainConfig (values from text or URLs are converted to it).
KNOB_TYPES: dict[str, type] = {
    "dropout": float,
    "attention_dropout": float,
    "attention_factor": int,
    "l2_attention": float,
    "embed_dim": int,
    "lr": float,
}
SWEEPABLE: dict[str, tuple[str, ...]] = {
    "dropout": ("afm", "fm"),
    "attention_dropout": ("afm",),
    "attention_factor": ("afm",),
    "l2_attention": ("afm",),
    "embed_dim": ("afm", "fm"),
    "lr": ("afm", "fm"),
}


def run_sweep(
    parameter: str,
    values: Sequence[Any],
    train: Dataset,
    valid: Dataset,
    *,
    base: TrainConfig | None = None,
    models: Sequence[str] | None = None,
    seeds: Sequence[int] = (0,),
    test: Dataset | None = None,
    callback: Callable[[int, int, str], bool | None] | None = None,
) -> pd.DataFrame:
    """Train every (model, value, seed) and return one row each.

    Columns: ``model``, ``parameter`` (name), ``value``, ``seed``, ``valid_<metric>`` for the
    task's metrics (from the best validation epoch), ``test_<metric>`` when ``test`` is given,
    ``best_epoch``, ``epochs_run``, ``seconds``. ``callback(done, total, label)`` is called
    before each training (and once at the end); returning True stops the sweep early, keeping
    the rows finished so far.
    """
    if parameter not in SWEEPABLE:
        raise ValueError(f"cannot sweep {parameter!r}; choose one of {sorted(SWEEPABLE)}")
    if not values:
        raise ValueError("a sweep needs at least one value")
    base = base or TrainConfig()
    kinds = [m for m in (models or SWEEPABLE[parameter]) if m in SWEEPABLE[parameter]]
    values = [KNOB_TYPES[parameter](v) for v in values]
    jobs = [(kind, value, seed) for kind in kinds for value in values for seed in seeds]
    rows: list[dict[str, Any]] = []
    for done, (kind, value, seed) in enumerate(jobs):
        if callback is not None and callback(done, len(jobs), f"{kind} {parameter}={value} seed {seed}"):
            break
        config = dataclasses.replace(base, **{parameter: value, "seed": seed})
        start = time.perf_counter()
        model, history = train_model(kind, config, train, valid)
        clip_range = label_range(train, config.task)
        metrics = evaluate(model, valid, config.task, label_range=clip_range)
        row: dict[str, Any] = {"model": kind, "parameter": parameter, "value": value, "seed": seed}
        row.update({f"valid_{k}": v for k, v in metrics.items() if k != "n"})
        if test is not None:
            row.update(
                {
                    f"test_{k}": v
                    for k, v in evaluate(model, test, config.task, label_range=clip_range).items()
                    if k != "n"
                }
            )
        row.update(best_epoch=history.best_epoch, epochs_run=len(history.epochs), seconds=time.perf_counter() - start)
        rows.append(row)
    else:
        if callback is not None:
            callback(len(jobs), len(jobs), "done")
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (model, parameter, value): ``<metric>`` and ``<metric>_std``."""
    metrics = [c for c in frame.columns if c.startswith(("valid_", "test_"))]
    grouped = frame.groupby(["model", "parameter", "value"], sort=False)[metrics]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    return pd.concat([mean, std], axis=1).reset_index()
