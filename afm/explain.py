"""Explanations as data: model + Dataset -> pandas DataFrames (figures live in ``plots.py``).

Every number here comes from ``model.explain``, the same computation as ``forward``, so the
tables show exactly what the model used to predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .attention import tie_ranks, tied
from .data import Dataset, Schema
from .model import AFM, FM, ROW_FIELDS, Explanation
from .summary import (
    SAMPLE_ROWS,
    Summary,
    _on_cpu,
    as_summary,
    auto_batch_size,
    explain_batches,
    sample_index,
    summarize,
)

__all__ = [  # the summary's names are re-exported: afm.explain.summarize is the documented spelling
    "SAMPLE_ROWS", "Summary", "auto_batch_size", "explain_batches", "sample_index", "summarize",
    "explain_dataset", "pair_names", "field_pair_frame", "feature_pair_frame", "planted_recovery",
    "field_pair_matrix", "row_terms", "attention_quantiles", "planted_table", "row_values", "encode_row",
    "numeric_ranges", "out_of_range", "pair_sentences", "paper_steps", "PAIR_SEP",
]  # fmt: skip

PAIR_SEP = " × "


def explain_dataset(model: AFM | FM, data: Dataset, batch_size: int | None = None) -> Explanation:
    """One ``Explanation`` for all rows of ``data`` (tensors on the CPU).

    ``batch_size`` None: as large as ``auto_batch_size`` allows (a small dataset is one batch).
    """
    parts = [e for _, e in explain_batches(model, data, batch_size)]
    if not parts:
        raise ValueError("cannot explain an empty dataset")
    if len(parts) == 1:
        return _on_cpu(parts[0])

    return Explanation(
        bias=parts[0].bias.cpu(),
        pairs=parts[0].pairs.cpu(),
        uniform_weight=parts[0].uniform_weight.cpu(),
        **{name: torch.cat([getattr(p, name).cpu() for p in parts]) for name in ROW_FIELDS},
    )


def pair_names(field_names: list[str], pairs: torch.Tensor) -> list[str]:
    return [f"{field_names[i]}{PAIR_SEP}{field_names[j]}" for i, j in pairs.tolist()]


def field_pair_frame(
    model: AFM | FM,
    data: Dataset,
    explanation: Explanation | Summary | None = None,
    summary: Summary | None = None,
) -> pd.DataFrame:
    """One row per field pair (i < j, in triu order), aggregated over every row of ``data`` (exact).

    Columns: ``pair`` (position), ``field_i``, ``field_j``, ``label`` ("a × b"), ``i``, ``j``,
    ``mean_attention``, ``std_attention``, ``mean_score``, ``mean_interaction``,
    ``mean_contribution``, ``mean_abs_contribution``, ``mean_uniform_part`` (s_ij / P; FM: s_ij),
    ``mean_attention_part`` ((a_ij − 1/P) s_ij: what attention moves; FM: 0), ``mean_abs_attention_part``,
    ``relative_attention`` (P · mean a_ij, 1 = uniform; FM: 1), ``support`` (rows),
    ``rank`` (1 = largest mean |contribution|). From ``summary`` (or ``explanation``, a Summary or the
    Explanation of every row) when given, else from ``summarize(model, data)``: nothing [N, P] is held.
    """
    s = summary if summary is not None else as_summary(model, data, explanation)
    names = data.field_names
    pairs = s.pairs.tolist()
    frame = pd.DataFrame(
        {
            "pair": np.arange(len(pairs)),
            "field_i": [names[i] for i, _ in pairs],
            "field_j": [names[j] for _, j in pairs],
            "label": pair_names(names, s.pairs),
            "i": [i for i, _ in pairs],
            "j": [j for _, j in pairs],
            "mean_attention": s.mean("attention"),
            "std_attention": s.std_attention,
            "mean_score": s.mean("score"),
            "mean_interaction": s.mean("interaction"),
            "mean_contribution": s.mean("contribution"),
            "mean_abs_contribution": s.mean("abs_contribution"),
            "mean_uniform_part": s.mean("uniform_part"),
            "mean_attention_part": s.mean("attention_part"),
            "mean_abs_attention_part": s.mean("abs_attention_part"),
            "relative_attention": s.mean("attention") / float(s.sample.uniform_weight),
            "support": np.full(len(pairs), s.rows),
        }
    )
    frame["rank"] = frame["mean_abs_contribution"].rank(ascending=False, method="first").astype(int)
    return frame


def feature_pair_frame(
    model: AFM | FM,
    data: Dataset,
    top: int | None = 20,
    min_count: int = 1,
    explanation: Explanation | Summary | None = None,
    summary: Summary | None = None,
) -> pd.DataFrame:
    """Feature pairs ("weather=rain × app_category=outdoor") ranked by mean |contribution|.

    Columns: ``label``, ``feature_i``, ``feature_j`` (labels), ``id_i``, ``id_j``, ``field_i``,
    ``field_j``, ``count`` (rows where the pair occurs), ``mean_attention``,
    ``mean_interaction``, ``mean_contribution``, ``mean_abs_contribution``. Pairs seen fewer
    than ``min_count`` times are left out; ``top`` keeps the first rows (None: all).

    Counting every distinct feature pair of every row is unbounded (Criteo-like data has millions), so
    with a ``Summary`` (given, or made by ``summarize`` when neither is given) the table is computed on
    the summary's **row sample** (all rows when the data has at most ``SAMPLE_ROWS``): ``count`` counts
    the sample's rows. A whole-data ``Explanation`` gives every row. ``frame.attrs`` holds ``rows`` (the
    rows counted) and ``of_rows`` (the rows of ``data``).
    """
    if summary is None and isinstance(explanation, Explanation):
        exp, rows = explanation, data
    else:
        summary = summary if summary is not None else as_summary(model, data, explanation)
        exp, rows = summary.sample, summary.sample_data
    empty = ["label", "feature_i", "feature_j", "id_i", "id_j", "field_i", "field_j", "count"]
    if exp.pairs.numel() == 0 or len(rows) == 0:
        return pd.DataFrame(columns=empty)
    n = rows.n_features
    columns = {"attention": exp.attention, "interaction": exp.interaction, "contribution": exp.contribution}
    blocks = []
    for p, (i, j) in enumerate(exp.pairs.tolist()):  # one field pair at a time: memory of one column
        key = rows.idx[:, i] * n + rows.idx[:, j]  # (S,): the feature pair of each row
        unique, inverse, count = torch.unique(key, return_inverse=True, return_counts=True)
        kept = count >= min_count
        if not bool(kept.any()):
            continue

        def mean(values: torch.Tensor, inverse: torch.Tensor = inverse, count: torch.Tensor = count) -> np.ndarray:
            sums = torch.zeros(len(count), dtype=torch.float64).index_add_(0, inverse, values.double())
            return (sums / count)[count >= min_count].numpy()

        contribution = columns["contribution"][:, p]
        blocks.append(
            pd.DataFrame(
                {
                    "key": unique[kept].numpy(),
                    "pair": p,
                    "count": count[kept].numpy(),
                    "mean_attention": mean(columns["attention"][:, p]),
                    "mean_interaction": mean(columns["interaction"][:, p]),
                    "mean_contribution": mean(contribution),
                    "mean_abs_contribution": mean(contribution.abs()),
                }
            )
        )
    if not blocks:
        return pd.DataFrame(columns=empty)
    frame = pd.concat(blocks, ignore_index=True)
    frame.insert(0, "id_i", frame["key"] // n)
    frame.insert(1, "id_j", frame["key"] % n)
    # largest mean |c| first; ties in feature-id order
    frame = frame.sort_values(["mean_abs_contribution", "key"], ascending=[False, True], kind="stable")
    frame = frame.drop(columns="key").reset_index(drop=True)
    frame["count"] = frame["count"].astype(int)
    frame = frame if top is None else frame.head(top)
    # labels only for the rows kept: a sample of Criteo-like data has millions of distinct pairs
    labels, names, pairs = rows.schema.feature_labels(), rows.field_names, exp.pairs.tolist()
    frame.insert(0, "feature_i", [labels[a] for a in frame["id_i"]])
    frame.insert(1, "feature_j", [labels[b] for b in frame["id_j"]])
    frame.insert(4, "field_i", [names[pairs[p][0]] for p in frame["pair"]])
    frame.insert(5, "field_j", [names[pairs[p][1]] for p in frame["pair"]])
    frame = frame.drop(columns="pair")
    frame.insert(0, "label", frame["feature_i"] + PAIR_SEP + frame["feature_j"])
    frame.attrs.update(rows=len(rows), of_rows=len(data))
    return frame


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


def row_terms(
    explanation: Explanation,
    row: int,
    data: Dataset,
    top: int | None = 12,
    baseline: Summary | None = None,
    split: bool = False,
) -> pd.DataFrame:
    """The terms of one prediction, in waterfall order: bias, linear terms, pair contributions.

    Columns: ``term`` (e.g. "weather=rain", "weather=rain × app_category=outdoor"), ``kind``
    ("bias", "linear", "pair", "other pairs", and with ``split`` "attention", "other attention"), ``value``,
    ``attention`` (pairs), ``interaction`` (pairs), ``cumulative``. Pairs are sorted by |value|; beyond
    ``top`` they are summed into one "other pairs" term, so the values always add up to the prediction.
    ``row`` indexes ``explanation`` (and the same row of ``data``).

    ``split``: each pair's contribution is shown as its two parts (``Explanation.uniform_part`` and
    ``attention_part``): the pair bars carry the uniform part s_ij / P, and the attention part
    (a_ij − 1/P) s_ij of the ``top`` pairs with the largest |attention part| follows as bars of kind
    "attention" ("attention: a × b"), the rest summed into "other attention". For FM every attention part
    is 0 and no attention bar is added.

    ``baseline`` (a ``Summary`` of the data, by the same model): every term relative to an average row.
    The first term is the average prediction ("average prediction", kind "bias"); a field's linear term
    is w_i x_i minus its mean over the data, a pair's is c_ij minus its mean (each part minus its own
    mean with ``split``). They still add up to the prediction. Raw linear terms absorb the bias (every
    row has one feature per field, so a field with no effect can show a large w_i x_i); relative terms
    show what this row does differently.
    """
    labels = data.schema.feature_labels()
    ids = data.idx[row].tolist()
    names = [labels[i] if i < len(labels) else f"#{i}" for i in ids]
    n_fields, n_pairs = explanation.linear.shape[1], explanation.contribution.shape[1]
    if baseline is not None:
        if baseline.linear_sum.shape[0] != n_fields or baseline.pairs.shape[0] != n_pairs:
            raise ValueError(
                f"the baseline summarises {baseline.linear_sum.shape[0]} fields and {baseline.pairs.shape[0]} pairs; "
                f"the row has {n_fields} and {n_pairs}"
            )
        first = {"term": "average prediction", "kind": "bias", "value": baseline.mean_prediction}
        linear_mean = baseline.mean("linear")
        means = {name: baseline.mean(name) for name in ("contribution", "uniform_part", "attention_part")}
    else:
        first = {"term": "bias w0", "kind": "bias", "value": float(explanation.bias)}
        linear_mean = np.zeros(n_fields)
        means = dict.fromkeys(("contribution", "uniform_part", "attention_part"), np.zeros(n_pairs))
    rows: list[dict[str, Any]] = [first]
    for f, name in enumerate(names):
        rows.append({"term": name, "kind": "linear", "value": float(explanation.linear[row, f]) - linear_mean[f]})
    pair_value = explanation.uniform_part if split else explanation.contribution
    pair_mean = means["uniform_part" if split else "contribution"]
    labels_ij = [f"{names[i]}{PAIR_SEP}{names[j]}" for i, j in explanation.pairs.tolist()]
    pairs = [
        {
            "term": labels_ij[p],
            "kind": "pair",
            "value": float(pair_value[row, p]) - pair_mean[p],
            "attention": float(explanation.attention[row, p]),
            "interaction": float(explanation.interaction[row, p]),
        }
        for p in range(n_pairs)
    ]
    moved = []
    if split and not bool((explanation.attention_part[row] == 0).all()):
        moved = [
            {
                "term": f"attention: {labels_ij[p]}",
                "kind": "attention",
                "value": float(explanation.attention_part[row, p]) - means["attention_part"][p],
                "attention": float(explanation.attention[row, p]),
                "interaction": float(explanation.interaction[row, p]),
            }
            for p in range(n_pairs)
        ]
    rows += _top_terms(pairs, top, "other pairs", "pairs") + _top_terms(
        moved, top, "other attention", "pairs' attention parts"
    )
    frame = pd.DataFrame(rows, columns=["term", "kind", "value", "attention", "interaction"])
    frame["cumulative"] = frame["value"].cumsum()
    return frame


def _top_terms(terms: list[dict[str, Any]], top: int | None, kind: str, what: str) -> list[dict[str, Any]]:
    """``terms`` by |value|, the first ``top`` kept and the rest summed into one term of ``kind``."""
    terms = sorted(terms, key=lambda r: -abs(r["value"]))
    if top is None or len(terms) <= top:
        return terms
    rest = terms[top:]
    return terms[:top] + [{"term": f"{len(rest)} other {what}", "kind": kind, "value": sum(r["value"] for r in rest)}]


# ---------------------------------------------------------------------------- dashboard helpers


def attention_quantiles(explanation: Explanation | Summary, labels: list[str], top: int | None = None) -> pd.DataFrame:
    """Box-plot statistics of each pair's per-row attention a_ij, largest mean first.

    Columns: ``label``, ``pair`` (position in triu order), ``mean``, ``min``, ``q1``, ``median``,
    ``q3``, ``max``, ``lowerfence`` / ``upperfence`` (Tukey whiskers: the most extreme a_ij within
    1.5 IQR of the box), ``rows``. ``top`` keeps the first pairs (None: all). A handful of numbers
    per pair instead of every row keeps a box plot of 30,000 rows small. A ``Summary`` gives the
    statistics of its row sample (all rows when the data has at most ``SAMPLE_ROWS``); ``rows`` says how many.
    """
    exp = explanation.sample if isinstance(explanation, Summary) else explanation
    attention = exp.attention.numpy()  # (N, P) float32
    if attention.shape[0] == 0:
        raise ValueError("cannot summarise the attention of an empty explanation")
    if len(labels) != attention.shape[1]:
        raise ValueError(f"{len(labels)} labels for {attention.shape[1]} pairs")
    columns = []
    for start in range(0, attention.shape[1], 64):  # 64 pairs at a time: no [N, P] float64 copies
        a = attention[:, start : start + 64].astype(np.float64)
        q1, median, q3 = np.quantile(a, [0.25, 0.5, 0.75], axis=0)  # each (block,)
        iqr = q3 - q1
        columns.append(
            {
                "mean": a.mean(0),
                "min": a.min(0),
                "q1": q1,
                "median": median,
                "q3": q3,
                "max": a.max(0),
                "lowerfence": np.where(a >= q1 - 1.5 * iqr, a, np.inf).min(0),
                "upperfence": np.where(a <= q3 + 1.5 * iqr, a, -np.inf).max(0),
            }
        )
    stats = {name: np.concatenate([c[name] for c in columns]) for name in columns[0]}
    frame = pd.DataFrame({"label": labels, "pair": np.arange(attention.shape[1]), **stats, "rows": attention.shape[0]})
    frame = frame.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    return frame if top is None else frame.head(top)


def planted_table(field_frame: pd.DataFrame, truth: list[dict[str, Any]]) -> pd.DataFrame:
    """The planted pairs (``datasets.sample_truth()``) beside the learned field-pair ranking.

    Columns: ``planted pair`` (label as in ``field_frame``), ``strength``, ``variance share``,
    ``rank by |contribution|`` (1 = largest mean |contribution|, as ``planted_recovery``),
    ``rank by attention`` (1 = largest mean attention; pairs tied within ``afm.attention.TIE_RTOL`` share
    their best rank, and with every pair tied, e.g. exactly uniform attention, it is None: no ranking),
    ``mean |contribution|``, ``mean attention``, ``story``; one row per planted pair, strongest first.
    """
    values = field_frame["mean_attention"].to_numpy()
    attention_rank = pd.Series(
        [None] * len(values) if tied(values) else tie_ranks(values).tolist(), index=field_frame.index, dtype=object
    )
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
                "rank by attention": None if learned["attention_rank"] is None else int(learned["attention_rank"]),
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


def numeric_ranges(data: Dataset) -> dict[str, tuple[float, float]]:
    """Per numeric field of ``data``, ``(min, max)`` of its values in original units (x · std + mean).

    The range a what-if edit can stay inside: the model saw nothing beyond it in ``data`` (pass the
    training rows). Empty data: an empty dict."""
    out: dict[str, tuple[float, float]] = {}
    if len(data) == 0:
        return out
    for f, spec in enumerate(data.schema.fields):
        if spec.kind == "numeric":
            column = data.val[:, f].double() * spec.std + spec.mean
            out[spec.name] = (float(column.min()), float(column.max()))
    return out


def out_of_range(values: dict[str, Any], ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """The numeric ``values`` (field name -> number) outside ``ranges`` (``numeric_ranges``): name -> its range."""
    out = {}
    for name, (low, high) in ranges.items():
        value = values.get(name)
        if value is not None and not low <= float(value) <= high:
            out[name] = (low, high)
    return out


def pair_sentences(
    terms: pd.DataFrame, top: int = 5, with_attention: bool = True, n_pairs: int | None = None
) -> list[str]:
    """The ``top`` pair terms of ``row_terms`` (unsplit) in words, largest |contribution| first, e.g.
    "app_category=outdoor × weather=rain pulls the prediction down by 3.49 (attention 0.51)"; with ``n_pairs``
    (P) the attention is given as P·a_ij, 1 = uniform ("(P·a_ij 1.04)")."""
    pairs = terms[terms["kind"] == "pair"].head(top)
    out = []
    for term, value, attention in zip(pairs["term"], pairs["value"], pairs["attention"], strict=True):
        direction = "up" if value >= 0 else "down"
        note = ""
        if with_attention:
            note = f" (attention {attention:.2f})" if n_pairs is None else f" (P·a_ij {attention * n_pairs:.3f})"
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
