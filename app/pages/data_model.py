"""Data & model: choose data, then train AFM and FM side by side (live), or load them."""

from __future__ import annotations

import io
import time
from pathlib import Path

import knobs
import pandas as pd
import state
import streamlit as st

import afm

ws = state.workspace()
st.title("Data & model")
st.caption(
    "Choose the data, then train an FM and an AFM that starts exactly at it (the paper's recipe), or load "
    "trained ones. In live mode, moving t or a dropout slider retrains at once."
)

# ---------------------------------------------------------------------------- data
st.header("1. Data")
sources = ["bundled sample", "upload a CSV/Parquet table", "libFM file or folder on disk"][
    : 3 if state.SERVER_PATHS else 2
]
source = st.radio("Data source", sources, horizontal=True, key="data_source")
if source == sources[0]:
    tasks = list(afm.TASKS)
    task = st.radio("Label", tasks, index=tasks.index(ws.task) if ws.is_sample else 0, horizontal=True,
                    key="data_task", help="regression: `engagement` (squared loss, RMSE); binary: `clicked` (log "
                    "loss, AUC)")  # fmt: skip
    if not ws.is_sample or task != ws.task:
        st.session_state.ws = ws = state.sample_workspace(task)
        state.set_query(task=task)
elif source == sources[1]:
    upload = st.file_uploader("Table (CSV or Parquet)", type=["csv", "parquet"], key="data_upload")
    raw = state.upload_bytes(upload) if upload is not None else None
    frame = None
    if raw is not None:
        try:
            frame = afm.read_table(io.BytesIO(raw), name=upload.name)
        except ValueError as err:
            st.error(str(err))
    if frame is not None:
        columns = list(frame.columns)
        with st.form("data_table_form"):
            label = st.selectbox("Label column", columns, index=len(columns) - 1)
            guess_categorical, guess_numeric = afm.guess_columns(frame, label)
            categorical = st.multiselect("Categorical columns", columns, default=guess_categorical)
            numeric = st.multiselect("Numeric columns", columns, default=guess_numeric)
            task = st.radio("Task", ["auto", *afm.TASKS], horizontal=True, help="auto: binary for two labels "
                            "among -1/0/1")  # fmt: skip
            use = st.form_submit_button("Use this data")
        if use:
            try:
                data = afm.load_table(frame, label, categorical, numeric, name=upload.name)
                parts = afm.datasets.split_parts(data, seed=0)
                task = afm.metrics.resolve_task(task, parts["train"])
                st.session_state.ws = ws = state.Workspace(f"upload:{upload.name}", upload.name, task, parts)
                st.success(f"Loaded {upload.name}: {len(data):,} rows, {data.n_fields} fields ({task}).")
            except ValueError as err:
                st.error(f"{upload.name} cannot be used: {err}")
else:
    default_path = afm.datasets.default_frappe_root()  # $AFM_FRAPPE, else data/frappe (or data/) if present
    try:
        default_path = afm.datasets.allowed_path(str(default_path))  # shown only when under the data roots
    except ValueError:
        default_path = Path("")
    with st.form("data_libfm_form"):
        path = st.text_input("Path of a .libfm file or a folder of *.train/validation/test.libfm parts",
                             value=str(default_path.resolve()) if default_path.is_dir() else "")  # fmt: skip
        task = st.radio("Task", ["auto", *afm.TASKS], horizontal=True, help="auto: binary for ±1 labels")
        use = st.form_submit_button("Load")
    if use:
        try:
            parts = state.libfm_parts(str(afm.datasets.allowed_path(path)), 0)
            task = afm.metrics.resolve_task(task, parts["train"])
            st.session_state.ws = ws = state.Workspace(f"libfm:{path}", Path(path).name, task, parts)
            st.success(f"Loaded {path}: {', '.join(f'{k} {len(v):,}' for k, v in parts.items())} rows ({task}).")
        except (ValueError, OSError) as err:
            st.error(f"Cannot load that path: {state.public_error(err)}")
state.data_summary(ws)

# ---------------------------------------------------------------------------- knobs
st.header("2. Models")
loaded_note = st.empty()  # filled at the end of the page, after any training or loading
first_visit = "knobs_seen" not in st.session_state
st.session_state.knobs_seen = True
for notice in knobs.init(ws.config, from_url=first_visit):
    st.warning(notice)
if "knob_live" not in st.session_state:
    st.session_state.knob_live = ws.is_sample
live = st.toggle("Live mode: changing t or a dropout retrains at once", key="knob_live")
if live:
    for k in knobs.LIVE:
        knobs.widget(k)
with st.form("train_form"):
    columns = st.columns(2)
    for n, k in enumerate(k for k in knobs.KNOBS if not (live and k.live)):
        with columns[n % 2]:
            knobs.widget(k)
    submitted = st.form_submit_button("Train AFM and FM", type="primary")
config = knobs.config(ws.task)
knobs.to_url(config)
state.set_query(task=ws.task)
live_changed = live and bool(ws.models) and any(getattr(config, k.name) != getattr(ws.config, k.name)
                                                for k in knobs.LIVE)  # fmt: skip

# ---------------------------------------------------------------------------- training
spec = afm.TASKS[ws.task]
stop_clicked = st.button("Stop training", key="train_stop", help="Ends the running training with its best weights")


def train_both(config: afm.TrainConfig) -> None:
    """FM, then the AFM (from that FM with pre-training), drawing progress and curves live. ``fit`` keeps
    each model's best epoch however it ends, so a Stop (a rerun) keeps what was trained so far."""
    ws.previous = dict(ws.histories)
    bar, chart = st.progress(0.0, text="starting"), st.empty()
    models, curves = {}, {}
    started = time.perf_counter()

    def callback(p: afm.Progress) -> None:
        kind = p.model.config.kind
        done = p.fraction if same_fm else (0.5 if kind == "afm" else 0.0) + p.fraction / 2
        bar.progress(min(done, 1.0), text=f"{state.LABELS[kind]} epoch {p.epoch}/{p.epochs} · loss {p.train_loss:.4f}")
        models[kind] = p.model
        if p.epoch_end and p.history is not None:
            curves[kind] = p.history.to_frame()
            chart.plotly_chart(afm.plots.learning_curves(curves, f"valid_{spec.headline}", ws.previous))

    # an FM trained with the same settings is kept when only AFM knobs changed (t, attention dropout, ...)
    same_fm = (
        "fm" in ws.models
        and "fm" in ws.histories
        and all(getattr(config, k.name) == getattr(ws.config, k.name) for k in knobs.KNOBS if not k.afm_only)
    )
    fm = (
        (ws.models["fm"], afm.History(ws.task, spec.monitor, ws.histories["fm"].to_dict("records")))
        if same_fm
        else None
    )
    try:
        pair = afm.train_pair(config, ws.parts["train"], ws.parts.get("valid"), callback=callback, fm=fm)
    except BaseException:  # Stop, a live change or leaving the page: keep what was trained (best epochs)
        if models:
            ws.set_models({**ws.models, **models}, {**ws.histories, **curves}, "stopped early (best epochs kept)",
                          config)  # fmt: skip
        raise
    seconds = time.perf_counter() - started
    bar.progress(1.0, text=f"done in {seconds:.1f} s")
    chart.empty()  # the results section below draws the finished curves
    histories = {kind: history.to_frame() for kind, (_, history) in pair.items()}
    ws.set_models({kind: model for kind, (model, _) in pair.items()}, histories, f"trained here ({seconds:.1f} s)",
                  config)  # fmt: skip


if submitted or live_changed:
    train_both(config)
elif stop_clicked:
    st.info("Nothing is training now.")

# ---------------------------------------------------------------------------- results
if ws.models:
    rows = [
        {"model": state.LABELS[kind], **{f"test {spec.label(m)}": v for m, v in ws.metrics.get(kind, {}).items()
                                         if m != "n"}, "epochs": len(ws.histories.get(kind, []))}
        for kind in state.KINDS if kind in ws.models
    ]  # fmt: skip
    state.show_table(pd.DataFrame(rows), "metrics", key="dm-metrics")
    if ws.histories:
        state.show_figure(
            afm.plots.learning_curves(ws.histories, f"valid_{spec.headline}", ws.previous,
                                      title=f"validation {spec.label(spec.headline)} per epoch"),
            "learning-curves",
            key="dm-curves",
        )  # fmt: skip
    state.save_and_download(ws, f"{ws.data_label}-k{ws.config.embed_dim}-t{ws.config.attention_factor}")
state.load_models_expander(ws)
loaded_note.caption(f"Now loaded: **{ws.source}**.")
state.show_status()
