"""The benchmark tables of README.md and docs/, rendered from the committed results.

    python benchmarks/render_tables.py           # refill the blocks in every document of DOCUMENTS
    python benchmarks/render_tables.py --check   # exit 1 (and name the documents) when one disagrees

A block is ``<!-- generated:bench-NAME -->`` ... ``<!-- /generated:bench-NAME -->``, the marker style of
``reproduce_report.fill``. These names start with ``bench-`` and hold hyphens, so ``reproduce_report.fill`` (whose
names are ``\\w+``) leaves them alone, and ``fill`` here leaves reproduce_report's blocks alone: each document
can hold both, and ``tests/test_docs_tables.py`` checks both kinds.

Sources (nothing is typed by hand):

- ``bench-protocols``: the protocols table, from all the files below and docs/reproduction/ (Table 2 of
  ``python benchmarks/reproduce.py``: table2.csv, table2-frappe-<setting>-runs.csv, run.json);
- ``bench-afm-vs-fm-fixed``: benchmarks/results/afm_vs_fm/table.csv (the run facts: the last line of
  table.md, written by the same run);
- ``bench-afm-vs-fm-split-per-seed``: table-split-per-seed.csv, runs-split-per-seed.csv,
  run-split-per-seed.json;
- ``bench-reconcile``: the figures the reconciliation of the binary verdicts rests on (trials-binary.csv,
  the runs above, Table 2);
- ``bench-fm-start-control``: benchmarks/results/fm_start_control.csv and .json;
- ``bench-recipes``, ``bench-salient-sample``: the recipes' and the salient sample's ``table.md``, as written;
- ``bench-readme-results``: README's compact table, from the salient sample's ``table.md`` (the default
  recipe's rows) and the recipes' ``table.csv`` (what ``auto`` costs);
- ``bench-speed-log``: benchmarks/RESULTS.md, the log of ``benchmarks/speed.py`` runs;
- ``bench-live-browser``: benchmarks/results/live_browser/README.md and after-pacing/README.md, as written
  by the earlier ``benchmarks/live_browser.py`` (before the live panel);
- ``bench-live-panel``: benchmarks/results/live_browser/panel-none/ and panel-spin/README.md, as written by
  ``benchmarks/live_browser.py --load none`` and ``--load spin``;
- ``bench-load``: benchmarks/results/load/results.md, as written by ``benchmarks/load.py``.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import afm_vs_fm  # noqa: E402  (a script beside this one, not a package)

RESULTS = HERE / "results"
REPRODUCTION = ROOT / "docs" / "reproduction"
DOCS = ROOT / "docs"
DOCUMENTS = (
    ROOT / "README.md",
    DOCS / "REPRODUCTION.md",
    DOCS / "ATTENTION.md",
    DOCS / "defaults.md",
    DOCS / "dashboard.md",
    DOCS / "speed.md",
    DOCS / "load.md",
)
BLOCK = re.compile(r"(<!-- generated:(bench-[\w-]+) -->)(.*?)(<!-- /generated:\2 -->)", re.S)

FM, FROM_FM, FRESH = "FM", "AFM (FM start)", "AFM (fresh start)"
TABLE2 = {FM: "FM", FROM_FM: "AFM (FM-pretrained)", FRESH: "AFM (no pre-training)"}  # afm.reproduce's row names
NAMES = {"auc": "AUC", "logloss": "log loss", "rmse": "RMSE", "mae": "MAE"}
LOWER_IS_BETTER = {"auc": False, "logloss": True, "rmse": True, "mae": True}
EQUAL = 1e-6  # "equal": the same to this, in every seed (reproduce_report's rule)
SHOWN = {"binary": ("auc", "logloss"), "regression": ("rmse",)}  # the protocols table's metrics


# ---------------------------------------------------------------------------- verdicts


def paired(fm: list[float], other: list[float], metric: str) -> tuple[float, float, str]:
    """``other`` against ``fm`` over paired seeds: (mean difference other − fm, its std, verdict for
    ``other``). The rule of reproduce_report: a difference counts when it exceeds twice its standard error."""
    diff = [b - a for a, b in zip(fm, other, strict=True)]
    mean = statistics.mean(diff)
    std = statistics.stdev(diff) if len(diff) > 1 else math.nan
    if all(abs(d) < EQUAL for d in diff):
        return mean, std, "equal"
    return mean, std, _word(mean, std / math.sqrt(len(diff)) if len(diff) > 1 else math.inf, metric)


def unpaired(fm: tuple[float, float], other: tuple[float, float], n: int, metric: str) -> str:
    """The verdict from means and standard deviations alone (per-run values not kept): the difference of
    the means against twice sqrt((s_fm² + s_other²) / n)."""
    mean = other[0] - fm[0]
    if abs(mean) < EQUAL:
        return "equal"
    return _word(mean, math.sqrt((fm[1] ** 2 + other[1] ** 2) / n), metric)


def _word(mean: float, se: float, metric: str) -> str:
    gain = -mean if LOWER_IS_BETTER[metric] else mean
    return "better" if gain > 2 * se else "worse" if gain < -2 * se else "unclear"


def _f(value: float) -> str:
    return f"{value:.4f}"


def _pm(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}"


def _signed(value: float) -> str:
    """+0.0123 / -0.0123; a value that rounds to zero is 0.0000 (no sign)."""
    return "0.0000" if abs(value) < 5e-5 else f"{value:+.4f}"


def _values(values: list[object]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


# ---------------------------------------------------------------------------- sources


def _afm_vs_fm(results: Path) -> Path:
    return results / "afm_vs_fm"


def _runs_by_model(runs: pd.DataFrame, task: str, metric: str) -> dict[str, list[float]]:
    """{model: test metric per seed, in seed order}."""
    part = runs[runs["setting"] == task].sort_values("seed")
    return {name: list(g[f"test_{metric}"]) for name, g in part.groupby("model", sort=False)}


def _table2_runs(reproduction: Path, task: str, metric: str) -> dict[str, list[float]]:
    runs = pd.read_csv(reproduction / f"table2-frappe-{task}-runs.csv").sort_values("seed")
    return {ours: list(runs[runs["row"] == theirs][f"test_{metric}"]) for ours, theirs in TABLE2.items()}


def _summary(table: pd.DataFrame, task: str, model: str, metric: str) -> tuple[float, float]:
    row = table[(table["setting"] == task) & (table["model"] == model)].iloc[0]
    return float(row[f"test_{metric}"]), float(row[f"test_{metric}_std"])


def _footer(results: Path) -> str:
    """The run facts of the fixed-split table: the last line of table.md (the same run wrote table.csv)."""
    lines = [line for line in (_afm_vs_fm(results) / "table.md").read_text().splitlines() if line.strip()]
    return lines[-1]


# ---------------------------------------------------------------------------- the protocols table


Summary = Callable[[str, str], tuple[float, float]]  # (model, metric) -> (mean, std)
Verdict = Callable[[str, str], str]  # (model, metric) -> AFM vs FM


def _cell(task: str, summary: Summary, verdict: Verdict) -> str:
    """ "FM a / b; AFM from FM c / d (AUC v, log loss v); AFM fresh ...", mean ± std per model."""
    metrics = SHOWN[task]

    def figures(model: str) -> str:
        return " / ".join(_pm(*summary(model, m)) for m in metrics)

    parts = [f"FM {figures(FM)}"]
    for model, label in ((FROM_FM, "AFM from FM"), (FRESH, "AFM fresh")):
        words = ", ".join(f"{NAMES[m]} {verdict(model, m)}" for m in metrics)
        parts.append(f"{label} {figures(model)} ({words})")
    return "; ".join(parts)


def protocols_markdown(results: Path = RESULTS, reproduction: Path = REPRODUCTION) -> str:
    avf = _afm_vs_fm(results)
    plan = json.loads((reproduction / "run.json").read_text())
    p, frappe = plan["plan"], plan["datasets"]["frappe"]
    table2 = pd.read_csv(reproduction / "table2.csv")
    table2 = table2[table2["dataset"] == "frappe"]
    fixed = pd.read_csv(avf / "table.csv")
    per_seed = pd.read_csv(avf / "table-split-per-seed.csv")
    per_seed_runs = pd.read_csv(avf / "runs-split-per-seed.csv")
    per_seed_run = json.loads((avf / "run-split-per-seed.json").read_text())
    budget = pd.read_csv(avf / "trials-binary.csv").groupby("model").size()
    control = pd.read_csv(results / "fm_start_control.csv")
    control_run = json.loads((results / "fm_start_control.json").read_text())

    def table2_summary(task: str) -> Callable[[str, str], tuple[float, float]]:
        def get(model: str, metric: str) -> tuple[float, float]:
            row = table2[(table2["setting"] == task) & (table2["model"] == TABLE2[model])].iloc[0]
            return float(row[f"test_{metric}"]), float(row[f"test_{metric}_std"])

        return get

    def paired_verdict(runs: Callable[[str, str], dict[str, list[float]]], task: str) -> Callable[[str, str], str]:
        return lambda model, metric: paired(runs(task, metric)[FM], runs(task, metric)[model], metric)[2]

    def frame_summary(frame: pd.DataFrame, task: str) -> Callable[[str, str], tuple[float, float]]:
        return lambda model, metric: _summary(frame, task, model, metric)

    def fixed_verdict(task: str) -> Callable[[str, str], str]:
        def get(model: str, metric: str) -> str:
            n = int(fixed[(fixed["setting"] == task) & (fixed["model"] == model)]["seeds"].iloc[0])
            return unpaired(_summary(fixed, task, FM, metric), _summary(fixed, task, model, metric), n, metric) + "*"

        return get

    sizes = {m: int(n) for m, n in budget.items()}

    def space(model: str, knob: str) -> str:
        return _values(afm_vs_fm.SPACES[model][knob])

    search = (
        f"{sizes[FM]} random configurations per model, each from its own space: FM lr {space(FM, 'lr')}, dropout, "
        f"batch {space(FM, 'batch_size')}; AFM from FM (starts at the selected FM) lr {space(FROM_FM, 'lr')}, "
        f"dropout, attention dropout {space(FROM_FM, 'attention_dropout')}, λ {space(FROM_FM, 'l2_attention')}, "
        f"t {space(FROM_FM, 'attention_factor')}, batch; AFM fresh lr {space(FRESH, 'lr')}, the same knobs and "
        f"p_init {space(FRESH, 'p_init')}. Each trained once (seed 0, split 0); the lowest validation loss is selected"
    )
    grid = (
        f"grid: FM dropout {_values(p['fm_dropouts'])}; each AFM λ {_values(p['lambdas'])} × dropout "
        f"{_values(p['afm_dropouts'])} at t = {p['base_factor']}, then t {_values(p['factors'])}. "
        f"Fixed: lr {p['lr']:g} (AFM from FM {p['finetune_lr']:g} after its FM), batch {p['batch_size']}, "
        f"attention dropout {p['attention_dropout']:g}, fresh p {p['p_init']}, cap {p['cap']}. "
        "Mean validation loss over the seeds"
    )
    rows = [
        [
            "Table 2 (`python benchmarks/reproduce.py`; docs/reproduction/)",
            "Frappe: validation file (train, valid), test file",
            f"{frappe}: **varied**, split s for seed s",
            grid,
            f"{_values(p['seeds'])} at every grid point; Table 2 reports the selecting runs",
            *[
                _cell(t, table2_summary(t), paired_verdict(lambda task, m: _table2_runs(reproduction, task, m), t))
                for t in ("binary", "regression")
            ],
        ],
        [
            "Equal budget, fixed split (`benchmarks/afm_vs_fm.py`; table.csv)",
            "the same two files",
            "validation file 80/20 by seed 0: **fixed**, every seed trains on split 0; test file",
            search,
            f"the selection retrained with {_values(list(afm_vs_fm.SEEDS))}, all on split 0",
            *[_cell(t, frame_summary(fixed, t), fixed_verdict(t)) for t in ("binary", "regression")],
        ],
        [
            "Equal budget, split per seed (`afm_vs_fm.py --split-per-seed`; table-split-per-seed.csv)",
            "the same two files",
            "validation file 80/20 by the seed: **varied**, seed s trains on split s; test file",
            "the fixed split's selections, " + per_seed_run["selections"],
            f"{_values(per_seed_run['seeds'])}, each on its own split",
            *[
                _cell(
                    t,
                    frame_summary(per_seed, t),
                    paired_verdict(lambda task, m: _runs_by_model(per_seed_runs, task, m), t),
                )
                for t in ("binary", "regression")
            ],
        ],
        _control_row(control, control_run),
    ]
    head = [
        "protocol",
        "data",
        "split",
        "selection (on validation only)",
        "seeds",
        "binary: test AUC / log loss, mean ± std (AFM vs FM)",
        "regression: test RMSE, mean ± std (AFM vs FM)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines += [
        "",
        "AFM vs FM per metric: *better*, *worse* or *unclear* by the reproduction's rule (the mean difference over "
        "the paired seeds against twice its standard error; *equal*: the same to 1e-6 in every seed). "
        "\\* The fixed-split run kept only mean ± std, so there the difference of the means is held against "
        "twice sqrt((s_AFM² + s_FM²) / 3), unpaired.",
    ]
    return "\n".join(lines)


def _control_row(control: pd.DataFrame, run: dict) -> list[str]:
    d = run["defaults"]

    def cell(rows: pd.DataFrame) -> str:
        out = []
        for r in rows.to_dict("records"):
            data = {"sample": "sample", "frappe": "Frappe"}[r["data"].split("-")[0]]
            out.append(
                f"{data}, test {NAMES[r['loss']]}: FM {_f(r['fm_test'])}, FM continued {_f(r['continued_test'])}, "
                f"AFM from FM {_f(r['afm_test'])}"
            )
        return "; ".join(out) + " (one seed; no AFM fresh)" if out else "—"

    return [
        "FM-start control (`benchmarks/fm_start_control.py`; fm_start_control.csv)",
        "the sample (both settings); Frappe binary (the same two files)",
        "sample: afm.datasets.load_parts; Frappe: validation file 80/20 by seed 0, test file; **fixed**",
        f"none: the library defaults (lr {d['lr']:g}, then AFM from FM and the continued FM at finetune_lr "
        f"{d['finetune_lr']:g}; batch {d['batch_size']}, dropout {d['dropout']:g}, t {d['attention_factor']})",
        f"{d['seed']} only",
        cell(control[control["task"] == "binary"]),
        cell(control[control["task"] == "regression"]),
    ]


# ---------------------------------------------------------------------------- the benchmark's own tables


def fixed_markdown(results: Path = RESULTS) -> str:
    table = pd.read_csv(_afm_vs_fm(results) / "table.csv")
    return afm_vs_fm.markdown(table).strip() + f"\n\nRun: {_footer(results)}"


def split_per_seed_markdown(results: Path = RESULTS) -> str:
    avf = _afm_vs_fm(results)
    table = pd.read_csv(avf / "table-split-per-seed.csv")
    runs = pd.read_csv(avf / "runs-split-per-seed.csv")
    run = json.loads((avf / "run-split-per-seed.json").read_text())
    text = afm_vs_fm.markdown(table, selections=False).strip()
    lines = [
        text,
        "",
        "Paired by seed (seed s and split s for both models): AFM − FM on the test file, per seed and mean ± std.",
        "",
        "| setting | AFM | metric | per seed (0 / 1 / 2) | mean ± std | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for task in dict.fromkeys(runs["setting"]):
        for model in (FROM_FM, FRESH):
            for metric in afm_vs_fm.REPORT[task]:
                by = _runs_by_model(runs, task, metric)
                diffs = [b - a for a, b in zip(by[FM], by[model], strict=True)]
                mean, std, verdict = paired(by[FM], by[model], metric)
                each = " / ".join(_signed(d) for d in diffs)
                diff = f"{_signed(mean)} ± {std:.4f}"
                lines.append(f"| {task} | {model} | {NAMES[metric]} | {each} | {diff} | {verdict} |")
    repeats, exact = [], []
    for task in dict.fromkeys(runs["setting"]):
        trials = pd.read_csv(avf / f"trials-{task}.csv")
        for model, knobs in afm_vs_fm.select(trials, task).items():
            mine = trials[(trials["model"] == model)]
            trial = float(mine[(mine[list(knobs)] == pd.Series(knobs)).all(axis=1)]["valid_loss"].iloc[0])
            here = float(
                runs[(runs["setting"] == task) & (runs["model"] == model) & (runs["seed"] == 0)]["valid_loss"].iloc[0]
            )
            repeats.append(f"{task} {model} {_f(here)} vs {_f(trial)}")
            exact.append(here == trial)
    lines += [
        "",
        "Seed 0 trains on split 0, the search's split, so it repeats each selection's search trial (validation "
        "loss here vs in trials-*.csv): " + "; ".join(repeats) + f". {threads_note(run, results, exact)}",
        "",
        f"Run: {run['selections']}; {run['trainings']} trainings, {run['training_seconds']:.0f} s of training, "
        f"{run['wall_seconds']:.0f} s wall; {run['cpu']}, {run['cores']} cores, {run['threads']} thread(s), "
        f"torch {run['torch']}, Python {run['python']}; {run['date']}; `{run['command']}`.",
    ]
    return "\n".join(lines)


def threads_note(run: dict, results: Path, exact: list[bool]) -> str:
    """How many repeated trials came out bit for bit, and the thread counts of the two runs."""
    found = re.search(r"(\d+) threads", _footer(results))
    search = f"the search {found.group(1)}" if found else "the search's thread count is not recorded"
    note = f"{sum(exact)} of {len(exact)} repeat bit for bit"
    if all(exact):
        return note + "."
    return (
        f"{note}; this run used {run['threads']} thread(s), {search}: with another thread count the AFM's "
        "floating-point sums run in another order, so its figures may differ in the last digits."
    )


def control_markdown(results: Path = RESULTS) -> str:
    control = pd.read_csv(results / "fm_start_control.csv")
    run = json.loads((results / "fm_start_control.json").read_text())
    lines = [
        "| data | loss | FM | FM continued | AFM from FM | AFM entropy / log P |",
        "|---|---|---|---|---|---|",
    ]
    for r in control.to_dict("records"):
        scores = [f"{_f(r[f'{k}_valid'])} / {_f(r[f'{k}_test'])}" for k in ("fm", "continued", "afm")]
        lines.append(
            f"| {r['data']} | valid / test {r['loss']} | "
            + " | ".join(scores)
            + f" | {r['afm_entropy_over_log_p']:.4f} |"
        )
    d = run["defaults"]
    lines += [
        "",
        f"Run: seed {d['seed']}, the defaults (lr {d['lr']:g}, finetune_lr {d['finetune_lr']:g}, "
        f"batch {d['batch_size']}, dropout {d['dropout']:g}, t {d['attention_factor']}, patience {d['patience']}); "
        f"{run['wall_seconds']:.0f} s, {run['cpu']}, {run['threads']} thread(s), torch {run['torch']}; {run['date']}.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the reconciliation's figures


def reconcile_markdown(results: Path = RESULTS, reproduction: Path = REPRODUCTION) -> str:
    avf = _afm_vs_fm(results)
    trials = pd.read_csv(avf / "trials-binary.csv")
    fresh = trials[trials["model"] == FRESH]
    fm = trials[trials["model"] == FM]
    from_fm = trials[trials["model"] == FROM_FM]
    runs = pd.read_csv(avf / "runs-split-per-seed.csv")
    plan = json.loads((reproduction / "run.json").read_text())["plan"]
    table2 = pd.read_csv(reproduction / "table2.csv")
    t2 = table2[(table2["dataset"] == "frappe") & (table2["setting"] == "binary")].set_index("model")
    t2_fresh = t2.loc[TABLE2[FRESH]]

    def best(frame: pd.DataFrame) -> str:
        row = frame.loc[frame["valid_loss"].idxmin()]
        return f"{_f(row['valid_loss'])} (lr {row['lr']:g}, batch {int(row['batch_size'])})"

    near = fresh[(fresh["lr"] == plan["lr"]) & (fresh["batch_size"] == plan["batch_size"])]
    big, small = fresh[fresh["batch_size"] == 1024], fresh[fresh["batch_size"] == 256]
    top = fresh.nsmallest(3, "valid_loss")
    by_ll = _runs_by_model(runs, "binary", "logloss")
    by_auc = _runs_by_model(runs, "binary", "auc")
    ll_mean, ll_std, ll_verdict = paired(by_ll[FM], by_ll[FRESH], "logloss")
    auc_mean, auc_std, auc_verdict = paired(by_auc[FM], by_auc[FRESH], "auc")
    per_seed = pd.read_csv(avf / "table-split-per-seed.csv")
    fixed = pd.read_csv(avf / "table.csv")
    kept = runs[(runs["setting"] == "binary") & (runs["model"] == FROM_FM)]

    def each(by: dict[str, list[float]]) -> str:
        return " / ".join(_signed(b - a) for a, b in zip(by[FM], by[FRESH], strict=True))

    def spread(frame: pd.DataFrame, model: str) -> str:
        return _f(_summary(frame, "binary", model, "logloss")[1])

    top_lr, top_batch = sorted(set(top["lr"])), sorted(set(top["batch_size"].astype(int)))
    at_grid = ", ".join(_f(v) for v in sorted(near["valid_loss"])) if len(near) else "none"
    fm_fast = ", ".join(_f(v) for v in sorted(fm[fm["lr"] == 0.03]["valid_loss"]))
    lines = [
        f"- Reproduce grid, AFM fresh (binary): fixed lr {plan['lr']:g}, batch {plan['batch_size']}, "
        f"attention dropout {plan['attention_dropout']:g}, p {plan['p_init']}; selected t "
        f"{int(t2_fresh['attention_factor'])}, λ {t2_fresh['l2_attention']:g}, dropout {t2_fresh['dropout']:g}: "
        f"valid log loss {_f(t2_fresh['valid_logloss'])}, {t2_fresh['epochs']} epochs per seed.",
        f"- Equal-budget search, AFM fresh (binary, {len(fresh)} trials, seed 0, split 0): best at batch 1024 "
        f"{best(big)} over {len(big)} trials; best at batch 256 {best(small)} over {len(small)} trials; the 3 best "
        f"all lr {_values(top_lr)}, batch {_values(top_batch)}, p_init {_values(sorted(set(top['p_init'])))}. "
        f"Its trials at the grid's setting (lr {plan['lr']:g}, batch {plan['batch_size']}): {at_grid}.",
        f"- Equal-budget search, AFM from FM (binary): best epoch 0 (kept the FM start) in "
        f"{int((from_fm['best_epoch'] == 0).sum())} of {len(from_fm)} trials "
        f"(lr {_values(sorted(set(from_fm['lr'])))}).",
        f"- Equal-budget search, FM (binary): best {best(fm)}; its trials at lr 0.03 {fm_fast} "
        f"(the worst of its {len(fm)}).",
        f"- Split per seed, binary, AFM fresh − FM on the test file: log loss {each(by_ll)} "
        f"(mean {_signed(ll_mean)} ± {ll_std:.4f}: {ll_verdict}); AUC {each(by_auc)} "
        f"(mean {_signed(auc_mean)} ± {auc_std:.4f}: {auc_verdict}).",
        f"- AFM fresh's seed spread of test log loss (binary): {spread(fixed, FRESH)} on one split, "
        f"{spread(per_seed, FRESH)} with a split per seed; FM's {spread(fixed, FM)} and {spread(per_seed, FM)}.",
        f"- AFM from FM (binary, split per seed): best epoch {_values(list(kept['best_epoch']))}, i.e. it kept its "
        f"FM start in {int((kept['best_epoch'] == 0).sum())} of {len(kept)} seeds.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- fill


def result_markdown(path: Path) -> str:
    """A results table a benchmark wrote as markdown (``table.md``), as it is, less its own top heading and with
    its section headings one level down (they sit inside a document's section)."""
    lines = [line for line in path.read_text().strip().splitlines() if not line.startswith("# ")]
    lines = [("#" + line) if line.startswith("### ") else line for line in lines]
    return "\n".join(lines).strip()


def log_markdown(path: Path) -> str:
    """A log a benchmark keeps as markdown, as it is, less its own top heading and with every other heading two
    levels down (the log sits under a ``##`` section of a page)."""
    lines = [line for line in path.read_text().strip().splitlines() if not line.startswith("# ")]
    lines = [("##" + line) if re.match(r"#{2,4} ", line) else line for line in lines]
    return "\n".join(lines).strip()


def markdown_tables(path: Path) -> dict[str, list[dict[str, str]]]:
    """The tables of a benchmark's ``table.md``, by the heading above each (without its #s): a list of rows, each
    a dict from column header to cell."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading, header = "", None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            heading, header = line.lstrip("#").strip(), None
        elif line.startswith("|") and "---" not in line:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
                tables[heading] = []
            else:
                tables[heading].append(dict(zip(header, cells, strict=True)))
        elif not line.strip():
            header = None
    return tables


def _section(tables: dict[str, list[dict[str, str]]], start: str) -> list[dict[str, str]]:
    found = [rows for heading, rows in tables.items() if heading.startswith(start)]
    if len(found) != 1:
        raise ValueError(f"expected one table under a heading starting {start!r}, found {len(found)}")
    return found[0]


def readme_markdown(results: Path = RESULTS) -> str:
    """README's results in a few lines: the default recipe on the two bundled samples (regression, 3 seeds, from
    the salient sample's table.md), and what the ``auto`` recipe costs against it (the recipes' table.csv)."""
    table_md = results / "salient_sample" / "table.md"
    tables = markdown_tables(table_md)
    default = "from_fm"
    salient = next(r for r in _section(tables, "salient, regression") if r["recipe"] == default)
    pairs = next(r for r in _section(tables, "sample, regression") if r["recipe"] == default)
    facts = next(line for line in table_md.read_text().splitlines() if line.strip() and not line.startswith("#"))
    lines = [
        "| bundled sample (regression label) | FM test RMSE | AFM test RMSE | AFM/FM | top-1 hit (chance) |",
        "|---|---|---|---|---|",
        f"| salient: one decisive pair per row, attention needed | {salient['FM test RMSE']} | "
        f"{salient['AFM test RMSE']} | {salient['AFM/FM']} | {salient['top-1 hit (chance)']} |",
        f"| pairs: pair tables, FM suffices | {pairs['FM test RMSE']} | {pairs['AFM test RMSE']} | "
        f"{pairs['AFM/FM']} | no decisive pair |",
        "",
        f"Default recipe (`{default}`), mean ± std over 3 seeds, each with its own split; top-1 hit: how often the "
        f"AFM's highest-attention pair is the row's true decisive pair. `python benchmarks/salient_sample.py`: {facts}",
    ]
    recipes = pd.read_csv(results / "recipes" / "table.csv").set_index(["data", "recipe"])
    datas = list(dict.fromkeys(recipes.index.get_level_values("data")))
    lines += [
        "",
        "| data | seconds, FM + AFM: `from_fm` (the default) | `auto` | `auto` kept |",
        "|---|---|---|---|",
    ]
    for data in datas:
        if (data, "auto") in recipes.index:
            auto = recipes.loc[(data, "auto")]
            lines.append(
                f"| {data} | {recipes.loc[(data, default), 'seconds_mean']:.1f} | {auto['seconds_mean']:.1f} | "
                f"{auto['auto_chose']} |"
            )
    lines += ["", "Mean over 3 seeds, 1 thread (`python benchmarks/recipes.py`)."]
    return "\n".join(lines)


def blocks(results: Path = RESULTS, reproduction: Path = REPRODUCTION) -> dict[str, str]:
    """Every block this module renders, by name."""
    live = results / "live_browser"
    return {
        "bench-readme-results": readme_markdown(results),
        "bench-speed-log": log_markdown(results.parent / "RESULTS.md"),
        "bench-live-browser": "\n\n".join(
            f"**{title}** (`benchmarks/results/live_browser/{where}README.md`)\n\n"
            + log_markdown(live / where / "README.md")
            for title, where in (("First run", ""), ("After the class-load changes", "after-pacing/"))
        ),
        "bench-live-panel": "\n\n".join(
            f"**{title}** (`benchmarks/results/live_browser/{where}/README.md`)\n\n"
            + log_markdown(live / where / "README.md")
            for title, where in (("Quiet", "panel-none"), ("Both cores busy", "panel-spin"))
            if (live / where / "README.md").is_file()
        ),
        "bench-load": log_markdown(results / "load" / "results.md"),
        "bench-recipes": result_markdown(results / "recipes" / "table.md"),
        "bench-salient-sample": result_markdown(results / "salient_sample" / "table.md"),
        "bench-protocols": protocols_markdown(results, reproduction),
        "bench-reconcile": reconcile_markdown(results, reproduction),
        "bench-afm-vs-fm-fixed": fixed_markdown(results),
        "bench-afm-vs-fm-split-per-seed": split_per_seed_markdown(results),
        "bench-fm-start-control": control_markdown(results),
    }


def fill(text: str, results: Path = RESULTS, reproduction: Path = REPRODUCTION) -> str:
    """``text`` with every ``<!-- generated:bench-NAME -->`` ... ``<!-- /generated:bench-NAME -->`` block
    replaced by ``blocks()[NAME]`` (other generated blocks are left as they are)."""
    rendered = blocks(results, reproduction)

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in rendered:
            raise ValueError(f"unknown generated block {name!r}; known: {sorted(rendered)}")
        return f"{match.group(1)}\n{rendered[name]}\n{match.group(4)}"

    return BLOCK.sub(replace, text)


def selected_in_table(table: pd.DataFrame, task: str) -> dict[str, dict]:
    """The selections a table CSV records (its ``selected`` column), by model."""
    part = table[table["setting"] == task]
    return {r["model"]: ast.literal_eval(r["selected"]) for r in part.to_dict("records")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a document is stale")
    args = parser.parse_args()
    stale = []
    for path in DOCUMENTS:
        text = path.read_text()
        filled = fill(text)
        if filled != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(filled)
    if args.check and stale:
        sys.exit(f"stale: {', '.join(map(str, stale))} (run python benchmarks/render_tables.py)")
    print(("refilled: " if stale else "up to date: ") + ", ".join(str(p.relative_to(ROOT)) for p in DOCUMENTS))


if __name__ == "__main__":
    main()
