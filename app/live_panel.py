"""Data & model's live panel: the live knobs (t, the dropouts) beside the pictures they change, redrawn from
the training in progress.

In live mode a knob's change starts a training warm-started from the session's models (``training.start``,
``live=True``); its work function publishes a copy of the AFM being trained about every ``training.PUBLISH_S``
seconds and at every epoch end (``jobs.Job.publish``), and the page's wait on the job (``progress.follow``)
hands each new copy to ``redraw`` (at most every ``progress.LIVE_S`` seconds), which draws the panel from it:
the relative attention P·a_ij per field pair (1 = uniform), what attention moves per field pair
(mean |(a_ij − 1/P) s_ij|), the validation metric of the last finished epoch of AFM and FM. When the training
ends the page draws the panel once more from the collected models ("settled").

The pictures are computed on the first ``LIVE_ROWS`` rows of the validation part: a few milliseconds each, so
a redraw every quarter second costs the server little; the Attention page has the whole-data pictures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jobs
import knobs
import numpy as np
import session
import streamlit as st

import afm
from afm import explain, plots

LIVE_ROWS = 3000  # validation rows explained per redraw


@dataclass
class Panel:
    """The panel's placeholders, filled at the top of the page and redrawn in place while a training runs."""

    metric: Any
    status: Any
    heat: Any
    moves: Any
    redraws: int = 0
    started: float = field(default_factory=time.monotonic)


def draw(ws: session.Workspace, on_change: Any) -> Panel:
    """The live knobs on the left, the pictures beside them (from the session's models), in one row that fits
    a 1024 × 768 screen in presentation mode."""
    status = st.empty()  # one line above the row: what the pictures show now (a training's epoch, settled)
    left, middle, right = st.columns([0.8, 1.6, 1.6], gap="small")
    with left:
        for k in knobs.LIVE:
            knobs.widget(k, on_change=on_change)
        metric = st.empty()
    panel = Panel(metric, status, middle.empty(), right.empty())
    if "afm" in ws.models:
        show(panel, ws, ws.models["afm"], _metrics(ws.histories), "Live: showing the models you have")
    else:
        status.caption("Live: train or load models first; then every change of these knobs retrains at once.")
    return panel


def _rows(ws: session.Workspace) -> afm.Dataset:
    data = ws.parts["valid"] if "valid" in ws.parts else ws.parts["all"]
    return data if len(data) <= LIVE_ROWS else data.subset(np.arange(LIVE_ROWS))


def _metrics(curves: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """kind -> (epochs, validation headline metric of the last finished epoch), from history frames."""
    out = {}
    for kind, frame in curves.items():
        column = next((c for c in frame.columns if c.startswith("valid_")), None) if len(frame) else None
        if column is not None:
            out[kind] = (int(frame["epoch"].iloc[-1]), float(frame[column].iloc[-1]))
    return out


def _figure(matrix: Any, title: str, kind: str, n_pairs: int, name: str, height: int) -> Any:
    """A compact field-pair heatmap for the panel: no numbers in the cells (a third of a 1024-pixel screen),
    a short colour-bar title, the colour range of the picture itself."""
    fig = plots.pair_heatmap(
        matrix,
        title,
        kind=kind,
        zrange=plots.anchored_range(matrix.to_numpy(dtype=float), kind, n_pairs),
        n_pairs=n_pairs,
        value_name=name,
        numbers=False,
    )
    fig.update_traces(colorbar={"title": {"text": name}, "thickness": 12, "len": 0.9})
    fig.update_layout(annotations=[], height=height, margin={"l": 0, "r": 0, "t": 95, "b": 0}, title_font={"size": 14})
    return fig


def show(panel: Panel, ws: session.Workspace, model: Any, metrics: dict[str, tuple[int, float]], text: str) -> None:
    """Draw the panel from ``model`` (an AFM) with ``metrics`` beside it and ``text`` as its status line."""
    data = _rows(ws)
    frame = afm.field_pair_frame(model, data)
    n_pairs = len(frame)
    height = 360 if session.get().present else 380
    relative = explain.field_pair_matrix(frame, "relative_attention")
    moves = explain.field_pair_matrix(frame, "mean_abs_attention_part")
    fig = _figure(relative, "relative attention P·a_ij (1 = uniform)", "relative", n_pairs, "P·a_ij", height)
    fig2 = _figure(moves, "what attention moves: |(a_ij − 1/P) s_ij|", "magnitude", n_pairs, "mean", height)
    panel.heat.plotly_chart(fig, key=f"live-heat-{panel.redraws}", config={"displayModeBar": False})
    panel.moves.plotly_chart(fig2, key=f"live-moves-{panel.redraws}", config={"displayModeBar": False})
    panel.redraws += 1
    spec = afm.TASKS[ws.task]
    lines = [f"{kind.upper()} **{value:.4f}** (ep. {epoch})" for kind, (epoch, value) in sorted(metrics.items())]
    panel.metric.markdown(f"validation {spec.label(spec.headline)}  \n" + "  \n".join(lines) if lines else "")
    panel.status.caption(text)


def redraw(panel: Panel, ws: session.Workspace, job: jobs.Job) -> None:
    """``progress.follow``'s live hook: draw the panel from the AFM the job published last (if any)."""
    model = job.partial.get("afm")
    if model is None:
        panel.status.caption(f"Live: {job.text}")
        return
    epoch, epochs = job.partial_epoch
    text = f"Live: redraw {panel.redraws} · AFM epoch {epoch}/{epochs} · {time.monotonic() - panel.started:.1f} s"
    show(panel, ws, model, _metrics(job.curves), text)


def settle(panel: Panel, ws: session.Workspace, seconds: float | None) -> None:
    """After the training: the panel from the collected models."""
    if "afm" in ws.models:
        after = f" after {seconds:.1f} s" if seconds is not None else ""
        text = f"Live: settled{after} ({panel.redraws - 1} redraws while it trained)"
        show(panel, ws, ws.models["afm"], _metrics(ws.histories), text)
