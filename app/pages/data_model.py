"""Data & model: choose data, then train AFM and FM side by side (live), or load them."""

from __future__ import annotations

import attention_sections
import caches
import data_sources
import knobs
import live_panel
import pandas as pd
import session
import streamlit as st
import training
import widgets

import afm

ws = widgets.workspace()
st.title("Data & model")
st.caption(
    "Choose the data, then train an FM and an AFM that starts exactly at it (the paper's recipe), or load "
    "trained ones. In live mode, moving t or a dropout slider retrains at once."
)
me = session.get()
knobs.init(ws.config, training.link_values())
if not session.has_widget("knob_live"):
    session.set_widget("knob_live", bool(ws.bundled))
live = st.toggle(
    "Live mode: changing t or a dropout retrains at once",
    key="knob_live",
    help="t and the attention dropout retrain the AFM only (from the FM you have); the dropout both. The pictures "
    "beside the knobs are redrawn while the model learns.",
)
panel = live_panel.draw(ws, on_change=lambda: setattr(me, "live_pending", True)) if live else None

# ---------------------------------------------------------------------------- data
st.header("1. Data")
ws = data_sources.choose(ws)
ws = widgets.confirm_replace() or me.workspace()
st.caption(
    f"Now using: **{widgets.literal(ws.data_label)}** ({len(ws.parts['all']):,} rows). Other data replaces it only "
    "when you press its button."
)
widgets.data_summary(ws)

# ---------------------------------------------------------------------------- knobs
st.header("2. Models")
loaded_note = st.empty()  # filled at the end of the page, after any training or loading
if live:
    st.caption("The live knobs (t and the dropouts) are at the top of the page, beside the pictures they change.")
with st.form("train_form"):
    columns = st.columns(2)
    for n, k in enumerate(k for k in knobs.KNOBS if not (live and k.live)):
        with columns[n % 2]:
            knobs.widget(k)
    submitted = st.form_submit_button("Train AFM and FM", type="primary")
config = knobs.config(ws.task)
live_changed, me.live_pending = me.live_pending and live and bool(ws.models), False

# ---------------------------------------------------------------------------- training
spec = afm.TASKS[ws.task]
stop_clicked = st.button(
    "Stop training", key="train_stop", help="Ends the running training; each model keeps its best epoch so far"
)
if stop_clicked:
    outcome = training.stop()
    if outcome is None:
        st.info("Nothing is training now.")
    elif outcome != "stopped":
        st.info(f"You {outcome}; your models are unchanged.")
if submitted or live_changed:
    training.start(ws, config, live=live_changed and not submitted, publish=live)
job = training.current()
redraw = (lambda job: live_panel.redraw(panel, ws, job)) if panel is not None else None
curves_of = lambda curves: afm.plots.learning_curves(curves, f"valid_{spec.headline}", ws.previous)  # noqa: E731
message = training.watch(ws, curves_of, live_of=redraw)
if panel is not None and job is not None and job.done:
    live_panel.settle(panel, ws, job.seconds)
message = message or me.messages.pop(training.SLOT, None)
if message and message.startswith("error"):
    st.error(widgets.literal(message, 400))
elif message and message.startswith("stopped"):
    st.warning(f"Training stopped: {widgets.literal(message.removeprefix('stopped early '), 400)}")

# ---------------------------------------------------------------------------- results
if ws.models:
    headline = spec.label(spec.headline)
    widgets.metric_row(
        *(
            (f"{session.LABELS[k]} test {headline}", f"{ws.metrics[k][spec.headline]:.4f}")
            for k in session.KINDS
            if k in ws.models
        )
    )
    rows = [
        {
            "model": session.LABELS[kind],
            **{f"test {spec.label(m)}": v for m, v in ws.metrics.get(kind, {}).items() if m != "n"},
            "epochs": len(ws.histories.get(kind, [])),
        }
        for kind in session.KINDS
        if kind in ws.models
    ]
    widgets.show_table(pd.DataFrame(rows), "metrics", key="dm-metrics")
    if ws.histories:
        widgets.show_figure(
            afm.plots.learning_curves(
                ws.histories,
                f"valid_{spec.headline}",
                ws.previous,
                title=f"validation {spec.label(spec.headline)} per epoch",
            ),
            "learning-curves",
            key="dm-curves",
        )
    if live and "afm" in ws.models:  # what a live change did to attention, beside what it was before
        part = "valid" if "valid" in ws.parts else "all"
        attention_sections.heatmap_section(
            ws,
            part,
            ws.parts[part],
            caches.field_frame(ws, "afm", part),
            "mean attention a_ij",
            "mean_attention",
            "a_ij",
        )
    widgets.save_and_download(ws, f"{ws.data_label}-k{ws.config.embed_dim}-t{ws.config.attention_factor}")
widgets.load_models_expander(ws)
loaded_note.caption(f"Now loaded: **{widgets.literal(ws.source) if ws.models else 'no models yet'}**.")
widgets.show_status()
