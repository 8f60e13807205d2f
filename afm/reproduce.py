"""Reproduce the AFM paper's experiments on the data we have: ``python -m afm reproduce``.

For each data set (Frappe from a folder you give, else ``$AFM_FRAPPE``, else ``data/frappe`` or ``data/``
where ``python -m afm download frappe`` writes, when present; and the bundled sample) and each setting
(the paper's regression setting: squared loss, RMSE and MAE on the ±1 labels; and the binary setting:
log loss, AUC), it

1. trains FM over a dropout grid, and two AFMs over a grid of t, lambda (L2 on W) and dropout: the
   FM-pretrained AFM (``AFM.from_fm``: it starts exactly at the selected FM of the same seed, so its
   predictions equal that FM's before training) and the AFM without pre-training. The AFM grid is
   staged: lambda x dropout jointly at t = 16 (stage 1), then t at the chosen lambda and dropout
   (stage 2), so lambda is chosen at the dropout it is used with and t is selected, 16 included.
   Every grid point is trained with every seed; seed s also draws split s of the training pool (the
   test set is fixed). Each model's configuration is the grid point with the best mean *validation*
   loss (RMSE or log loss); the test set never chooses anything;
2. reports Table 2 from the selected grid points' runs (the same seeds, no retraining): test metrics
   mean ± std, the attention entropy over log P (1 = uniform attention) for every AFM row, the epochs
   run, how many runs reached the epoch cap and how many FM-pretrained runs kept their FM start
   (no epoch beat it on validation); plus the best AFMs with lambda = 0;
3. records train, validation and test loss per epoch (the paper's Figure 5) on cumulative epochs: the
   FM-pretrained AFM's axis includes its FM pre-training, so at every epoch both models have trained
   as many epochs;
4. writes the document's tables (``report``, ``claims``): ``fill`` puts them into docs/REPRODUCTION.md
   and ``tests/test_reproduce.py`` checks that the committed document agrees with the committed CSVs.

Frappe protocol: the training file is not available here, so models train on the validation file
with a seeded eighth held out for early stopping and selection, and are tested on the test file.
Absolute numbers therefore differ from the paper's.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import datasets, plots
from .data import Dataset, split
from .explain import explain_dataset
from .model import AFM, FM
from .train import History, Progress, TrainConfig, evaluate, fit, label_range, train_model

TASKS = ("regression", "binary")
LOSS = {"regression": "rmse", "binary": "logloss"}  # what training minimises and selection uses
REPORTED = {"regression": ("rmse", "mae"), "binary": ("auc", "logloss")}
LOWER_IS_BETTER = {"rmse": True, "mae": True, "logloss": True, "auc": False, "accuracy": False}
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
EQUAL = 1e-6  # metric differences below this are float rounding (an AFM that kept its FM start)
NEARLY_UNIFORM = 0.1  # attention spread below this: weights within about 10% of 1/P


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


# ---------------------------------------------------------------------------- the run


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
    from . import native

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


# ---------------------------------------------------------------------------- the document's tables


def _f(value: float, digits: int = 4) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pm(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}"


def _g(value: Any) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):g}"


def _tags(out: Path) -> list[tuple[str, str]]:
    table = pd.read_csv(out / "table2.csv")
    return list(dict.fromkeys(zip(table["dataset"], table["setting"], strict=True)))


def table2_markdown(out: Path) -> str:
    table = pd.read_csv(out / "table2.csv")
    run = json.loads((out / "run.json").read_text())
    cap = run["plan"]["cap"]
    blocks = []
    for (dataset, task), part in table.groupby(["dataset", "setting"], sort=False):
        loss, metrics = LOSS[task], REPORTED[task]
        head = ["model", "t", "λ", "dropout", *(f"test {NAMES[m]}" for m in metrics), f"valid {NAMES[loss]}"]
        head += ["entropy / log P", "spread of P·a", "epochs per seed", f"runs at the cap ({cap})", "kept the FM start"]
        lines = [f"**{dataset}, {task}** (test: mean ± std over {int(part['seeds'].iloc[0])} seeds)", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in part.to_dict("records"):
            cells = [r["model"], _g(r["attention_factor"]), _g(r["l2_attention"]), _g(r["dropout"])]
            cells += [_pm(r[f"test_{m}"], r[f"test_{m}_std"]) for m in metrics]
            cells += [_f(r[f"valid_{loss}"]), _f(r["entropy"], 3), _f(r["spread"], 3)]
            cells += [str(r["epochs"]), str(int(r["cap_runs"]))]
            cells += ["—" if math.isnan(r["kept_start"]) else f"{int(r['kept_start'])} of {int(r['seeds'])}"]
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def selection_markdown(out: Path) -> str:
    """What the grids chose on validation, and how many grid runs reached the epoch cap."""
    run = json.loads((out / "run.json").read_text())
    cap = run["plan"]["cap"]
    head = ["data, setting", "FM dropout", "AFM (FM-pretrained): stage 1 (t, λ, dropout) → selected"]
    head += ["AFM (no pre-training): stage 1 → selected", f"grid runs at the cap ({cap})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def point(p: dict[str, Any]) -> str:
        return f"{int(p['attention_factor'])}, {_g(p['l2_attention'])}, {_g(p['dropout'])}"

    for dataset, task in _tags(out):
        tag = f"{dataset}-{task}"
        chosen = json.loads((out / f"chosen-{tag}.json").read_text())
        grid = pd.read_csv(out / f"grid-{tag}.csv")
        capped = grid[grid["hit_cap"].astype(bool)]
        where = ", ".join(
            f"{KIND_NAMES[k]} {len(part)}" for k, part in capped.groupby("model", sort=False) if len(part)
        )
        cells = [f"{dataset}, {task}", _g(chosen["fm"]["dropout"])]
        for kind in AFM_KINDS:
            c = chosen[kind]
            cells.append(f"({point(c['stage1'])}) → ({point(c['selected'])})")
        cells.append(f"{len(capped)} of {len(grid)}" + (f" ({where})" if where else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_markdown(out: Path) -> str:
    run = json.loads((out / "run.json").read_text())
    p = run["plan"]
    lines = [
        f"- run: {'quick' if run['quick'] else 'full'} plan, {run['date']}, {run['seconds']:.0f} s, "
        f"torch {run['torch']}, {run['threads']} thread(s), {run['kernel']}",
        f"- every training: k = {p['embed_dim']}, {p['optimizer']}, batch {p['batch_size']}, learning rate {p['lr']} "
        f"(the FM-pretrained AFM: {p['finetune_lr']} after its FM), early stopping on the validation loss with "
        f"patience {p['patience']}, at most {p['cap']} epochs; attention dropout {p['attention_dropout']}; "
        f'p of the AFM without pre-training: "{p["p_init"]}"',
        f"- grids: FM dropout {_list(p['fm_dropouts'])}; AFM stage 1: λ {_list(p['lambdas'])} × dropout "
        f"{_list(p['afm_dropouts'])} at t = {p['base_factor']}; stage 2: t {_list(p['factors'])} at stage 1's λ and "
        f"dropout; seeds {_list(p['seeds'])} at every grid point",
    ]
    lines += [f"- {name}: {protocol}" for name, protocol in run["datasets"].items()]
    return "\n".join(lines)


def _list(values: list[Any]) -> str:
    return ", ".join(_g(v) for v in values)


# -- claims


def _paired(a: pd.Series, b: pd.Series, metric: str) -> tuple[float, str]:
    """b against a over the seeds they share: (mean of b − a, "better" / "worse" / "equal" / "unclear"
    for b). A difference counts when it exceeds twice its standard error over the paired seeds."""
    joined = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
    diff = joined["b"] - joined["a"]
    mean = float(diff.mean())
    if (diff.abs() < EQUAL).all():
        return mean, "equal"
    gain = -mean if LOWER_IS_BETTER[metric] else mean
    se = float(diff.std(ddof=1)) / math.sqrt(len(diff)) if len(diff) > 1 else math.inf
    return mean, "better" if gain > 2 * se else "worse" if gain < -2 * se else "unclear"


def _by_seed(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.set_index("seed")[column]


def _row(table: pd.DataFrame, dataset: str, task: str, model: str) -> dict[str, Any]:
    part = table[(table["dataset"] == dataset) & (table["setting"] == task) & (table["model"] == model)]
    return part.iloc[0].to_dict()


def _entropy_note(row: dict[str, Any]) -> str:
    return f"entropy/log P {row['entropy']:.3f}, spread {row['spread']:.3f}"


def _uniform(row: dict[str, Any]) -> bool:
    return row["spread"] < NEARLY_UNIFORM


def _versus(runs: pd.DataFrame, a: str, b: str, metrics: tuple[str, ...]) -> dict[str, tuple[float, str]]:
    return {
        m: _paired(_by_seed(runs[runs["row"] == a], f"test_{m}"), _by_seed(runs[runs["row"] == b], f"test_{m}"), m)
        for m in metrics
    }


def _word(result: dict[str, tuple[float, str]]) -> str:
    """The verdict word for a claim that the second model is better, from the paired verdicts per metric."""
    verdicts = {v for _, v in result.values()}
    if verdicts == {"better"}:
        return "**reproduced**"
    if verdicts <= {"worse", "equal"}:
        return "**not reproduced**"
    if {"better", "worse"} <= verdicts:
        return "**mixed**"
    return "**partly reproduced**" if "better" in verdicts else "**unclear**"


def _against(row: dict[str, Any], other: dict[str, Any], metric: str, name: str, other_name: str) -> str:
    """ "RMSE 0.48 (AFM) vs 0.53 (FM), 8.2% lower": the relative change for losses, not for AUC."""
    a, b = row[f"test_{metric}"], other[f"test_{metric}"]
    text = f"{NAMES[metric]} {_f(a)} ({name}) vs {_f(b)} ({other_name})"
    if LOWER_IS_BETTER[metric] and b:
        change = 100 * (b - a) / b
        text += ", the same" if abs(change) < 0.05 else f", {abs(change):.1f}% {'lower' if change > 0 else 'higher'}"
    return text


def _summary_verdict(result: dict[str, tuple[float, str]], who: str, other: str) -> str:
    verdicts = {v for _, v in result.values()}
    names = " and ".join(NAMES[m] for m in result)
    if verdicts == {"equal"}:
        return f"{who} = {other} on {names}"
    if verdicts == {"better"}:
        return f"{who} better than {other} on {names}"
    if verdicts == {"worse"}:
        return f"{other} better than {who} on {names}"
    return f"{who} vs {other}: " + ", ".join(f"{NAMES[m]} {v}" for m, (_, v) in result.items())


PAPER_TABLE2 = {
    ("frappe", "regression"): "test RMSE 0.3102 (AFM) vs 0.3385 (FM, LibFM), 8.4% lower (k = 256, full training file)",
    ("frappe", "binary"): "BARS Frappe_x1 benchmark (not the paper): AUC 0.9697 (AFM) vs 0.9671 (FM)",
}


def _claim_table2(out: Path, dataset: str, task: str) -> dict[str, str]:
    table = pd.read_csv(out / "table2.csv")
    runs = pd.read_csv(out / f"table2-{dataset}-{task}-runs.csv")
    metrics, primary = REPORTED[task], REPORTED[task][0]
    fm, pre, pre0 = (_row(table, dataset, task, m) for m in (FM_ROW, PRE, PRE0))
    cmp = _versus(runs, FM_ROW, PRE, metrics)
    cmp0 = _versus(runs, FM_ROW, PRE0, metrics)
    here = "; ".join(_against(pre, fm, m, "AFM", "FM") for m in metrics)
    here += f"; AFM {_entropy_note(pre)}, kept the FM start in {int(pre['kept_start'])} of {int(pre['seeds'])} seeds"
    if (pre0["attention_factor"], pre0["dropout"], pre0["l2_attention"]) != (
        pre["attention_factor"],
        pre["dropout"],
        pre["l2_attention"],
    ):
        here += f"; λ = 0: {NAMES[primary]} {_f(pre0[f'test_{primary}'])}, {_entropy_note(pre0)}"
    else:
        here += "; the selected λ is 0"
    verdicts = {v for _, v in cmp.values()}
    if verdicts == {"equal"}:
        verdict = (
            f"**not reproduced**: AFM = FM because no epoch improved on the FM start in any seed "
            f"(attention uniform, {_entropy_note(pre)})"
        )
    else:
        verdict = f"{_word(cmp)}: " + _summary_verdict(cmp, "AFM", "FM")
    if verdicts != {"equal"} and _uniform(pre):
        lam = float(pre["l2_attention"])
        if lam > 0 and not _uniform(pre0):
            verdict += (
                f"; the selected λ = {lam:g} makes attention nearly uniform (spread {pre['spread']:.3f}; at λ = 0 "
                f"{pre0['spread']:.3f}): this row compares FM with an FM that has a learned p"
            )
        else:
            verdict += (
                f"; its attention departs little from uniform (spread {pre['spread']:.3f} < {NEARLY_UNIFORM:g}): "
                "see the controls"
            )
    if {v for _, v in cmp0.values()} != {v for _, v in cmp.values()}:
        verdict += "; at λ = 0: " + _summary_verdict(cmp0, "AFM", "FM")
    return {
        "claim": "AFM beats FM (Table 2)",
        "paper": PAPER_TABLE2.get((dataset, task), "— (not in the paper)"),
        "data": f"{dataset}, {task}",
        "here": here,
        "verdict": verdict,
        "figure": "Table 2",
        "source": f"table2.csv, table2-{dataset}-{task}-runs.csv",
    }


def _claim_controls(out: Path, dataset: str, task: str) -> dict[str, str]:
    table = pd.read_csv(out / "table2.csv")
    runs = pd.read_csv(out / f"table2-{dataset}-{task}-runs.csv")
    metrics, primary = REPORTED[task], REPORTED[task][0]
    fm, more, pre, uniform = (_row(table, dataset, task, m) for m in (FM_ROW, FM_MORE, PRE, UNIFORM))
    here = (
        f"{NAMES[primary]}: AFM (FM-pretrained) {_f(pre[f'test_{primary}'])}, the longer-trained FM "
        f"{_f(more[f'test_{primary}'])} (epochs {more['epochs']}), AFM with attention frozen uniform "
        f"{_f(uniform[f'test_{primary}'])}, FM {_f(fm[f'test_{primary}'])}"
    )
    vs_more, vs_uniform = _versus(runs, FM_MORE, PRE, metrics), _versus(runs, UNIFORM, PRE, metrics)
    if {v for _, v in vs_uniform.values()} == {"better"}:
        word = "**attention adds to the gain**"
    else:
        word = "**attention adds nothing measurable** beyond p and the extra training"
    verdict = (
        f"{word}: {_summary_verdict(vs_uniform, 'AFM', 'frozen uniform attention')}; "
        f"{_summary_verdict(vs_more, 'AFM', 'the longer-trained FM')}"
    )
    return {
        "claim": "The FM-pretrained AFM's gain is attention's (a control, not in the paper)",
        "paper": "—",
        "data": f"{dataset}, {task}",
        "here": here,
        "verdict": verdict,
        "figure": "Table 2",
        "source": f"table2.csv, table2-{dataset}-{task}-runs.csv",
    }


def _claim_pretraining(out: Path, dataset: str, task: str) -> dict[str, str]:
    table = pd.read_csv(out / "table2.csv")
    runs = pd.read_csv(out / f"table2-{dataset}-{task}-runs.csv")
    metrics, primary = REPORTED[task], REPORTED[task][0]
    fm, pre, scratch = (_row(table, dataset, task, m) for m in (FM_ROW, PRE, SCRATCH))
    here = (
        f"{NAMES[primary]} {_f(pre[f'test_{primary}'])} with pre-training vs {_f(scratch[f'test_{primary}'])} "
        f"without ({_entropy_note(scratch)}, epochs {scratch['epochs']}); FM {_f(fm[f'test_{primary}'])}"
    )
    cmp = _versus(runs, SCRATCH, PRE, metrics)
    verdict = f"{_word(cmp)}: " + _summary_verdict(cmp, "pre-trained", "no pre-training")
    verdict += "; without pre-training against FM: " + _summary_verdict(
        _versus(runs, FM_ROW, SCRATCH, metrics), "AFM", "FM"
    )
    if _uniform(scratch):
        verdict += (
            f" (its λ = {_g(scratch['l2_attention'])} leaves attention nearly uniform, spread "
            f"{scratch['spread']:.3f}: an FM with a learned p)"
        )
    return {
        "claim": "FM pre-training matters",
        "paper": "AFM's embeddings are pre-trained by FM (Section 4.1)",
        "data": f"{dataset}, {task}",
        "here": here,
        "verdict": verdict,
        "figure": "Table 2",
        "source": f"table2.csv, table2-{dataset}-{task}-runs.csv",
    }


def _slice_values(frame: pd.DataFrame, kind: str, loss: str) -> pd.DataFrame:
    """Mean validation loss (and entropy) per value of one model's slice, in value order."""
    part = frame[frame["model"] == kind]
    return part.groupby("value")[[f"valid_{loss}", "entropy", "spread"]].mean().sort_index()


def _effect(frame: pd.DataFrame, kind: str, loss: str, reference: float) -> tuple[float, float, float, str] | None:
    """Best value other than ``reference`` against ``reference`` (paired by seed): (reference loss,
    best value, its loss, verdict for the best value); None when the grid lacks either."""
    part = frame[frame["model"] == kind]
    means = part.groupby("value")[f"valid_{loss}"].mean()
    if reference not in means.index or len(means) < 2:
        return None
    others = means.drop(reference)
    best = float(others.idxmin())
    ref = _by_seed(part[part["value"] == reference], f"valid_{loss}")
    alt = _by_seed(part[part["value"] == best], f"valid_{loss}")
    return float(means[reference]), best, float(means[best]), _paired(ref, alt, loss)[1]


def _all_kept(frame: pd.DataFrame) -> bool:
    part = frame[frame["model"] == "afm-pretrained"]
    return bool(len(part)) and bool(part["kept_start"].astype(bool).all())


def _grid_slices(out: Path, dataset: str, task: str) -> dict[str, pd.DataFrame]:
    tag = f"{dataset}-{task}"
    return slices(pd.read_csv(out / f"grid-{tag}.csv"), json.loads((out / f"chosen-{tag}.json").read_text()))


CLAIM_DROPOUT = "Dropout helps both, AFM more"
CLAIM_LAMBDA = "λ (L2 on W) helps"
NOT_IN_GRID = "not in this run's grid (it needs 0 and another value)"
KEPT = "moot for the FM-pretrained AFM: it kept its FM start in every run of this cut"


def _claim_dropout(out: Path, dataset: str, task: str) -> dict[str, str]:
    loss = LOSS[task]
    frame = _grid_slices(out, dataset, task)["dropout"]
    parts, gains, verdicts = [], {}, {}
    for kind in ("fm", *AFM_KINDS):
        effect = _effect(frame, kind, loss, 0.0)
        if effect is None:
            return _figure_claim(CLAIM_DROPOUT, "Fig. 3", dataset, task, NOT_IN_GRID, "not measured", "dropout")
        ref, best, value, verdict = effect
        gains[kind], verdicts[kind] = ref - value, verdict
        parts.append(f"{KIND_NAMES[kind]} {ref:.4f} → {value:.4f} at {best:g} ({verdict})")
    here = f"valid {NAMES[loss]} at dropout 0 → the best other dropout: " + "; ".join(parts)
    helped = [KIND_NAMES[k] for k in gains if verdicts[k] == "better"]
    verdict = ("helps " + ", ".join(helped)) if helped else "helps none of them clearly"
    more = [KIND_NAMES[k] for k in AFM_KINDS if verdicts[k] == "better" and gains[k] > gains["fm"]]
    verdict += "; more than FM: " + (", ".join(more) if more else "neither AFM")
    if _all_kept(frame):
        verdict += f"; {KEPT}"
    return _figure_claim(CLAIM_DROPOUT, "Fig. 3", dataset, task, here, verdict, "dropout")


def _claim_factor(out: Path, dataset: str, task: str) -> dict[str, str]:
    loss = LOSS[task]
    frame = _grid_slices(out, dataset, task)["attention_factor"]
    parts, verdicts = [], []
    for kind in AFM_KINDS:
        values = _slice_values(frame, kind, loss)[f"valid_{loss}"]
        spread = float(values.max() - values.min())
        parts.append(f"{KIND_NAMES[kind]} " + " / ".join(f"{v:.4f}" for v in values) + f" (range {spread:.4f})")
        relative = spread / float(values.mean())
        verdicts.append(f"{KIND_NAMES[kind]}: " + ("little (< 1%)" if relative < 0.01 else f"{100 * relative:.1f}%"))
    ts = "/".join(f"{v:g}" for v in sorted(frame["value"].unique()))
    here = f"valid {NAMES[loss]} at t = {ts}: " + "; ".join(parts)
    verdict = "range over t relative to the loss: " + "; ".join(verdicts)
    if _all_kept(frame):
        verdict += f"; {KEPT}"
    return _figure_claim(
        "The attention factor t matters little", "Fig. 4", dataset, task, here, verdict, "attention_factor"
    )


def _claim_lambda(out: Path, dataset: str, task: str) -> dict[str, str]:
    loss = LOSS[task]
    frame = _grid_slices(out, dataset, task)["l2_attention"]
    parts, verdicts = [], []
    for kind in AFM_KINDS:
        values = _slice_values(frame, kind, loss)
        effect = _effect(frame, kind, loss, 0.0)
        if effect is None:
            return _figure_claim(CLAIM_LAMBDA, "Fig. 4", dataset, task, NOT_IN_GRID, "not measured", "l2_attention")
        ref, best, value, verdict = effect
        parts.append(
            f"{KIND_NAMES[kind]} "
            + " / ".join(f"{v:.4f}" for v in values[f"valid_{loss}"])
            + " (entropy/log P "
            + " / ".join(f"{e:.3f}" for e in values["entropy"])
            + ", spread "
            + " / ".join(f"{e:.3f}" for e in values["spread"])
            + ")"
        )
        word = {"better": "helps", "worse": "hurts", "equal": "no effect", "unclear": "within noise"}[verdict]
        verdicts.append(f"{KIND_NAMES[kind]}: best λ > 0 ({best:g}) {word}")
    lams = "/".join(f"{v:g}" for v in sorted(frame["value"].unique()))
    here = f"valid {NAMES[loss]} at λ = {lams}: " + "; ".join(parts)
    verdict = "; ".join(verdicts)
    if _all_kept(frame):
        verdict += f"; {KEPT}"
    return _figure_claim(CLAIM_LAMBDA, "Fig. 4", dataset, task, here, verdict, "l2_attention")


def _figure_claim(claim: str, figure: str, dataset: str, task: str, here: str, verdict: str, parameter: str):
    return {
        "claim": claim,
        "paper": figure,
        "data": f"{dataset}, {task}",
        "here": here,
        "verdict": verdict,
        "figure": f"sweep-{dataset}-{task}-{parameter}-{LOSS[task]}.html",
        "source": f"grid-{dataset}-{task}.csv, chosen-{dataset}-{task}.json",
    }


def _claim_epochs(out: Path, dataset: str, task: str) -> dict[str, str]:
    loss = LOSS[task]
    curves = pd.read_csv(out / f"epochs-{dataset}-{task}.csv")
    test = curves[curves["part"] == "test"]
    handover = int(curves["handover"].iloc[0])
    series = {m: test[test["model"] == m].set_index("epoch")[loss] for m in (FM_ROW, PRE, SCRATCH)}
    last = int(series[FM_ROW].index.max())
    marks = sorted({e for e in (handover + 1, 10, 20, last) if e <= last})
    cells = []
    for m, s in series.items():
        cells.append(f"{m} " + " / ".join(_f(s.get(e, float("nan"))) for e in marks))
    here = (
        f"test {NAMES[loss]} at cumulative epochs {'/'.join(map(str, marks))}: "
        + "; ".join(cells)
        + f" (the FM-pretrained AFM starts from the FM of epoch {handover})"
    )
    parts = []
    for m, start in ((PRE, handover + 1), (SCRATCH, 1)):
        epochs = [e for e in series[m].index if e >= start and e in series[FM_ROW].index]
        lower = sum(bool(series[m][e] < series[FM_ROW][e] - EQUAL) for e in epochs)
        parts.append(f"{m} below FM at {lower} of {len(epochs)} epochs" + (" after its pre-training" * (m == PRE)))
    return {
        "claim": "AFM's test error is lower than FM's over the epochs",
        "paper": "Fig. 5",
        "data": f"{dataset}, {task}",
        "here": here,
        "verdict": "; ".join(parts),
        "figure": f"epochs-{dataset}-{task}.html",
        "source": f"epochs-{dataset}-{task}.csv",
    }


def _claim_attention(out: Path, dataset: str, task: str) -> dict[str, str]:
    table = pd.read_csv(out / "table2.csv")
    rows = {m: _row(table, dataset, task, m) for m in (PRE, SCRATCH)}
    here = "; ".join(f"{m}: {_entropy_note(r)}" for m, r in rows.items())
    verdict = "; ".join(
        f"{m}: {f'nearly uniform (spread < {NEARLY_UNIFORM:g})' if _uniform(r) else 'differs between pairs'}"
        for m, r in rows.items()
    )
    return {
        "claim": "Attention weights differ between pairs",
        "paper": "Fig. 6, Table 3",
        "data": f"{dataset}, {task}",
        "here": here + " (mean over test rows; 1 = every pair weighted 1/P)",
        "verdict": verdict,
        "figure": "Table 2",
        "source": "table2.csv",
    }


def claims(out: str | Path) -> pd.DataFrame:
    """The document's claims table, rebuilt from the CSVs in ``out`` that each row cites."""
    out = Path(out)
    tags = _tags(out)
    primary = "frappe" if any(d == "frappe" for d, _ in tags) else tags[0][0]
    rows = []
    for dataset, task in tags:
        rows.append(_claim_table2(out, dataset, task))
    for dataset, task in tags:
        rows.append(_claim_controls(out, dataset, task))
    for dataset, task in tags:
        rows.append(_claim_pretraining(out, dataset, task))
    for build in (_claim_dropout, _claim_factor, _claim_lambda, _claim_epochs, _claim_attention):
        for dataset, task in tags:
            if dataset == primary:
                rows.append(build(out, dataset, task))
    return pd.DataFrame(rows)


def claims_markdown(out: str | Path) -> str:
    frame = claims(out)
    head = list(frame.columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in frame.to_dict("records"):
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in head) + " |")
    return "\n".join(lines)


def report(out: str | Path) -> dict[str, str]:
    """The document's generated blocks, by name, from the files in ``out``."""
    out = Path(out)
    return {
        "run": run_markdown(out),
        "table2": table2_markdown(out),
        "selection": selection_markdown(out),
        "claims": claims_markdown(out),
    }


def write_report(out: str | Path) -> str:
    """Write ``out/report.md`` (every block of ``report``) and return its text."""
    text = "\n\n".join(f"## {name}\n\n{block}" for name, block in report(out).items())
    (Path(out) / "report.md").write_text(text)
    return text


BLOCK = re.compile(r"(<!-- generated:(\w+) -->)(.*?)(<!-- /generated:\2 -->)", re.S)


def fill(text: str, out: str | Path) -> str:
    """``text`` with every ``<!-- generated:NAME -->`` ... ``<!-- /generated:NAME -->`` block replaced by
    ``report(out)[NAME]``: how docs/REPRODUCTION.md is brought up to date with a run."""
    blocks = report(out)

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in blocks:
            raise ValueError(f"unknown generated block {name!r}; known: {sorted(blocks)}")
        return f"{match.group(1)}\n{blocks[name]}\n{match.group(4)}"

    return BLOCK.sub(replace, text)
