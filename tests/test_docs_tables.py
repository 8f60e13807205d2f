"""The benchmark figures in README.md and docs/ against the committed results.

``benchmarks/render_tables.py`` renders the ``bench-*`` blocks (the protocols table, the equal-budget tables
on one split and with a split per seed, the reconciliation's figures, the FM-start control, the recipes, the
salient sample, README's summary, the speed, live-mode and load logs) from ``benchmarks/results/``; these tests
fail when a document, or the prose around the AFM-vs-FM blocks, disagrees with the files. No training, except
one short smoke run of ``afm_vs_fm.py --split-per-seed`` on Frappe (skipped without it).
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import afm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import afm_vs_fm  # noqa: E402
import render_tables  # noqa: E402
import reproduce_report  # noqa: E402

DOC = ROOT / "docs" / "REPRODUCTION.md"
README = ROOT / "README.md"
DEFAULTS = ROOT / "docs" / "defaults.md"
AVF = ROOT / "benchmarks" / "results" / "afm_vs_fm"
RESULTS = ROOT / "benchmarks" / "results"
REPRODUCTION = ROOT / "docs" / "reproduction"
FRAPPE = ROOT.parent / "shared" / "data" / "frappe"
OPEN = re.compile(r"<!-- generated:([\w-]+) -->")
ANY_BLOCK = re.compile(r"<!-- generated:([\w-]+) -->.*?<!-- /generated:\1 -->", re.S)
NUMBER = re.compile(r"\d+\.\d{4}")  # the 4-decimal figures the tables print
# hand-written prose whose figures must come from a generated block: (document, section heading)
SECTIONS = [
    (DOC, "## AFM against FM: the protocols side by side"),
    (DOC, "## AFM against FM with the same tuning budget (`benchmarks/afm_vs_fm.py`)"),
    (DEFAULTS, "## AFM against FM with the same tuning budget (Frappe)"),
]
UNFILED = {"0.2778", "0.2780"}  # defaults.md: the frozen-embeddings run, one run whose output was not kept (it says so)
ATTENTION = ROOT / "docs" / "ATTENTION.md"
ELSEWHERE = {
    "bench-recipes",
    "bench-salient-sample",
    "bench-readme-results",
    "bench-speed-log",
    "bench-live-browser",
    "bench-live-panel",
}
EXPECTED = {
    DOC: set(render_tables.blocks()) - ELSEWHERE - {"bench-load"},
    ATTENTION: {"bench-recipes", "bench-salient-sample"},
    README: {"bench-readme-results"},
    DEFAULTS: {"bench-afm-vs-fm-fixed", "bench-afm-vs-fm-split-per-seed", "bench-fm-start-control"},
    ROOT / "docs" / "speed.md": {"bench-speed-log"},
    ROOT / "docs" / "dashboard.md": {"bench-live-browser", "bench-live-panel"},
    ROOT / "docs" / "load.md": {"bench-load"},
}


@pytest.fixture(scope="module")
def blocks() -> dict[str, str]:
    return render_tables.blocks()


def test_documents_match_the_committed_results(blocks: dict[str, str]) -> None:
    assert set(EXPECTED) == set(render_tables.DOCUMENTS)  # every document that holds blocks is refilled
    assert set().union(*EXPECTED.values()) == set(blocks)  # and every block has its place
    for path, names in EXPECTED.items():
        text = path.read_text()
        present = set(OPEN.findall(text))
        assert names <= present, f"{path.name} lacks the blocks {sorted(names - present)}"
        assert render_tables.fill(text) == text, f"{path.name} disagrees with benchmarks/results/: run render_tables.py"


def test_every_generated_block_is_rendered_by_someone() -> None:
    """Each block of the documents is closed and known to reproduce_report, to render_tables or to afm.settings
    (docs/defaults.md's table of environment variables); each renderer leaves the others' blocks alone."""
    known = set(reproduce_report.report(REPRODUCTION)) | set(render_tables.blocks()) | {afm.settings.BLOCK_NAME}
    for path in render_tables.DOCUMENTS:
        text = path.read_text()
        names = OPEN.findall(text)
        assert len(names) == len(set(names)), f"{path.name}: a block appears twice"
        assert set(names) <= known, f"{path.name}: unknown blocks {sorted(set(names) - known)}"
        assert len(ANY_BLOCK.findall(text)) == len(names), f"{path.name}: a block is not closed"
    text = DOC.read_text()
    assert reproduce_report.fill(text, REPRODUCTION) == text  # the bench-* blocks are not reproduce_report's
    for name in reproduce_report.report(REPRODUCTION):
        assert not render_tables.BLOCK.search(f"<!-- generated:{name} -->x<!-- /generated:{name} -->")


def test_a_changed_figure_is_caught(blocks: dict[str, str]) -> None:
    text = DOC.read_text()
    figure = blocks["bench-afm-vs-fm-split-per-seed"].split("| FM | ", 1)[1].split(" |", 1)[0]  # FM's test AUC
    stale = text.replace(figure, "0.1234 ± 0.0001")
    assert stale != text and render_tables.fill(stale) == text


def test_prose_figures_come_from_generated_blocks(blocks: dict[str, str]) -> None:
    """Every 4-decimal figure in the prose of the AFM-vs-FM sections is one a generated block prints."""
    rendered = [*blocks.values(), *reproduce_report.report(REPRODUCTION).values()]
    allowed = {n for block in rendered for n in NUMBER.findall(block)}
    for path, heading in SECTIONS:
        text = path.read_text()
        assert heading in text, f"{path.name}: no section {heading!r}"
        level = heading.split(" ", 1)[0]
        body = text.split(heading, 1)[1]
        following = re.search(rf"^#{{1,{len(level)}}} ", body, re.M)
        prose = ANY_BLOCK.sub("", body[: following.start()] if following else body)
        stray = set(NUMBER.findall(prose)) - allowed - UNFILED
        assert not stray, f"{path.name} {heading}: figures no committed file gives: {sorted(stray)}"


# ---------------------------------------------------------------------------- the files behind the blocks


def test_fixed_table_md_agrees_with_its_csv(blocks: dict[str, str]) -> None:
    """table.md (the run's own printout) holds the same table rows as the block rendered from table.csv."""
    rows = [line for line in (AVF / "table.md").read_text().splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 8  # two settings × (header + 3 models)
    for row in rows:
        assert row in blocks["bench-afm-vs-fm-fixed"]


def test_selections_agree_everywhere() -> None:
    fixed = pd.read_csv(AVF / "table.csv")
    per_seed = pd.read_csv(AVF / "table-split-per-seed.csv")
    run = json.loads((AVF / "run-split-per-seed.json").read_text())
    for task in ("binary", "regression"):
        selected = afm_vs_fm.select(pd.read_csv(AVF / f"trials-{task}.csv"), task)
        assert render_tables.selected_in_table(fixed, task) == selected
        assert render_tables.selected_in_table(per_seed, task) == selected
        assert run["selected"][task] == selected


def test_split_per_seed_results_are_complete_and_consistent() -> None:
    runs = pd.read_csv(AVF / "runs-split-per-seed.csv")
    table = pd.read_csv(AVF / "table-split-per-seed.csv")
    run = json.loads((AVF / "run-split-per-seed.json").read_text())
    assert len(runs) == run["trainings"] == 18
    assert (runs["split_seed"] == runs["seed"]).all() and sorted(set(runs["seed"])) == list(afm_vs_fm.SEEDS)
    assert (table["split"] == "per seed").all()
    for key in ("cpu", "date", "wall_seconds", "torch", "threads", "selections", "command"):
        assert run[key] not in ("", None), key
    assert "--split-per-seed" in run["command"]
    for row in table.to_dict("records"):
        mine = runs[(runs["setting"] == row["setting"]) & (runs["model"] == row["model"])].sort_values("seed")
        assert len(mine) == 3
        for metric in afm_vs_fm.REPORT[row["setting"]]:
            values = mine[f"test_{metric}"]
            assert math.isclose(row[f"test_{metric}"], values.mean(), rel_tol=1e-12)
            assert math.isclose(row[f"test_{metric}_std"], values.std(ddof=1), rel_tol=1e-9, abs_tol=1e-12)
        assert row["epochs"] == "/".join(str(e) for e in mine["epochs_run"])


def test_fm_start_control_csv_matches_its_printout(blocks: dict[str, str]) -> None:
    rows = [line for line in (RESULTS / "fm_start_control.md").read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(pd.read_csv(RESULTS / "fm_start_control.csv"))  # header + one row per data set
    for row in rows:
        assert row in blocks["bench-fm-start-control"]
    assert "date" in json.loads((RESULTS / "fm_start_control.json").read_text())


def test_verdict_rules() -> None:
    assert render_tables.paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "rmse")[2] == "equal"
    assert render_tables.paired([0.5, 0.6, 0.7], [0.4, 0.49, 0.61], "rmse")[2] == "better"
    assert render_tables.paired([0.5, 0.6, 0.7], [0.4, 0.61, 0.6], "rmse")[2] == "unclear"
    assert render_tables.paired([0.90, 0.91, 0.92], [0.88, 0.89, 0.905], "auc")[2] == "worse"
    assert render_tables.unpaired((0.29, 0.0015), (0.276, 0.0021), 3, "logloss") == "better"
    assert render_tables.unpaired((0.9387, 0.0019), (0.9391, 0.0010), 3, "auc") == "unclear"


def test_selected_in_table_reads_the_csv_cell() -> None:
    frame = pd.DataFrame([{"setting": "binary", "model": "FM", "selected": str({"lr": 0.01, "batch_size": 1024})}])
    assert render_tables.selected_in_table(frame, "binary") == {"FM": ast.literal_eval(frame["selected"][0])}


def _run_benchmark(out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "benchmarks" / "afm_vs_fm.py"), "--frappe", str(FRAPPE), "--out", str(out)]
    command += ["--settings", "binary", "--max-epochs", "1", "--threads", "1", *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


PER_SEED_FILES = {
    "table-split-per-seed.csv",
    "table-split-per-seed.md",
    "runs-split-per-seed.csv",
    "run-split-per-seed.json",
}


@pytest.mark.skipif(not (FRAPPE / "frappe.validation.libfm").is_file(), reason="needs Frappe")
@pytest.mark.slow
def test_split_per_seed_mode_writes_its_files(tmp_path: Path) -> None:
    """Smoke runs of the new mode (binary, 1 epoch): from the committed selections, and with a search of 1."""
    reused = tmp_path / "reused"
    reused.mkdir()
    shutil.copy(AVF / "trials-binary.csv", reused)
    done = _run_benchmark(reused, "--split-per-seed", "--reuse-trials")
    assert "selections reused" in done.stderr
    assert {p.name for p in reused.iterdir()} == {"trials-binary.csv", *PER_SEED_FILES}  # no fixed-split table
    runs = pd.read_csv(reused / "runs-split-per-seed.csv")
    assert len(runs) == 9 and (runs["epochs_run"] == 1).all()
    assert sorted(runs.groupby("model")["split_seed"].apply(tuple).unique()) == [(0, 1, 2)]
    assert (reused / "trials-binary.csv").read_bytes() == (AVF / "trials-binary.csv").read_bytes()
    run = json.loads((reused / "run-split-per-seed.json").read_text())
    assert run["selected"]["binary"] == afm_vs_fm.select(pd.read_csv(AVF / "trials-binary.csv"), "binary")
    assert run["selections"].startswith("reused")

    searched = tmp_path / "searched"
    _run_benchmark(searched, "--split-per-seed", "--budget", "1")
    # a new search rewrites the fixed-split table too, so that it and the trials always agree
    assert {p.name for p in searched.iterdir()} == {"trials-binary.csv", "table.csv", "table.md", *PER_SEED_FILES}
    selected = afm_vs_fm.select(pd.read_csv(searched / "trials-binary.csv"), "binary")
    for name in ("table.csv", "table-split-per-seed.csv"):
        assert render_tables.selected_in_table(pd.read_csv(searched / name), "binary") == selected


def test_seed_parts_draws_a_split_per_seed_and_keeps_the_test_file() -> None:
    pool = afm.datasets.sample("binary")
    test = afm.datasets.sample("regression")
    files = {"validation": pool, "test": test}
    parts = {seed: afm_vs_fm.seed_parts(files, seed) for seed in (0, 1)}
    for p in parts.values():
        assert p["test"] is test
        assert len(p["train"]) + len(p["valid"]) == len(pool)
        assert len(p["valid"]) == int(len(pool) * afm_vs_fm.VALID_FRACTION)
    assert not torch.equal(parts[0]["train"].idx, parts[1]["train"].idx)
    assert torch.equal(parts[0]["train"].idx, afm_vs_fm.seed_parts(files, 0)["train"].idx)  # deterministic
