"""The reproduction: ``python benchmarks/reproduce.py --quick`` end to end (a smoke test), the committed
docs/REPRODUCTION.md against the committed CSVs in docs/reproduction/ (no training), and the split between
the library's definitions (afm/reproduce.py: computes, writes nothing) and the benchmark scripts that run the
grid and write the files and the document (benchmarks/reproduce.py, benchmarks/reproduce_report.py)."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from afm import reproduce

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import reproduce as runner  # noqa: E402  (benchmarks/reproduce.py, a script: not afm.reproduce)
import reproduce_report  # noqa: E402

FRAPPE = ROOT.parent / "shared" / "data" / "frappe"
DOC = ROOT / "docs" / "REPRODUCTION.md"
OUT = ROOT / "docs" / "reproduction"


@pytest.mark.slow
def test_reproduce_quick_writes_tables_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFM_FRAPPE", str(FRAPPE))  # reproduce's default folder; skipped there when absent
    out = tmp_path / "repro"
    assert runner.main(["--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "AFM (FM-pretrained)" in printed.out and "done in" in printed.err
    plan = reproduce.Plan.quick()
    seeds = len(plan.seeds)
    table = pd.read_csv(out / "table2.csv")
    datasets = ["frappe", "sample"] if (FRAPPE / "frappe.validation.libfm").is_file() else ["sample"]
    assert sorted(table["dataset"].unique()) == datasets
    tags = list(dict.fromkeys(zip(table["dataset"], table["setting"], strict=True)))
    assert sorted(p.name for p in out.iterdir()) == sorted(runner.written_files(tags))
    for (dataset, setting), part in table.groupby(["dataset", "setting"]):
        assert list(part["model"]) == list(reproduce.TABLE2_MODELS)
        assert (part["seeds"] == seeds).all()
        if setting == "regression":
            assert part["test_rmse"].between(0, 2 if dataset == "frappe" else 3).all()
        else:
            assert part["test_auc"].between(0.5, 1).all()
        attention = part[part["model"].str.startswith("AFM")]
        assert attention["entropy"].between(0, 1 + 1e-6).all() and (attention["spread"] >= 0).all()
        assert part[part["model"].str.startswith("FM")]["entropy"].isna().all()
        uniform = part[part["model"] == reproduce.UNIFORM].iloc[0]
        assert uniform["spread"] < 1e-6  # h frozen at 0: every pair keeps 1/P
        assert part["cap_runs"].between(0, seeds).all()
        tag = f"{dataset}-{setting}"
        grid = pd.read_csv(out / f"grid-{tag}.csv")
        per_afm = len(plan.afm_dropouts) * len(plan.lambdas) + len(plan.factors) - 1
        assert len(grid) == seeds * (len(plan.fm_dropouts) + 2 * per_afm + 2)  # + the two controls
        # a run that the cap ended (not early stopping) is flagged; the quick plan's cap of 2 ends many
        assert (grid["hit_cap"] == ((grid["epochs_run"] == plan.cap) & (grid["stopped"] == "completed"))).all()
        assert grid["hit_cap"].any()
        chosen = json.loads((out / f"chosen-{tag}.json").read_text())
        assert set(chosen) == {"fm", "fm-continued", "afm-pretrained", "afm-scratch", "afm-uniform"}
        assert set(chosen["afm-pretrained"]) == {"stage1", "selected", "lambda0"}
        curves = pd.read_csv(out / f"epochs-{tag}.csv")
        assert set(curves["part"]) == {"train", "valid", "test"}
        assert curves.groupby("model")["epoch"].max().to_dict() == dict.fromkeys(
            [reproduce.FM_ROW, reproduce.PRE, reproduce.SCRATCH], plan.curve_epochs
        )
        pretrained = curves[curves["model"] == reproduce.PRE]
        handover = int(curves["handover"].iloc[0])
        assert (pretrained[pretrained["phase"] == "AFM"]["epoch"] > handover).all()  # cumulative epochs
    run = json.loads((out / "run.json").read_text())
    assert run["quick"] is True and run["seconds"] < 300
    # the document's blocks fill from this run's files
    names = reproduce_report.report(out)
    doc = "".join(f"<!-- generated:{name} -->\nold\n<!-- /generated:{name} -->\n" for name in names)
    filled = reproduce_report.fill(doc, out)
    assert "old" not in filled and "| AFM beats FM (Table 2) |" in filled
    assert reproduce_report.fill(filled, out) == filled


def test_early_stopping_epoch_mirrors_fit() -> None:
    assert reproduce.early_stopping_epoch(1.0, [0.9, 0.8, 0.85, 0.84, 0.83, 0.7], patience=3) == 2
    assert reproduce.early_stopping_epoch(1.0, [1.1, 1.2, 1.3], patience=3) == 0
    assert reproduce.early_stopping_epoch(0.5, [0.6, 0.7], patience=3, lower=False) == 2


def test_the_runner_reports_a_bad_output_folder_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    assert runner.main(["--quick", "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reproduce: error:") and "a-file" in err[0]


# ---------------------------------------------------------------------------- the library computes, the scripts write

WRITERS = {"write_text", "write_bytes", "write_html", "write_image", "to_csv", "to_json", "to_parquet", "to_markdown"}
WRITERS |= {"to_html", "to_string", "mkdir", "savefig", "open"}
MARKUP = ("| ", "|---", "<!--", "**", "## ")  # a Markdown table, a document's marker, bold, a heading


def _writes_or_renders(source: str) -> list[str]:
    """What in ``source`` writes a file or renders a document: calls of file writers (and ``open``), functions
    annotated to return text (``-> str``, ``-> dict[str, str]``, ...), and string constants holding Markdown
    (docstrings aside)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in WRITERS:
                found.append(f"line {node.lineno}: calls {name}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            returns = ast.unparse(node.returns)
            if returns == "str" or returns.endswith(", str]") or returns == "list[str]":
                found.append(f"line {node.lineno}: {node.name} returns {returns}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if any(mark in node.value for mark in MARKUP):
                found.append(f"line {node.lineno}: Markdown {node.value[:40]!r}")
    return found


def test_the_library_part_writes_no_file_and_renders_no_document() -> None:
    """afm/reproduce.py defines and computes (plans, data, grids, tables as frames); running the grid into files
    and writing Markdown, claims and documents is benchmarks/' job."""
    found = _writes_or_renders((ROOT / "afm" / "reproduce.py").read_text())
    assert not found, "afm/reproduce.py writes files or renders documents:\n" + "\n".join(found)
    for name in ("report", "fill", "claims", "write_report", "reproduce", "run_setting", "table2_markdown"):
        assert not hasattr(reproduce, name), f"afm.reproduce.{name} belongs in benchmarks/"
    # the guard sees what it guards against: the scripts that do write and render
    for script in ("reproduce.py", "reproduce_report.py"):
        assert _writes_or_renders((ROOT / "benchmarks" / script).read_text()), script
    report = _writes_or_renders((ROOT / "benchmarks" / "reproduce_report.py").read_text())
    assert any("table2_markdown returns str" in f for f in report) and any("Markdown" in f for f in report)


def test_the_library_part_loads_no_plotting_and_no_script() -> None:
    loaded = "sorted(m for m in ('plotly', 'reproduce_report', 'reproduce') if m in sys.modules)"
    probe = f"import sys, afm.reproduce; print({loaded})"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------- the committed document


def test_document_tables_match_the_committed_csvs() -> None:
    """Every generated block of docs/REPRODUCTION.md (Table 2, the selection, the claims table) is
    what ``reproduce_report.report`` rebuilds from the committed files it cites."""
    text = DOC.read_text()
    blocks = reproduce_report.report(OUT)
    for name in blocks:
        assert f"<!-- generated:{name} -->" in text, f"docs/REPRODUCTION.md lacks the {name} block"
    assert reproduce_report.fill(text, OUT) == text, "docs/REPRODUCTION.md disagrees with docs/reproduction/: refill it"
    assert (OUT / "report.md").read_text() == "\n\n".join(f"## {k}\n\n{v}" for k, v in blocks.items())
    assert "| AFM (FM-pretrained), λ = 0 |" in text and "| AFM beats FM (Table 2) |" in text


def test_claims_cite_committed_files() -> None:
    claims = reproduce_report.claims(OUT)
    assert len(claims) >= 8 and set(claims["claim"]) >= {"AFM beats FM (Table 2)", "FM pre-training matters"}
    for cell in [*claims["source"], *claims["figure"]]:
        for name in cell.split(", "):
            assert name == "Table 2" or (OUT / name).is_file(), f"a claim cites {name}, which is not committed"


def test_committed_run_is_the_full_plan_and_has_no_stale_files() -> None:
    run = json.loads((OUT / "run.json").read_text())
    assert run["quick"] is False
    plan = reproduce.Plan.full()
    assert run["plan"] == json.loads(json.dumps(vars(plan)))  # the committed run is today's full plan
    assert run["plan"]["cap"] >= 40 and len(run["plan"]["seeds"]) >= 3 and 16 in run["plan"]["factors"]
    tags = list(dict.fromkeys(zip(*(pd.read_csv(OUT / "table2.csv")[c] for c in ("dataset", "setting")), strict=True)))
    assert sorted(p.name for p in OUT.iterdir()) == sorted(runner.written_files(tags))
    table = pd.read_csv(OUT / "table2.csv")
    assert (table["seeds"] >= 3).all()
    for row in table.to_dict("records"):
        assert row["model"].startswith("FM") == math.isnan(row["entropy"])


def test_the_report_script_checks_and_refills_a_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert reproduce_report.main(["--check"]) == 0  # the committed document agrees with the committed run
    stale = tmp_path / "REPRODUCTION.md"
    text = DOC.read_text()
    table2 = reproduce_report.report(OUT)["table2"]
    stale.write_text(text.replace(table2, "| an old table |"))
    assert reproduce_report.main(["--check", "--doc", str(stale)]) == 1
    assert "disagrees" in capsys.readouterr().err
    assert reproduce_report.main(["--doc", str(stale)]) == 0 and stale.read_text() == text
