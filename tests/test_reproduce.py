"""`python -m afm reproduce --quick`: the paper's experiments end to end, as a smoke test."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from afm.cli import main

FRAPPE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "frappe"


def test_reproduce_quick_writes_tables_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFM_FRAPPE", str(FRAPPE))  # reproduce's default folder; skipped there when absent
    out = tmp_path / "repro"
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "AFM (FM-pretrained)" in printed.out and "done in" in printed.err
    table = pd.read_csv(out / "table2.csv")
    datasets = ["frappe", "sample"] if FRAPPE.is_dir() else ["sample"]
    assert sorted(table["dataset"].unique()) == datasets
    for (dataset, setting), part in table.groupby(["dataset", "setting"]):
        assert list(part["model"]) == ["FM", "AFM (FM-pretrained)", "AFM (no pre-training)"]
        assert (part["seeds"] == 2).all()
        if setting == "regression":
            assert part["test_rmse"].between(0, 2 if dataset == "frappe" else 3).all()
        else:
            assert part["test_auc"].between(0.5, 1).all()
        tag = f"{dataset}-{setting}"
        for parameter in ("dropout", "attention_factor", "l2_attention"):
            sweep = pd.read_csv(out / f"sweep-{tag}-{parameter}.csv")
            assert len(sweep) == (4 if parameter == "dropout" else 2)  # dropout: FM and AFM
            assert (out / f"sweep-{tag}-{parameter}-{'rmse' if setting == 'regression' else 'auc'}.html").is_file()
        chosen = json.loads((out / f"chosen-{tag}.json").read_text())
        assert set(chosen) == {"fm_dropout", "afm_dropout", "afm_l2_attention"}
        curves = pd.read_csv(out / f"epochs-{tag}.csv")
        assert set(curves["part"]) == {"train", "test"} and curves["epoch"].max() == 3
        assert (out / f"epochs-{tag}.html").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["quick"] is True and run["seconds"] < 300
