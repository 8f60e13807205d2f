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
    custom = support.to_numpy(dtype=float) if support is not None else None
    hover = "%{y} × %{x}<br>" + value_name + ": %{z:.4f}"
    hover += "<br>support: %{customdata:,.0f} rows<extra></extra>" if support is not None else "<extra></extra>"
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
        hovertemplate=hover,
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
    for name, part in frame.groupby("model", sort=False):
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
        title=title or f"{metric} against {parameter}",
        xaxis_title=parameter,
        yaxis_title=metric,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def contribution_difference(frame: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Sorted bars of ``difference`` (AFM mean |c_ij| − FM mean |c_ij|) per field pair ``label``.

    Bars are in AFM's colour where AFM leans on the pair more than FM does, in FM's where less.
    """
    ordered = frame.sort_values("difference", ascending=False)
    colours = [MODEL_COLOURS["afm"] if d >= 0 else MODEL_COLOURS["fm"] for d in ordered["difference"]]
    fig = go.Figure(
        go.Bar(
            x=ordered["label"],
            y=ordered["difference"],
            marker_color=colours,
            hovertemplate="%{x}<br>AFM − FM: %{y:+.4f}<extra></extra>",
        )
    )
    fig.add_hline(y=0.0, line_color="#555")
    fig.update_layout(
        title=title or "Mean |contribution| per field pair: AFM − FM",
        yaxis_title="AFM − FM mean |c_ij|",
        xaxis={"tickangle": -45},
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
    "random": ("#7f7f7f", "dot", "random"),
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
