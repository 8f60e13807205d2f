"""What attention moves, measured against its nulls: the attention part, relative attention, ties, baselines.

An AFM's pair term splits exactly into what the same model predicts with uniform attention and what its
attention changes (``Explanation.uniform_part`` / ``attention_part``)::

    Σ_ij a_ij s_ij  =  Σ_ij s_ij / P  +  Σ_ij (a_ij − 1/P) s_ij
                       (uniform part)    (attention part)

With the exact FM start (h = 0, p = P·1) the s_ij are P times an FM's pair terms, so attention that differs
from 1/P in the fifth decimal can move a prediction by a large share of the pair term. This module turns that
into figures a page can print, each beside its value under a null:

- ``attention_effect``: the mean |attention part| of a prediction against the mean |uniform part|, whether it
  is negligible (``NEGLIGIBLE``), the range of relative attention P·a_ij, and how far predictions would move
  if each row's attention were shuffled among its pairs (the permutation null of Jain & Wallace, NAACL 2019);
- ``top_set`` / ``tied``: which pairs share a row's largest attention within ``TIE_RTOL``: tied attention is
  never ranked by index;
- ``permuted_attention``: a_ij shuffled within each row (seeded), the null that the rank statistics of
  ``afm.faithfulness`` are shown beside (under uniform attention they are at chance by construction);
- ``afm_fm_difference``: AFM − FM per prediction, split into what attention moves and what the two models'
  different weights move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .data import Dataset
from .model import AFM, FM, Explanation
from .summary import Summary, as_summary

# Two attention weights within this fraction of the row's largest are tied. float32 softmax outputs carry
# about 1e-7 relative rounding; 1e-5 leaves room for the sums of the kernels while the near-uniform attention
# of a trained AFM (spread ~2e-3 relative on the sample) stays distinct.
TIE_RTOL = 1e-5
# The attention part is negligible when its mean |.| per prediction is under this share of the spread
# (standard deviation across rows) of the whole pair term Σ c_ij: the attention then moves predictions by
# less than a hundredth of what the pairs vary by, and the AFM predicts as its uniform-attention FM.
NEGLIGIBLE = 0.01
PERMUTATIONS = 20  # permutations of each row's attention for the null intervals
INTERVAL = (0.05, 0.95)  # the null interval: 5th and 95th percentiles over the permutations


def top_set(attention: Tensor, rtol: float = TIE_RTOL) -> Tensor:
    """Per row, the pairs tied for the largest attention: bool [N, P] (a_ij >= max_j a_ij · (1 − rtol))."""
    top = attention.max(dim=1, keepdim=True).values
    return attention >= top * (1.0 - rtol)


def tied(values: np.ndarray | Tensor, rtol: float = TIE_RTOL) -> bool:
    """True when every value lies within ``rtol`` (relative to the largest |value|) of the others: no ranking."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return True
    scale = max(float(np.abs(v).max()), np.finfo(np.float64).tiny)
    return float(v.max() - v.min()) <= rtol * scale


def tie_ranks(values: np.ndarray, rtol: float = TIE_RTOL) -> np.ndarray:
    """Ranks (1 = largest) where values within ``rtol`` of each other share the smallest rank of their group.

    Sorted descending, a value starts a new group when it is more than ``rtol`` (relative to the largest |value|)
    below the previous one. A tied block therefore never gets ranks 1, 2, 3 by index."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(-v, kind="stable")
    scale = max(float(np.abs(v).max()) if v.size else 1.0, np.finfo(np.float64).tiny)
    ranks = np.empty(len(v), dtype=np.int64)
    rank = 1
    for position, index in enumerate(order):
        if position and v[order[position - 1]] - v[index] > rtol * scale:
            rank = position + 1
        ranks[index] = rank
    return ranks


def permuted_attention(attention: Tensor, generator: torch.Generator) -> Tensor:
    """Each row's attention weights shuffled among its pairs [N, P] (an independent permutation per row)."""
    keys = torch.rand(attention.shape, generator=generator)
    return torch.gather(attention, 1, keys.argsort(dim=1))


def random_tiebreak(key: Tensor, generator: torch.Generator, rtol: float = TIE_RTOL) -> Tensor:
    """Per row, pair positions from largest ``key`` to smallest [N, P], ties (within ``rtol`` of the row's
    largest |key|) in a random order from ``generator`` rather than by index."""
    key = key.double()
    scale = key.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    # values closer than rtol·scale fall into one bucket (a coarse grid); a random jitter orders each bucket
    bucket = torch.floor(key / (rtol * scale))
    jitter = torch.rand(key.shape, generator=generator, dtype=torch.float64)
    return torch.argsort(bucket + jitter * 0.5, dim=1, descending=True)


@dataclass
class AttentionEffect:
    """What attention moves in a model's predictions on some rows, beside its nulls.

    ``attention_abs``: mean over rows of |Σ_ij (a_ij − 1/P) s_ij| (the attention part of a prediction);
    ``uniform_abs``: mean |Σ_ij s_ij / P| (the uniform pair term); ``pair_std``: the standard deviation across
    rows of the pair term Σ_ij c_ij; ``share``: attention_abs / (attention_abs + uniform_abs);
    ``negligible``: attention_abs < ``NEGLIGIBLE`` · pair_std (``threshold``); ``relative_min`` /
    ``relative_max``: the range of P·a_ij over the rows explained; ``permuted_abs`` / ``permuted_lo`` /
    ``permuted_hi``: mean |Σ_ij (a_perm − a_ij) s_ij|, the move of each prediction if its attention were
    shuffled among its pairs (median and 90% interval over ``permutations``; 0 for uniform attention);
    ``rows``, ``sample_rows`` (rows the per-row figures used), ``pairs``, ``has_attention`` (False for FM).
    """

    attention_abs: float
    uniform_abs: float
    pair_std: float
    share: float
    threshold: float
    negligible: bool
    relative_min: float
    relative_max: float
    permuted_abs: float
    permuted_lo: float
    permuted_hi: float
    rows: int
    sample_rows: int
    pairs: int
    has_attention: bool

    @property
    def from_uniform(self) -> float:
        """How far relative attention goes from 1 (uniform), at most: max |P·a_ij − 1|."""
        return max(abs(self.relative_max - 1.0), abs(1.0 - self.relative_min))

    def words(self, digits: int = 3) -> str:
        """The headline in words, for a page or the CLI."""
        if not self.has_attention:
            return "FM has no attention: every pair counts with weight 1, so its attention part is 0."
        f = f"{{:.{digits}g}}"
        moves = (
            f"Attention moves predictions by {f.format(self.attention_abs)} on average, against "
            f"{f.format(self.uniform_abs)} for the uniform pair term ({self.share:.0%} of the pair term)"
        )
        if self.negligible:
            return (
                f"{moves}: less than {NEGLIGIBLE:.0%} of the pair term's spread across rows "
                f"({f.format(self.pair_std)}), "
                "so this AFM predicts as its FM would with uniform attention. Its attention weights are "
                f"{uniform_words(self)}; no ranking of pairs by attention is shown."
            )
        return (
            f"{moves}. Relative attention P·a_ij ranges from {self.relative_min:.4g} to {self.relative_max:.4g} "
            f"(1 = uniform). Shuffling each row's attention among its pairs would move predictions by "
            f"{f.format(self.permuted_abs)} (90% of shuffles: {f.format(self.permuted_lo)}–"
            f"{f.format(self.permuted_hi)})."
        )


def uniform_words(effect: AttentionEffect) -> str:
    """How far from uniform relative attention goes, in words ("exactly uniform", "within 0.06% of uniform")."""
    gap = effect.from_uniform
    if gap <= TIE_RTOL:
        return "exactly uniform (every a_ij = 1/P, to float rounding)"
    return f"within {gap:.2%} of uniform (P·a_ij from {effect.relative_min:.5f} to {effect.relative_max:.5f})"


def attention_effect(
    model: AFM | FM,
    data: Dataset,
    explanation: Explanation | Summary | None = None,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    max_rows: int = 5_000,
) -> AttentionEffect:
    """What ``model``'s attention moves on ``data`` (an ``AttentionEffect``).

    ``explanation``: a ``Summary`` of ``data`` by ``model`` (None: ``afm.summarize(model, data)``) or the
    ``Explanation`` of every row. The mean |attention part| and |uniform part| and the pair term's spread are
    exact over every row; the range of P·a_ij and the permutation null use the summary's row sample (at most
    ``max_rows`` of it for the null). FM: ``has_attention`` False, everything about attention 0.
    """

    summary = as_summary(model, data, explanation)
    exp = summary.sample
    n_rows, n_pairs = exp.attention.shape
    has_attention = isinstance(model, AFM) and n_pairs > 1
    relative = exp.relative_attention
    attention_abs = summary.row_mean("abs_attention_total")
    uniform_abs = summary.row_mean("abs_uniform_total")
    pair_std = summary.pair_term_std
    threshold = NEGLIGIBLE * pair_std
    moved = _permutation_moves(exp.rows(slice(0, max_rows)), permutations, seed) if has_attention else np.zeros(1)
    lo, hi = INTERVAL
    total = attention_abs + uniform_abs
    return AttentionEffect(
        attention_abs=attention_abs,
        uniform_abs=uniform_abs,
        pair_std=pair_std,
        share=attention_abs / total if total > 0 else 0.0,
        threshold=threshold,
        negligible=(not has_attention) or attention_abs <= threshold,
        relative_min=float(relative.min()) if relative.numel() else 1.0,
        relative_max=float(relative.max()) if relative.numel() else 1.0,
        permuted_abs=float(np.median(moved)),
        permuted_lo=float(np.quantile(moved, lo)),
        permuted_hi=float(np.quantile(moved, hi)),
        rows=summary.rows,
        sample_rows=int(n_rows),
        pairs=int(n_pairs),
        has_attention=has_attention,
    )


def _permutation_moves(exp: Explanation, permutations: int, seed: int) -> np.ndarray:
    """For each of ``permutations`` shuffles of every row's attention: mean |Σ_ij (a_perm − a_ij) s_ij|."""
    generator = torch.Generator().manual_seed(seed)
    a, s = exp.attention.double(), exp.interaction.double()
    moves = []
    for _ in range(max(permutations, 1)):
        shuffled = permuted_attention(a, generator)
        moves.append(float(((shuffled - a) * s).sum(1).abs().mean()) if len(a) else 0.0)
    return np.asarray(moves)


def afm_fm_difference(afm_model: AFM, fm_model: FM, data: Dataset, batch_size: int | None = None) -> dict[str, float]:
    """How AFM's predictions differ from FM's on ``data``, split into what attention moves and what the
    different weights move.

    Per row, AFM − FM = (AFM with uniform attention − FM) + AFM's attention part: the first is what the two
    models' different weights (w0, w, V, p) make of the same pairs, the second what AFM's attention changes.
    Returns the means over rows of each (``difference``, ``weights``, ``attention``) and of their absolute
    values (``abs_difference``, ``abs_weights``, ``abs_attention``), and ``rows``. Batch by batch: memory of
    one batch.
    """
    from .summary import explain_batches  # (no cycle; kept beside its use)

    sums = dict.fromkeys(("difference", "weights", "attention", "abs_difference", "abs_weights", "abs_attention"), 0.0)
    was_training = fm_model.training
    fm_model.eval()
    device = next(fm_model.parameters()).device
    all_ones = data.one_hot()
    try:
        with torch.no_grad():
            for start, exp in explain_batches(afm_model, data, batch_size):
                end = start + exp.prediction.shape[0]
                val = None if all_ones else data.val[start:end].to(device)
                fm_prediction = fm_model(data.idx[start:end].to(device), val).double().cpu()
                moved = exp.attention_part.double().sum(1).cpu()
                difference = exp.prediction.double().cpu() - fm_prediction
                weights = difference - moved
                for name, values in (("difference", difference), ("weights", weights), ("attention", moved)):
                    sums[name] += float(values.sum())
                    sums[f"abs_{name}"] += float(values.abs().sum())
    finally:
        fm_model.train(was_training)
    rows = max(len(data), 1)
    return {**{name: value / rows for name, value in sums.items()}, "rows": float(len(data))}


def difference_frame(afm_frame: pd.DataFrame, fm_frame: pd.DataFrame) -> pd.DataFrame:
    """Per field pair, AFM's mean contribution minus FM's, split as ``afm_fm_difference`` splits a prediction.

    ``afm_frame`` / ``fm_frame``: ``field_pair_frame`` of the two models on the same rows (pairs in the same
    triu order). Columns: ``label``, ``difference`` (AFM mean c_ij − FM mean c_ij), ``weights`` (AFM mean
    uniform part s_ij / P − FM mean c_ij: the different weights) and ``attention`` (AFM mean attention part),
    with ``difference == weights + attention``; largest |difference| first.
    """
    if len(afm_frame) != len(fm_frame) or list(afm_frame["label"]) != list(fm_frame["label"]):
        raise ValueError("the AFM and FM frames must list the same field pairs in the same order")
    fm_c = fm_frame["mean_contribution"].to_numpy()
    frame = pd.DataFrame(
        {
            "label": afm_frame["label"].to_numpy(),
            "difference": afm_frame["mean_contribution"].to_numpy() - fm_c,
            "weights": afm_frame["mean_uniform_part"].to_numpy() - fm_c,
            "attention": afm_frame["mean_attention_part"].to_numpy(),
        }
    )
    order = frame["difference"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def truth_recovery(
    explanation: Explanation, truth: np.ndarray, permutations: int = PERMUTATIONS, seed: int = 0
) -> dict[str, float]:
    """How well a model's attention finds known per-row pair weights (the salient sample's, from
    ``afm.datasets.salient_weights``: ``truth`` [N, P], rows summing to 1, the rows of ``explanation``).

    Rows whose true weights are not uniform are the *decisive* rows; their dominant pair is the true argmax.
    Returns ``hit_rate`` (the share of decisive rows whose top-attention pair is the dominant one; pairs tied for
    the top share the credit, as ``afm.faithfulness.attention_agreement`` counts), ``chance`` (1/P), the
    permutation null of the hit rate (``hit_permuted``, ``hit_permuted_lo``, ``hit_permuted_hi``: each row's
    attention shuffled among its pairs), ``dominant_relative`` (the mean P·a_ij of the dominant pair on decisive
    rows), ``entropy_decisive`` / ``entropy_other`` (attention entropy / log P, 1 = uniform), ``decisive_rows``
    and ``rows``.
    """
    a = explanation.attention.double()
    truth_t = torch.as_tensor(np.asarray(truth, dtype=np.float64))
    if truth_t.shape != a.shape:
        raise ValueError(f"the true weights have shape {list(truth_t.shape)}, the attention {list(a.shape)}")
    n_rows, n_pairs = a.shape
    decisive = (truth_t.max(1).values > 1.0 / n_pairs + 1e-9) if n_rows else torch.zeros(0, dtype=torch.bool)
    dominant = truth_t.argmax(1, keepdim=True)

    def hits(weights: Tensor) -> Tensor:
        top = top_set(weights)
        return top.gather(1, dominant).squeeze(1).double() / top.sum(1).double()

    entropy = -(a * a.clamp_min(1e-300).log()).sum(1) / np.log(max(n_pairs, 2))
    generator = torch.Generator().manual_seed(seed)
    null = np.array([float(hits(permuted_attention(a, generator))[decisive].mean()) for _ in range(permutations)])
    lo, hi = INTERVAL
    nan = float("nan")
    some = bool(decisive.any())
    return {
        "hit_rate": float(hits(a)[decisive].mean()) if some else nan,
        "chance": 1.0 / n_pairs,
        "hit_permuted": float(np.median(null)) if some else nan,
        "hit_permuted_lo": float(np.quantile(null, lo)) if some else nan,
        "hit_permuted_hi": float(np.quantile(null, hi)) if some else nan,
        "dominant_relative": float((a.gather(1, dominant).squeeze(1) * n_pairs)[decisive].mean()) if some else nan,
        "entropy_decisive": float(entropy[decisive].mean()) if some else nan,
        "entropy_other": float(entropy[~decisive].mean()) if bool((~decisive).any()) else nan,
        "decisive_rows": int(decisive.sum()),
        "rows": int(n_rows),
    }
