"""DataFrame -> plotly Figure. Every function returns the figure (never shows it).

Inputs are the frames of ``afm.explain`` (and ``History.to_frame()``); the columns each function
reads are named in its docstring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

SEQUENTIAL = "Viridis"
DIVERGING = "RdBu"
MODEL_COLOURS = {"afm": "#d62728", "fm": "#1f77b4"}


def pair_heatmap(
    matrix: pd.DataFrame,
    title: str,
    *,
    diverging: bool = False,
    support: pd.DataFrame | None = None,
    value_name: str = "value",
) -> go.Figure:
    """Heatmap of a field x field matrix (``explain.field_pair_matrix``); NaN cells stay blank.

    ``diverging`` centres a red-blue scale at 0 (for signed contributions). ``support`` (same
    shape) is shown on hover.
    """
    z = matrix.to_numpy(dtype=float)
    custom = support.to_numpy(dtype=float) if support is not None else np.full_like(z, np.nan)
    heat = go.Heatmap(
        z=z,
        x=list(matrix.columns),
        y=list(matrix.index),
        customdata=custom,
        colorscale=DIVERGING if diverging else SEQUENTIAL,
        zmid=0.0 if diverging else None,
        reversescale=diverging,  # RdBu: positive in red would read as "bad"; keep red = positive
        hoverongaps=False,
        colorbar={"title": value_name},
        hovertemplate="%{y} × %{x}<br>" + value_name + ": %{z:.4f}<br>support: %{customdata:,.0f} rows<extra></extra>",
    )
    fig = go.Figure(heat)
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


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

    ``previous`` runs are drawn faded and dashed, for comparison (as TensorFlow Playground does).
    """
    fig = go.Figure()
    for faded, runs in ((True, previous or {}), (False, histories)):
        for name, frame in runs.items():
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
        title=title or metric, xaxis_title="epoch", yaxis_title=metric, margin={"l": 10, "r": 10, "t": 50, "b": 10}
    )
    return fig


def prediction_scatter(
    y: np.ndarray, predictions: dict[str, np.ndarray], title: str = "Predicted vs true"
) -> go.Figure:
    """Scatter of each model's predictions against the labels, with the diagonal."""
    fig = go.Figure()
    for name, pred in predictions.items():
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


def attention_spread(attention: np.ndarray, labels: list[str], top: int = 15, title: str | None = None) -> go.Figure:
    """Box plot of the per-row attention a_ij of the ``top`` pairs with the highest mean.

    ``attention`` is [rows, P]; ``labels`` names the P pairs.
    """
    order = np.argsort(-attention.mean(0))[:top]
    fig = go.Figure()
    for p in order:
        fig.add_trace(go.Box(y=attention[:, p], name=labels[p], boxpoints=False))
    fig.update_layout(
        title=title or "Spread of attention per field pair (rows of the data)",
        showlegend=False,
        yaxis_title="a_ij",
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"tickangle": -35},
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


def sweep_plot(frame: pd.DataFrame, parameter: str, metric: str, title: str | None = None) -> go.Figure:
    """Validation ``metric`` against ``parameter``, one line per ``model``, error bars from
    ``<metric>_std`` when present (columns: ``model``, ``parameter``, ``metric``)."""
    fig = go.Figure()
    for name, part in frame.groupby("model", sort=False):
        part = part.sort_values(parameter)
        error = part[f"{metric}_std"] if f"{metric}_std" in part else None
        fig.add_trace(
            go.Scatter(
                x=part[parameter],
                y=part[metric],
                mode="lines+markers",
                name=str(name),
                error_y={"type": "data", "array": error} if error is not None else None,
                line={"color": MODEL_COLOURS.get(str(name).lower())},
            )
        )
    fig.update_layout(
        title=title or f"{metric} against {parameter}",
        xaxis_title=parameter,
        yaxis_title=metric,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig
