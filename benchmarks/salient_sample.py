"""FM vs AFM on the two bundled samples, and how well the AFM's attention finds the salient sample's truth.

    nice -n 5 python benchmarks/salient_sample.py                    # both samples, both tasks, seeds 0 1 2
    python benchmarks/salient_sample.py --samples salient --tasks regression --seeds 0 --recipes scratch

For each sample ("salient", "sample"), task, seed (its own 80/10/10 split, ``load_parts(name, task, seed)``)
and recipe, through ``afm.train.train_pair``, on 1 thread:

- ``from_fm``: ``TrainConfig(task=..., seed=s)``, the defaults: an FM, then the AFM started exactly at it
  (``AFM.from_fm``) and fine-tuned at ``finetune_lr``.
- ``from_fm_lr01``: the same with ``finetune_lr=0.01`` (one dashboard choice away from the defaults).
- ``scratch``: ``TrainConfig(task, seed, pretrain=False, lr=0.03, p_init="normal", attention_factor=32,
  attention_dropout=0.1, l2_attention=1e-3)``: the FM trains at lr 0.03 too, the AFM from random weights
  (at lr 0.03: ``scratch_lr`` where the config has that field). Its FM baseline is the better on
  VALIDATION of that FM and the default one (lr 0.01, ``from_fm``'s FM).

Reported on the test split: FM and AFM metrics (regression RMSE; binary log loss and AUC), AFM/FM, and the
AFM's attention: the attention part's share of the pair term (mean over rows of |sum (a_ij - 1/P) s_ij| /
(that + |sum s_ij / P|)), its entropy / log P; on the salient sample also against the TRUE weights
(``afm.datasets.salient_weights``): top-1 hit rate on rows with a decisive pair (the highest-attention
pair is the true dominant one; an exact tie at the top is no hit), chance 1/P, and the mean per-row
Spearman correlation between a_ij and the true weights on those rows (rows whose attention is exactly
constant count 0: no ranking). A reference line (regression): the least-squares fit on every main and
value-pair cell (the best pairwise-additive model of any rank, the ceiling of any FM), on the same split.

Writes ``--out``/trials.csv (one line per sample, task, seed, recipe) and table.md (mean ± std over seeds,
then each run).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import afm
from afm.train import TrainConfig, evaluate, label_range, train_pair

OUT = Path(__file__).resolve().parent / "results" / "salient_sample"
SCRATCH = dict(pretrain=False, lr=0.03, p_init="normal", attention_factor=32, attention_dropout=0.1, l2_attention=1e-3)
if "scratch_lr" in {f.name for f in dataclasses.fields(TrainConfig)}:  # the AFM's own lr from scratch, if split off
    SCRATCH["scratch_lr"] = 0.03
RECIPES = {"from_fm": {}, "from_fm_lr01": {"finetune_lr": 0.01}, "scratch": SCRATCH}
HEADLINE = {"regression": "rmse", "binary": "logloss"}


def recipe_config(recipe: str, task: str, seed: int) -> TrainConfig:
    return TrainConfig(task=task, seed=seed, **RECIPES[recipe])


def attention_stats(model: afm.AFM, test: afm.Dataset, truth: np.ndarray | None) -> dict[str, float]:
    """The AFM's attention on ``test`` (all rows at once), against the true weights when given."""
    ex = model.explain(test.idx, None if test.one_hot() else test.val)
    a, s = ex.attention.double().numpy(), ex.interaction.double().numpy()
    p = a.shape[1]
    entropy = -(a * np.log(np.clip(a, 1e-300, None))).sum(1) / np.log(p)
    part = np.abs(((a - 1.0 / p) * s).sum(1))
    uniform = np.abs(s.sum(1) / p)
    share = np.divide(part, part + uniform, out=np.zeros_like(part), where=(part + uniform) > 0)
    out = {"attention_share": float(share.mean()), "entropy": float(entropy.mean())}
    if truth is None:
        return out
    salient = truth.max(1) > 1.0 / p + 1e-9
    dominant = truth.argmax(1)
    top = a.argmax(1)
    unique_top = (a == a.max(1, keepdims=True)).sum(1) == 1
    hit = (top == dominant) & unique_top
    ra = pd.DataFrame(a[salient]).rank(axis=1).to_numpy()
    rt = pd.DataFrame(truth[salient]).rank(axis=1).to_numpy()
    ra, rt = ra - ra.mean(1, keepdims=True), rt - rt.mean(1, keepdims=True)
    denom = np.sqrt((ra**2).sum(1) * (rt**2).sum(1))
    rho = np.divide((ra * rt).sum(1), denom, out=np.zeros(len(ra)), where=denom > 0)
    # the truth has two levels (the dominant pair, the rest tied), so the Spearman correlation is a linear
    # function of the dominant pair's attention rank alone; its ceiling (dominant ranked first):
    best = np.arange(1.0, p + 1)  # attention ranks 1..P, the dominant pair's P
    best_truth = np.r_[np.full(p - 1, p / 2.0), float(p)]  # the tied rest share ranks 1..P-1
    best, best_truth = best - best.mean(), best_truth - best_truth.mean()
    out.update(
        hit_rate=float(hit[salient].mean()),
        chance=1.0 / p,
        spearman=float(rho.mean()),
        spearman_ceiling=float((best * best_truth).sum() / np.sqrt((best**2).sum() * (best_truth**2).sum())),
        entropy_salient=float(entropy[salient].mean()),
        entropy_other=float(entropy[~salient].mean()),
        share_salient=float(share[salient].mean()),
        share_other=float(share[~salient].mean()),
        top_weight_salient=float(a[salient].max(1).mean()),
    )
    return out


def additive_reference(parts: dict[str, afm.Dataset]) -> float:
    """Test RMSE of least squares on every main and value-pair cell, fit on train: per field its one-hot
    columns (a numeric field: its value), per pair of fields the row-wise products of those (every cell of a
    categorical pair; a slope per value for a numeric field). The best model that is a sum of pair terms."""

    def design(ds: afm.Dataset) -> np.ndarray:
        idx, val = ds.idx.numpy(), ds.val.double().numpy()
        blocks = []
        for j, spec in enumerate(ds.schema.fields):
            if spec.kind == "numeric":
                blocks.append(val[:, j : j + 1])
            else:
                blocks.append(np.eye(spec.size)[idx[:, j] - spec.offset])
        cols = [np.ones((len(ds), 1)), *blocks]
        for i, j in itertools.combinations(range(len(blocks)), 2):
            cols.append((blocks[i][:, :, None] * blocks[j][:, None, :]).reshape(len(ds), -1))
        return np.hstack(cols)

    beta, *_ = np.linalg.lstsq(design(parts["train"]), parts["train"].y.double().numpy(), rcond=None)
    err = design(parts["test"]) @ beta - parts["test"].y.double().numpy()
    return float(np.sqrt(np.mean(err**2)))


def run_one(name: str, task: str, seed: int, recipes: list[str], fm_cache: dict) -> list[dict]:
    parts = afm.datasets.load_parts(name, task=task, seed=seed)
    train, valid, test = parts["train"], parts["valid"], parts["test"]
    clip = label_range(train, task)
    truth = afm.datasets.salient_weights(test) if name == "salient" else None
    rows = []
    for recipe in recipes:
        config = recipe_config(recipe, task, seed)
        start = time.perf_counter()
        result = train_pair(config, train, valid)
        seconds = time.perf_counter() - start
        (fm, fm_hist), (model, hist) = result["fm"], result["afm"]
        fm_seconds = sum(e["seconds"] for e in fm_hist.epochs)
        afm_seconds = sum(e["seconds"] for e in hist.epochs)
        fm_valid = evaluate(fm, valid, task, label_range=clip)
        fm_test = evaluate(fm, test, task, label_range=clip)
        if recipe == "from_fm":
            fm_cache[(name, task, seed)] = (fm_valid, fm_test)
        row = {
            "sample": name,
            "task": task,
            "seed": seed,
            "recipe": recipe,
            "pair_seconds": round(seconds, 2),
            "fm_seconds": round(fm_seconds, 2),
            "afm_seconds": round(afm_seconds, 2),
            "fm_epochs": len(fm_hist.epochs),
            "afm_epochs": len(hist.epochs),
            "afm_best_epoch": hist.best_epoch,
        }
        baseline, own_valid, own_test = "own", fm_valid, fm_test
        if recipe == "scratch" and (name, task, seed) in fm_cache:
            default_valid, default_test = fm_cache[(name, task, seed)]
            metric = HEADLINE[task]
            if default_valid[metric] < fm_valid[metric]:  # both are losses: lower is better
                fm_valid, fm_test, baseline = default_valid, default_test, "lr 0.01"
            else:
                baseline = "lr 0.03"
        row["fm_baseline"] = baseline
        for metric in ("rmse",) if task == "regression" else ("logloss", "auc"):  # this recipe's own FM
            row[f"own_fm_valid_{metric}"] = own_valid[metric]
            row[f"own_fm_test_{metric}"] = own_test[metric]
        afm_valid = evaluate(model, valid, task, label_range=clip)
        afm_test = evaluate(model, test, task, label_range=clip)
        for metric in ("rmse",) if task == "regression" else ("logloss", "auc"):
            row[f"fm_valid_{metric}"] = fm_valid[metric]
            row[f"afm_valid_{metric}"] = afm_valid[metric]
            row[f"fm_test_{metric}"] = fm_test[metric]
            row[f"afm_test_{metric}"] = afm_test[metric]
        row["ratio"] = afm_test[HEADLINE[task]] / fm_test[HEADLINE[task]]
        row.update(attention_stats(model, test, truth))
        if task == "regression":
            row["additive_ls_test_rmse"] = additive_reference(parts)
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return rows


def ms(values: list[float], digits: int = 4) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(frame: pd.DataFrame) -> str:
    lines = []
    for (name, task), group in frame.groupby(["sample", "task"], sort=False):
        seeds = sorted(group["seed"].unique().tolist())
        lines.append(f"\n### {name}, {task} (test split; mean ± std over seeds {seeds})\n")
        if task == "regression":
            head = "| recipe | AFM valid RMSE | FM test RMSE | AFM test RMSE | AFM/FM |"
        else:
            head = "| recipe | AFM valid log loss | FM log loss | AFM log loss | AFM/FM | FM AUC | AFM AUC |"
        extra = " attention share | entropy/logP |"
        if name == "salient":
            extra = (" top-1 hit (chance) | Spearman (ceiling) | entropy/logP decisive rows | other rows "
                     "| attention share | AFM best epoch | seconds FM+AFM |")  # fmt: skip
        else:
            extra += " AFM best epoch | seconds FM+AFM |"
        lines.append(head + extra)
        lines.append("|" + "---|" * (head.count("|") + extra.count("|") - 1))
        for recipe, g in group.groupby("recipe", sort=False):
            cells = [recipe]
            if task == "regression":
                cells += [ms(g.afm_valid_rmse), ms(g.fm_test_rmse), ms(g.afm_test_rmse), ms(g.ratio, 3)]
            else:
                cells += [ms(g.afm_valid_logloss), ms(g.fm_test_logloss), ms(g.afm_test_logloss), ms(g.ratio, 3),
                          ms(g.fm_test_auc), ms(g.afm_test_auc)]  # fmt: skip
            if name == "salient":
                cells += [f"{ms(g.hit_rate, 3)} ({g.chance.iloc[0]:.3f})",
                          f"{ms(g.spearman, 3)} (≤ {g.spearman_ceiling.iloc[0]:.3f})",
                          ms(g.entropy_salient, 3), ms(g.entropy_other, 3)]  # fmt: skip
            cells += [ms(g.attention_share, 3)]
            if name != "salient":
                cells += [ms(g.entropy, 3)]
            cells += ["/".join(str(int(x)) for x in g.afm_best_epoch), ms(g.pair_seconds, 1)]
            lines.append("| " + " | ".join(cells) + " |")
        if task == "regression":
            lines.append(f"\nLeast squares on every main and value-pair cell (best additive model): test RMSE "
                         f"{ms(group.additive_ls_test_rmse.drop_duplicates())}")  # fmt: skip
        base = group[group.recipe == "scratch"].fm_baseline.tolist()
        if base:
            lines.append(f"\nscratch's FM baseline (better on validation), per seed: {', '.join(base)}")
    lines.append("\n### Per seed (test; hit = top-1 hit rate on decisive rows; the FM is each recipe's baseline)\n")
    lines.append("| sample | task | recipe | seed | FM | AFM | AFM/FM | hit | own FM epochs | AFM epochs | s FM+AFM |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in frame.itertuples():
        metric = HEADLINE[r.task]
        hit = f"{r.hit_rate:.3f}" if "hit_rate" in frame and r.hit_rate == r.hit_rate else "n/a"
        lines.append(
            f"| {r.sample} | {r.task} | {r.recipe} | {r.seed} | {getattr(r, f'fm_test_{metric}'):.4f} "
            f"| {getattr(r, f'afm_test_{metric}'):.4f} | {r.ratio:.3f} | {hit} | {r.fm_epochs} | {r.afm_epochs} "
            f"| {r.pair_seconds:.1f} |"
        )
    scratch = frame[frame.recipe == "scratch"]
    if len(scratch):
        lines.append("\nscratch's own FM (lr 0.03) against the default FM (lr 0.01), validation / test, per seed:\n")
        for r in scratch.itertuples():
            metric = HEADLINE[r.task]
            lines.append(
                f"- {r.sample} {r.task} seed {r.seed}: lr 0.03 {getattr(r, f'own_fm_valid_{metric}'):.4f} / "
                f"{getattr(r, f'own_fm_test_{metric}'):.4f}; baseline used: {r.fm_baseline}"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", nargs="+", default=["salient", "sample"])
    parser.add_argument("--tasks", nargs="+", default=["regression", "binary"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    fm_cache: dict = {}
    for name in args.samples:
        for task in args.tasks:
            for seed in args.seeds:
                rows += run_one(name, task, seed, args.recipes, fm_cache)
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "trials.csv", index=False, float_format="%.5f")
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "?")
    header = (
        f"# FM vs AFM on the bundled samples (benchmarks/salient_sample.py)\n\n"
        f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {args.threads} thread(s), CPU {model} "
        f"({platform.machine()}); seeds {args.seeds}; recipes {args.recipes}.\n"
    )
    text = header + table(frame)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
