"""DataFrame -> plotly Figure. Every function returns the figure (never shows it).

Inputs are the frames of ``afm.explain`` (and ``History.to_frame()``); the columns each function
reads are named in its docstring.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .config import knobs

SEQUENTIAL = "Viridis"
DIVERGING = "RdBu"
MODEL_COLOURS = {"afm": "#d62728", "fm": "#1f77b4"}


# ---------------------------------------------------------------------------- words for columns

# Column names -> the words a figure or table shows (a projector audience reads these, not code).
# Not the training settings: their words live with their knobs (afm/config.py, ``knob(..., words=...)``).
WORDS = {
    "mean_attention": "mean attention a_ij",
    "std_attention": "std of attention a_ij",
    "mean_score": "mean attention score a'_ij",
    "mean_interaction": "mean interaction s_ij",
    "mean_contribution": "mean contribution c_ij",
    "mean_abs_contribution": "mean |contribution|",
    "mean_uniform_part": "mean uniform part s_ij / P",
    "mean_attention_part": "mean attention part (a_ij − 1/P) s_ij",
    "mean_abs_attention_part": "mean |attention part|",
    "relative_attention": "relative attention P·a_ij",
    "afm_mean_abs_contribution": "mean |contribution| (AFM)",
    "fm_mean_abs_contribution": "mean |contribution| (FM)",
    "afm_mean_attention": "mean attention (AFM)",
    "difference": "AFM − FM mean |contribution|",
    "support": "rows",
    "label": "field pair",
    "train_loss": "training loss",
    "epoch": "epoch",
    "seconds": "seconds",
    "entropy": "attention entropy",
    "best_epoch": "best epoch",
    "epochs_run": "epochs run",
    "parameter": "setting swept",
    "value": "value",
    "model": "model",
}  # a training setting's column (a sweep's "dropout", "attention_factor") is named by its knob: Knob.words
METRIC_WORDS = {
    "rmse": "RMSE",
    "mae": "MAE",
    "auc": "AUC",
    "logloss": "log loss",
    "accuracy": "accuracy",
    "loss": "loss",
}
PART_WORDS = {"valid": "validation", "test": "test", "train": "training"}


def words(column: str) -> str:
    """A column name in words: ``valid_rmse`` -> "validation RMSE", ``afm_mean_abs_contribution`` ->
    "mean |contribution| (AFM)", a training setting as its knob's ``words`` (``attention_factor`` ->
    "attention factor t"); a name it does not know comes back unchanged."""
    if column in WORDS:
        return WORDS[column]
    knob_words = {k.name: k.words for k in knobs()}
    if column in knob_words:
        return knob_words[column]
    if column in METRIC_WORDS:
        return METRIC_WORDS[column]
    part, _, metric = column.partition("_")
    if part in PART_WORDS and metric in METRIC_WORDS:
        return f"{PART_WORDS[part]} {METRIC_WORDS[metric]}"
    return column


# ---------------------------------------------------------------------------- anchored colour scales

# blue (below the anchor) - white (at it) - red (above it), as RdBu with red = more
BLUE_WHITE_RED = ("#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b")
WHITE_RED = ("#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
PLANTED_COLOUR = "#1a9641"
ATTENTION_COLOUR = "#7b3294"  # what attention moves: the attention part's bars and frames


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^n that is >= ``value`` (> 0): a colour bar
    ends at a round number, at most a third above the largest value."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10 * power)


def anchored_range(
    values: np.ndarray | pd.DataFrame,
    kind: str,
    n_pairs: int | None = None,
    previous: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """The colour range (zmin, zmax) of a pair heatmap, anchored so that it does not follow the data.

    ``kind`` "attention": (0, m/P) with m >= 2, so 1/P (FM's uniform weight) sits at 0..2/P's middle;
    m grows in whole steps of 1/P only when a value exceeds 2/P. "relative": the values are relative
    attention P·a_ij and the range is of log(P·a_ij): (-m, m) with m the ``nice_ceiling`` of the largest
    |log(P·a_ij)|, a symmetric log scale around 1 whose width comes from the model on screen.
    "signed": (-m, m), symmetric about 0.
    "magnitude": (0, m). For the last two m is ``nice_ceiling`` of the largest |value|. ``previous``
    (a range shown before) is only ever widened, never narrowed, so pictures of one session compare.
    """
    z = np.asarray(values, dtype=float)
    finite = z[np.isfinite(z)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    if kind == "attention":
        if not n_pairs:
            raise ValueError("anchored_range: the attention scale needs n_pairs (P)")
        uniform = 1.0 / n_pairs
        lo, hi = 0.0, uniform * max(2.0, float(np.ceil(top / uniform - 1e-9)))
    elif kind == "relative":  # values are P·a_ij > 0; the range is in log(P·a_ij), symmetric about 0 (uniform)
        logs = np.log(finite[finite > 0]) if finite.size else np.zeros(0)
        hi = nice_ceiling(float(np.abs(logs).max())) if logs.size and np.abs(logs).max() > 0 else 1e-6
        lo = -hi
    elif kind == "signed":
        hi = nice_ceiling(top)
        lo = -hi
    elif kind == "magnitude":
        lo, hi = 0.0, nice_ceiling(top)
    else:
        raise ValueError(f"anchored_range: kind must be attention, relative, signed or magnitude, not {kind!r}")
    if previous is not None:
        lo, hi = min(lo, float(previous[0])), max(hi, float(previous[1]))
        if kind in ("signed", "relative"):  # stays symmetric
            hi = max(hi, -lo)
            lo = -hi
    return lo, hi


def anchored_colours(lo: float, hi: float, anchor: float | None) -> list[list[Any]]:
    """A plotly colour scale for the range lo..hi: white at ``anchor`` (blue below, red above), or
    white at ``lo`` rising to red when ``anchor`` is None."""
    if anchor is None:
        return [[i / 4, colour] for i, colour in enumerate(WHITE_RED)]
    mid = min(max((anchor - lo) / (hi - lo), 0.0), 1.0) if hi > lo else 0.5
    blue, light_blue, white, light_red, red = BLUE_WHITE_RED
    stops = [(0.0, blue), (mid / 2, light_blue), (mid, white), (mid + (1 - mid) / 2, light_red), (1.0, red)]
    return [[at, colour] for at, colour in stops if 0.0 <= at <= 1.0]


def cell_decimals(lo: float, hi: float, digits: int = 3) -> int:
    """Decimals for the numbers in the cells: ``digits`` significant digits of the scale's largest |end|."""
    top = max(abs(lo), abs(hi))
    return int(min(max(digits - 1 - np.floor(np.log10(top)), 0), 6)) if top > 0 else digits


def relative_decimals(log_range: float) -> int:
    """Decimals that show relative attention P·a_ij on a log scale of half-width ``log_range``: enough that the
    scale's ends differ from 1 in the last two digits (0.9994–1.0006 needs 4)."""
    if not np.isfinite(log_range) or log_range <= 0:
        return 2
    return int(min(max(1 - np.floor(np.log10(log_range)), 2), 7))


def cell_text(z: np.ndarray, decimals: int) -> list[list[str]]:
    """The text of each cell: the value rounded to ``decimals`` ("" for NaN cells)."""
    # + 0.0 turns a -0.0 (a small negative value rounded) into 0.0: no "-0.000" cells
    return [
        ["" if not np.isfinite(v) else f"{round(float(v), decimals) + 0.0:.{decimals}f}" for v in row]
        for row in np.asarray(z, dtype=float)
    ]


def pair_heatmap(
    matrix: pd.DataFrame,
    title: str,
    *,
    diverging: bool = False,
    support: pd.DataFrame | None = None,
    value_name: str = "value",
    kind: str | None = None,
    zrange: tuple[float, float] | None = None,
    n_pairs: int | None = None,
    planted: Iterable[tuple[str, str]] = (),
    numbers: bool = True,
    text_size: int | None = None,
    digits: int = 3,
) -> go.Figure:
    """Heatmap of a field x field matrix (``explain.field_pair_matrix``); NaN cells stay blank.

    The colour range is ``zrange`` or else ``anchored_range(matrix, kind, n_pairs)``: ``kind``
    "attention" (white at 1/P, FM's uniform weight, with a colour-bar tick there; needs ``n_pairs``),
    "signed" (white at 0, symmetric; what ``diverging=True`` asks for) or "magnitude" (white at 0, the
    default). With ``numbers`` each cell shows its value rounded to ``cell_decimals(zmin, zmax, digits)``.
    ``planted`` (field_i, field_j) pairs get a green frame. ``support`` (same shape) is shown on hover.
    ``text_size`` fixes the cells' font size (else it follows the figure's font).
    """
    kind = kind or ("signed" if diverging else "magnitude")
    values = matrix.to_numpy(dtype=float)
    lo, hi = zrange if zrange is not None else anchored_range(values, kind, n_pairs)
    relative = kind == "relative"
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(values) if relative else values  # relative attention is coloured by log(P·a_ij)
    anchor = {"attention": 1.0 / n_pairs if n_pairs else None, "signed": 0.0, "relative": 0.0}.get(kind)
    custom = support.to_numpy(dtype=float) if support is not None else None
    hover = "%{y} × %{x}<br>" + value_name + (": %{text}" if relative else ": %{z:.4f}")
    hover += "<br>support: %{customdata:,.0f} rows<extra></extra>" if support is not None else "<extra></extra>"
    colorbar: dict[str, Any] = {"title": {"text": value_name}}
    if relative:
        shown = values[np.isfinite(values)]
        ticks = [lo, lo / 2, 0.0, hi / 2, hi]
        digits = relative_decimals(hi)
        colorbar.update(tickvals=ticks, ticktext=[f"{np.exp(t):.{digits}f}" for t in ticks])
        if shown.size:
            colorbar["title"] = {
                "text": f"{value_name}<br>on screen: {shown.min():.{digits}f}–{shown.max():.{digits}f}<br>log scale"
            }
    if kind == "attention" and n_pairs:
        uniform = 1.0 / n_pairs
        steps = int(round(hi / uniform))
        ticks = [m * uniform for m in range(0, steps + 1, max(1, steps // 6))]
        colorbar.update(
            tickvals=ticks,
            ticktext=[
                "0" if m == 0 else "1/P" if m == 1 else f"{m}/P" for m in range(0, steps + 1, max(1, steps // 6))
            ],
        )
    decimals = cell_decimals(lo, hi, digits)
    text = [
        ["" if not np.isfinite(v) else f"{v:.{relative_decimals(hi)}f}" for v in row] for row in values
    ] if relative else cell_text(z, decimals)  # fmt: skip
    heat = go.Heatmap(
        z=z,
        x=list(matrix.columns),
        y=list(matrix.index),
        customdata=custom,
        colorscale=anchored_colours(lo, hi, anchor),
        zmin=lo,
        zmax=hi,
        hoverongaps=False,
        colorbar=colorbar,
        hovertemplate=hover,
        text=text if numbers or relative else None,
        texttemplate="%{text}" if numbers else None,
        textfont={"size": text_size} if text_size else None,
        xgap=1,
        ygap=1,
    )
    fig = go.Figure(heat)
    columns, rows = list(matrix.columns), list(matrix.index)
    framed = 0
    for a, b in planted:
        for fi, fj in ((a, b), (b, a)):
            if fi in rows and fj in columns and np.isfinite(matrix.loc[fi, fj]):
                x, y = columns.index(fj), rows.index(fi)
                fig.add_shape(type="rect", x0=x - 0.5, x1=x + 0.5, y0=y - 0.5, y1=y + 0.5,
                              line={"color": PLANTED_COLOUR, "width": 4})  # fmt: skip
                framed += 1
                break
    notes = []
    if kind == "attention" and n_pairs:
        notes.append(f"white = 1/P = 1/{n_pairs} ≈ {1 / n_pairs:.3g}: uniform, as FM")
    elif kind == "signed":
        notes.append("white = 0; red: up, blue: down")
    elif relative:
        notes.append("white = 1: uniform attention, as FM; red: more than uniform, blue: less (log scale)")
    if framed:
        notes.append(f"<span style='color:{PLANTED_COLOUR}'>green frame</span>: planted pair")
    if notes:
        fig.add_annotation(text=" · ".join(notes), xref="paper", yref="paper", x=0, y=-0.02, xanchor="left",
                           yanchor="top", showarrow=False, font={"size": 12})  # fmt: skip
    fig.update_layout(
        title={"text": title, "y": 1, "yanchor": "top", "pad": {"t": 10}},
        yaxis={"autorange": "reversed"},
        xaxis={"side": "top", "tickangle": -30},  # column names beside the title: the bottom may be below the fold
        plot_bgcolor="rgba(0,0,0,0)",
        margin={"l": 10, "r": 10, "t": 110, "b": 40 if notes else 10},
    )
    return fig


def before_after_heatmap(
    before: pd.DataFrame, now: pd.DataFrame, titles: tuple[str, str], title: str, **options: Any
) -> go.Figure:
    """Two ``pair_heatmap``s side by side in one figure (``options`` as there, shared by both): the
    ``before`` and ``now`` matrices on one colour range (give ``zrange``), the field names once on the
    left, one colour bar, ``titles`` over the two panels; the traces are named by ``titles``. Rows and
    columns blank in both (the first column and last row of a triangle) are left out: half a width each
    needs the room."""
    from plotly.subplots import make_subplots

    both = before.notna() | now.notna()
    rows, columns = both.any(axis=1), both.any(axis=0)
    before, now = before.loc[rows, columns], now.loc[rows, columns]
    singles = [pair_heatmap(m, t, **options) for m, t in zip((before, now), titles, strict=True)]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03, subplot_titles=titles)
    for panel in fig.layout.annotations:  # above the column names, which are on top
        panel.update(yshift=85, font={"size": 16})
    for col, single in enumerate(singles, start=1):
        fig.add_trace(single.data[0].update(name=titles[col - 1], showscale=col == 2), row=1, col=col)
        for shape in single.layout.shapes:
            fig.add_shape(type="rect", x0=shape.x0, x1=shape.x1, y0=shape.y0, y1=shape.y1, line=shape.line,
                          row=1, col=col)  # fmt: skip
    for note in singles[1].layout.annotations:
        fig.add_annotation(note)
    # tick fonts fixed: the field names must fit even where the page enlarges the figure's font
    fig.update_xaxes(side="top", tickangle=-30, tickfont={"size": 12})
    fig.update_yaxes(autorange="reversed", tickfont={"size": 13})
    fig.update_layout(
        title={"text": title, "y": 1, "yanchor": "top", "pad": {"t": 10}},
        plot_bgcolor="rgba(0,0,0,0)",
        margin={"l": 10, "r": 10, "t": 150, "b": 40},
    )
    return fig


def cancelling_pairs(frame: pd.DataFrame, top: int = 10, ratio: float = 0.3) -> pd.DataFrame:
    """The pairs whose signed mean hides cancelling effects: among the ``top`` pairs by
    ``mean_abs_contribution``, those with |mean c_ij| / mean |c_ij| < ``ratio`` (positive and negative
    contributions cancel in the mean, so the signed heatmap draws them near white).

    Reads ``label``, ``mean_contribution``, ``mean_abs_contribution`` (``explain.field_pair_frame``);
    returns those columns plus ``ratio``, largest mean |c_ij| first.
    """
    shown = frame.sort_values("mean_abs_contribution", ascending=False).head(top)
    shown = shown[["label", "mean_contribution", "mean_abs_contribution"]].copy()
    shown["ratio"] = shown["mean_contribution"].abs() / shown["mean_abs_contribution"].where(
        shown["mean_abs_contribution"] > 0
    )
    return shown[shown["ratio"] < ratio].reset_index(drop=True)


def waterfall(terms: pd.DataFrame, title: str = "How the prediction adds up") -> go.Figure:
    """Waterfall of ``explain.row_terms`` (columns ``term``, ``value``) ending in a total bar.

    The total bar is the sum of the terms, i.e. the model's prediction.
    """
    total = float(terms["value"].sum())
    fig = go.Figure(
        go.Waterfall(
            orientation="v",
            x=[*terms["term"], "prediction"],
            y=[*terms["value"], total],
            measure=["relative"] * len(terms) + ["total"],
            text=[f"{v:+.3f}" for v in terms["value"]] + [f"{total:.4f}"],
            textposition="outside",
            connector={"line": {"color": "#999"}},
        )
    )
    # the attention parts (row_terms(split=True)): framed in the attention colour, so they read as their own bars
    moved = [n for n, kind in enumerate(terms["kind"]) if kind in ("attention", "other attention")]
    for n in moved:
        top = float(terms["cumulative"].iloc[n])
        fig.add_shape(type="rect", x0=n - 0.45, x1=n + 0.45, y0=top - float(terms["value"].iloc[n]), y1=top,
                      line={"color": ATTENTION_COLOUR, "width": 3})  # fmt: skip
    if moved:
        fig.add_annotation(text=f"<span style='color:{ATTENTION_COLOUR}'>framed</span>: what attention moves, "
                           "(a_ij − 1/P)·s_ij; the pair bars are the uniform parts s_ij / P", xref="paper",
                           yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom", showarrow=False)  # fmt: skip
    fig.update_layout(
        title=title, showlegend=False, margin={"l": 10, "r": 10, "t": 50, "b": 10}, xaxis={"tickangle": -35}
    )
    return fig


def learning_curves(
    histories: dict[str, pd.DataFrame],
    metric: str,
    previous: dict[str, pd.DataFrame] | None = None,
    title: str | None = None,
) -> go.Figure:
    """One line per model of ``metric`` (a ``History.to_frame()`` column) against ``epoch``.

    Models are drawn in ``MODEL_COLOURS`` order (AFM, then FM) whatever order the dicts have, so the
    legend does not swap after a training. ``previous`` runs are drawn faded and dashed, for
    comparison (as TensorFlow Playground does). The y axis names ``metric`` in ``words``.
    """
    fig = go.Figure()
    for faded, runs in ((True, previous or {}), (False, histories)):
        for name, frame in sorted(runs.items(), key=lambda item: model_order(item[0])):
            if frame is None or metric not in frame or frame.empty:
                continue
            colour = MODEL_COLOURS.get(name.lower(), None)
            fig.add_trace(
                go.Scatter(
                    x=frame["epoch"],
                    y=frame[metric],
                    mode="lines+markers",
                    name=f"{name} (previous)" if faded else name,
                    opacity=0.35 if faded else 1.0,
                    line={"dash": "dash" if faded else "solid", "color": colour},
                )
            )
    fig.update_layout(
        title=title or words(metric),
        xaxis_title="epoch",
        yaxis_title=words(metric),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def model_order(name: str) -> tuple[int, str]:
    """Sort key: AFM first, then FM (``MODEL_COLOURS`` order), then any other name."""
    known = list(MODEL_COLOURS)
    return (known.index(name.lower()) if name.lower() in known else len(known), name)


def prediction_scatter(
    y: np.ndarray, predictions: dict[str, np.ndarray], title: str = "Predicted vs true"
) -> go.Figure:
    """Scatter of each model's predictions against the labels, with the diagonal."""
    fig = go.Figure()
    for name, pred in sorted(predictions.items(), key=lambda item: model_order(item[0])):
        fig.add_trace(
            go.Scattergl(
                x=y,
                y=pred,
                mode="markers",
                name=name,
                marker={"size": 4, "opacity": 0.4, "color": MODEL_COLOURS.get(name.lower())},
            )
        )
    lo, hi = float(np.min(y)), float(np.max(y))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line={"color": "#555", "dash": "dot"}))
    fig.update_layout(
        title=title, xaxis_title="label", yaxis_title="prediction", margin={"l": 10, "r": 10, "t": 50, "b": 10}
    )
    return fig


def density_edges(y: np.ndarray, predictions: dict[str, np.ndarray], bins: int = 30) -> np.ndarray:
    """``bins`` + 1 equal-width edges over the labels and every model's predictions together."""
    values = np.concatenate([np.asarray(y, dtype=float), *(np.asarray(p, dtype=float) for p in predictions.values())])
    lo, hi = float(values.min()), float(values.max())
    return np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)


def prediction_density(
    y: np.ndarray, predictions: dict[str, np.ndarray], bins: int = 30, title: str = "Predicted vs true"
) -> go.Figure:
    """One panel per model (AFM, then FM), side by side on the same axes: how many rows fall in each
    (label, prediction) cell of a ``bins`` x ``bins`` grid (``density_edges``; ``z[r][c]`` = rows with the
    prediction in bin r and the label in bin c, empty cells blank), with the diagonal y = x. Two
    overplotted clouds of thousands of points hide each other; counts do not."""
    from plotly.subplots import make_subplots

    edges = density_edges(y, predictions, bins)
    centres = (edges[:-1] + edges[1:]) / 2
    names = sorted(predictions, key=model_order)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.04, subplot_titles=names)
    for col, name in enumerate(names, start=1):
        counts, _, _ = np.histogram2d(np.asarray(y, dtype=float), np.asarray(predictions[name], dtype=float),
                                      bins=[edges, edges])  # fmt: skip
        z = counts.T.astype(float)  # rows: prediction bins, columns: label bins
        z[z == 0] = np.nan
        fig.add_trace(
            go.Heatmap(
                x=centres,
                y=centres,
                z=z,
                name=name,
                coloraxis="coloraxis",
                hoverongaps=False,
                hovertemplate=f"{name}<br>label ≈ %{{x:.3g}}<br>prediction ≈ %{{y:.3g}}<br>"
                "rows: %{z:.0f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(x=edges[[0, -1]], y=edges[[0, -1]], mode="lines", name="y = x", showlegend=col == 1,
                       line={"color": "#555", "dash": "dot"}, hoverinfo="skip"),
            row=1,
            col=col,
        )  # fmt: skip
        fig.update_xaxes(title_text="label", range=edges[[0, -1]], row=1, col=col)
    fig.update_yaxes(title_text="prediction", range=edges[[0, -1]], row=1, col=1)
    fig.update_layout(
        title=title,
        coloraxis={
            "colorscale": [[0, "#deebf7"], [0.5, "#6baed6"], [1, "#08306b"]],
            "colorbar": {"title": {"text": "rows"}},
        },
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    return fig


def attention_vs_uniform(frame: pd.DataFrame, n_pairs: int, title: str | None = None) -> go.Figure:
    """Bars of AFM's mean attention per field pair beside FM's uniform weight 1/P.

    Reads ``label`` and ``mean_attention`` of ``explain.field_pair_frame`` (of the AFM).
    """
    ordered = frame.sort_values("mean_attention", ascending=False)
    fig = go.Figure(go.Bar(x=ordered["label"], y=ordered["mean_attention"], name="AFM mean attention"))
    fig.add_hline(y=1.0 / max(n_pairs, 1), line_dash="dash", annotation_text=f"FM: uniform 1/P = 1/{n_pairs}")
    fig.update_layout(
        title=title or "Learned attention vs FM's uniform weight",
        yaxis_title="mean a_ij",
        xaxis={"tickangle": -45},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def sweep_plot(frame: pd.DataFrame, metric: str, x: str = "value", title: str | None = None) -> go.Figure:
    """``metric`` against the swept value, one line per ``model`` (``sweeps.summarise`` output:
    columns ``model``, ``parameter``, ``value``, ``<metric>``, and ``<metric>_std`` for error bars)."""
    fig = go.Figure()
    groups = sorted(frame.groupby("model", sort=False), key=lambda item: model_order(str(item[0])))
    for name, part in groups:
        part = part.sort_values(x)
        error = part[f"{metric}_std"] if f"{metric}_std" in part else None
        fig.add_trace(
            go.Scatter(
                x=part[x],
                y=part[metric],
                mode="lines+markers",
                name=str(name),
                error_y={"type": "data", "array": error} if error is not None else None,
                line={"color": MODEL_COLOURS.get(str(name).lower())},
            )
        )
    parameter = str(frame["parameter"].iloc[0]) if "parameter" in frame and len(frame) else x
    fig.update_layout(
        title=title or f"{words(metric)} against {words(parameter)}",
        xaxis_title=words(parameter),
        yaxis_title=words(metric),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def difference_split(frame: pd.DataFrame, top: int = 15, title: str | None = None) -> go.Figure:
    """Per field pair (``attention.difference_frame``: ``label``, ``weights``, ``attention``, ``difference``),
    AFM − FM mean contribution as two stacked bars: what the different weights move and what attention moves;
    a marker at their sum. The ``top`` pairs by |difference|."""
    shown = frame.head(top)
    fig = go.Figure()
    for column, colour, name in (
        ("weights", MODEL_COLOURS["fm"], "different weights (AFM's uniform part − FM)"),
        ("attention", ATTENTION_COLOUR, "attention part (a_ij − 1/P)·s_ij"),
    ):
        fig.add_trace(go.Bar(x=shown["label"], y=shown[column], name=name, marker_color=colour,
                             hovertemplate="%{x}<br>" + name + ": %{y:+.4f}<extra></extra>"))  # fmt: skip
    fig.add_trace(go.Scatter(x=shown["label"], y=shown["difference"], mode="markers", name="AFM − FM",
                             marker={"color": "#222", "symbol": "diamond", "size": 9}))  # fmt: skip
    fig.add_hline(y=0.0, line_color="#555")
    fig.update_layout(
        barmode="relative",
        title=title or "AFM − FM mean contribution per field pair: weights and attention",
        yaxis_title="mean c_ij: AFM − FM",
        xaxis={"tickangle": -45},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )
    return fig


def contribution_difference(frame: pd.DataFrame, title: str | None = None, planted: Iterable[str] = ()) -> go.Figure:
    """Sorted bars of ``difference`` (AFM mean |c_ij| − FM mean |c_ij|) per field pair ``label``.

    Bars are in AFM's colour where AFM leans on the pair more than FM does, in FM's where less.
    ``planted`` labels (the sample's planted pairs) get a hatched bar with a green outline.
    """
    ordered = frame.sort_values("difference", ascending=False)
    colours = [MODEL_COLOURS["afm"] if d >= 0 else MODEL_COLOURS["fm"] for d in ordered["difference"]]
    marked = set(planted)
    is_planted = [label in marked for label in ordered["label"]]
    fig = go.Figure(
        go.Bar(
            x=ordered["label"],
            y=ordered["difference"],
            marker={
                "color": colours,
                "line": {
                    "color": [PLANTED_COLOUR if p else "rgba(0,0,0,0)" for p in is_planted],
                    "width": [3 if p else 0 for p in is_planted],
                },
                "pattern": {
                    "shape": ["/" if p else "" for p in is_planted],
                    "fgcolor": PLANTED_COLOUR,
                    "fillmode": "overlay",
                },  # the hatching over the bar's own colour
            },  # fmt: skip
            customdata=["planted pair" if p else "" for p in is_planted],
            hovertemplate="%{x}<br>AFM − FM: %{y:+.4f}<br>%{customdata}<extra></extra>",
        )
    )
    fig.add_hline(y=0.0, line_color="#555")
    if any(is_planted):
        fig.add_annotation(text=f"<span style='color:{PLANTED_COLOUR}'>hatched, green outline</span>: pair planted "
                           "in the sample", xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom",
                           showarrow=False)  # fmt: skip
    fig.update_layout(
        title=title or "Mean |contribution| per field pair: AFM − FM",
        yaxis_title="AFM − FM mean |c_ij|",
        xaxis={  # planted pairs' names in bold green
            "tickangle": -45,
            "tickmode": "array",
            "tickvals": list(ordered["label"]),
            "ticktext": [
                f"<span style='color:{PLANTED_COLOUR}'><b>{label}</b></span>" if p else label
                for label, p in zip(ordered["label"], is_planted, strict=True)
            ],
        },
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def calibration_plot(
    y: np.ndarray, probabilities: dict[str, np.ndarray], bins: int = 10, title: str = "Calibration"
) -> go.Figure:
    """Reliability diagram: per model, rows grouped into ``bins`` equal-width bins of predicted
    probability; x = the bin's mean probability, y = its share of positive labels (labels > 0),
    marker area grows with the rows in the bin. Points on the diagonal are perfectly calibrated."""
    positive = np.asarray(y) > 0
    fig = go.Figure()
    for name, prob in probabilities.items():
        prob = np.asarray(prob, dtype=float)
        colour = MODEL_COLOURS.get(name.lower())
        # bin b holds [b/bins, (b+1)/bins); a probability of exactly 1 goes to the last bin
        which = np.clip((prob * bins).astype(int), 0, bins - 1)
        count = np.bincount(which, minlength=bins)
        filled = count > 0
        mean_prob = np.bincount(which, weights=prob, minlength=bins)[filled] / count[filled]
        rate = np.bincount(which, weights=positive.astype(float), minlength=bins)[filled] / count[filled]
        fig.add_trace(
            go.Scatter(
                x=mean_prob,
                y=rate,
                mode="lines+markers",
                name=name,
                customdata=count[filled],
                marker={"size": 6 + 14 * np.sqrt(count[filled] / count.max()), "color": colour},
                line={"color": colour},
                hovertemplate="mean p: %{x:.3f}<br>positive rate: %{y:.3f}<br>rows: %{customdata:,}<extra></extra>",
            )
        )
    diagonal = {"color": "#555", "dash": "dot"}
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line=diagonal))
    fig.update_layout(
        title=title,
        xaxis_title="predicted probability",
        yaxis_title="observed positive rate",
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1]},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def attention_box(quantiles: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Box plot of per-row attention from precomputed statistics (``explain.attention_quantiles``).

    Reads ``label``, ``q1``, ``median``, ``q3``, ``lowerfence``, ``upperfence``, ``mean``: the
    browser gets five numbers per pair instead of every row, so 30,000 rows draw instantly.
    """
    fig = go.Figure(
        go.Box(
            x=list(quantiles["label"]),
            q1=quantiles["q1"].to_numpy(),
            median=quantiles["median"].to_numpy(),
            q3=quantiles["q3"].to_numpy(),
            lowerfence=quantiles["lowerfence"].to_numpy(),
            upperfence=quantiles["upperfence"].to_numpy(),
            mean=quantiles["mean"].to_numpy(),
            boxpoints=False,
            marker={"color": MODEL_COLOURS["afm"]},
            name="a_ij",
        )
    )
    fig.update_layout(
        title=title or "Spread of attention per field pair (rows of the data)",
        showlegend=False,
        yaxis_title="a_ij",
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"tickangle": -35},
    )
    return fig


def rank_agreement(table: pd.DataFrame, n_pairs: int, title: str | None = None) -> go.Figure:
    """Planted pairs: planted order (by strength) against the learned rank, one marker per pair.

    Reads ``explain.planted_table``'s ``planted pair``, ``rank by |contribution|`` and
    ``rank by attention`` (rows strongest first). Markers on the dotted diagonal are recovered in
    the planted order; the shaded band is the learned top k (k = number planted).
    """
    planted = np.arange(1, len(table) + 1)
    fig = go.Figure()
    for column, colour, symbol in (
        ("rank by |contribution|", MODEL_COLOURS["afm"], "circle"),
        ("rank by attention", "#ff7f0e", "diamond"),
    ):
        fig.add_trace(
            go.Scatter(
                x=planted,
                y=table[column],
                mode="markers+lines",
                name=column,
                text=table["planted pair"],
                marker={"size": 11, "color": colour, "symbol": symbol},
                line={"color": colour, "width": 1},
                hovertemplate="%{text}<br>planted #%{x}<br>learned rank %{y}<extra></extra>",
            )
        )
    k = len(table)
    fig.add_hrect(y0=0.5, y1=k + 0.5, fillcolor="#2ca02c", opacity=0.08, line_width=0)
    diagonal = {"color": "#555", "dash": "dot"}
    fig.add_trace(go.Scatter(x=[1, k], y=[1, k], mode="lines", name="same order", line=diagonal))
    ticks = {"tickvals": list(planted), "ticktext": list(table["planted pair"])}
    fig.update_layout(
        title=title or "Planted pairs: planted order vs learned rank",
        xaxis={"title": "planted pair (1 = strongest)", **ticks},
        yaxis={"title": f"learned rank (of {n_pairs} field pairs)", "autorange": "reversed", "rangemode": "tozero"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


RANKING_STYLES = {  # deletion_plot: ranking -> (colour, dash, legend label)
    "contribution": (MODEL_COLOURS["afm"], "solid", "by |contribution| |c_ij|"),
    "attention": ("#ff7f0e", "dash", "by attention a_ij"),
    "random": ("#7f7f7f", "dot", "random (= uniform attention: all tied)"),
    "permuted": ("#9467bd", "dashdot", "by attention shuffled within rows (median, 90% band)"),
}


def deletion_plot(frame: pd.DataFrame, metric: str | None = None, title: str | None = None) -> go.Figure:
    """The deletion curves of ``faithfulness.deletion_curve``: one line per ``ranking`` of
    ``mean_abs_change`` (left) and ``mean_metric`` (right) against ``removed``, the pairs taken out of
    each row. ``metric`` names the metric (default ``frame.attrs["metric"]``)."""
    from plotly.subplots import make_subplots

    metric = metric or str(frame.attrs.get("metric", "metric"))
    label = {"rmse": "RMSE", "auc": "AUC", "logloss": "log loss"}.get(metric, metric)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("mean |change of the prediction|", f"{label} with the pairs removed"),
        horizontal_spacing=0.1,
    )
    for ranking, part in frame.groupby("ranking", sort=False):
        colour, dash, name = RANKING_STYLES.get(str(ranking), (None, "solid", str(ranking)))
        part = part.sort_values("removed")
        if "change_lo" in part and part["change_lo"].notna().any():  # the permutation null's 90% band
            band = part[part["change_lo"].notna()]
            fig.add_trace(
                go.Scatter(
                    x=[*band["removed"], *band["removed"][::-1]],
                    y=[*band["change_hi"], *band["change_lo"][::-1]],
                    fill="toself",
                    fillcolor="rgba(120,120,120,0.2)",
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{name}: 90% of shuffles",
                    legendgroup=str(ranking),
                    showlegend=False,
                ),
                row=1,
                col=1,
            )
        for col, column in ((1, "mean_abs_change"), (2, "mean_metric")):
            fig.add_trace(
                go.Scatter(
                    x=part["removed"],
                    y=part[column],
                    mode="lines+markers",
                    name=name,
                    legendgroup=str(ranking),
                    showlegend=col == 1,
                    line={"color": colour, "dash": dash},
                    hovertemplate=f"{name}<br>%{{x}} pairs removed per row<br>%{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="pairs removed from each row (its top m by the ranking)", dtick=1)
    fig.update_yaxes(title_text="mean |Δ prediction|", row=1, col=1)
    fig.update_yaxes(title_text=label, row=1, col=2)
    fig.update_layout(
        title=title or "Deletion: remove each row's top pairs, see how far the prediction moves",
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def stability_plot(frame: pd.DataFrame, planted: list[str] | None = None, top: int | None = None,
                   title: str | None = None) -> go.Figure:  # fmt: skip
    """``faithfulness.seed_stability``'s pairs with their intervals across seeds: mean |contribution|
    (left) and mean attention (right), each a dot at the mean over seeds with a bar over its 90%
    interval (``*_lo`` to ``*_hi``). Pairs are rows, largest mean |contribution| at the top; the
    y labels carry the rank interval. ``planted`` labels are drawn as green diamonds. ``top`` keeps
    the first pairs."""
    from plotly.subplots import make_subplots

    shown = frame.sort_values("mean_abs_contribution", ascending=False).head(top or len(frame))
    planted_set = set(planted or [])
    names = [
        f"{label}  (rank {lo}–{hi})" if lo != hi else f"{label}  (rank {lo})"
        for label, lo, hi in zip(shown["label"], shown["rank_lo"], shown["rank_hi"], strict=True)
    ]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("mean |c_ij| across seeds (90% interval)",
                                        "mean a_ij across seeds (90% interval)"))  # fmt: skip
    for col, (mean, lo, hi) in enumerate(
        (("mean_abs_contribution", "abs_contribution_lo", "abs_contribution_hi"),
         ("mean_attention", "attention_lo", "attention_hi")), start=1):  # fmt: skip
        for is_planted in (False, True):
            keep = np.array([(label in planted_set) == is_planted for label in shown["label"]])
            if not keep.any():
                continue
            part = shown[keep]
            fig.add_trace(
                go.Scatter(
                    x=part[mean],
                    y=[n for n, k in zip(names, keep, strict=True) if k],
                    mode="markers",
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": (part[hi] - part[mean]).to_numpy(),
                        "arrayminus": (part[mean] - part[lo]).to_numpy(),
                    },
                    marker={
                        "color": "#2ca02c" if is_planted else MODEL_COLOURS["afm"],
                        "symbol": "diamond" if is_planted else "circle",
                        "size": 9,
                    },
                    name="planted pair" if is_planted else "other pair",
                    legendgroup="planted" if is_planted else "other",
                    showlegend=col == 1 and bool(planted_set),
                    hovertemplate="%{y}<br>mean %{x:.4f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=names)
    fig.update_layout(
        title=title or "Would another seed agree? Each pair's spread across seeds",
        height=max(360, 22 * len(shown) + 140),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        legend={"orientation": "h", "y": -0.05},
    )
    return fig
