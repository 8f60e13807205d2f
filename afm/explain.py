"""Explanations as data: model + Dataset -> pandas DataFrames (figures live in ``plots.py``).

Every number here comes from ``model.explain``, the same computation as ``forward``, so the
tables show exactly what the model used to predict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import kernels
from .data import Dataset, Schema
from .model import AFM, FM, Explanation

PAIR_SEP = " × "


def explain_batches(model: AFM | FM, data: Dataset, batch_size: int | None = None) -> Iterator[tuple[int, Explanation]]:
    """``(first_row, Explanation)`` for consecutive batches of ``data``, in eval mode.

    ``batch_size`` None picks one that bounds the memory of a batch (see ``auto_batch_size``).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = batch_size or auto_batch_size(model)
    all_ones = data.one_hot()  # one-hot data: nothing to scale by x_i
    try:
        for start in range(0, len(data), rows):
            end = start + rows
            val = None if all_ones else data.val[start:end].to(device)
            yield start, model.explain(data.idx[start:end].to(device), val)
    finally:
        model.train(was_training)


def auto_batch_size(model: AFM | FM, budget_bytes: int = 256 * 2**20) -> int:
    """Rows per explanation batch whose working memory stays within ``budget_bytes``.

    The kernel layer says what a row costs: AFM's fused kernel keeps only [B, P] results per batch;
    the PyTorch kernels (and FM's explanation) also form the [B, P, k] pair vectors.
    """
    c = model.config
    params = (model.V, model.W, model.b, model.h) if isinstance(model, AFM) else ()  # FM: no fused kernel
    per_row = kernels.bytes_per_row(c.n_fields, c.embed_dim, *params)
    return int(min(max(budget_bytes // per_row, 256), 1 << 20))


def explain_dataset(model: AFM | FM, data: Dataset, batch_size: int | None = None) -> Explanation:
    """One ``Explanation`` for all rows of ``data`` (tensors on the CPU).

    ``batch_size`` None: as large as ``auto_batch_size`` allows (a small dataset is one batch).
    """
    parts = [e for _, e in explain_batches(model, data, batch_size)]
    if not parts:
        raise ValueError("cannot explain an empty dataset")
    if len(parts) == 1:
        return _on_cpu(parts[0])

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


def _on_cpu(exp: Explanation) -> Explanation:
    return Explanation(**{f.name: getattr(exp, f.name).cpu() for f in dataclasses.fields(exp)})


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
    table = planted_table(field_frame, truth)
    ranks = {
        label: int(rank) for label, rank in zip(table["planted pair"], table["rank by |contribution|"], strict=True)
    }
    k = len(table)
    spearman = float(table["strength"].rank().corr(table["mean |contribution|"].rank())) if k > 1 else float("nan")
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


# ---------------------------------------------------------------------------- dashboard helpers


def attention_quantiles(explanation: Explanation, labels: list[str], top: int | None = None) -> pd.DataFrame:
    """Box-plot statistics of each pair's per-row attention a_ij, largest mean first.

    Columns: ``label``, ``pair`` (position in triu order), ``mean``, ``min``, ``q1``, ``median``,
    ``q3``, ``max``, ``lowerfence`` / ``upperfence`` (Tukey whiskers: the most extreme a_ij within
    1.5 IQR of the box), ``rows``. ``top`` keeps the first pairs (None: all). A handful of numbers
    per pair instead of every row keeps a box plot of 30,000 rows small.
    """
    a = explanation.attention.double().numpy()  # (N, P)
    if a.shape[0] == 0:
        raise ValueError("cannot summarise the attention of an empty explanation")
    q1, median, q3 = np.quantile(a, [0.25, 0.5, 0.75], axis=0)  # each (P,)
    iqr = q3 - q1
    frame = pd.DataFrame(
        {
            "label": labels,
            "pair": np.arange(a.shape[1]),
            "mean": a.mean(0),
            "min": a.min(0),
            "q1": q1,
            "median": median,
            "q3": q3,
            "max": a.max(0),
            "lowerfence": np.where(a >= q1 - 1.5 * iqr, a, np.inf).min(0),
            "upperfence": np.where(a <= q3 + 1.5 * iqr, a, -np.inf).max(0),
            "rows": a.shape[0],
        }
    )
    frame = frame.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    return frame if top is None else frame.head(top)


def planted_table(field_frame: pd.DataFrame, truth: list[dict[str, Any]]) -> pd.DataFrame:
    """The planted pairs (``datasets.sample_truth()``) beside the learned field-pair ranking.

    Columns: ``planted pair`` (label as in ``field_frame``), ``strength``, ``variance share``,
    ``rank by |contribution|`` (1 = largest mean |contribution|, as ``planted_recovery``),
    ``rank by attention`` (1 = largest mean attention), ``mean |contribution|``, ``mean attention``,
    ``story``; one row per planted pair, strongest first.
    """
    attention_rank = field_frame["mean_attention"].rank(ascending=False, method="first").astype(int)
    by_label = field_frame.assign(attention_rank=attention_rank).set_index("label")
    rows = []
    for p in sorted(truth, key=lambda p: -p["strength"]):
        label = PAIR_SEP.join(p["fields"])
        if label not in by_label.index:
            label = PAIR_SEP.join(reversed(p["fields"]))
        learned = by_label.loc[label]
        rows.append(
            {
                "planted pair": label,
                "strength": p["strength"],
                "variance share": p.get("variance_share", float("nan")),
                "rank by |contribution|": int(learned["rank"]),
                "rank by attention": int(learned["attention_rank"]),
                "mean |contribution|": float(learned["mean_abs_contribution"]),
                "mean attention": float(learned["mean_attention"]),
                "story": p.get("story", ""),
            }
        )
    return pd.DataFrame(rows)


def row_values(schema: Schema, idx: torch.Tensor, val: torch.Tensor) -> dict[str, Any]:
    """One encoded row (``idx`` [F], ``val`` [F]) back in the table's terms, field name -> value.

    Categorical: the value string; numeric: the value in original units (x * std + mean);
    libFM ids: the global feature id (int).
    """
    out: dict[str, Any] = {}
    for spec, i, x in zip(schema.fields, idx.tolist(), val.tolist(), strict=True):
        if spec.kind == "categorical":
            out[spec.name] = spec.values[i - spec.offset]
        elif spec.kind == "numeric":
            out[spec.name] = x * spec.std + spec.mean
        else:
            out[spec.name] = int(i)
    return out


def encode_row(schema: Schema, values: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``row_values``' inverse: field name -> value to ``(idx [1, F], val [1, F])``.

    Categorical and numeric fields go through ``Schema.encode`` (unknown values become OOV, the
    "<missing>" value the missing feature); a libFM ids field takes a global feature id inside the
    field's range, with x = 1.
    """
    table = [s for s in schema.fields if s.kind != "ids"]
    idx = torch.zeros(1, schema.n_fields, dtype=torch.int64)
    val = torch.ones(1, schema.n_fields, dtype=torch.float32)
    if table:
        table_idx, table_val = Schema(table).encode(pd.DataFrame([{s.name: values[s.name] for s in table}]))
        columns = [f for f, s in enumerate(schema.fields) if s.kind != "ids"]
        idx[:, columns], val[:, columns] = table_idx, table_val
    for f, spec in enumerate(schema.fields):
        if spec.kind == "ids":
            feature = int(values[spec.name])
            if not spec.offset <= feature < spec.offset + spec.size:
                raise ValueError(
                    f"field {spec.name!r}: feature id {feature} is outside {spec.offset}..{spec.offset + spec.size - 1}"
                )
            idx[0, f] = feature
    return idx, val


def pair_sentences(terms: pd.DataFrame, top: int = 5, with_attention: bool = True) -> list[str]:
    """The ``top`` pair terms of ``row_terms`` in words, largest |contribution| first, e.g.
    "app_category=outdoor × weather=rain pulls the prediction down by 3.49 (attention 0.51)"."""
    pairs = terms[terms["kind"] == "pair"].head(top)
    out = []
    for term, value, attention in zip(pairs["term"], pairs["value"], pairs["attention"], strict=True):
        direction = "up" if value >= 0 else "down"
        note = f" (attention {attention:.2f})" if with_attention else ""
        out.append(f"{term} pulls the prediction {direction} by {abs(value):.2f}{note}")
    return out


def paper_steps(params: dict[str, np.ndarray], idx: np.ndarray, val: np.ndarray) -> dict[str, Any]:
    """Eq. 1-6 for one sample written out in NumPy (float64), from ``paper_parameters(model)``.

    ``idx``, ``val``: the sample's feature ids and values x_i, each [F]. Returns ``w0``,
    ``linear`` [F] (w_i x_i), ``pairs`` [P, 2], ``u`` [P, k] ((v_i ⊙ v_j) x_i x_j), ``pooled`` [k]
    (sum pooling), ``p`` [k], ``interaction`` [P] (s_ij = p^T u_ij), ``attention`` [P] and
    ``contribution`` [P] (c_ij = a_ij s_ij), ``prediction``; for an AFM (params with ``W``) also
    ``hidden`` [P, t] (W u_ij + b), ``relu`` [P, t], ``score`` [P] (a'_ij), ``denominator``
    (Σ exp a'_ij) and ``attention_pooled`` [k] (Σ a_ij u_ij). FM: attention is 1 for every pair.
    """
    p64 = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    x = np.asarray(val, dtype=np.float64)  # (F,)
    ids = np.asarray(idx, dtype=np.int64)
    e = p64["V"][ids] * x[:, None]  # (F, k): v_i x_i
    pairs = np.array(np.triu_indices(len(ids), 1)).T  # (P, 2), triu order as the model
    u = e[pairs[:, 0]] * e[pairs[:, 1]]  # (P, k)
    steps: dict[str, Any] = {
        "w0": float(p64["w0"]),
        "linear": p64["w"][ids] * x,
        "pairs": pairs,
        "u": u,
        "pooled": u.sum(0),
        "p": p64["p"],
        "interaction": u @ p64["p"],
    }
    if "W" in p64:
        hidden = u @ p64["W"].T + p64["b"]  # (P, t)
        relu = np.maximum(hidden, 0.0)
        score = relu @ p64["h"]  # (P,)
        exp = np.exp(score - score.max())  # shifted as the model's softmax; the ratio is the same
        denominator = float(np.exp(score).sum())
        attention = exp / exp.sum()
        steps.update(hidden=hidden, relu=relu, score=score, denominator=denominator, attention_pooled=attention @ u)
    else:
        attention = np.ones(len(pairs))
    steps["attention"] = attention
    steps["contribution"] = attention * steps["interaction"]
    steps["prediction"] = steps["w0"] + float(steps["linear"].sum()) + float(steps["contribution"].sum())
    return steps
