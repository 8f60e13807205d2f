"""Whole-data explanations in bounded memory (``afm.summarize``) against the full explanation, the row
sample, relative waterfall terms and the what-if range checks. Every asserted number is recomputed from
``afm.explain_dataset`` (every row held) or written out by hand."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import afm
from afm import explain
from afm.cli import main

PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"
ROW_TERMS = ("prediction", "linear", "score", "attention", "interaction", "contribution")  # [N, ...] terms


@pytest.fixture(scope="module")
def models(pretrained) -> dict[str, afm.AFM | afm.FM]:
    return {kind: pretrained(f"regression-{kind}") for kind in ("afm", "fm")}


@pytest.mark.parametrize("kind", ["afm", "fm"])
def test_streaming_sums_equal_the_full_explanations_means(models, parts, kind: str) -> None:
    model, data = models[kind], parts["test"]
    full = afm.explain_dataset(model, data)
    summary = afm.summarize(model, data, sample_rows=100, batch_size=97)  # 31 batches, a 100-row sample
    assert summary.rows == len(data) == 3000 and summary.sample_rows == 100 and not summary.exact

    def mean(x: torch.Tensor) -> np.ndarray:
        return x.double().mean(0).numpy()

    for name, values in (
        ("attention", full.attention),
        ("score", full.score),
        ("interaction", full.interaction),
        ("contribution", full.contribution),
        ("abs_contribution", full.contribution.abs()),
        ("linear", full.linear),
    ):
        np.testing.assert_allclose(summary.mean(name), mean(values), rtol=0, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(summary.std_attention, full.attention.double().std(0, correction=0).numpy(), atol=1e-9)
    assert summary.mean_prediction == pytest.approx(float(full.prediction.double().mean()), abs=1e-9)
    assert summary.bias == float(full.bias)
    # the average row adds up like any row: w0 + Σ mean linear + Σ mean c = mean prediction
    total = summary.bias + summary.mean("linear").sum() + summary.mean("contribution").sum()
    assert total == pytest.approx(summary.mean_prediction, abs=1e-5)

    streamed = afm.field_pair_frame(model, data, summary=summary)
    whole = afm.field_pair_frame(model, data, full)  # the old call: a whole-data Explanation
    numeric = ["mean_attention", "std_attention", "mean_score", "mean_interaction", "mean_contribution",
               "mean_abs_contribution"]  # fmt: skip
    np.testing.assert_allclose(streamed[numeric].to_numpy(), whole[numeric].to_numpy(), rtol=0, atol=1e-9)
    assert list(streamed["rank"]) == list(whole["rank"]) and (streamed["support"] == 3000).all()


def test_the_sample_is_seeded_and_holds_those_rows_explanations(models, parts) -> None:
    model, data = models["afm"], parts["test"]
    full = afm.explain_dataset(model, data)
    summary = afm.summarize(model, data, sample_rows=250, seed=7, batch_size=64)
    index = summary.sample_index
    assert index.tolist() == sorted(set(index.tolist())) and len(index) == 250 and int(index.max()) < 3000
    assert torch.equal(index, afm.summarize(model, data, sample_rows=250, seed=7).sample_index)  # same seed
    assert not torch.equal(index, afm.summarize(model, data, sample_rows=250, seed=8).sample_index)
    for name in ROW_TERMS:
        torch.testing.assert_close(getattr(summary.sample, name), getattr(full, name)[index], rtol=1e-5, atol=1e-6)
    assert torch.equal(summary.sample_data.idx, data.idx[index]) and torch.equal(summary.sample_data.y, data.y[index])
    assert summary.sample.attention.sum(1).sub(1).abs().max() < 1e-5  # each sampled row's a_ij sums to 1
    assert summary.sample_note() == "computed on a seeded sample of 250 of 3,000 rows"

    # per-row figures read the sample: the same numbers as the full explanation of those rows
    sampled = dataclasses.replace(full, **{name: getattr(full, name)[index] for name in ROW_TERMS})
    quantiles = explain.attention_quantiles(summary, [str(p) for p in range(36)])
    expected = explain.attention_quantiles(sampled, [str(p) for p in range(36)])
    pd.testing.assert_frame_equal(quantiles, expected, rtol=1e-6)
    assert (quantiles["rows"] == 250).all()
    agreement = afm.attention_agreement(model, data, summary)
    on_sample = afm.attention_agreement(model, summary.sample_data, sampled)
    assert agreement["top_pair_agreement"] == on_sample["top_pair_agreement"]
    assert agreement["rows"] == 3000 and agreement["sample_rows"] == 250
    # Spearman is a field-pair figure: exact over every row, as with the full explanation
    assert agreement["spearman"] == pytest.approx(afm.attention_agreement(model, data, full)["spearman"], abs=1e-12)
    curve = afm.deletion_curve(model, data, 3, explanation=summary, task="regression")
    expected_curve = afm.deletion_curve(model, summary.sample_data, 3, explanation=sampled, task="regression")
    np.testing.assert_allclose(curve["mean_abs_change"], expected_curve["mean_abs_change"], atol=1e-9)
    assert curve.attrs["rows"] == 250


def test_small_data_is_exact_and_feature_pairs_match_every_row(models, parts) -> None:
    model, data = models["afm"], parts["test"]
    summary = afm.summarize(model, data)  # 3,000 rows <= 20,000: the sample is every row
    assert summary.exact and torch.equal(summary.sample_index, torch.arange(3000))
    assert summary.sample_note() == "computed on all 3,000 rows"
    full = afm.explain_dataset(model, data)
    mine = afm.feature_pair_frame(model, data, top=None, min_count=3, summary=summary)
    whole = afm.feature_pair_frame(model, data, top=None, min_count=3, explanation=full)
    pd.testing.assert_frame_equal(mine, whole, rtol=1e-6)
    assert mine.attrs == {"rows": 3000, "of_rows": 3000} and (mine["count"] >= 3).all()
    # the counts are rows: outdoor × rain, counted by hand
    rain = data.schema.fields[data.field_names.index("weather")]
    outdoor = data.schema.fields[data.field_names.index("app_category")]
    f_rain, f_out = data.field_names.index("weather"), data.field_names.index("app_category")
    hand = int(((data.idx[:, f_rain] == rain.offset + rain.values.index("rain"))
                & (data.idx[:, f_out] == outdoor.offset + outdoor.values.index("outdoor"))).sum())  # fmt: skip
    assert int(mine.set_index("label").loc["app_category=outdoor × weather=rain", "count"]) == hand


def test_bad_input_gives_clear_errors(models, parts) -> None:
    model, data = models["afm"], parts["test"]
    with pytest.raises(ValueError, match="sample_rows must be >= 1"):
        afm.summarize(model, data, sample_rows=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        afm.summarize(model, data, batch_size=0)
    with pytest.raises(ValueError, match="empty dataset"):
        afm.summarize(model, data.subset([]))
    summary = afm.summarize(model, data.subset(range(10)))
    with pytest.raises(ValueError, match="no sum named 'attn'"):
        summary.mean("attn")
    with pytest.raises(ValueError, match="3 labels for 36 pairs"):
        explain.attention_quantiles(summary, ["a", "b", "c"])
    with pytest.raises(ValueError, match="the explanation has 10 rows, the data 3000"):
        afm.field_pair_frame(model, data, afm.explain_dataset(model, data.subset(range(10))))


@pytest.mark.parametrize("kind", ["afm", "fm"])
def test_relative_terms_add_up_and_location_has_no_effect(models, parts, kind: str) -> None:
    model, data = models[kind], parts["test"]
    baseline = afm.summarize(model, parts["all"])
    rows = data.subset(range(40))
    exp = model.explain(rows.idx, rows.val)
    location = 1 + data.field_names.index("location")  # the term after the first bar
    raw_sizes, relative_sizes = [], []
    for r in range(len(rows)):
        terms = explain.row_terms(exp, r, rows, top=5, baseline=baseline)
        assert terms.loc[0, "term"] == "average prediction" and terms.loc[0, "value"] == baseline.mean_prediction
        assert terms["value"].sum() == pytest.approx(float(exp.prediction[r]), abs=1e-5)  # adds up
        assert terms["cumulative"].iloc[-1] == pytest.approx(float(exp.prediction[r]), abs=1e-5)
        raw = explain.row_terms(exp, r, rows, top=5)
        assert raw.loc[location, "term"] == terms.loc[location, "term"] and raw.loc[location, "term"].startswith(
            "location="
        )
        # relative = raw - the field's mean linear term over the data
        assert terms.loc[location, "value"] == pytest.approx(
            raw.loc[location, "value"] - baseline.mean("linear")[location - 1], abs=1e-12
        )
        raw_sizes.append(abs(raw.loc[location, "value"]))
        relative_sizes.append(abs(terms.loc[location, "value"]))
    # location has no effect in the sample: its raw term only carries part of the bias
    assert min(raw_sizes) > 0.2 and max(relative_sizes) < 0.05
    wrong = afm.summarize(model, data.subset(range(5)))
    wrong.linear_sum = wrong.linear_sum[:3]
    with pytest.raises(ValueError, match="summarises 3 fields"):
        explain.row_terms(exp, 0, rows, baseline=wrong)


def test_numeric_ranges_and_out_of_range() -> None:
    frame = pd.DataFrame({"age": [20.0, 35.0, 60.0], "city": ["a", "b", "a"], "y": [1.0, 2.0, 3.0]})
    data = afm.load_table(frame, label="y", categorical=["city"], numeric=["age"])
    ranges = explain.numeric_ranges(data)
    assert list(ranges) == ["age"]
    assert ranges["age"] == pytest.approx((20.0, 60.0), abs=1e-4)
    assert explain.out_of_range({"age": 40.0, "city": "a"}, ranges) == {}
    assert explain.out_of_range({"age": 61.0}, ranges) == {"age": ranges["age"]}
    assert explain.out_of_range({"age": 19.0}, ranges) == {"age": ranges["age"]}


def test_cli_predict_streams_the_same_numbers(models, parts, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(afm.summary, "auto_batch_size", lambda model: 700)  # 3000 rows: 5 batches of CSV
    out = tmp_path / "pred.csv"
    ckpt = PRETRAINED / "regression-afm.pt"
    assert main(["predict", "--checkpoint", str(ckpt), "--data", "sample", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    full = afm.explain_dataset(models["afm"], parts["all"])
    assert list(frame["row"]) == list(range(30000)) and frame.shape[1] == 4 + 36  # row, prediction, bias, linear
    np.testing.assert_allclose(frame["prediction"], full.prediction.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(frame.iloc[:, 4:].to_numpy(), full.contribution.numpy(), rtol=1e-5, atol=1e-6)


def test_cli_explain_says_what_is_sampled(models, parts, capsys) -> None:
    args = ["explain", "--checkpoint", str(PRETRAINED / "regression-afm.pt"), "--data", "sample", "--top", "3"]
    assert main([*args, "--sample-rows", "1000", "--csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    summary = afm.summarize(models["afm"], parts["all"], sample_rows=1000)
    expected = afm.feature_pair_frame(models["afm"], parts["all"], 3, 5, summary=summary)
    features = table[table["level"] == "feature"]
    assert list(features["label"]) == list(expected["label"]) and list(features["count"]) == list(expected["count"])
    assert main(args) == 0
    assert "computed on a seeded sample of 20,000 of 30,000 rows" in capsys.readouterr().out
