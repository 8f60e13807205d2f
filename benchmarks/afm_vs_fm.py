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

Two final evaluations (the selection is the same in both: configurations trained with seed 0 on the split
of seed 0, chosen on validation loss only):

- fixed split (the default): the 3 seeds (0, 1, 2) share the split of seed 0, so their ± covers the
  initialisation, batch order and dropout masks only. Writes ``table.csv`` and ``table.md``.
- ``--split-per-seed``: seed s also draws its own 80/20 split of the validation file (split seed = s; the
  test file is unchanged), so the ± covers the split too; the FM-started AFM starts from the selected FM
  trained on that seed's split. Writes ``table-split-per-seed.csv`` (mean ± std),
  ``runs-split-per-seed.csv`` (one row per model and seed), ``table-split-per-seed.md`` and
  ``run-split-per-seed.json`` (CPU, date, wall time, torch version, threads, where the selections came from).

``--reuse-trials`` skips the search and takes each model's selection (the lowest validation loss, first on
ties, as the search does) from the committed ``trials-<setting>.csv`` in ``--out``; the output says so.
Without it the search runs and writes ``trials-<setting>.csv`` (every configuration tried, with its
validation loss); with ``--split-per-seed`` it then also rewrites the fixed-split ``table.csv`` so that
the fixed table always comes from the committed trials.

The tables in docs/REPRODUCTION.md and docs/defaults.md are rendered from these files by
``benchmarks/render_tables.py`` (``tests/test_docs_tables.py`` checks them).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import platform
import random
import statistics
import subprocess
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
VALID_FRACTION = 0.2  # of Frappe's validation file; the rest trains
SPLIT_PER_SEED = "split-per-seed"  # the file-name tag of the final evaluation with a split per seed


def draw(space: dict[str, list[Any]], budget: int, seed: int) -> list[dict[str, Any]]:
    """``budget`` distinct configurations drawn uniformly from the grid ``space`` (seeded)."""
    grid = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    return random.Random(seed).sample(grid, min(budget, len(grid)))


def select_one(trials: pd.DataFrame, task: str, name: str) -> dict[str, Any]:
    """Model ``name``'s selected configuration: its trial with the lowest validation loss (the first on ties,
    as ``pandas.Series.idxmin``), the knobs cast back to their types in ``SPACES``."""
    space = SPACES[name]
    frame = trials[(trials["setting"] == task) & (trials["model"] == name)].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"no {name!r} trials for {task!r}")
    best = frame.loc[frame["valid_loss"].idxmin()]
    knobs = {k: type(values[0])(_plain(best[k])) for k, values in space.items()}
    for k, value in knobs.items():
        if value not in space[k]:
            raise ValueError(f"{name} {task}: {k} = {value!r} is not in its space {space[k]}")
    return knobs


def select(trials: pd.DataFrame, task: str) -> dict[str, dict[str, Any]]:
    """Every model's selected configuration (``select_one``)."""
    return {name: select_one(trials, task, name) for name in SPACES}


def read_selected(out: Path, task: str) -> dict[str, dict[str, Any]]:
    """The selections of the committed search: ``select`` over ``out/trials-<task>.csv``."""
    path = out / f"trials-{task}.csv"
    if not path.is_file():
        sys.exit(f"--reuse-trials: no {path}")
    return select(pd.read_csv(path), task)


def seed_parts(files: dict[str, afm.Dataset], seed: int) -> dict[str, afm.Dataset]:
    """Frappe's validation file split 80/20 into train and valid by ``seed``; the test file unchanged."""
    train, valid = afm.split(files["validation"], [1 - VALID_FRACTION, VALID_FRACTION], seed=seed)
    return {"train": train, "valid": valid, "test": files["test"]}


def cpu_model() -> str:
    """``lscpu``'s model name (else /proc/cpuinfo's, else platform's)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=10).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def attention_entropy(model: AFM, data: afm.Dataset) -> float:
    """Mean over rows of the attention's entropy divided by log P (1 means uniform attention)."""
    exp = afm.explain_dataset(model, data)
    a = exp.attention.double().clamp_min(1e-30)
    return float((-(a * a.log()).sum(1)).mean() / math.log(a.shape[1]))


class Runner:
    """Trains on one split (``parts``, drawn with ``split_seed``); caches the FMs the FM-started AFM needs."""

    def __init__(
        self, task: str, parts: dict[str, afm.Dataset], max_epochs: int, patience: int, split_seed: int = 0
    ) -> None:
        self.task, self.parts, self.max_epochs, self.patience = task, parts, max_epochs, patience
        self.split_seed = split_seed
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


def search(task: str, runner: Runner, args: argparse.Namespace, out: Path) -> dict[str, dict[str, Any]]:
    """Each model's ``--budget`` configurations, trained once (seed 0) on ``runner``'s split; writes
    ``trials-<task>.csv`` and returns the selections (``select``)."""
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
        selected[name] = select_one(pd.DataFrame(trials), task, name)
    pd.DataFrame(trials).to_csv(out / f"trials-{task}.csv", index=False)
    return selected


def final(
    task: str, selected: dict[str, dict[str, Any]], runners: dict[int, Runner], split: str
) -> tuple[list[dict], list[dict]]:
    """Train each model's selected configuration once per seed of ``runners`` (seed -> the Runner of the
    split that seed trains on) and test it: (one summary row per model, one row per model and seed)."""
    rows, runs = [], []
    for name in SPACES:
        mine = []
        for seed, runner in runners.items():
            parts = runner.parts
            model, result = runner.train(name, selected[name], seed, selected["FM"])
            metrics = evaluate(model, parts["test"], task, label_range=afm.label_range(parts["train"], task))
            entropy = attention_entropy(model, parts["test"]) if isinstance(model, AFM) else float("nan")
            run = {
                "setting": task,
                "model": name,
                "seed": seed,
                "split_seed": runner.split_seed,
                "n_train": len(parts["train"]),
                "n_valid": len(parts["valid"]),
                **{f"test_{m}": metrics[m] for m in REPORT[task]},
                **result,
                "entropy_over_log_p": entropy,
            }
            mine.append(run)
            print(f"{task} {name} seed {seed} (split {runner.split_seed}): {run}", file=sys.stderr, flush=True)
        runs += mine
        row: dict[str, Any] = {"setting": task, "model": name, "seeds": len(mine), "selected": selected[name]}
        for metric in REPORT[task]:
            values = [r[f"test_{metric}"] for r in mine]
            row[f"test_{metric}"], row[f"test_{metric}_std"] = statistics.mean(values), statistics.stdev(values)
        row["valid_loss"] = statistics.mean(r["valid_loss"] for r in mine)
        row["entropy_over_log_p"] = statistics.mean(r["entropy_over_log_p"] for r in mine)
        row["epochs"] = "/".join(str(r["epochs_run"]) for r in mine)
        row["hit_cap"] = any(r["hit_cap"] for r in mine)
        if split == SPLIT_PER_SEED:
            row["split"] = "per seed"
        rows.append(row)
        print(f"{task} {name}: {row}", file=sys.stderr, flush=True)
    return rows, runs


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def markdown(table: pd.DataFrame, selections: bool = True) -> str:
    """The summary table (``table.csv`` or ``table-split-per-seed.csv``) as Markdown, with the selections."""
    lines = []
    for task, part in table.groupby("setting", sort=False):
        metrics = REPORT[task]
        per_seed = "split" in part and (part["split"] == "per seed").all()
        split = "a split per seed" if per_seed else "one split"
        lines.append(f"\n**{task}** (selected on validation {LOSS[task]}; test, 3 seeds on {split}, mean ± std)\n")
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
        if selections:
            lines.append("\nSelected configurations:\n")
            for _, r in part.iterrows():
                lines.append(f"- {r['model']}: `{r['selected']}`")
    return "\n".join(lines) + "\n"


def footer(args: argparse.Namespace, seconds: float, reused: bool) -> str:
    selection = (
        "selections reused from the committed trials-*.csv (no search run)"
        if reused
        else f"{args.budget} configurations per model"
    )
    return (
        f"\n{selection}, epoch cap {args.max_epochs}, patience {args.patience}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_model()}; "
        f"{seconds:.0f} s, {time.strftime('%Y-%m-%d')}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frappe", type=Path, default=DEFAULT_FRAPPE, help="folder with frappe.validation/test.libfm")
    parser.add_argument("--budget", type=int, default=20, help="configurations per model (20)")
    parser.add_argument("--max-epochs", type=int, default=100, help="epoch cap (100)")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs (3)")
    parser.add_argument("--settings", default="binary,regression", help="binary, regression or both")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "afm_vs_fm")
    parser.add_argument(
        "--split-per-seed",
        action="store_true",
        help="final evaluation: seed s also draws its own train/valid split (split seed = s); writes "
        "table-split-per-seed.csv, runs-split-per-seed.csv, table-split-per-seed.md, run-split-per-seed.json",
    )
    parser.add_argument(
        "--reuse-trials",
        action="store_true",
        help="no search: take each model's selection from the committed trials-<setting>.csv in --out",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not (args.frappe / "frappe.validation.libfm").is_file():
        sys.exit(f"{args.frappe}: no frappe.validation.libfm (give --frappe or AFM_FRAPPE)")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files = afm.datasets.frappe(args.frappe)
    fixed = seed_parts(files, 0)  # the search's split, and every seed's in the fixed-split evaluation
    splits = {seed: seed_parts(files, seed) for seed in SEEDS} if args.split_per_seed else {}
    # the fixed-split table is (re)written whenever trials-*.csv is, so that the two always agree
    modes = [SPLIT_PER_SEED] if args.split_per_seed else []
    if not (args.reuse_trials and args.split_per_seed):
        modes.append("fixed")
    if args.reuse_trials:
        print(f"selections reused from {args.out}/trials-<setting>.csv: no search run", file=sys.stderr, flush=True)
    rows: dict[str, list[dict]] = {m: [] for m in modes}
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    selections = {}
    for task in args.settings.split(","):
        search_runner = Runner(task, fixed, args.max_epochs, args.patience, split_seed=0)
        if args.reuse_trials:
            selected = read_selected(args.out, task)
        else:
            selected = search(task, search_runner, args, args.out)
        selections[task] = selected
        for mode in modes:
            if mode == "fixed":
                runners = dict.fromkeys(SEEDS, search_runner)
            else:
                runners = {s: Runner(task, splits[s], args.max_epochs, args.patience, split_seed=s) for s in SEEDS}
            r, per_run = final(task, selected, runners, mode)
            rows[mode] += r
            runs[mode] += per_run
    seconds = time.perf_counter() - started
    for mode in modes:
        tag = "" if mode == "fixed" else f"-{mode}"
        table = pd.DataFrame(rows[mode])
        table.to_csv(args.out / f"table{tag}.csv", index=False)
        text = markdown(table) + footer(args, seconds, args.reuse_trials)
        (args.out / f"table{tag}.md").write_text(text)
        print(text)
        if mode == SPLIT_PER_SEED:
            pd.DataFrame(runs[mode]).to_csv(args.out / f"runs{tag}.csv", index=False)
            run = {
                "protocol": "final evaluation of the selected configurations, seeds 0, 1, 2, each on its own "
                f"{1 - VALID_FRACTION:.0%}/{VALID_FRACTION:.0%} split of frappe.validation.libfm (split seed = "
                "the seed); frappe.test.libfm is the test set; selection on validation loss only, seed 0 on "
                "the split of seed 0",
                "selections": "reused from the committed trials-<setting>.csv (no search run)"
                if args.reuse_trials
                else f"searched in this run ({args.budget} configurations per model)",
                "selected": selections,
                "seeds": list(SEEDS),
                "settings": args.settings.split(","),
                "max_epochs": args.max_epochs,
                "patience": args.patience,
                "trainings": len(runs[mode]),
                "training_seconds": round(sum(r["seconds"] for r in runs[mode]), 1),
                "wall_seconds": round(seconds, 1),
                "date": time.strftime("%Y-%m-%d"),
                "cpu": cpu_model(),
                "cores": os.cpu_count(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "command": " ".join(["python", "benchmarks/afm_vs_fm.py", *sys.argv[1:]]),
            }
            (args.out / f"run{tag}.json").write_text(json.dumps(run, indent=2) + "\n")


if __name__ == "__main__":
    main()
