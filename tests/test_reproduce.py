"""The reproduction: ``python -m afm reproduce --quick`` end to end (a smoke test), and the committed
docs/REPRODUCTION.md against the committed CSVs in docs/reproduction/ (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from afm import reproduce
from afm.cli import main

ROOT = Path(__file__).resolve().parent.parent
FRAPPE = ROOT.parent / "shared" / "data" / "frappe"
DOC = ROOT / "docs" / "REPRODUCTION.md"
OUT = ROOT / "docs" / "reproduction"


def test_reproduce_quick_writes_tables_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFM_FRAPPE", str(FRAPPE))  # reproduce's default folder; skipped there when absent
    out = tmp_path / "repro"
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "AFM (FM-pretrained)" in printed.out and "done in" in printed.err
    plan = reproduce.Plan.quick()
    seeds = len(plan.seeds)
    table = pd.read_csv(out / "table2.csv")
    datasets = ["frappe", "sample"] if (FRAPPE / "frappe.validation.libfm").is_file() else ["sample"]
    assert sorted(table["dataset"].unique()) == datasets
    tags = list(dict.fromkeys(zip(table["dataset"], table["setting"], strict=True)))
    assert sorted(p.name for p in out.iterdir()) == sorted(reproduce.written_files(tags))
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
    doc = "".join(f"<!-- generated:{name} -->\nold\n<!-- /generated:{name} -->\n" for name in reproduce.report(out))
    filled = reproduce.fill(doc, out)
    assert "old" not in filled and "| AFM beats FM (Table 2) |" in filled
    assert reproduce.fill(filled, out) == filled


def test_early_stopping_epoch_mirrors_fit() -> None:
    assert reproduce.early_stopping_epoch(1.0, [0.9, 0.8, 0.85, 0.84, 0.83, 0.7], patience=3) == 2
    assert reproduce.early_stopping_epoch(1.0, [1.1, 1.2, 1.3], patience=3) == 0
    assert reproduce.early_stopping_epoch(0.5, [0.6, 0.7], patience=3, lower=False) == 2


# ---------------------------------------------------------------------------- the committed document


def test_document_tables_match_the_committed_csvs() -> None:
    """Every generated block of docs/REPRODUCTION.md (Table 2, the selection, the claims table) is
    what ``afm.reproduce.report`` rebuilds from the committed files it cites."""
    text = DOC.read_text()
    blocks = reproduce.report(OUT)
    for name in blocks:
        assert f"<!-- generated:{name} -->" in text, f"docs/REPRODUCTION.md lacks the {name} block"
    assert reproduce.fill(text, OUT) == text, "docs/REPRODUCTION.md disagrees with docs/reproduction/: refill it"
    assert (OUT / "report.md").read_text() == "\n\n".join(f"## {k}\n\n{v}" for k, v in blocks.items())
    assert "| AFM (FM-pretrained), λ = 0 |" in text and "| AFM beats FM (Table 2) |" in text


def test_claims_cite_committed_files() -> None:
    claims = reproduce.claims(OUT)
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
    assert sorted(p.name for p in OUT.iterdir()) == sorted(reproduce.written_files(tags))
    table = pd.read_csv(OUT / "table2.csv")
    assert (table["seeds"] >= 3).all()
    for row in table.to_dict("records"):
        assert row["model"].startswith("FM") == math.isnan(row["entropy"])
