"""Hyper-parameter sweeps: the paper's figures (metric against dropout, t, lambda) as DataFrames.

The dashboard's Sweeps page calls ``run_sweep`` (as a job it can stop: ``sweep_job``), after showing
``estimate_seconds``: one knob at a time, everything else as its base config, each value trained as
``train_pair`` trains (an FM, then with ``pretrain``, the default, an AFM started exactly at it). An
FM does not depend on an AFM-only knob (t, lambda, the attention dropout), so such a sweep trains one
FM per seed and trains every AFM after it; its FM rows repeat that one FM as the baseline.
``python -m afm reproduce`` (``afm.reproduce``) instead selects t, lambda and dropout jointly over a
grid and draws the paper's one-knob figures as cuts through it, so its numbers and a sweep's agree
only where the settings do.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .config import TrainConfig
from .data import Dataset
from .metrics import evaluate, label_range
from .train import History, Progress, train_model, train_pair

# The type each sweepable knob has in TrainConfig (values from text or URLs are converted to it).
KNOB_TYPES: dict[str, type] = {
    "dropout": float,
    "attention_dropout": float,
    "attention_factor": int,
    "l2_attention": float,
    "embed_dim": int,
    "lr": float,
}
# Which models a sweep of each parameter changes (t and lambda only exist in AFM).
SWEEPABLE: dict[str, tuple[str, ...]] = {
    "dropout": ("afm", "fm"),
    "attention_dropout": ("afm",),
    "attention_factor": ("afm",),
    "l2_attention": ("afm",),
    "embed_dim": ("afm", "fm"),
    "lr": ("afm", "fm"),
}


def parse_values(parameter: str, text: str) -> list[Any]:
    """The values typed for ``parameter`` ("0, 0.1 0.2"), checked; ValueError names the bad one."""
    items = [item for item in re.split(r"[,\s;]+", text.strip()) if item]
    if not items:
        raise ValueError("type at least one value")
    values = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{item!r} is not a number") from None
        if parameter == "attention_factor" and (value < 1 or value != int(value)):
            raise ValueError(f"t must be a whole number >= 1, got {item}")
        if "dropout" in parameter and not 0 <= value < 1:
            raise ValueError(f"a dropout ratio must be in [0, 1), got {item}")
        if parameter == "l2_attention" and value < 0:
            raise ValueError(f"λ must be >= 0, got {item}")
        values.append(int(value) if parameter == "attention_factor" else value)
    return list(dict.fromkeys(values))  # drop repeats, keep the order typed


def plan(parameter: str, values: Sequence[Any], seeds: Sequence[int] = (0,)) -> list[tuple[str, Any, int]]:
    """The steps of a sweep, in order: ``(step, value, seed)``. ``"pair"`` trains an FM and then its AFM;
    for an AFM-only knob ``"fm"`` (value None) trains the seed's FM once and each ``"afm"`` starts from it."""
    if parameter not in SWEEPABLE:
        raise ValueError(f"cannot sweep {parameter!r}; choose one of {sorted(SWEEPABLE)}")
    if not values:
        raise ValueError("a sweep needs at least one value")
    values = list(dict.fromkeys(KNOB_TYPES[parameter](v) for v in values))
    steps: list[tuple[str, Any, int]] = []
    for seed in seeds:
        if "fm" in SWEEPABLE[parameter]:
            steps += [("pair", value, seed) for value in values]
        else:
            steps += [("fm", None, seed)] + [("afm", value, seed) for value in values]
    return steps


def trainings(steps: Sequence[tuple[str, Any, int]]) -> dict[str, int]:
    """How many FM and AFM trainings ``steps`` run: ``{"fm": n, "afm": n}``."""
    return {kind: sum(step in (kind, "pair") for step, _, _ in steps) for kind in ("fm", "afm")}


def seconds_per_epoch(
    train: Dataset,
    valid: Dataset | None,
    base: TrainConfig,
    rows: int = 2048,
    repeats: int = 3,
    statistic: str = "median",
) -> dict[str, float]:
    """One epoch's seconds for FM and AFM as ``base`` sets them (``{"fm": s, "afm": s}``), from one short
    timing: the median (``statistic="min"``: the fastest) of ``repeats`` epochs on at most ``rows`` training
    rows (after a warm-up), scaled to the whole part, plus one validation pass. The median, because the sweep
    runs under the load the machine has now, and the fastest of three short runs is the luckiest of them
    (benchmarks/sweep_estimate.py compares the two with both cores busy)."""
    if statistic not in ("median", "min"):
        raise ValueError(f"statistic must be 'median' or 'min', got {statistic!r}")
    config = dataclasses.replace(base, epochs=1, patience=None, pretrain=False)
    head = train.subset(range(min(rows, len(train))))
    out = {}
    for kind in ("fm", "afm"):
        model, _ = train_model(kind, config, head)  # warm-up: a process's first trainings take seconds more
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            train_model(kind, config, head)
            runs.append(time.perf_counter() - start)
        seconds = (min(runs) if statistic == "min" else statistics.median(runs)) * len(train) / len(head)
        if valid is not None:
            start = time.perf_counter()
            evaluate(model, valid, base.task)
            seconds += time.perf_counter() - start
        out[kind] = seconds
    return out


def measured_per_epoch(frame: pd.DataFrame) -> dict[str, float] | None:
    """Seconds per epoch of each kind as a finished sweep measured them (None when it lacks either kind)."""
    if not {"model", "seconds", "epochs_run"} <= set(frame.columns):
        return None  # a sweep stopped before its first value
    ran = frame[frame["seconds"] > 0]
    per = {kind: rows["seconds"].sum() / max(rows["epochs_run"].sum(), 1) for kind, rows in ran.groupby("model")}
    return {kind: float(per[kind]) for kind in ("fm", "afm")} if {"fm", "afm"} <= set(per) else None


def estimate_seconds(
    steps: Sequence[tuple[str, Any, int]], per_epoch: dict[str, float], epochs: dict[str, float]
) -> float:
    """Seconds ``steps`` (``plan``) should take: trainings x epochs per training x seconds per epoch."""
    count = trainings(steps)
    return float(sum(count[kind] * epochs[kind] * per_epoch[kind] for kind in count))


def expected_epochs(base: TrainConfig, histories: dict[str, Any] | None = None) -> dict[str, float]:
    """Epochs a training of each kind should run: the cap, or with early stopping the length of the
    given histories (the session's last trainings, frames or lists of epochs), else 4 x patience."""
    out = {}
    for kind in ("fm", "afm"):
        cap = base.pretrain_epochs if kind == "fm" and base.pretrain and base.pretrain_epochs else base.epochs
        seen = len(histories[kind]) if histories and kind in histories and len(histories[kind]) else None
        out[kind] = float(cap if base.patience is None else min(cap, seen or 4 * base.patience))
    return out


def sweep_job(
    parameter: str,
    values: Sequence[Any],
    train: Dataset,
    valid: Dataset,
    *,
    base: TrainConfig,
    seeds: Sequence[int] = (0,),
) -> Callable[[Any], pd.DataFrame]:
    """``run_sweep`` as a job's work: ``fn(job)`` reports to ``job.report(fraction, text)`` and stops
    when it answers True (the dashboard's worker pool, ``app/jobs.py``), returning the rows so far."""

    def work(job: Any) -> pd.DataFrame:
        return run_sweep(parameter, values, train, valid, base=base, seeds=seeds, callback=job.report)

    return work


def run_sweep(
    parameter: str,
    values: Sequence[Any],
    train: Dataset,
    valid: Dataset,
    *,
    base: TrainConfig | None = None,
    seeds: Sequence[int] = (0,),
    test: Dataset | None = None,
    callback: Callable[[float, str], bool | None] | None = None,
) -> pd.DataFrame:
    """Train FM and AFM for every (value, seed) and return one row per model, value and seed.

    Columns: ``model``, ``parameter`` (name), ``value``, ``seed``, ``valid_<metric>`` for the
    task's metrics (the restored best validation epoch), ``test_<metric>`` when ``test`` is given,
    ``best_epoch``, ``epochs_run``, ``seconds`` (0 for the repeated rows of a shared FM).
    ``callback(fraction, text)`` is called every few batches (``Job.report`` fits); returning True
    stops the sweep: the rows of the values finished so far are returned, the interrupted
    training's are not, and ``frame.attrs["stopped"]`` is True.
    """
    steps = plan(parameter, values, seeds)
    base = base or TrainConfig()
    clip_range = label_range(train, base.task)
    total = sum(trainings(steps).values())
    rows: list[dict[str, Any]] = []
    shared: dict[int, tuple[Any, History]] = {}  # seed -> the FM every AFM of an AFM-only sweep starts from
    state: dict[str, Any] = {"done": 0, "step": steps[0], "stopped": False}

    def row(kind: str, value: Any, seed: int, model: Any, history: History, seconds: float) -> dict[str, Any]:
        out: dict[str, Any] = {"model": kind, "parameter": parameter, "value": value, "seed": seed}
        for name, part in (("valid", valid), ("test", test)):
            if part is not None:
                metrics = evaluate(model, part, base.task, label_range=clip_range)
                out.update({f"{name}_{k}": v for k, v in metrics.items() if k != "n"})
        return out | {"best_epoch": history.best_epoch, "epochs_run": len(history.epochs), "seconds": seconds}

    def progress(p: Progress) -> bool:
        if callback is not None and not state["stopped"]:
            step, value, seed = state["step"]
            kind = p.model.config.kind if p.model is not None else step
            done = state["done"] + (step == "pair" and kind == "afm")
            what = f"{parameter} = {value}" if value is not None else "the FM all AFMs start from"
            text = f"{done}/{total} trainings · {kind.upper()}, {what}, seed {seed} · epoch {p.epoch}"
            state["stopped"] = bool(callback((done + min(p.fraction, 1.0)) / total, text))
        return state["stopped"]

    for step, value, seed in steps:
        state["step"] = (step, value, seed)
        config = dataclasses.replace(base, seed=seed, **({} if value is None else {parameter: value}))
        if step == "fm":  # trained as train_pair trains the FM it pre-trains (for config.fm_epochs)
            shared[seed] = train_model("fm", config.replace(epochs=config.fm_epochs), train, valid, callback=progress)
        else:
            pair = train_pair(config, train, valid, callback=progress, fm=shared.get(seed))
        if state["stopped"]:
            break  # the interrupted training is not a result
        if step != "fm":
            fm_seconds = _seconds(pair["fm"][1]) if step == "pair" or not rows or rows[-1]["seed"] != seed else 0.0
            rows.append(row("fm", value, seed, *pair["fm"], fm_seconds))
            rows.append(row("afm", value, seed, *pair["afm"], _seconds(pair["afm"][1])))
        state["done"] += 2 if step == "pair" else 1
    if callback is not None and not state["stopped"]:
        callback(1.0, f"done: {total} trainings")
    frame = pd.DataFrame(rows)
    frame.attrs["stopped"] = state["stopped"]
    return frame


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (model, parameter, value): ``<metric>`` and ``<metric>_std``."""
    metrics = [c for c in frame.columns if c.startswith(("valid_", "test_"))]
    grouped = frame.groupby(["model", "parameter", "value"], sort=False)[metrics]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    return pd.concat([mean, std], axis=1).reset_index()


def _seconds(history: History) -> float:
    """Seconds of training (the epochs' own timings)."""
    return float(sum(epoch.get("seconds", 0.0) for epoch in history.epochs))
