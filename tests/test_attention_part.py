"""What attention moves: the split of the pair term, ties that rank nothing, and the nulls beside each figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import afm
from afm import explain, faithfulness
from afm.attention import NEGLIGIBLE, TIE_RTOL, attention_effect, tie_ranks, tied, top_set

ROOT = Path(__file__).resolve().parent.parent
FRAPPE = ROOT.parent / "shared" / "data" / "frappe"
PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"


def _adds_up(model: afm.AFM | afm.FM, idx: torch.Tensor, val: torch.Tensor | None) -> afm.Explanation:
    exp = model.eval().explain(idx, val)
    parts = exp.bias + exp.linear.sum(1) + exp.uniform_part.sum(1) + exp.attention_part.sum(1)
    torch.testing.assert_close(parts, exp.prediction, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(exp.uniform_part + exp.attention_part, exp.contribution, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(exp.prediction, model(idx, val), rtol=0, atol=0)  # explain is forward's own path
    return exp


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_the_split_adds_up_to_the_prediction_on_the_sample(task: str) -> None:
    data = afm.datasets.load_parts("sample", task=task, seed=0)["test"]
    model = afm.load_model(PRETRAINED / f"{task}-afm.pt")[0]
    exp = _adds_up(model, data.idx, data.val)
    n_pairs = exp.attention.shape[1]
    assert float(exp.uniform_weight) == pytest.approx(1 / n_pairs)
    torch.testing.assert_close(exp.uniform_part, exp.interaction / n_pairs)
    torch.testing.assert_close(exp.relative_attention.sum(1), torch.full((len(data),), float(n_pairs)))
    # the pre-trained AFM's attention is near uniform, yet its attention part is far from 0
    assert float(exp.attention_part.sum(1).abs().mean()) > 1e-3


def test_fm_has_no_attention_part() -> None:
    data = afm.datasets.load_parts("sample", task="binary", seed=0)["test"]
    fm = afm.load_model(PRETRAINED / "binary-fm.pt")[0]
    exp = _adds_up(fm, data.idx, data.val)
    assert float(exp.uniform_weight) == 1.0
    assert bool((exp.attention_part == 0).all())
    torch.testing.assert_close(exp.uniform_part, exp.contribution, rtol=0, atol=0)
    effect = attention_effect(fm, data)
    assert not effect.has_attention and effect.negligible and effect.attention_abs == 0.0
    assert "FM has no attention" in effect.words()


@pytest.mark.skipif(not FRAPPE.is_dir(), reason="../shared/data/frappe is absent")
def test_the_split_adds_up_on_a_frappe_batch() -> None:
    parts = afm.datasets.frappe(FRAPPE)
    batch = parts["test"].subset(torch.arange(2048))
    model = afm.AFM(batch.n_features, batch.n_fields, 8, 4, seed=3)
    with torch.no_grad():  # a model whose attention is far from uniform and whose pairs are not tiny
        model.V.normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
        model.h.mul_(5)
    exp = _adds_up(model, batch.idx, None if batch.one_hot() else batch.val)
    assert float(exp.relative_attention.max()) > 1.5  # not near uniform: the split is exercised
    fm = afm.FM(batch.n_features, batch.n_fields, 8, seed=3)
    assert bool((_adds_up(fm, batch.idx, None).attention_part == 0).all())


def test_summary_and_frames_carry_the_split() -> None:
    data = afm.datasets.load_parts("sample", task="binary", seed=0)["test"]
    model = afm.load_model(PRETRAINED / "binary-afm.pt")[0]
    exp = explain.explain_dataset(model, data)
    streamed = afm.summarize(model, data, batch_size=700)  # several batches
    moved = exp.attention_part.double().sum(1)
    assert streamed.row_mean("abs_attention_total") == pytest.approx(float(moved.abs().mean()), rel=1e-6)
    uniform = exp.uniform_part.double().sum(1)
    assert streamed.row_mean("abs_uniform_total") == pytest.approx(float(uniform.abs().mean()), rel=1e-6)
    pair_term = exp.contribution.double().sum(1)
    assert streamed.pair_term_std == pytest.approx(float(pair_term.std(unbiased=False)), rel=1e-5)
    frame = afm.field_pair_frame(model, data, summary=streamed)
    np.testing.assert_allclose(frame["mean_attention_part"], exp.attention_part.double().mean(0), atol=1e-7)
    np.testing.assert_allclose(frame["mean_abs_attention_part"], exp.attention_part.abs().double().mean(0), atol=1e-7)
    np.testing.assert_allclose(frame["mean_uniform_part"] + frame["mean_attention_part"], frame["mean_contribution"],
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(frame["relative_attention"], frame["mean_attention"] * len(frame), rtol=1e-6)
    # the waterfall's split: uniform parts as the pair bars, attention parts as their own bars, same total
    for baseline in (None, streamed):
        terms = explain.row_terms(exp, 5, data, top=4, baseline=baseline, split=True)
        assert terms["value"].sum() == pytest.approx(float(exp.prediction[5]), abs=1e-4)
        assert {"attention", "other attention"} <= set(terms["kind"])


def test_attention_effect_numbers_and_words() -> None:
    data = afm.datasets.load_parts("sample", task="binary", seed=0)["test"]
    model = afm.load_model(PRETRAINED / "binary-afm.pt")[0]
    exp = explain.explain_dataset(model, data)
    effect = attention_effect(model, data, exp, permutations=10)
    moved = exp.attention_part.double().sum(1).abs().mean()
    assert effect.attention_abs == pytest.approx(float(moved), rel=1e-6)
    assert effect.share == pytest.approx(effect.attention_abs / (effect.attention_abs + effect.uniform_abs))
    assert effect.threshold == pytest.approx(NEGLIGIBLE * effect.pair_std)
    assert not effect.negligible and effect.attention_abs > 5 * effect.threshold
    relative = exp.relative_attention
    assert effect.relative_min == pytest.approx(float(relative.min())) and effect.relative_max > 1.0
    assert effect.permuted_lo <= effect.permuted_abs <= effect.permuted_hi and effect.permuted_abs > 0
    assert f"{effect.attention_abs:.3g}" in effect.words()


# ---------------------------------------------------------------------------- ties


def tied_afm(n_fields: int = 5) -> afm.AFM:
    """An AFM whose attention is exactly uniform: h = 0 makes every score a'_ij 0 (the exact FM start)."""
    model = afm.AFM(30, n_fields, 4, 3, seed=1)
    with torch.no_grad():
        model.V.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
        model.V[:12].mul_(3.0)  # fields 0 and 1: the first pair (f0 × f1) moves predictions most
        model.h.zero_()
        model.p.fill_(float(model.n_pairs))
    return model.eval()


def tied_data(n_fields: int = 5, rows: int = 400) -> afm.Dataset:
    g = torch.Generator().manual_seed(4)
    idx = torch.stack([torch.randint(6 * f, 6 * f + 6, (rows,), generator=g) for f in range(n_fields)], 1)
    y = torch.randn(rows, generator=g)
    schema = afm.Schema([afm.FieldSpec(f"f{f}", "ids", 6 * f, 6) for f in range(n_fields)])
    return afm.Dataset(idx, torch.ones(rows, n_fields), y, schema)


def test_tied_attention_is_never_ranked() -> None:
    model, data = tied_afm(), tied_data()
    exp = explain.explain_dataset(model, data)
    assert bool(top_set(exp.attention).all())  # every pair tied for the top, in every row
    frame = afm.field_pair_frame(model, data, exp)
    assert tied(frame["mean_attention"])
    agreement = faithfulness.attention_agreement(model, data, exp, permutations=8)
    assert agreement["tied"] and np.isnan(agreement["spearman"])
    # a tie shares the credit: the top-pair agreement is exactly chance, 1/P, never "pair 0 always wins"
    assert agreement["top_pair_agreement"] == pytest.approx(agreement["chance"])
    assert agreement["tied_rows"] == 1.0
    # the permutation null is computed all the same (uniform attention permuted is uniform: chance again)
    assert agreement["top_pair_permuted"] == pytest.approx(agreement["chance"])
    assert agreement["top_pair_permuted_lo"] <= agreement["top_pair_permuted_hi"]
    # the planted-pair table gives no rank by attention
    truth = [{"fields": ["f0", "f1"], "strength": 1.0}]
    named = frame.assign(label=[f"f{i} × f{j}" for i, j in zip(frame["i"], frame["j"], strict=True)])
    assert explain.planted_table(named, truth)["rank by attention"].tolist() == [None]
    # the effect says so in words
    effect = attention_effect(model, data, exp)
    assert effect.attention_abs == pytest.approx(0.0, abs=1e-6) and effect.negligible
    assert "exactly uniform" in effect.words() and "no ranking of pairs by attention" in effect.words()


def test_deletion_by_tied_attention_is_a_random_order_not_the_index_order() -> None:
    model, data = tied_afm(), tied_data()
    exp = explain.explain_dataset(model, data)
    curve = faithfulness.deletion_curve(model, data, max_pairs=1, explanation=exp, permutations=4)
    first = curve[curve["removed"] == 1].set_index("ranking")["mean_abs_change"]
    # by index the first pair would always go: its mean effect is what a biased ranking would give
    by_index = faithfulness.predictions_without(model, exp, torch.nn.functional.one_hot(
        torch.zeros(len(data), dtype=torch.long), exp.attention.shape[1]).bool())  # fmt: skip
    index_effect = float((by_index - exp.prediction.double()).abs().mean())
    # under ties the attention ranking is as random as "random": within a few % of it, unlike the index order
    assert first["attention"] == pytest.approx(first["random"], rel=0.25)
    assert abs(first["attention"] - index_effect) > 0.1 * index_effect
    assert not curve[curve["ranking"] == "permuted"]["change_lo"].isna().all()


def test_tie_ranks_share_the_best_rank() -> None:
    values = np.array([0.5, 0.5 * (1 - TIE_RTOL / 10), 0.2, 0.7])
    assert tie_ranks(values).tolist() == [2, 2, 4, 1]
    assert tie_ranks(np.array([1.0, 1.0, 1.0])).tolist() == [1, 1, 1]
    assert tied(np.full(5, 1 / 36)) and not tied(np.array([1 / 36, 1 / 36 * 1.001]))


def test_seed_stability_has_a_permutation_null_and_no_tau_for_tied_attention() -> None:
    frames = []
    model, data = tied_afm(), tied_data()
    for seed in (0, 1, 2):
        frames.append(faithfulness.seed_frame(model, data, seed))
    frame, _ = faithfulness.stability_frame(pd.concat(frames, ignore_index=True))
    assert frame.attrs["attention_tied"] and frame.attrs["attention_tau"] is None
    assert frame.attrs["attention_tau_permuted"] is None  # uniform attention shuffled is uniform: nothing to rank
    frames = []
    for seed in (0, 1, 2):  # attention that is not uniform: a τ, and its null from shuffled attention
        model = tied_afm()
        with torch.no_grad():
            model.h.normal_(0, 3.0, generator=torch.Generator().manual_seed(seed))
        frames.append(faithfulness.seed_frame(model, data, seed))
    frame, _ = faithfulness.stability_frame(pd.concat(frames, ignore_index=True))
    assert not frame.attrs["attention_tied"] and frame.attrs["attention_tau"] is not None
    lo, median, hi = frame.attrs["attention_tau_permuted"]
    assert -1 <= lo <= median <= hi <= 1 and hi - lo > 0


# ---------------------------------------------------------------------------- the salient sample's truth


def test_the_default_afm_finds_the_salient_samples_decisive_pairs() -> None:
    data = afm.datasets.load_parts("salient", task="regression", seed=0)["test"]
    model = afm.load_model(PRETRAINED / "salient-regression-afm.pt")[0]
    exp = explain.explain_dataset(model, data)
    truth = afm.datasets.salient_weights(data)
    found = afm.attention.truth_recovery(exp, truth, permutations=10)
    # the pre-trained AFM (default recipe) picks the true decisive pair in (nearly) every decisive row, far above
    # chance (1/15) and above every shuffle of its own attention
    assert found["decisive_rows"] > 300 and found["chance"] == pytest.approx(1 / 15)
    assert found["hit_rate"] > 0.9 > found["hit_permuted_hi"] > 0
    assert found["entropy_decisive"] < found["entropy_other"] <= 1.0
    # by hand: the share of decisive rows whose largest attention is at the true argmax
    a = exp.attention.numpy()
    decisive = truth.max(1) > 1 / 15 + 1e-9
    assert found["hit_rate"] == pytest.approx(float((a.argmax(1) == truth.argmax(1))[decisive].mean()), abs=0.01)
    effect = attention_effect(model, data, exp)
    assert not effect.negligible and effect.share > 0.3  # attention moves a third of the pair term or more
    # ... while on the pairs sample the same recipe's attention part is negligible (regression)
    pairs = afm.datasets.load_parts("sample", task="regression", seed=0)["test"]
    assert attention_effect(afm.load_model(PRETRAINED / "regression-afm.pt")[0], pairs).negligible
