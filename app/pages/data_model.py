"""Data & model: choose data, then train AFM and FM side by side (live), or load them."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import attention_sections
import knobs
import pandas as pd
import state
import streamlit as st
import training

import afm

# the bundled samples: the contrast a teacher shows (their data cards: sample_data/README.md and SALIENT.md)
SAMPLE_CHOICES = {"sample": "pairs sample (FM suffices)", "salient": "salient sample (attention needed)"}
SAMPLE_NOTES = {
    "sample": "App engagement with a few planted field pairs, each a value × value table: exactly what FM represents, "
    "so AFM's attention has nothing to add and stays near uniform.",
    "salient": "Streaming sessions: usually the viewer's own tastes decide, but five decisive moments (live sport at "
    "prime time, animation with the kids, ...) override them when present. That row-dependent weighting is what "
    "FM's fixed sum of pairs cannot represent and AFM's attention can (the regression label shows it best).",
}

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
kind = {"upload": 1, "libfm": 2}.get(ws.data_key.split(":")[0], 0)
state.show_data_in("data_source", sources[min(kind, len(sources) - 1)], ws)  # the control shows the session's data
source = st.radio("Data source", sources, horizontal=True, key="data_source")
if source == sources[0]:
    tasks, names = list(afm.TASKS), list(SAMPLE_CHOICES)
    state.show_data_in("data_task", ws.task if ws.bundled else tasks[0], ws)
    state.show_data_in("data_sample", ws.bundled or names[0], ws)
    name = st.radio("Sample", names, format_func=SAMPLE_CHOICES.get, horizontal=True, key="data_sample",
                    help="Switch between the two to see the contrast: on the pairs sample AFM's attention stays "
                    "uniform because FM already has what it needs; on the salient sample it cannot "
                    "stay uniform.")  # fmt: skip
    task = st.radio("Label", tasks, horizontal=True, key="data_task", help="regression: squared loss, RMSE; "
                    "binary: log loss, AUC")  # fmt: skip
    if (ws.bundled and (task, name) != (ws.task, ws.bundled)) or (
        not ws.bundled and st.button("Use the bundled sample")
    ):
        if state.replace_workspace(state.sample_workspace(task, name), f"the {SAMPLE_CHOICES[name]} ({task})"):
            ws = st.session_state.ws
    st.caption(SAMPLE_NOTES[name])
elif source == sources[1]:
    upload = st.file_uploader("Table (CSV or Parquet)", type=["csv", "parquet"], key="data_upload")
    in_use = upload is not None and st.session_state.get("upload_in_use") == (upload.file_id, ws.data_id)
    raw = state.upload_bytes(upload) if upload is not None and not in_use else None  # not parsed again once in use
    frame = None
    if in_use:
        st.caption(f"{upload.name} is the data in use (its columns as chosen); upload a file to change it.")
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
                digest = hashlib.sha256(raw + repr((label, categorical, numeric, task)).encode()).hexdigest()[:12]
                new = state.Workspace(f"upload:{digest}", upload.name, task, parts)
                if state.replace_workspace(new, upload.name):
                    ws = new
                    st.session_state.upload_in_use = (upload.file_id, new.data_id)
                    st.success(f"Loaded {upload.name}: {len(data):,} rows, {data.n_fields} fields ({task}).")
            except ValueError as err:
                st.error(f"{upload.name} cannot be used: {err}")
else:
    default_path = afm.datasets.default_frappe_root()  # $AFM_FRAPPE, else data/frappe (or data/) if present
    try:
        default_path = afm.datasets.allowed_path(str(default_path))  # shown only when under the data roots
    except ValueError:
        default_path = None  # (not Path(""): that is the working directory, a folder, and would be shown)
    with st.form("data_libfm_form"):
        path = st.text_input("Path of a .libfm file or a folder of *.train/validation/test.libfm parts",
                             value=str(default_path) if default_path and default_path.is_dir() else "")  # fmt: skip
        task = st.radio("Task", ["auto", *afm.TASKS], horizontal=True, help="auto: binary for ±1 labels")
        use = st.form_submit_button("Load")
    if use:
        try:
            folder = str(afm.datasets.allowed_path(path))
            parts = state.libfm_parts(folder, 0)
            task = afm.metrics.resolve_task(task, parts["train"])
            # the name for links, and a digest of the whole path: two folders of one name are different data
            # (shared trainings and cached explanations are keyed by it)
            name, where = Path(folder).name, hashlib.sha256(folder.encode()).hexdigest()[:12]
            new = state.Workspace(f"libfm:{name}:{where}", name, task, parts)
            if state.replace_workspace(new, name):
                ws = new
                st.success(f"Loaded {path}: {', '.join(f'{k} {len(v):,}' for k, v in parts.items())} rows ({task}).")
        except (ValueError, OSError) as err:
            st.error(f"Cannot load that path: {state.public_error(err)}")
ws = state.confirm_replace() or st.session_state.ws
st.caption(f"Now using: **{ws.data_label}** ({len(ws.parts['all']):,} rows). Other data replaces it only when you "
           "press its button.")  # fmt: skip
state.data_summary(ws)

# ---------------------------------------------------------------------------- knobs
st.header("2. Models")
loaded_note = st.empty()  # filled at the end of the page, after any training or loading
knobs.init(ws.config, training.link_values())
if "knob_live" not in st.session_state:
    st.session_state.knob_live = bool(ws.bundled)
live = st.toggle("Live mode: changing t or a dropout retrains at once", key="knob_live",
                 help="t and the attention dropout retrain the AFM only (from the FM you have); "
                 "the dropout both")  # fmt: skip
if live:
    for k in knobs.LIVE:
        knobs.widget(k, on_change=lambda: st.session_state.update(live_pending=True))
with st.form("train_form"):
    columns = st.columns(2)
    for n, k in enumerate(k for k in knobs.KNOBS if not (live and k.live)):
        with columns[n % 2]:
            knobs.widget(k)
    submitted = st.form_submit_button("Train AFM and FM", type="primary")
config = knobs.config(ws.task)
live_changed = st.session_state.pop("live_pending", False) and live and bool(ws.models)

# ---------------------------------------------------------------------------- training
spec = afm.TASKS[ws.task]
stop_clicked = st.button("Stop training", key="train_stop", help="Ends the running training; each model keeps its "
                         "best epoch so far")  # fmt: skip
if stop_clicked:
    outcome = training.stop()
    if outcome is None:
        st.info("Nothing is training now.")
    elif outcome != "stopped":
        st.info(f"You {outcome}; your models are unchanged.")
if submitted or live_changed:
    training.start(ws, config, live=live_changed and not submitted)
message = training.watch(ws, lambda curves: afm.plots.learning_curves(curves, f"valid_{spec.headline}", ws.previous))
message = message or st.session_state.pop("train_message", None)
if message and message.startswith("error"):
    st.error(message)
elif message and message.startswith("stopped"):
    st.warning(f"Training stopped: {message.removeprefix('stopped early ')}")

# ---------------------------------------------------------------------------- results
if ws.models:
    headline = spec.label(spec.headline)
    state.metric_row(*((f"{state.LABELS[k]} test {headline}", f"{ws.metrics[k][spec.headline]:.4f}")
                       for k in state.KINDS if k in ws.models))  # fmt: skip
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
    if live and "afm" in ws.models:  # what a live change did to attention, beside what it was before
        part = "valid" if "valid" in ws.parts else "all"
        attention_sections.heatmap_section(ws, part, ws.parts[part], state.field_frame(ws, "afm", part),
                                           "mean attention a_ij", "mean_attention", "a_ij")  # fmt: skip
    state.save_and_download(ws, f"{ws.data_label}-k{ws.config.embed_dim}-t{ws.config.attention_factor}")
state.load_models_expander(ws)
loaded_note.caption(f"Now loaded: **{ws.source if ws.models else 'no models yet'}**.")
state.show_status()
