"""Explanations as data: model + Dataset -> pandas DataFrames (figures live in ``plots.py``).

Every number here comes from ``model.explain``, the same computation as ``forward``, so the
tables show exactly what the model used to predict.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch

from .data import Dataset
from .model import AFM, FM, Explanation

PAIR_SEP = " × "


def explain_batches(model: AFM | FM, data: Dataset, batch_size: int = 8192) -> Iterator[tuple[int, Explanation]]:
    """``(first_row, Explanation)`` for consecutive batches of ``data``, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(data), batch_size):
            end = start + batch_size
            yield start, model.explain(data.idx[start:end].to(device), data.val[start:end].to(device))
    finally:
        model.train(was_training)


def explain_dataset(model: AFM | FM, data: Dataset, batch_size: int = 8192) -> Explanation:
    """One ``Explanation`` for all rows of ``data`` (tensors on the CPU)."""
    parts = [e for _, e in explain_batches(model, data, batch_size)]
    if not parts:
        raise ValueError("cannot explain an empty dataset")

    def cat(name: str) -> torch.Tensor:
        return torch.cat([getattr(p, name).cpu() for p in parts])

    return Explanation(
        prediction=cat("prediction"),
        bias=parts[0].bias.cpu(),
        linear=cat("linear"),
        score=cat("score"),
        attention=cat("attention"),
        interaction=cat("interaction"),
        contribution=cat("contribution"),
        pairs=parts[0].pairs.cpu(),
    )


def pair_names(field_names: list[str], pairs: torch.Tensor) -> list[str]:
    return [f"{field_names[i]}{PAIR_SEP}{field_names[j]}" for i, j in pairs.tolist()]


def field_pair_frame(model: AFM | FM, data: Dataset, explanation: Explanation | None = None) -> pd.DataFrame:
    """One row per field pair (i < j, in triu order), aggregated over the rows of ``data``.

    Columns: ``pair`` (position), ``field_i``, ``field_j``, ``label`` ("a × b"), ``i``, ``j``,
    ``mean_attention``, ``std_attention``, ``mean_score``, ``mean_interaction``,
    ``mean_contribution``, ``mean_abs_contribution``, ``support`` (rows),
    ``rank`` (1 = largest mean |contribution|).
    """
    exp = explanation if explanation is not None else explain_dataset(model, data)
    names = data.field_names
    pairs = exp.pairs.tolist()
    frame = pd.DataFrame(
        {
            "pair": np.arange(len(pairs)),
            "field_i": [names[i] for i, _ in pairs],
            "field_j": [names[j] for _, j in pairs],
            "label": pair_names(names, exp.pairs),
            "i": [i for i, _ in pairs],
            "j": [j for _, j in pairs],
            "mean_attention": exp.attention.double().mean(0).numpy(),
            "std_attention": exp.attention.double().std(0, correction=0).numpy(),
            "mean_score": exp.score.double().mean(0).numpy(),
            "mean_interaction": exp.interaction.double().mean(0).numpy(),
            "mean_contribution": exp.contribution.double().mean(0).numpy(),
            "mean_abs_contribution": exp.contribution.double().abs().mean(0).numpy(),
            "support": np.full(len(pairs), exp.attention.shape[0]),
        }
    )
    frame["rank"] = frame["mean_abs_contribution"].rank(ascending=False, method="first").astype(int)
    return frame


def feature_pair_frame(
    model: AFM | FM,
    data: Dataset,
    top: int | None = 20,
    min_count: int = 1,
    explanation: Explanation | None = None,
) -> pd.DataFrame:
    """Feature pairs ("weather=rain × app_category=outdoor") ranked by mean |contribution|.

    Columns: ``label``, ``feature_i``, ``feature_j`` (labels), ``id_i``, ``id_j``, ``field_i``,
    ``field_j``, ``count`` (rows where the pair occurs), ``mean_attention``,
    ``mean_interaction``, ``mean_contribution``, ``mean_abs_contribution``. Pairs seen fewer
    than ``min_count`` times are left out; ``top`` keeps the first rows (None: all).
    """
    exp = explanation if explanation is not None else explain_dataset(model, data)
    if exp.pairs.numel() == 0:
        return pd.DataFrame(columns=["label", "feature_i", "feature_j", "id_i", "id_j", "field_i", "field_j", "count"])
    i, j = exp.pairs[:, 0], exp.pairs[:, 1]
    n = data.n_features
    key = (data.idx[:, i] * n + data.idx[:, j]).reshape(-1)  # (N*P,)
    unique, inverse = torch.unique(key, return_inverse=True)
    count = torch.bincount(inverse, minlength=len(unique)).double()

    def mean(values: torch.Tensor) -> np.ndarray:
        return (
            torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, values.reshape(-1).double()) / count
        ).numpy()

    labels = data.schema.feature_labels()
    id_i, id_j = (unique // n).numpy(), (unique % n).numpy()
    names = data.field_names
    field_of = {f: k for k, spec in enumerate(data.schema.fields) for f in range(spec.offset, spec.offset + spec.size)}
    frame = pd.DataFrame(
        {
            "feature_i": [labels[a] for a in id_i],
            "feature_j": [labels[b] for b in id_j],
            "id_i": id_i,
            "id_j": id_j,
            "field_i": [names[field_of[a]] if a in field_of else "?" for a in id_i],
            "field_j": [names[field_of[b]] if b in field_of else "?" for b in id_j],
            "count": count.numpy().astype(int),
            "mean_attention": mean(exp.attention),
            "mean_interaction": mean(exp.interaction),
            "mean_contribution": mean(exp.contribution),
            "mean_abs_contribution": mean(exp.contribution.abs()),
        }
    )
    frame.insert(0, "label", frame["feature_i"] + PAIR_SEP + frame["feature_j"])
    frame = frame[frame["count"] >= min_count].sort_values("mean_abs_contribution", ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    return frame if top is None else frame.head(top)


def planted_recovery(field_frame: pd.DataFrame, truth: list[dict[str, Any]]) -> dict[str, Any]:
    """How well the learned field-pair ranking recovers planted pairs (``datasets.sample_truth()``).

    Returns ``{"ranks": {"a × b": learned rank}, "top_k_hits": planted pairs among the learned
    top k (k = number planted), "k", "spearman": rank correlation between planted strength and
    learned mean |contribution| over the planted pairs}``.
    """
    by_label = field_frame.set_index("label")
    ranks, strengths, learned = {}, [], []
    for p in truth:
        label = PAIR_SEP.join(p["fields"])
        if label not in by_label.index:
            label = PAIR_SEP.join(reversed(p["fields"]))
        ranks[label] = int(by_label.loc[label, "rank"])
        strengths.append(p["strength"])
        learned.append(by_label.loc[label, "mean_abs_contribution"])
    k = len(truth)
    spearman = float(pd.Series(strengths).rank().corr(pd.Series(learned).rank())) if k > 1 else float("nan")
    return {"ranks": ranks, "top_k_hits": sum(r <= k for r in ranks.values()), "k": k, "spearman": spearman}


def field_pair_matrix(frame: pd.DataFrame, value: str = "mean_attention") -> pd.DataFrame:
    """A field x field table of one ``field_pair_frame`` column: upper triangle filled, NaN elsewhere.

    Rows and columns are the field names in field order; cell (field_i, field_j), i < j.
    """
    names = list(dict.fromkeys([*frame.sort_values("i")["field_i"], *frame.sort_values("j")["field_j"]]))
    matrix = pd.DataFrame(np.nan, index=names, columns=names)
    for fi, fj, v in zip(frame["field_i"], frame["field_j"], frame[value], strict=True):
        matrix.loc[fi, fj] = v
    return matrix


def row_terms(explanation: Explanation, row: int, data: Dataset, top: int | None = 12) -> pd.DataFrame:
    """The terms of one prediction, in waterfall order: bias, linear terms, pair contributions.

    Columns: ``term`` (e.g. "weather=rain", "weather=rain × app_category=outdoor"), ``kind``
    ("bias", "linear", "pair", "other pairs"), ``value``, ``attention`` (pairs), ``interaction``
    (pairs), ``cumulative``. Pairs are sorted by |contribution|; beyond ``top`` they are summed
    into one "other pairs" term, so the values always add up to the prediction.
    ``row`` indexes ``explanation`` (and the same row of ``data``).
    """
    labels = data.schema.feature_labels()
    ids = data.idx[row].tolist()
    names = [labels[i] if i < len(labels) else f"#{i}" for i in ids]
    rows: list[dict[str, Any]] = [{"term": "bias w0", "kind": "bias", "value": float(explanation.bias)}]
    for f, name in enumerate(names):
        rows.append({"term": name, "kind": "linear", "value": float(explanation.linear[row, f])})
    pairs = []
    for p, (i, j) in enumerate(explanation.pairs.tolist()):
        pairs.append(
            {
                "term": f"{names[i]}{PAIR_SEP}{names[j]}",
                "kind": "pair",
                "value": float(explanation.contribution[row, p]),
                "attention": float(explanation.attention[row, p]),
                "interaction": float(explanation.interaction[row, p]),
            }
        )
    pairs.sort(key=lambda r: -abs(r["value"]))
    if top is not None and len(pairs) > top:
        rest = pairs[top:]
        pairs = pairs[:top] + [
            {"term": f"{len(rest)} other pairs", "kind": "other pairs", "value": sum(r["value"] for r in rest)}
        ]
    frame = pd.DataFrame(rows + pairs, columns=["term", "kind", "value", "attention", "interaction"])
    frame["cumulative"] = frame["value"].cumsum()
    return frame
