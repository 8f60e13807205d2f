"""How far the explanations can be trusted: attention against contribution, deletion, seed stability.

An AFM's attention a_ij is a weight *within one row*: it is non-negative and sums to 1 over the row's
pairs, whatever the row. What moves the prediction is the contribution c_ij = a_ij · s_ij, and its
size is mostly the interaction s_ij: a pair can get a high a_ij and move nothing (s_ij ≈ 0). Attention
is therefore not importance (Jain & Wallace, "Attention is not Explanation", NAACL 2019; Wiegreffe &
Pinter, "Attention is not not Explanation", EMNLP 2019). This module measures it:

- ``attention_agreement``: how far the ranking of pairs by attention agrees with their ranking by
  |contribution| (over field pairs, and row by row);
- ``deletion_curve``: remove each row's top-m pairs by a ranking and see how far the predictions move
  (a faithful ranking moves them most);
- ``seed_stability``: train the same configuration with several seeds and see whether the pairs
  keep their places.

Everything is computed from ``model.explain``, the same computation as ``forward``. Whole-data figures
come from a ``Summary`` (``explain.summarize``): what is a mean over field pairs is exact over every row;
what needs each row (top-pair agreement, the variance shares, deletion) uses the summary's seeded row
sample, all rows when the data has at most ``explain.SAMPLE_ROWS``. A whole-data ``Explanation`` passed
instead is used as it is, every row.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .attention import INTERVAL as NULL_INTERVAL
from .attention import PERMUTATIONS, permuted_attention, random_tiebreak, tie_ranks, tied, top_set
from .config import TrainConfig
from .data import Dataset
from .explain import Summary, as_summary, field_pair_frame
from .metrics import infer_task, metrics_of, task_spec
from .model import AFM, FM, Explanation
from .train import Progress, train_model

RANKINGS = ("contribution", "attention", "random", "permuted")
DELETION_PERMUTATIONS = 5  # shuffles of each row's attention for the deletion curve's "permuted" interval
# seed_frame's columns of mean attention with each row's attention shuffled (the null of the attention τ)
PERMUTATION_COLUMNS = tuple(f"permuted_attention_{k}" for k in range(10))
_CHUNK = 2048  # rows per block where a figure walks an explanation's rows
INTERVAL = (0.05, 0.95)  # the "90% interval" across seeds: the 5th and 95th percentiles


# ---------------------------------------------------------------------------- attention vs contribution


def _constant(x: np.ndarray, y: np.ndarray) -> bool:
    """True when a rank correlation is undefined: fewer than two values, or either side constant (SciPy would
    warn and give NaN)."""
    return len(x) < 2 or bool(np.ptp(x) == 0) or bool(np.ptp(y) == 0)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (``scipy.stats.spearmanr``, average ranks for ties); NaN when either side
    is constant."""
    from scipy.stats import spearmanr  # on first use: `import afm` stays light

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float("nan") if _constant(x, y) else float(spearmanr(x, y).statistic)


def _top_agreement(attention: Tensor, contribution: Tensor) -> Tensor:
    """Per row, the chance that the top-attention pair is the top-|c| pair when tied attention is broken at
    random: 1/|ties| if the top-|c| pair is among the pairs tied for the largest attention, else 0 [N]."""
    top = top_set(attention)
    hit = top.gather(1, contribution.abs().argmax(1, keepdim=True)).squeeze(1)
    return hit.double() / top.sum(1).double()


def attention_agreement(
    model: AFM | FM,
    data: Dataset,
    explanation: Explanation | Summary | None = None,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> dict[str, Any]:
    """How far a pair's attention a_ij says how much it moves the prediction (|c_ij|), on ``data``, beside the
    same figures under uniform attention and under attention permuted within each row.

    Returns a dict:

    - ``spearman``: Spearman's rank correlation over the field pairs between the mean attention and the
      mean |contribution| (the two columns of ``field_pair_frame``); 1 means the same order. NaN when the
      field pairs' mean attention is tied (``afm.attention.tied``): tied attention ranks nothing.
    - ``top_pair_agreement``: the share of rows whose top-attention pair is also their top-|c| pair; pairs
      tied for a row's largest attention (within ``afm.attention.TIE_RTOL``) share the credit (1/|ties|),
      as if the tie were broken at random, never by index.
    - ``chance``: that share if the two were unrelated, 1/P; it is also the share under uniform attention
      (``top_pair_uniform``: every pair tied).
    - ``top_pair_permuted``, ``top_pair_permuted_lo``, ``top_pair_permuted_hi`` and ``spearman_permuted``,
      ``spearman_permuted_lo``, ``spearman_permuted_hi``: the two figures with each row's attention shuffled
      among its pairs (median and 90% interval over ``permutations`` seeded shuffles), the null a figure must
      clear to mean something.
    - ``tied_rows``: the share of rows whose largest attention is shared by two pairs or more;
      ``tied``: True when the field pairs' mean attention is tied (no ranking by attention).
    - ``interaction_share``, ``attention_share``: var(log|s_ij|) / var(log|c_ij|) and
      var(log a_ij) / var(log|c_ij|) over every (row, pair) with c_ij != 0. Since log|c| = log a + log|s|,
      they say which factor makes contributions large or small (they need not sum to 1: the covariance).
    - ``rows`` (rows of ``data``), ``sample_rows`` (the rows the per-row figures used), ``pairs``.

    ``explanation``: a ``Summary`` (None: ``summarize(model, data)``): ``spearman`` is exact over every row,
    the per-row figures use its row sample; or the ``Explanation`` of every row: all exact.
    FM has no attention (every a_ij = 1): the agreement figures are NaN.
    """
    summary = as_summary(model, data, explanation)
    exp = summary.sample
    n_rows, n_pairs = exp.attention.shape
    out: dict[str, Any] = {
        "rows": summary.rows,
        "sample_rows": int(n_rows),
        "pairs": int(n_pairs),
        "chance": 1.0 / max(n_pairs, 1),
        "top_pair_uniform": 1.0 / max(n_pairs, 1),
    }
    nan = float("nan")
    figures = ("spearman", "top_pair_agreement", "interaction_share", "attention_share", "tied_rows")
    nulls = [f"{name}_permuted{end}" for name in ("top_pair", "spearman") for end in ("", "_lo", "_hi")]
    if isinstance(model, FM) or n_pairs < 2 or n_rows == 0:
        return {**out, **dict.fromkeys(figures + tuple(nulls), nan), "tied": True}
    mean_attention, mean_abs_c = summary.mean("attention"), summary.mean("abs_contribution")
    out["tied"] = tied(mean_attention)
    out["spearman"] = nan if out["tied"] else _spearman(mean_attention, mean_abs_c)
    generator = torch.Generator().manual_seed(seed)
    top_same, tied_rows, moments = 0.0, 0, np.zeros((3, 3))  # per log|c|, log a, log|s|: n, Σx, Σx²
    permuted_top = np.zeros(max(permutations, 1))
    permuted_sums = np.zeros((max(permutations, 1), n_pairs))  # Σ over the sample of permuted a_ij
    for start in range(0, n_rows, _CHUNK):  # row blocks: a few MB at a time, not 3 × [rows, pairs] in float64
        a = exp.attention[start : start + _CHUNK].double()
        c = exp.contribution[start : start + _CHUNK].double().abs()
        s = exp.interaction[start : start + _CHUNK].double().abs()
        top_same += float(_top_agreement(a, c).sum())
        tied_rows += int((top_set(a).sum(1) > 1).sum())
        for k in range(len(permuted_top)):
            shuffled = permuted_attention(a, generator)
            permuted_top[k] += float(_top_agreement(shuffled, c).sum())
            permuted_sums[k] += shuffled.sum(0).numpy()
        nonzero = (c > 0) & (a > 0)
        for row, values in zip(moments, (c, a, s), strict=True):
            logs = values[nonzero].log()
            row += (logs.numel(), float(logs.sum()), float(logs.square().sum()))
    out["top_pair_agreement"] = top_same / n_rows
    out["tied_rows"] = tied_rows / n_rows
    lo, hi = NULL_INTERVAL
    # the permuted Spearman ranks the sample's permuted means against the sample's mean |c|
    sample_abs_c = exp.contribution.double().abs().mean(0).numpy()
    permuted_spearman = np.array([_spearman(row, sample_abs_c) for row in permuted_sums])
    for name, null in (("top_pair", permuted_top / n_rows), ("spearman", permuted_spearman)):
        finite = null[np.isfinite(null)]
        out[f"{name}_permuted"] = float(np.median(finite)) if finite.size else nan
        out[f"{name}_permuted_lo"] = float(np.quantile(finite, lo)) if finite.size else nan
        out[f"{name}_permuted_hi"] = float(np.quantile(finite, hi)) if finite.size else nan
    count = moments[0, 0]
    var_c, var_a, var_s = (
        (m[2] - m[1] ** 2 / count) / count if count > 1 else nan for m in moments
    )  # log values are O(1): no cancellation to fear in float64
    out["interaction_share"] = var_s / var_c if var_c > 0 else nan
    out["attention_share"] = var_a / var_c if var_c > 0 else nan
    return out


# ---------------------------------------------------------------------------- deletion


def _orders(exp: Explanation, ranking: str, generator: torch.Generator) -> Tensor:
    """Per row, the pair positions from first to remove to last [N, P] under ``ranking``.

    Attention (own or permuted) that is tied within ``afm.attention.TIE_RTOL`` is ordered at random, never by
    pair index: under exactly uniform attention the "attention" ranking is a random order."""
    if ranking == "contribution":
        return torch.sort(exp.contribution.double().abs(), dim=1, descending=True, stable=True).indices
    if ranking == "attention":
        return random_tiebreak(exp.attention, generator)
    if ranking == "permuted":
        return random_tiebreak(permuted_attention(exp.attention.double(), generator), generator)
    if ranking == "random":
        key = torch.rand(exp.attention.shape, generator=generator, dtype=torch.float64)
        return torch.sort(key, dim=1, descending=True, stable=True).indices
    raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")


def predictions_without(model: AFM | FM, exp: Explanation, removed: Tensor) -> Tensor:
    """The predictions [N] (float64) with the pairs where ``removed`` [N, P] is True taken out of the model.

    AFM: a removed pair is masked out of the softmax and of the pooling, as if it did not exist: the
    remaining pairs' attention is the softmax of their scores a'_ij alone, so it sums to 1 over them
    (a'_ij depends on the pair only, so the others' scores do not change). A row with every pair
    removed has no interaction term. FM: removing a pair drops its term s_ij.
    """
    base = exp.bias.double() + exp.linear.double().sum(1)
    if isinstance(model, AFM):
        score = exp.score.double().masked_fill(removed, float("-inf"))
        attention = torch.softmax(score, dim=1).nan_to_num(0.0)  # all removed: NaN -> no pairs
        return base + (attention * exp.interaction.double()).sum(1)
    return base + exp.interaction.double().masked_fill(removed, 0.0).sum(1)


def deletion_curve(
    model: AFM | FM,
    data: Dataset,
    max_pairs: int = 10,
    rankings: Sequence[str] = RANKINGS,
    seed: int = 0,
    *,
    task: str | None = None,
    explanation: Explanation | Summary | None = None,
    permutations: int = DELETION_PERMUTATIONS,
) -> pd.DataFrame:
    """Remove each row's top-m pairs by each ranking, for m = 0..``max_pairs``, and measure the change.

    Rankings, per row: ``"contribution"`` (largest |c_ij| first), ``"attention"`` (largest a_ij first;
    tied attention in a random order, never by index), ``"random"`` (a random order per row from ``seed``:
    also what the attention ranking is under uniform attention, where every pair is tied) and
    ``"permuted"`` (the row's attention shuffled among its pairs, then ranked: the permutation null, drawn
    ``permutations`` times). Removing a pair masks it out of the softmax and of the pooling, as if it did
    not exist (``predictions_without``).

    Returns one row per (ranking, m) with columns ``ranking``, ``removed`` (m), ``mean_abs_change``
    (mean over the rows of |prediction without the pairs − prediction|, in the model's output units:
    a logit for binary), ``mean_metric`` (the task's headline metric on ``data`` with the pairs
    removed: RMSE for regression, AUC for binary; ``frame.attrs["metric"]`` names it) and, for
    "permuted", the median over the draws with its 90% interval ``change_lo`` .. ``change_hi`` (NaN for
    the other rankings). m = 0 is the model itself. ``task`` None: ``infer_task(data)``. A faithful ranking's curve of
    ``mean_abs_change`` rises fastest.

    Rows: every row of ``data`` with ``explanation`` the ``Explanation`` of every row; otherwise the row
    sample of the ``Summary`` (given, or ``summarize(model, data)``): all rows when the data has at most
    ``explain.SAMPLE_ROWS``. ``frame.attrs["rows"]`` says how many rows were used.
    """
    if max_pairs < 0:
        raise ValueError(f"max_pairs must be >= 0, got {max_pairs}")
    if isinstance(explanation, Explanation):
        exp = explanation  # every row of data
    else:
        summary = as_summary(model, data, explanation)
        exp, data = summary.sample, summary.sample_data
    n_rows, n_pairs = exp.attention.shape
    if n_rows != len(data):
        raise ValueError(f"the explanation has {n_rows} rows, the data {len(data)}")
    task = infer_task(data) if task is None else task_spec(task).name
    metric = task_spec(task).headline
    y = data.y.double().numpy()
    prediction = exp.prediction.double()
    generator = torch.Generator().manual_seed(seed)
    steps = min(max_pairs, n_pairs) + 1
    rows = []
    lo, hi = NULL_INTERVAL
    nan = float("nan")
    for ranking in rankings:
        draws = permutations if ranking == "permuted" else 1
        change, value = np.full((draws, steps), nan), np.full((draws, steps), nan)
        for draw in range(draws):
            changed = prediction.expand(steps, n_rows).clone()  # (m, N): the predictions with m pairs removed
            for start in range(0, n_rows, _CHUNK):  # row blocks: memory of a block, not of [N, P] in float64
                block = exp.rows(slice(start, start + _CHUNK))
                order = _orders(block, ranking, generator)
                removed = torch.zeros(order.shape, dtype=torch.bool)
                for m in range(1, steps):
                    removed.scatter_(1, order[:, m - 1 : m], True)  # one more pair out of each row
                    changed[m, start : start + _CHUNK] = predictions_without(model, block, removed)
            for m in range(steps):
                if n_rows:
                    value[draw, m] = metrics_of(changed[m].numpy(), y, task)[metric]
                    change[draw, m] = float((changed[m] - prediction).abs().mean())
        for m in range(steps):
            rows.append(
                {
                    "ranking": ranking,
                    "removed": m,
                    "mean_abs_change": float(np.median(change[:, m])),
                    "mean_metric": float(np.median(value[:, m])),
                    "change_lo": float(np.quantile(change[:, m], lo)) if draws > 1 else nan,
                    "change_hi": float(np.quantile(change[:, m], hi)) if draws > 1 else nan,
                }
            )
    columns = ["ranking", "removed", "mean_abs_change", "mean_metric", "change_lo", "change_hi"]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["metric"] = metric
    frame.attrs["task"] = task
    frame.attrs["rows"] = int(n_rows)
    return frame


# ---------------------------------------------------------------------------- seed stability


@dataclass
class SeedProgress:
    """What a ``seed_stability`` callback receives: during a training (``training`` set) and after each seed
    (``frame`` set: that seed's ``field_pair_frame``)."""

    seed: int  # the seed being trained
    done: int  # seeds finished before this one
    seeds: int  # seeds in all
    training: Progress | None = None
    frame: pd.DataFrame | None = None

    @property
    def fraction(self) -> float:
        """Fraction of all the trainings done, 0..1 (for a progress bar)."""
        inner = 1.0 if self.frame is not None else (self.training.fraction if self.training is not None else 0.0)
        return min((self.done + inner) / max(self.seeds, 1), 1.0)


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's τ-b between two score vectors (``scipy.stats.kendalltau``); NaN when either side is constant."""
    from scipy.stats import kendalltau  # on first use: `import afm` stays light

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float("nan") if _constant(x, y) else float(kendalltau(x, y).statistic)


def mean_kendall_tau(scores: Sequence[np.ndarray]) -> float:
    """The mean Kendall τ over every two of the given score vectors (NaN with fewer than two)."""
    taus = [kendall_tau(a, b) for a, b in itertools.combinations(scores, 2)]
    return float(np.mean(taus)) if taus else float("nan")


def stability_frame(per_seed: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """``seed_stability``'s summary of per-seed field-pair frames (``per_seed``: ``field_pair_frame`` rows
    with a ``seed`` column). See ``seed_stability`` for the columns."""
    if per_seed.empty:
        raise ValueError("no seed has been trained yet")
    lo, hi = INTERVAL
    first = per_seed[per_seed["seed"] == per_seed["seed"].iloc[0]].sort_values("pair")
    rows = []
    for pair, group in per_seed.groupby("pair", sort=True):
        contribution = group["mean_abs_contribution"].to_numpy(dtype=float)
        attention = group["mean_attention"].to_numpy(dtype=float)
        ranks = group["rank"].to_numpy()
        attention_ranks = group["attention_rank"].to_numpy()
        rows.append(
            {
                "pair": int(pair),
                "mean_abs_contribution": contribution.mean(),
                "abs_contribution_lo": float(np.quantile(contribution, lo)),
                "abs_contribution_hi": float(np.quantile(contribution, hi)),
                "mean_attention": attention.mean(),
                "attention_lo": float(np.quantile(attention, lo)),
                "attention_hi": float(np.quantile(attention, hi)),
                "mean_rank": ranks.mean(),
                "rank_lo": int(np.quantile(ranks, lo, method="lower")),
                "rank_hi": int(np.quantile(ranks, hi, method="higher")),
                "attention_rank_lo": int(np.quantile(attention_ranks, lo, method="lower")),
                "attention_rank_hi": int(np.quantile(attention_ranks, hi, method="higher")),
                "seeds": len(group),
            }
        )
    frame = pd.DataFrame(rows).merge(first[["pair", "label", "field_i", "field_j", "i", "j"]], on="pair")
    columns = ["label", "field_i", "field_j", "i", "j", "pair", *[c for c in rows[0] if c != "pair"]]
    frame = frame[columns].sort_values("mean_abs_contribution", ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    by_seed = [g.sort_values("pair") for _, g in per_seed.groupby("seed", sort=True)]
    tau = mean_kendall_tau([g["mean_abs_contribution"].to_numpy(dtype=float) for g in by_seed])
    # attrs travel into Arrow's JSON metadata (st.dataframe, parquet): None, not NaN, when undefined
    frame.attrs["tau"] = _finite_or_none(tau)
    attention_scores = [g["mean_attention"].to_numpy(dtype=float) for g in by_seed]
    # tied mean attention (uniform within afm.attention.TIE_RTOL) ranks nothing: no τ by attention
    any_tied = any(tied(v) for v in attention_scores)
    frame.attrs["attention_tied"] = any_tied
    frame.attrs["attention_tau"] = None if any_tied else _finite_or_none(mean_kendall_tau(attention_scores))
    columns = [c for c in PERMUTATION_COLUMNS if c in per_seed.columns]
    null = np.array([mean_kendall_tau([g[c].to_numpy(dtype=float) for g in by_seed]) for c in columns])
    null = null[np.isfinite(null)]
    lo_q, hi_q = NULL_INTERVAL
    frame.attrs["attention_tau_permuted"] = (
        [float(np.quantile(null, lo_q)), float(np.median(null)), float(np.quantile(null, hi_q))] if null.size else None
    )
    frame.attrs["seeds"] = sorted(int(s) for s in per_seed["seed"].unique())
    return frame, tau


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def seed_frame(model: AFM | FM, data: Dataset, seed: int) -> pd.DataFrame:
    """One seed's ``field_pair_frame`` on ``data``, with ``seed`` and ``attention_rank`` (1 = largest mean
    attention) columns: the rows ``stability_frame`` summarises."""
    summary = as_summary(model, data)
    frame = field_pair_frame(model, data, summary=summary)
    frame["attention_rank"] = tie_ranks(frame["mean_attention"].to_numpy())
    # the permutation null of the attention ranking: each row's attention shuffled among its pairs, then
    # averaged per pair over the summary's rows (PERMUTATION_COLUMNS columns)
    generator = torch.Generator().manual_seed(seed)
    a = summary.sample.attention.double()
    for name in PERMUTATION_COLUMNS:
        frame[name] = permuted_attention(a, generator).mean(0).numpy() if len(a) else np.nan
    frame.insert(0, "seed", seed)
    return frame


def seed_stability(
    config: TrainConfig,
    train: Dataset,
    valid: Dataset | None,
    data: Dataset,
    seeds: int | Iterable[int] = 5,
    callback: Callable[[SeedProgress], bool | None] | None = None,
    *,
    kind: str = "afm",
    device: str | torch.device = "cpu",
) -> tuple[pd.DataFrame, float]:
    """Train ``config`` once per seed (``train_model(kind, config with that seed, train, valid)``) and see
    whether the field pairs keep their places on ``data``.

    ``seeds``: a number n (seeds 0..n-1) or the seeds themselves. Returns ``(frame, tau)``: one row per
    field pair, largest mean |contribution| first, with ``label``, ``field_i``, ``field_j``, ``i``,
    ``j``, ``pair``; ``mean_abs_contribution`` (the pair's mean |c_ij| on ``data``, averaged over the
    seeds) and its 90% interval across seeds ``abs_contribution_lo`` / ``abs_contribution_hi`` (the 5th
    and 95th percentiles, linearly interpolated: with 5 seeds close to the minimum and maximum); the
    same for the mean attention (``mean_attention``, ``attention_lo``, ``attention_hi``); the pair's
    rank by mean |c_ij| (1 = largest) as ``mean_rank`` and its interval ``rank_lo``..``rank_hi`` (the
    5th and 95th percentiles of the seeds' ranks, rounded outwards: with up to 20 seeds, the best and
    worst rank); the same interval by attention (``attention_rank_lo``, ``attention_rank_hi``);
    ``seeds`` (how many). ``tau`` is the mean Kendall τ between every two seeds' rankings of the pairs
    by mean |contribution| (1: always the same order; 0: unrelated). ``frame.attrs`` also holds ``tau``,
    ``attention_tau`` (the same for mean attention; both None with fewer than two seeds), ``seeds`` (the
    seeds trained) and ``per_seed`` (each seed's ``seed_frame``, stacked, as records:
    ``pd.DataFrame(frame.attrs["per_seed"])``).

    ``callback(SeedProgress)`` is called during each training and once after each seed; returning True
    stops: the seed in training is dropped and the seeds finished so far are summarised (τ is NaN with
    fewer than two).
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds must name at least one seed")
    frames: list[pd.DataFrame] = []
    for n, seed in enumerate(seed_list):
        stopped = False

        def report(p: Progress, seed: int = seed, n: int = n) -> bool:
            nonlocal stopped
            stopped = bool(callback(SeedProgress(seed, n, len(seed_list), training=p))) if callback else False
            return stopped

        model, _ = train_model(kind, dataclasses.replace(config, seed=seed), train, valid, callback=report,
                               device=device)  # fmt: skip
        if stopped:
            break
        frames.append(seed_frame(model.cpu().eval(), data, seed))
        if callback is not None and callback(SeedProgress(seed, n, len(seed_list), frame=frames[-1])):
            break
    if not frames:
        raise ValueError("stopped before the first seed finished training")
    per_seed = pd.concat(frames, ignore_index=True)
    frame, tau = stability_frame(per_seed)
    frame.attrs["per_seed"] = per_seed.to_dict("records")  # plain records: attrs must compare with ==
    return frame, tau


def tau_in_words(tau: float) -> str:
    """A reading of a mean Kendall τ between seeds' rankings, for people."""
    if not math.isfinite(tau):
        return "needs at least two seeds"
    if tau >= 0.8:
        return "the seeds agree closely on the order of the pairs"
    if tau >= 0.6:
        return "the seeds agree on the broad order; neighbouring pairs swap places"
    if tau >= 0.4:
        return "the seeds agree only loosely: read ranks as rough"
    if tau >= 0.2:
        return "the seeds agree weakly: a pair's rank from one model says little"
    return "the seeds do not agree: the ranking from one model is mostly chance"
