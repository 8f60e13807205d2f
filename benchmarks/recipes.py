"""Which AFM recipe should be the default? ``python benchmarks/recipes.py`` (issue 24, item 5).

For each data set (the two bundled samples, both labels; Frappe, both labels, when its folder is there), each
seed (0, 1, 2: every seed its own split, so the spread includes the split's) and each recipe of
``afm.TrainConfig.recipe`` ("from_fm", "scratch"), train the FM and the AFM with the library's defaults
(``afm.train_pair``). "auto" trains both AFMs from the one FM and keeps the one with the better validation
loss, so its row is computed from the two (the same choice ``train_pair`` makes) and its time is the sum.

Selection: validation loss only. The test split is reported beside it and never used to choose.
Per run it records the validation and test loss of FM and AFM, AFM / FM, the share of the pair term that
attention moves (mean |attention part| / (that + mean |uniform part|), on the test split), and seconds.

Writes ``runs.csv`` (every run) and ``table.csv`` / ``table.md`` (mean over seeds) into ``--out``
(default ``benchmarks/results/recipes``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd
import torch

import afm
from afm.train import TrainConfig, evaluate, train_pair

HERE = Path(__file__).resolve().parent
FRAPPE = Path(os.environ.get("AFM_FRAPPE", HERE.parent.parent / "shared" / "data" / "frappe"))
RECIPES = ("from_fm", "scratch")


def datasets(names: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (data spec, task)."""
    out = {}
    for name in names:
        spec, task = name.rsplit("-", 1)
        if spec == "frappe":
            if not (FRAPPE / "frappe.validation.libfm").is_file():
                print(f"skipped {name}: no {FRAPPE}/frappe.validation.libfm")
                continue
            spec = str(FRAPPE)
        out[name] = (spec, task)
    return out


def cpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next((line.split(":", 1)[1].strip() for line in text.splitlines() if "Model name" in line), "?")
    except OSError:
        return platform.processor() or "?"


def run(name: str, spec: str, task: str, seed: int, recipe: str, base: TrainConfig) -> dict:
    parts = afm.datasets.load_parts(spec, task=task, seed=seed)
    config = dataclasses.replace(base, task=task, seed=seed, recipe=recipe)
    start = time.perf_counter()
    pair = train_pair(config, parts["train"], parts["valid"])
    seconds = time.perf_counter() - start
    monitor = afm.TASKS[task].monitor
    fm_seconds = sum(e["seconds"] for e in pair["fm"][1].epochs)
    row = {"data": name, "seed": seed, "recipe": recipe, "seconds": seconds, "fm_seconds": fm_seconds,
           "monitor": monitor}  # fmt: skip
    for kind, (model, _) in pair.items():
        for part in ("valid", "test"):
            metrics = evaluate(model, parts[part], task, label_range=afm.label_range(parts["train"], task))
            row[f"{kind}_{part}"] = metrics[monitor]
            if task == "binary":
                row[f"{kind}_{part}_auc"] = metrics["auc"]
    effect = afm.attention_effect(pair["afm"][0], parts["test"])
    row.update(share=effect.share, negligible=effect.negligible, epochs_afm=len(pair["afm"][1].epochs))
    return row


def auto_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The "auto" recipe per (data, seed): the recipe whose AFM has the lower validation loss (log loss and
    RMSE: lower is better), with the two trainings' time."""
    rows = []
    for _, group in runs.groupby(["data", "seed"], sort=False):
        if set(group["recipe"]) != set(RECIPES):
            continue
        best = group.loc[group["afm_valid"].idxmin()].to_dict()
        # the FM is trained once for both AFMs: both trainings' time less one FM's
        best.update(recipe="auto", chosen=best["recipe"], seconds=group["seconds"].sum() - group["fm_seconds"].iloc[0])
        rows.append(best)
    return pd.DataFrame(rows)


def table(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.assign(ratio_valid=runs["afm_valid"] / runs["fm_valid"], ratio_test=runs["afm_test"] / runs["fm_test"])
    numeric = ["fm_valid", "afm_valid", "ratio_valid", "fm_test", "afm_test", "ratio_test", "share", "seconds"]
    out = runs.groupby(["data", "recipe"], sort=False)[numeric].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    if "chosen" in runs:
        chosen = runs[runs["recipe"] == "auto"].groupby("data")["chosen"].agg(lambda c: "/".join(c))
        out = out.join(chosen.rename("auto_chose"), on="data")
    return out.reset_index()


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| data | recipe | valid loss FM | valid loss AFM | AFM/FM valid | AFM/FM test | attention share | s |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in frame.itertuples():
        lines.append(
            f"| {r.data} | {r.recipe} | {r.fm_valid_mean:.4f} | {r.afm_valid_mean:.4f} ± {r.afm_valid_std:.4f} | "
            f"{r.ratio_valid_mean:.4f} | {r.ratio_test_mean:.4f} ± {r.ratio_test_std:.4f} | {r.share_mean:.1%} | "
            f"{r.seconds_mean:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    names = ["sample-regression", "sample-binary", "salient-regression", "salient-binary", "frappe-binary",
             "frappe-regression"]  # fmt: skip
    parser.add_argument("--data", nargs="*", default=names, help="data sets (default: all)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "recipes")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=RECIPES, help="recipes to train")
    parser.add_argument("--set", nargs="*", default=[], metavar="KNOB=VALUE", help="override a default knob")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    knobs = {k.name: k for k in afm.config.knobs()}
    overrides = dict(item.split("=", 1) for item in args.set)
    base = TrainConfig(**{name: knobs[name].check(value) for name, value in overrides.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    started, rows = time.perf_counter(), []
    for name, (spec, task) in datasets(args.data).items():
        for seed in range(args.seeds):
            for recipe in args.recipes:
                rows.append(run(name, spec, task, seed, recipe, base))
                r = rows[-1]
                print(f"{name} seed {seed} {recipe}: valid FM {r['fm_valid']:.4f} AFM {r['afm_valid']:.4f}, "
                      f"test FM {r['fm_test']:.4f} AFM {r['afm_test']:.4f}, share {r['share']:.1%}, "
                      f"{r['seconds']:.1f} s", flush=True)  # fmt: skip
                pd.DataFrame(rows).to_csv(args.out / "runs.csv", index=False)
    runs = pd.DataFrame(rows)
    runs = pd.concat([runs, auto_rows(runs)], ignore_index=True)
    runs.to_csv(args.out / "runs.csv", index=False)
    summary = table(runs)
    summary.to_csv(args.out / "table.csv", index=False)
    note = (
        f"\n{args.seeds} seeds (each its own split), library defaults ({base}), {args.threads} thread(s); "
        f"torch {torch.__version__}; CPU {cpu()}; {time.perf_counter() - started:.0f} s in all; "
        f"{time.strftime('%Y-%m-%d')}.\n"
    )
    (args.out / "table.md").write_text(markdown(summary) + note)
    print(markdown(summary) + note)


if __name__ == "__main__":
    main()
