"""The AFM paper's experiments as definitions: what is trained, on which data, how it is measured and selected.

For each data set (Frappe from a folder, and the bundled sample; ``Source``) and each setting (the paper's
regression setting: squared loss, RMSE and MAE on the ±1 labels; and the binary setting: log loss, AUC),
``Setting.run``

1. trains FM over a dropout grid, and two AFMs over a grid of t, lambda (L2 on W) and dropout: the
   FM-pretrained AFM (``AFM.from_fm``: it starts exactly at the selected FM of the same seed, so its
   predictions equal that FM's before training) and the AFM without pre-training. The AFM grid is
   staged: lambda x dropout jointly at t = 16 (stage 1), then t at the chosen lambda and dropout
   (stage 2), so lambda is chosen at the dropout it is used with and t is selected, 16 included.
   Every grid point is trained with every seed; seed s also draws split s of the training pool (the
   test set is fixed). Each model's configuration is the grid point with the best mean *validation*
   loss (RMSE or log loss); the test set never chooses anything;
2. ends with two controls of the FM-pretrained AFM: its FM trained on at the fine-tune learning rate,
   and the selected AFM with its attention frozen uniform;

and ``Setting.curves`` records train, validation and test loss per epoch (the paper's Figure 5) on
cumulative epochs: the FM-pretrained AFM's axis includes its FM pre-training, so at every epoch both
models have trained as many epochs. ``table2_runs`` / ``table2_summary`` (Table 2: the selected grid
points' own runs, no retraining) and ``slices`` / ``slice_summary`` (the paper's one-knob figures as cuts
through the grid) compute tables from a grid's rows.

This module computes and returns; it writes no file. In a checkout of the repository,
``python benchmarks/reproduce.py`` runs every setting and writes the CSVs and figures, and
``benchmarks/reproduce_report.py`` turns those files into the tables and claims of docs/REPRODUCTION.md.

Frappe protocol: the training file is not available here, so models train on the validation file
with a seeded eighth held out for early stopping and selection, and are tested on the test file.
Absolute numbers therefore differ from the paper's.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import datasets
from .data import Dataset, split
from .explain import explain_dataset
from .model import AFM, FM
from .train import History, Progress, TrainConfig, evaluate, fit, label_range, train_model

TASKS = ("regression", "binary")
LOSS = {"regression": "rmse", "binary": "logloss"}  # what training minimises and selection uses
REPORTED = {"regression": ("rmse", "mae"), "binary": ("auc", "logloss")}
NAMES = {"rmse": "RMSE", "mae": "MAE", "auc": "AUC", "logloss": "log loss", "accuracy": "accuracy"}

FM_ROW = "FM"
FM_MORE = "FM, trained on at the fine-tune lr"
PRE = "AFM (FM-pretrained)"
PRE0 = "AFM (FM-pretrained), λ = 0"
UNIFORM = "AFM (FM-pretrained), attention frozen uniform"
SCRATCH = "AFM (no pre-training)"
SCRATCH0 = "AFM (no pre-training), λ = 0"
TABLE2_MODELS = (FM_ROW, FM_MORE, PRE, PRE0, UNIFORM, SCRATCH, SCRATCH0)
KIND_NAMES = {
    "fm": FM_ROW,
    "fm-continued": FM_MORE,
    "afm-pretrained": PRE,
    "afm-uniform": UNIFORM,
    "afm-scratch": SCRATCH,
}
AFM_KINDS = ("afm-pretrained", "afm-scratch")  # the two AFMs with a grid
STARTS_FROM_FM = ("fm-continued", "afm-pretrained", "afm-uniform")  # runs that start at the selected FM


def _as_fm(model: AFM | FM) -> FM:
    """``train_model("fm", ...)``'s model, typed as the FM it is."""
    if not isinstance(model, FM):
        raise TypeError(f"expected an FM, got {type(model).__name__}")
    return model


@dataclass
class Plan:
    """How much to run: ``quick`` is a smoke test (seconds to a minute); ``full`` is what the docs report.

    Every training setting is here and set explicitly in each ``TrainConfig`` (``base_config``), so the
    reproduction does not move when ``TrainConfig``'s defaults do.
    """

    cap: int  # epoch cap of every training; patience-based early stopping ends it first
    patience: int
    seeds: tuple[int, ...]  # seed s: model seed s and split s of the training pool
    fm_dropouts: tuple[float, ...]
    afm_dropouts: tuple[float, ...]
    lambdas: tuple[float, ...]  # L2 on the attention network's W
    factors: tuple[int, ...]  # t, stage 2 (must hold base_factor)
    curve_epochs: int  # Figure 5: cumulative epochs per model
    base_factor: int = 16  # t of stage 1
    embed_dim: int = 16
    batch_size: int = 1024
    lr: float = 0.01  # FM and the AFM without pre-training
    finetune_lr: float = 0.003  # the FM-pretrained AFM, after its FM
    optimizer: str = "adam"
    attention_dropout: float = 0.0  # the paper regularises the attention network by lambda only
    p_init: str = "normal"  # the AFM without pre-training

    @classmethod
    def quick(cls) -> Plan:
        return cls(2, 1, (0, 1), (0.2,), (0.2,), (0.0, 0.1), (4, 16), 3)

    @classmethod
    def full(cls) -> Plan:
        return cls(
            50, 3, (0, 1, 2), (0.0, 0.1, 0.2, 0.3, 0.5), (0.0, 0.2, 0.5), (0.0, 0.001, 0.1, 10.0), (4, 16, 64), 40
        )

    def __post_init__(self) -> None:
        if self.base_factor not in self.factors:
            raise ValueError(f"the t grid {self.factors} must hold the stage-1 t {self.base_factor}")
        if 0.0 not in self.lambdas:
            raise ValueError("the lambda grid must hold 0 (Table 2's lambda = 0 rows)")


def base_config(plan: Plan, task: str) -> TrainConfig:
    """Every field of ``TrainConfig`` set from the plan (grid values replace dropout, t, lambda, seed)."""
    return TrainConfig(
        task=task,
        embed_dim=plan.embed_dim,
        attention_factor=plan.base_factor,
        dropout=0.0,
        attention_dropout=plan.attention_dropout,
        p_init=plan.p_init,
        l2_attention=0.0,
        lr=plan.lr,
        optimizer=plan.optimizer,
        epochs=plan.cap,
        batch_size=plan.batch_size,
        patience=plan.patience,
        seed=0,
        pretrain=False,  # the FM-pretrained AFM is built here from the selected FM (AFM.from_fm)
        pretrain_epochs=None,
        finetune_lr=None,
    )


# ---------------------------------------------------------------------------- data


@dataclass
class Source:
    """A data set: ``pool(task)`` gives (training pool, fixed test set); seed s splits the pool."""

    name: str
    pool: Callable[[str], tuple[Dataset, Dataset]]
    valid_fraction: float
    protocol: str


def frappe_source(root: Path) -> Source:
    cache: dict[str, dict[str, Dataset]] = {}

    def pool(task: str) -> tuple[Dataset, Dataset]:
        if "parts" not in cache:
            cache["parts"] = datasets.frappe(root)
        parts = cache["parts"]
        if "validation" not in parts or "test" not in parts:
            raise ValueError(f"{root}: needs frappe.validation.libfm and frappe.test.libfm")
        return parts["validation"], parts["test"]

    return Source("frappe", pool, 1 / 8, "validation file split 7/8 train, 1/8 valid by the seed; test file")


def sample_source() -> Source:
    def pool(task: str) -> tuple[Dataset, Dataset]:
        pool, test = split(datasets.sample(task), [0.9, 0.1], seed=0)
        return pool, test

    return Source("sample", pool, 1 / 9, "a fixed 10% test set (seed 0); the rest split 80/10 by the seed")


def seed_parts(source: Source, task: str, seed: int) -> dict[str, Dataset]:
    pool, test = source.pool(task)
    train, valid = split(pool, [1 - source.valid_fraction, source.valid_fraction], seed)
    return {"train": train, "valid": valid, "test": test}


# ---------------------------------------------------------------------------- measurements


def attention_stats(model: AFM, data: Dataset) -> tuple[float, float]:
    """How far AFM's attention is from FM's uniform 1/P on the rows of ``data``: ``(entropy, spread)``.

    entropy: the mean over rows of the attention's entropy divided by log P (1 = uniform);
    spread: the mean over rows of the standard deviation of P * a_ij over the row's pairs (0 = uniform;
    0.1 means the weights typically differ from 1/P by 10%).
    """
    a = explain_dataset(model, data).attention.double()
    n_pairs = a.shape[1]
    if n_pairs < 2:
        return float("nan"), float("nan")
    entropy = -(a * a.clamp_min(1e-300).log()).sum(1)
    spread = (a * n_pairs).std(1, correction=0)
    return float(entropy.mean() / math.log(n_pairs)), float(spread.mean())


def early_stopping_epoch(start: float, values: list[float], patience: int, lower: bool = True) -> int:
    """The epoch ``fit`` keeps with this patience, from the validation values of a longer training
    (0: the start). Mirrors ``fit``'s rule, so a curve run finds the epoch Table 2's run stopped at."""
    best, best_epoch, waited = start, 0, 0
    for epoch, value in enumerate(values, 1):
        if value < best if lower else value > best:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
        if waited >= patience:
            break
    return best_epoch


class Setting:
    """One data set in one setting: the grids, the selection, Table 2 and the curves."""

    def __init__(self, source: Source, task: str, plan: Plan, log: Callable[[str], None]) -> None:
        self.source, self.task, self.plan, self.log = source, task, plan, log
        self.tag = f"{source.name}-{task}"
        self.loss = LOSS[task]
        self.base = base_config(plan, task)
        self.parts = {seed: seed_parts(source, task, seed) for seed in plan.seeds}
        self.fms: dict[tuple[float, int], FM] = {}
        self.rows: list[dict[str, Any]] = []

    # -- one training each
    def _record(
        self, kind: str, stage: int, point: dict[str, Any], seed: int, model: AFM | FM, history: History, **extra: Any
    ) -> dict[str, Any]:
        parts = self.parts[seed]
        clip = label_range(parts["train"], self.task)
        row: dict[str, Any] = {"model": kind, "stage": stage, **point, "seed": seed}
        for part in ("valid", "test"):
            metrics = evaluate(model, parts[part], self.task, label_range=clip)
            row.update({f"{part}_{k}": v for k, v in metrics.items() if k != "n"})
        stats = attention_stats(model, parts["test"]) if isinstance(model, AFM) else (float("nan"), float("nan"))
        row["entropy"], row["spread"] = stats
        row["best_epoch"] = history.best_epoch
        row["epochs_run"] = len(history.epochs)
        row["hit_cap"] = len(history.epochs) >= self.plan.cap and history.stopped == "completed"
        row["stopped"] = history.stopped
        row.update(extra)
        self.rows.append(row)
        return row

    def run_fm(self, dropout: float, seed: int) -> None:
        started = time.perf_counter()
        parts = self.parts[seed]
        config = dataclasses.replace(self.base, dropout=dropout, seed=seed)
        model, history = train_model("fm", config, parts["train"], parts["valid"])
        self.fms[(dropout, seed)] = _as_fm(model)  # the start of the FM-pretrained AFMs
        point = {"attention_factor": float("nan"), "l2_attention": float("nan"), "dropout": dropout}
        self._record("fm", 0, point, seed, model, history, seconds=time.perf_counter() - started)

    def run_afm(self, kind: str, stage: int, point: dict[str, Any], seed: int, fm_dropout: float) -> None:
        started = time.perf_counter()
        parts = self.parts[seed]
        dropout = float(point["dropout"])
        t = 0 if kind == "fm-continued" else int(point["attention_factor"])
        lam = 0.0 if kind == "fm-continued" else float(point["l2_attention"])
        extra: dict[str, Any] = {}
        if kind in STARTS_FROM_FM:
            fm = self.fms[(fm_dropout, seed)]
            fm_row = next(
                r for r in self.rows if r["model"] == "fm" and r["dropout"] == fm_dropout and r["seed"] == seed
            )
            model: AFM | FM
            if kind == "fm-continued":  # the control for the extra epochs at a smaller learning rate
                model = copy.deepcopy(fm)
            else:
                model = AFM.from_fm(copy.deepcopy(fm), t, dropout, self.plan.attention_dropout, seed=seed)
                if kind == "afm-uniform":  # the control for p: h stays 0, so every a_ij stays 1/P
                    model.h.requires_grad_(False)
            history = fit(
                model,
                parts["train"],
                parts["valid"],
                task=self.task,
                epochs=self.plan.cap,
                batch_size=self.plan.batch_size,
                lr=self.plan.finetune_lr,
                optimizer=self.plan.optimizer,
                l2_attention=lam,
                seed=seed,
                patience=self.plan.patience,
            )
            extra = {"fm_epochs": fm_row["epochs_run"], "fm_hit_cap": fm_row["hit_cap"]}
            extra["kept_start"] = history.best_epoch == 0
        else:
            config = dataclasses.replace(self.base, attention_factor=t, l2_attention=lam, dropout=dropout, seed=seed)
            model, history = train_model("afm", config, parts["train"], parts["valid"])
        self._record(kind, stage, point, seed, model, history, **extra, seconds=time.perf_counter() - started)

    # -- the grids
    def _mean_loss(self, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[tuple[dict[str, Any], float]]:
        """(point, mean validation loss over seeds) in grid order."""
        points: dict[tuple[Any, ...], list[float]] = {}
        for r in rows:
            points.setdefault(tuple(r[k] for k in keys), []).append(r[f"valid_{self.loss}"])
        return [(dict(zip(keys, p, strict=True)), statistics.mean(v)) for p, v in points.items()]

    def _best(self, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
        """The point with the best mean validation loss; ties go to the first in grid order."""
        scored = self._mean_loss(rows, keys)
        best = min(range(len(scored)), key=lambda i: (scored[i][1], i))
        return scored[best][0]

    def run(self) -> dict[str, Any]:
        plan, point_keys = self.plan, ("attention_factor", "l2_attention", "dropout")
        started = time.perf_counter()
        for dropout in plan.fm_dropouts:
            for seed in plan.seeds:
                self.run_fm(dropout, seed)
        fm_dropout = float(self._best([r for r in self.rows if r["model"] == "fm"], ("dropout",))["dropout"])
        self.log(f"{self.tag}: FM over dropout {list(plan.fm_dropouts)} in {time.perf_counter() - started:.0f} s")
        chosen: dict[str, Any] = {"fm": {"dropout": fm_dropout}}
        for kind in AFM_KINDS:
            started = time.perf_counter()
            stage1 = [
                {"attention_factor": plan.base_factor, "l2_attention": lam, "dropout": d}
                for d in plan.afm_dropouts
                for lam in plan.lambdas
            ]
            for point in stage1:
                for seed in plan.seeds:
                    self.run_afm(kind, 1, point, seed, fm_dropout)
            best1 = self._best([r for r in self.rows if r["model"] == kind], point_keys)
            for t in plan.factors:
                if t != plan.base_factor:
                    for seed in plan.seeds:
                        self.run_afm(kind, 2, {**best1, "attention_factor": t}, seed, fm_dropout)
            rows = [r for r in self.rows if r["model"] == kind]
            best = self._best(
                [r for r in rows if r["l2_attention"] == best1["l2_attention"] and r["dropout"] == best1["dropout"]],
                point_keys,
            )
            best0 = self._best([r for r in rows if r["l2_attention"] == 0.0], point_keys)
            chosen[kind] = {"stage1": best1, "selected": best, "lambda0": best0}
            self.log(
                f"{self.tag}: {KIND_NAMES[kind]}, {len(rows)} runs in {time.perf_counter() - started:.0f} s; "
                f"chosen {best}"
            )
        # the controls of the FM-pretrained AFM: its FM trained on as long and at the same learning rate,
        # and the selected AFM with its attention frozen uniform (only p, w0, w and V learn)
        chosen["fm-continued"] = {"dropout": fm_dropout}
        chosen["afm-uniform"] = {**chosen["afm-pretrained"]["selected"], "l2_attention": 0.0}
        nan = float("nan")
        for seed in plan.seeds:
            point = {"attention_factor": nan, "l2_attention": nan, "dropout": fm_dropout}
            self.run_afm("fm-continued", 3, point, seed, fm_dropout)
            self.run_afm("afm-uniform", 3, chosen["afm-uniform"], seed, fm_dropout)
        return chosen

    # -- Figure 5
    def curves(self, chosen: dict[str, Any]) -> pd.DataFrame:
        """Train, valid and test loss after every epoch, seed 0, on cumulative epochs (no early stopping).

        FM trains ``curve_epochs`` epochs. The FM-pretrained AFM starts from that FM's weights at the
        epoch early stopping would have kept (the start of Table 2's AFM of seed 0) and trains for the
        remaining epochs, so its axis continues after its FM's. The AFM without pre-training trains
        ``curve_epochs`` epochs from random weights.
        """
        plan, seed = self.plan, self.plan.seeds[0]
        parts = self.parts[seed]
        clip = label_range(parts["train"], self.task)
        metrics = ["loss"] + (["auc"] if self.task == "binary" else [])
        rows: list[dict[str, Any]] = []
        snapshots: dict[int, dict[str, torch.Tensor]] = {}

        def recorder(name: str, phase: str, offset: int, keep: bool = False) -> Callable[[Progress], None]:
            def record(p: Progress) -> None:
                if not p.epoch_end or p.model is None:
                    return
                if keep:
                    snapshots[p.epoch] = {k: v.detach().clone() for k, v in p.model.state_dict().items()}
                for part in ("train", "valid", "test"):
                    m = evaluate(p.model, parts[part], self.task, label_range=clip)
                    row = {"model": name, "phase": phase, "epoch": offset + p.epoch, "part": part}
                    row.update({k: m[self.loss if k == "loss" else k] for k in metrics})
                    rows.append(row)

            return record

        fm_dropout = chosen["fm"]["dropout"]
        config = dataclasses.replace(self.base, dropout=fm_dropout, seed=seed, epochs=plan.curve_epochs, patience=None)
        trained, history = train_model(
            "fm", config, parts["train"], parts["valid"], callback=recorder(FM_ROW, "FM", 0, True)
        )
        fm = _as_fm(trained)
        values = [e[f"valid_{self.loss}"] for e in history.epochs]
        start = history.start[f"valid_{self.loss}"] if history.start else math.inf
        handover = max(early_stopping_epoch(start, values, plan.patience), 1)
        table2 = next(r for r in self.rows if r["model"] == "fm" and r["dropout"] == fm_dropout and r["seed"] == seed)
        if handover != table2["best_epoch"]:  # only when Table 2's FM ran past curve_epochs
            self.log(f"{self.tag}: Figure 5's FM hands over at epoch {handover}, Table 2's kept {table2['best_epoch']}")
        for r in [r for r in rows if r["model"] == FM_ROW and r["epoch"] <= handover]:
            rows.append({**r, "model": PRE, "phase": "FM pre-training"})
        if handover < plan.curve_epochs:
            fm.load_state_dict(snapshots[handover])
            best = chosen["afm-pretrained"]["selected"]
            afm = AFM.from_fm(
                fm, int(best["attention_factor"]), float(best["dropout"]), plan.attention_dropout, seed=seed
            )
            fit(
                afm,
                parts["train"],
                parts["valid"],
                task=self.task,
                epochs=plan.curve_epochs - handover,
                batch_size=plan.batch_size,
                lr=plan.finetune_lr,
                optimizer=plan.optimizer,
                l2_attention=float(best["l2_attention"]),
                seed=seed,
                patience=None,
                callback=recorder(PRE, "AFM", handover),
            )
        best = chosen["afm-scratch"]["selected"]
        config = dataclasses.replace(
            self.base,
            attention_factor=int(best["attention_factor"]),
            l2_attention=float(best["l2_attention"]),
            dropout=float(best["dropout"]),
            seed=seed,
            epochs=plan.curve_epochs,
            patience=None,
        )
        train_model("afm", config, parts["train"], parts["valid"], callback=recorder(SCRATCH, "AFM", 0))
        frame = pd.DataFrame(rows).rename(columns={"loss": self.loss})
        frame["handover"] = handover
        return frame


# ---------------------------------------------------------------------------- tables from the grid


def _pick(grid: pd.DataFrame, kind: str, point: dict[str, Any]) -> pd.DataFrame:
    part = grid[grid["model"] == kind]
    for key, value in point.items():
        part = part[part[key] == value]
    return part


def table2_runs(grid: pd.DataFrame, chosen: dict[str, Any]) -> pd.DataFrame:
    """The runs of each Table 2 row: the selected grid points, every seed."""
    picks = [
        (FM_ROW, "fm", chosen["fm"]),
        (FM_MORE, "fm-continued", chosen["fm-continued"]),
        (PRE, "afm-pretrained", chosen["afm-pretrained"]["selected"]),
        (PRE0, "afm-pretrained", chosen["afm-pretrained"]["lambda0"]),
        (UNIFORM, "afm-uniform", chosen["afm-uniform"]),
        (SCRATCH, "afm-scratch", chosen["afm-scratch"]["selected"]),
        (SCRATCH0, "afm-scratch", chosen["afm-scratch"]["lambda0"]),
    ]
    frames = [_pick(grid, kind, point).assign(row=name) for name, kind, point in picks]
    return pd.concat(frames, ignore_index=True)


def table2_summary(runs: pd.DataFrame, dataset: str, task: str) -> list[dict[str, Any]]:
    out = []
    for name, part in runs.groupby("row", sort=False):
        first = part.iloc[0]
        row: dict[str, Any] = {"dataset": dataset, "setting": task, "model": name, "seeds": len(part)}
        for key in ("attention_factor", "l2_attention", "dropout"):
            row[key] = first[key]
        for m in REPORTED[task]:
            values = list(part[f"test_{m}"])
            row[f"test_{m}"] = statistics.mean(values)
            row[f"test_{m}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row[f"valid_{LOSS[task]}"] = statistics.mean(part[f"valid_{LOSS[task]}"])
        attention = first["model"] not in ("fm", "fm-continued")
        row["entropy"] = statistics.mean(part["entropy"]) if attention else float("nan")
        row["spread"] = statistics.mean(part["spread"]) if attention else float("nan")
        pretrained = first["model"] in STARTS_FROM_FM
        row["epochs"] = " / ".join(
            f"{int(r.fm_epochs)}+{int(r.epochs_run)}" if pretrained else f"{int(r.epochs_run)}"
            for r in part.itertuples()
        )
        caps = part["hit_cap"].astype(bool)
        if pretrained:
            caps = caps | part["fm_hit_cap"].astype(bool)
        row["cap_runs"] = int(caps.sum())
        row["kept_start"] = int(part["kept_start"].astype(bool).sum()) if pretrained else float("nan")
        out.append(row)
    return out


def slices(grid: pd.DataFrame, chosen: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The paper's one-knob figures as cuts through the grid: rows of every seed at each value.

    dropout: every FM run; each AFM at stage 1's chosen lambda, t = 16. t: each AFM at stage 1's
    chosen lambda and dropout. lambda: each AFM at stage 1's chosen dropout, t = 16.
    """
    out: dict[str, list[pd.DataFrame]] = {"dropout": [], "attention_factor": [], "l2_attention": []}
    out["dropout"].append(grid[grid["model"] == "fm"].assign(value=lambda f: f["dropout"]))
    for kind in AFM_KINDS:
        s1 = chosen[kind]["stage1"]
        rows = grid[grid["model"] == kind]
        at = rows[rows["attention_factor"] == s1["attention_factor"]]
        cuts = {
            "dropout": at[at["l2_attention"] == s1["l2_attention"]],
            "attention_factor": rows[(rows["l2_attention"] == s1["l2_attention"]) & (rows["dropout"] == s1["dropout"])],
            "l2_attention": at[at["dropout"] == s1["dropout"]],
        }
        for parameter, cut in cuts.items():
            out[parameter].append(cut.assign(value=cut[parameter]))
    result = {}
    for parameter, frames in out.items():
        frame = pd.concat(frames, ignore_index=True)
        frame["label"] = frame["model"].map(KIND_NAMES)
        frame["parameter"] = parameter
        result[parameter] = frame
    return result


def slice_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (model, value), as ``plots.sweep_plot`` reads them."""
    metrics = [c for c in frame.columns if c.startswith(("valid_", "test_")) or c in ("entropy", "spread")]
    grouped = frame.groupby(["label", "parameter", "value"], sort=False)[metrics]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    return pd.concat([mean, std], axis=1).reset_index().rename(columns={"label": "model"})
