"""``python -m afm explain --deletion`` and ``python -m afm stability``: the numbers they print are afm's."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import afm
from afm.cli import main

CHECKPOINT = afm.datasets.SAMPLE_DIR / "pretrained" / "regression-afm.pt"


def test_explain_deletion_prints_the_curves_and_the_agreement(capsys: pytest.CaptureFixture[str]) -> None:
    model = afm.load_model(CHECKPOINT)[0].eval()
    data = afm.datasets.load_parts("sample", seed=0)["test"]
    expected = afm.deletion_curve(model, data, 10, task="regression")
    args = ["explain", "--checkpoint", str(CHECKPOINT), "--data", "sample", "--part", "test", "--deletion"]
    assert main([*args, "--csv"]) == 0
    curve = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(curve.columns) == ["ranking", "removed", "mean_abs_change", "mean_metric", "change_lo", "change_hi"]
    assert list(curve["ranking"]) == list(expected["ranking"]) and list(curve["removed"]) == list(expected["removed"])
    np.testing.assert_allclose(curve["mean_abs_change"], expected["mean_abs_change"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(curve["mean_metric"], expected["mean_metric"], rtol=1e-5)

    # this regression AFM's attention part is negligible: the words say so and no attention ranking is printed
    effect = afm.attention.attention_effect(model, data)
    assert effect.negligible
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "so this AFM predicts as its FM would with uniform attention" in text
    assert "No ranking of pairs by attention" in text and "Spearman" not in text
    one = expected[expected["removed"] == 1].set_index("ranking")["mean_abs_change"]
    row = next(line for line in text.splitlines() if line.split()[:1] == ["1"])  # first table: mean |change|
    assert row.split()[1:] == [f"{one[r]:.4f}" for r in ("contribution", "random")]
    assert "RMSE, pairs chosen by:" in text


def test_explain_prints_the_agreement_beside_its_nulls(capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = CHECKPOINT.parent / "binary-afm.pt"
    model = afm.load_model(checkpoint)[0].eval()
    data = afm.datasets.load_parts("sample", task="binary", seed=0)["test"]
    assert not afm.attention.attention_effect(model, data).negligible
    args = ["explain", "--checkpoint", str(checkpoint), "--data", "sample", "--part", "test", "--deletion"]
    assert main(args) == 0
    text = capsys.readouterr().out
    agreement = afm.attention_agreement(model, data)
    assert f"Spearman {agreement['spearman']:.3f} over the 36 field pairs" in text
    assert f"(attention shuffled within rows: {agreement['spearman_permuted']:.3f}" in text
    assert f"in {agreement['top_pair_agreement']:.1%} of the rows (uniform attention 2.8%" in text
    assert "permuted" in text.split("mean |change of the prediction|")[1].splitlines()[1]


def test_stability_command(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--epochs", "1", "-k", "4", "-t", "4", "--no-pretrain", "--batch-size", "1024", "--seeds", "2"]
    assert main(["stability", "--data", "sample", "--part", "test", *flags, "--csv", "--quiet"]) == 0
    captured = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(captured.out))
    parts = afm.datasets.load_parts("sample", seed=0)
    config = afm.TrainConfig(task="regression", epochs=1, embed_dim=4, attention_factor=4, pretrain=False,
                             batch_size=1024)  # fmt: skip
    expected, tau = afm.seed_stability(config, parts["train"], parts["valid"], parts["test"], seeds=2)
    assert list(frame["label"]) == list(expected["label"])
    np.testing.assert_allclose(frame["mean_abs_contribution"], expected["mean_abs_contribution"], rtol=1e-5)
    np.testing.assert_allclose(frame["attention_hi"], expected["attention_hi"], rtol=1e-5)
    assert list(frame["rank_lo"]) == list(expected["rank_lo"])
    planted = {" × ".join(p["fields"]) for p in afm.datasets.sample_truth()}
    assert set(frame.loc[frame["planted"], "label"]) == planted
    assert f"by |contribution| {tau:.3f}" in captured.err


def test_stability_needs_a_part_that_exists(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    (tmp_path / "ml-tag.train.libfm").write_text("1 0:1 1:1 2:1\n-1 0:1 1:1 3:1\n")
    assert main(["stability", "--data", str(tmp_path), "--part", "test", "--seeds", "2"]) == 2
    assert "has no 'test' part" in capsys.readouterr().err
