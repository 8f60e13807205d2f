"""afm.faithfulness: attention against contribution, deletion curves, seed stability.

Every asserted number is recomputed here another way: SciPy's rank statistics, NumPy on the
explanation's arrays, and the model's own attention kernel (``kernels.interaction`` with a mask).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import afm
from afm import faithfulness, kernels
from afm.metrics import metrics_of

PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"


@pytest.fixture(scope="module")
def model(pretrained) -> afm.AFM:
    return pretrained("regression-afm")


@pytest.fixture(scope="module")
def fm(pretrained) -> afm.FM:
    return pretrained("regression-fm")


@pytest.fixture(scope="module")
def test_exp(model, parts) -> afm.Explanation:
    return afm.explain_dataset(model, parts["test"])


# ---------------------------------------------------------------------------- agreement


def test_agreement_equals_scipy_and_numpy(model, parts, test_exp) -> None:
    data = parts["test"]
    got = afm.attention_agreement(model, data)
    frame = afm.field_pair_frame(model, data, test_exp)
    expected = stats.spearmanr(frame["mean_attention"], frame["mean_abs_contribution"]).statistic
    assert got["spearman"] == pytest.approx(expected, abs=1e-12)
    a, c = test_exp.attention.numpy(), np.abs(test_exp.contribution.numpy())
    assert got["top_pair_agreement"] == pytest.approx(np.mean(a.argmax(1) == c.argmax(1)), abs=1e-12)
    assert got["rows"] == len(data) and got["pairs"] == 36 and got["chance"] == pytest.approx(1 / 36)
    s = np.abs(test_exp.interaction.numpy().astype(np.float64))
    nz = (c > 0) & (a > 0)
    log_c = np.log(c[nz].astype(np.float64))
    assert got["interaction_share"] == pytest.approx(np.var(np.log(s[nz])) / np.var(log_c), rel=1e-9)
    assert got["attention_share"] == pytest.approx(np.var(np.log(a[nz].astype(np.float64))) / np.var(log_c), rel=1e-9)
    # the bundled regression AFM: the size of a contribution is mostly its interaction, not its attention
    assert got["interaction_share"] > 0.5 > got["attention_share"]


def test_fm_has_no_attention_to_agree(fm, parts) -> None:
    got = afm.attention_agreement(fm, parts["test"])
    assert np.isnan(got["spearman"]) and np.isnan(got["top_pair_agreement"])


# ---------------------------------------------------------------------------- deletion


def kernel_reference(model: afm.AFM, data: afm.Dataset, removed: torch.Tensor, attention: torch.Tensor) -> np.ndarray:
    """Predictions with ``removed`` pairs, by the model's own attention kernel: its mask multiplies a_ij, so
    a mask of kept / (sum of the kept a_ij) is the softmax over the kept pairs only."""
    keep = (~removed).float()
    keep = keep / (attention * keep).sum(1, keepdim=True)
    with torch.no_grad():
        linear, e = model._embed(data.idx, data.val)
        pooled, _, _ = kernels.interaction(e, model.W, model.b, model.h, keep)
        return (model.w0 + linear.sum(1) + pooled @ model.p).double().numpy()


def test_removal_is_the_softmax_without_the_pair(model, parts, test_exp) -> None:
    data = parts["test"]
    gen = torch.Generator().manual_seed(1)
    for m in (1, 3, 10):
        order = faithfulness._orders(test_exp, "random", gen)
        removed = torch.zeros_like(test_exp.attention, dtype=torch.bool).scatter_(1, order[:, :m], True)
        ours = faithfulness.predictions_without(model, test_exp, removed).numpy()
        np.testing.assert_allclose(ours, kernel_reference(model, data, removed, test_exp.attention), atol=5e-5)
    # and by hand, for one row: softmax over the remaining scores only
    row, gone = 7, [0, 8, 10]
    keep = [p for p in range(36) if p not in gone]
    score = test_exp.score[row, keep].double()
    weights = torch.softmax(score, 0)
    by_hand = test_exp.bias + test_exp.linear[row].sum() + (weights * test_exp.interaction[row, keep].double()).sum()
    removed = torch.zeros_like(test_exp.attention, dtype=torch.bool)
    removed[row, gone] = True
    assert float(faithfulness.predictions_without(model, test_exp, removed)[row]) == pytest.approx(float(by_hand))
    # every pair removed: only the bias and the linear terms are left
    everything = torch.ones_like(test_exp.attention, dtype=torch.bool)
    np.testing.assert_allclose(
        faithfulness.predictions_without(model, test_exp, everything).numpy(),
        (test_exp.bias + test_exp.linear.sum(1)).double().numpy(),
        atol=1e-6,
    )


def test_deletion_curve_numbers(model, parts, test_exp) -> None:
    data = parts["test"]
    frame = afm.deletion_curve(model, data, max_pairs=4, explanation=test_exp)
    assert list(frame.columns) == ["ranking", "removed", "mean_abs_change", "mean_metric", "change_lo", "change_hi"]
    assert list(frame["ranking"].unique()) == ["contribution", "attention", "random", "permuted"]
    assert list(frame["removed"]) == [0, 1, 2, 3, 4] * 4 and frame.attrs["metric"] == "rmse"
    # the permutation null carries a 90% interval around its median; the other rankings have none
    permuted = frame[(frame["ranking"] == "permuted") & (frame["removed"] > 0)]
    assert (permuted["change_lo"] <= permuted["mean_abs_change"]).all()
    assert (permuted["mean_abs_change"] <= permuted["change_hi"]).all()
    assert frame[frame["ranking"] != "permuted"]["change_lo"].isna().all()
    base = frame[frame["removed"] == 0]
    assert (base["mean_abs_change"] == 0).all()
    rmse = afm.evaluate(model, data, "regression")["rmse"]
    np.testing.assert_allclose(base["mean_metric"], rmse, rtol=1e-5)
    # removing each row's top-2 pairs by |contribution|, recomputed with NumPy and the kernel
    c = np.abs(test_exp.contribution.double().numpy())
    top2 = np.argsort(-c, axis=1, kind="stable")[:, :2]
    removed = torch.zeros_like(test_exp.attention, dtype=torch.bool)
    removed[torch.arange(len(data))[:, None], torch.as_tensor(top2)] = True
    reference = kernel_reference(model, data, removed, test_exp.attention)
    pred = test_exp.prediction.double().numpy()
    row = frame[(frame["ranking"] == "contribution") & (frame["removed"] == 2)].iloc[0]
    assert row["mean_abs_change"] == pytest.approx(np.abs(reference - pred).mean(), abs=1e-5)
    expected_rmse = metrics_of(reference, data.y.double().numpy(), "regression")["rmse"]
    assert row["mean_metric"] == pytest.approx(expected_rmse, abs=1e-5)


def test_removing_the_top_contribution_pair_moves_predictions_more_than_a_random_pair(model, parts) -> None:
    frame = afm.deletion_curve(model, parts["all"], max_pairs=3)
    first = frame[frame["removed"] == 1].set_index("ranking")
    assert first.loc["contribution", "mean_abs_change"] > 5 * first.loc["random", "mean_abs_change"]
    # and the model gets worse by more: RMSE rises further without its top-|c| pair
    assert first.loc["contribution", "mean_metric"] > first.loc["random", "mean_metric"]
    # removing more random pairs moves the predictions further
    random = frame[frame["ranking"] == "random"]["mean_abs_change"].to_numpy()
    assert (np.diff(random) > 0).all()


def test_fm_deletion_drops_the_pair_terms(fm, parts) -> None:
    data = parts["test"]
    exp = afm.explain_dataset(fm, data)
    frame = afm.deletion_curve(fm, data, max_pairs=2, rankings=("contribution",), explanation=exp)
    s = exp.interaction.double().numpy()
    top = np.sort(np.abs(s), axis=1)[:, ::-1]
    assert frame["mean_abs_change"].iloc[1] == pytest.approx(top[:, 0].mean(), abs=1e-5)
    order = np.argsort(-np.abs(s), axis=1, kind="stable")[:, :2]
    change = np.take_along_axis(s, order, 1).sum(1)
    assert frame["mean_abs_change"].iloc[2] == pytest.approx(np.abs(change).mean(), abs=1e-5)


def test_deletion_binary_uses_auc() -> None:
    data = afm.datasets.load_parts("sample", task="binary", seed=0)["test"]
    model = afm.load_model(PRETRAINED / "binary-afm.pt")[0].eval()
    frame = afm.deletion_curve(model, data, max_pairs=1, rankings=("contribution", "random"))
    assert frame.attrs["metric"] == "auc"
    assert frame["mean_metric"].iloc[0] == pytest.approx(afm.evaluate(model, data, "binary")["auc"], abs=1e-6)
    worse = frame[frame["removed"] == 1].set_index("ranking")["mean_metric"]
    assert worse["contribution"] < worse["random"] < frame["mean_metric"].iloc[0]


def test_deletion_rejects_a_bad_ranking(model, parts) -> None:
    with pytest.raises(ValueError, match="ranking must be one of"):
        afm.deletion_curve(model, parts["test"], rankings=("loudest",))


# ---------------------------------------------------------------------------- stability


def test_kendall_tau_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 5, 12).astype(float), rng.integers(0, 5, 12).astype(float)  # with ties
        assert faithfulness.kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert np.isnan(faithfulness.mean_kendall_tau([np.arange(3.0)]))


def test_rank_correlations_are_scipys_and_nan_without_a_warning_when_a_side_is_constant() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 6, 40).astype(float), rng.normal(size=40)  # ties on one side
    assert faithfulness._spearman(x, y) == stats.spearmanr(x, y).statistic
    assert faithfulness.kendall_tau(x, y) == stats.kendalltau(x, y).statistic
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SciPy's ConstantInputWarning would fail here
        for a, b in ((np.ones(5), np.arange(5.0)), (np.arange(5.0), np.full(5, 2.0)), (np.ones(1), np.ones(1))):
            assert np.isnan(faithfulness._spearman(a, b)) and np.isnan(faithfulness.kendall_tau(a, b))


@pytest.fixture(scope="module")
def small() -> tuple[afm.TrainConfig, afm.Dataset, afm.Dataset, afm.Dataset]:
    """A quick configuration on part of the sample (a few seconds per seed)."""
    data = afm.datasets.sample("regression")
    train, valid, rest = afm.split(data, [0.1, 0.02, 0.03], seed=0)
    config = afm.TrainConfig(task="regression", embed_dim=4, attention_factor=4, epochs=1, patience=None,
                             pretrain=False, batch_size=512)  # fmt: skip
    return config, train, valid, rest


@pytest.fixture(scope="module")
def stability(small) -> tuple[pd.DataFrame, float, list]:
    config, train, valid, rest = small
    seen: list = []
    frame, tau = afm.seed_stability(config, train, valid, rest, seeds=3, callback=seen.append)
    return frame, tau, seen


def test_seed_stability_summarises_each_seeds_model(small, stability) -> None:
    config, train, valid, rest = small
    frame, tau, seen = stability
    per_seed = pd.DataFrame(frame.attrs["per_seed"])
    assert sorted(per_seed["seed"].unique()) == [0, 1, 2] == frame.attrs["seeds"]
    # seed 1's model, trained here directly, gives the same field-pair frame
    model, _ = afm.train_model("afm", dataclasses.replace(config, seed=1), train, valid)
    direct = afm.field_pair_frame(model, rest)
    mine = per_seed[per_seed["seed"] == 1].sort_values("pair")
    np.testing.assert_allclose(mine["mean_abs_contribution"], direct["mean_abs_contribution"], rtol=1e-6)
    np.testing.assert_allclose(mine["mean_attention"], direct["mean_attention"], rtol=1e-6)
    # the summary is the mean and the 5th/95th percentiles of the seeds' values
    assert len(frame) == 36 and (frame["seeds"] == 3).all()
    wide = per_seed.pivot(index="pair", columns="seed", values="mean_abs_contribution").loc[frame["pair"]]
    np.testing.assert_allclose(frame["mean_abs_contribution"], wide.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(frame["abs_contribution_lo"], np.quantile(wide, 0.05, axis=1), rtol=1e-12)
    np.testing.assert_allclose(frame["abs_contribution_hi"], np.quantile(wide, 0.95, axis=1), rtol=1e-12)
    att = per_seed.pivot(index="pair", columns="seed", values="mean_attention").loc[frame["pair"]]
    np.testing.assert_allclose(frame["mean_attention"], att.mean(axis=1), rtol=1e-12)
    assert (frame["attention_lo"] <= frame["mean_attention"]).all()
    assert (frame["mean_attention"] <= frame["attention_hi"]).all()
    # with 3 seeds the rank interval is the best and worst rank
    ranks = per_seed.pivot(index="pair", columns="seed", values="rank").loc[frame["pair"]]
    assert list(frame["rank_lo"]) == list(ranks.min(axis=1)) and list(frame["rank_hi"]) == list(ranks.max(axis=1))
    assert frame["mean_abs_contribution"].is_monotonic_decreasing
    # tau: the mean of SciPy's Kendall tau over the three pairs of seeds
    taus = [stats.kendalltau(wide[a], wide[b]).statistic for a, b in ((0, 1), (0, 2), (1, 2))]
    assert tau == pytest.approx(np.mean(taus), abs=1e-12) and frame.attrs["tau"] == tau
    # the callback saw each seed finish, with the fraction of the work done
    finished = [p for p in seen if p.frame is not None]
    assert [p.seed for p in finished] == [0, 1, 2]
    assert [p.fraction for p in finished] == pytest.approx([1 / 3, 2 / 3, 1])


def test_seed_stability_stops_when_asked(small) -> None:
    config, train, valid, rest = small
    frame, tau = afm.seed_stability(config, train, valid, rest, seeds=[4, 5], callback=lambda p: p.frame is not None)
    assert frame.attrs["seeds"] == [4] and (frame["seeds"] == 1).all() and np.isnan(tau)
    assert frame.attrs["tau"] is None and frame.attrs["attention_tau"] is None  # attrs stay valid JSON
    assert (frame["abs_contribution_lo"] == frame["abs_contribution_hi"]).all()
    with pytest.raises(ValueError, match="before the first seed"):
        afm.seed_stability(config, train, valid, rest, seeds=2, callback=lambda p: True)


def test_tau_in_words() -> None:
    assert "closely" in faithfulness.tau_in_words(0.9)
    assert "two seeds" in faithfulness.tau_in_words(float("nan"))
    assert "chance" in faithfulness.tau_in_words(0.05)
