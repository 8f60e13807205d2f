"""Data & model: choose data, then train AFM and FM side by side (live), or load them."""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import state
import streamlit as st

import afm
from afm.train import Progress, TrainConfig, train_model

ws = state.workspace()
st.title("Data & model")
st.caption(
    "Choose the data, then train an AFM and a plain FM side by side, or load trained ones. "
    "In live mode, moving the attention factor t or a dropout slider retrains at once."
)

# ---------------------------------------------------------------------------- data
st.header("1. Data")
sources = ["bundled sample", "upload a CSV/Parquet table", "libFM file or folder on disk"]
source = st.radio("Data source", sources, horizontal=True, key="data_source")

if source == sources[0]:
    tasks = ["regression", "binary"]
    task = st.radio(
        "Label",
        tasks,
        index=tasks.index(ws.task) if ws.is_sample else 0,
        horizontal=True,
        key="data_task",
        help="regression: `engagement` (squared loss, RMSE); binary: `clicked` (log loss, AUC)",
    )
    if not ws.is_sample or task != ws.task:
        st.session_state.ws = ws = state.sample_workspace(task)
        state.set_query(task=task)
elif source == sources[1]:
    upload = st.file_uploader("Table (CSV or Parquet)", type=["csv", "parquet"], key="data_upload")
    raw = state.upload_bytes(upload) if upload is not None else None
    if raw is not None:
        try:
            frame = (
                pd.read_parquet(io.BytesIO(raw)) if upload.name.endswith(".parquet") else pd.read_csv(io.BytesIO(raw))
            )
        except Exception as err:  # noqa: BLE001 - any parse failure is the user's file, said in plain words
            st.error(f"Could not read {upload.name}: {str(err).splitlines()[0][:300]}")
            frame = None
        if frame is not None:
            columns = list(frame.columns)
            with st.form("data_table_form"):
                label = st.selectbox("Label column", columns, index=len(columns) - 1)
                guess_numeric = [c for c in columns if pd.api.types.is_float_dtype(frame[c]) and c != label]
                guess_categorical = [c for c in columns if c not in guess_numeric and c != label]
                categorical = st.multiselect("Categorical columns", columns, default=guess_categorical)
                numeric = st.multiselect("Numeric columns", columns, default=guess_numeric)
                task = st.radio("Task", ["regression", "binary"], horizontal=True)
                use = st.form_submit_button("Use this data")
            if use:
                try:
                    data = afm.load_table(frame, label, categorical, numeric, name=upload.name)
                    train, valid, test = afm.split(data, [0.8, 0.1, 0.1], seed=0)
                    parts = {"train": train, "valid": valid, "test": test, "all": data}
                    st.session_state.ws = ws = state.Workspace(f"upload:{upload.name}", upload.name, task, parts)
                    st.success(f"Loaded {upload.name}: {len(data):,} rows, {data.n_fields} fields.")
                except ValueError as err:
                    st.error(f"{upload.name} cannot be used: {err}")
else:
    default_path = afm.datasets.default_frappe_root()  # $AFM_FRAPPE, else data/frappe (or data/) if present
    with st.form("data_libfm_form"):
        path = st.text_input("Path of a .libfm file or a folder of *.train/validation/test.libfm parts",
                             value=str(default_path.resolve()) if default_path.is_dir() else "")  # fmt: skip
        task = st.radio("Task", ["binary", "regression"], horizontal=True, help="±1 labels: either works")
        use = st.form_submit_button("Load")
    if use:
        try:
            parts = state.libfm_parts(path.strip(), 0)
            st.session_state.ws = ws = state.Workspace(f"libfm:{path}", Path(path).name, task, parts)
            st.success(f"Loaded {path}: {', '.join(f'{k} {len(v):,}' for k, v in parts.items())} rows.")
        except ValueError as err:
            st.error(f"Cannot load {path!r}: {err}")

data = ws.parts["all"]
cols = st.columns(4)
cols[0].metric("Rows", f"{len(data):,}")
cols[1].metric("Fields", data.n_fields)
cols[2].metric("Features", f"{data.n_features:,}")
cols[3].metric("Train rows", f"{len(ws.parts['train']):,}")
st.caption(
    "Split: " + " · ".join(f"{p} {len(ws.parts[p]):,} rows" for p in ("train", "valid", "test") if p in ws.parts)
)
with st.expander("Fields and cardinalities"):
    seen = data.cardinalities()
    state.show_table(
        pd.DataFrame({
            "field": data.field_names,
            "kind": [f.kind for f in data.schema.fields],
            "features": [f.size for f in data.schema.fields],
            "distinct in data": [seen[n] for n in data.field_names],
        }),
        "fields",
    )  # fmt: skip

# ---------------------------------------------------------------------------- knobs
st.header("2. Models")
loaded_note = st.empty()  # filled at the end of the page, after any training or loading
defaults = ws.config
KNOBS: dict[str, tuple[str, type, Any]] = {  # session key -> (URL name, type, default)
    "knob_k": ("k", int, defaults.embed_dim),
    "knob_t": ("t", int, defaults.attention_factor),
    "knob_dropout": ("dropout", float, defaults.dropout),
    "knob_attention_dropout": ("attention_dropout", float, defaults.attention_dropout),
    "knob_l2": ("l2", float, defaults.l2_attention),
    "knob_lr": ("lr", float, defaults.lr),
    "knob_optimizer": ("optimizer", str, defaults.optimizer),
    "knob_epochs": ("epochs", int, defaults.epochs),
    "knob_batch": ("batch", int, defaults.batch_size),
    "knob_pretrain": ("pretrain", bool, defaults.pretrain),
    "knob_seed": ("seed", int, defaults.seed),
    "knob_live": ("live", bool, ws.is_sample),
}
CHOICES = {
    "knob_t": [1, 2, 4, 8, 16, 32, 64],
    "knob_k": [2, 4, 8, 16, 32, 64, 128, 256],
    "knob_lr": [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
    "knob_batch": [64, 128, 256, 512, 1024, 2048, 4096],
    "knob_optimizer": ["adam", "adagrad"],
}
first_visit = "knobs_seen" not in st.session_state
st.session_state.knobs_seen = True
for key, (name, cast, default) in KNOBS.items():
    if key not in st.session_state:
        # The URL sets the knobs on a session's first page view (a shared link); later visits
        # start from the configuration of the models now loaded.
        value = state.query_value(name, default, cast) if first_visit else default
        options = CHOICES.get(key)
        if options is not None and value not in options:
            value = default if default in options else options[0]
        if key == "knob_dropout" or key == "knob_attention_dropout":
            value = min(max(float(value), 0.0), 0.9)
        st.session_state[key] = value

live = st.toggle("Live mode: changing t or a dropout retrains at once", key="knob_live")


def live_knobs() -> None:
    st.select_slider("Attention factor t", CHOICES["knob_t"], key="knob_t")
    st.slider("Dropout on the interaction layer", 0.0, 0.9, step=0.05, key="knob_dropout")
    st.slider("Dropout on the attention weights", 0.0, 0.9, step=0.05, key="knob_attention_dropout")


if live:
    live_knobs()
with st.form("train_form"):
    left, right = st.columns(2)
    with left:
        st.select_slider("Embedding size k", CHOICES["knob_k"], key="knob_k")
        if not live:
            live_knobs()
        st.number_input("λ: L2 on the attention network's W", 0.0, 100.0, step=0.01, format="%.3f", key="knob_l2")
        st.checkbox("FM pre-training (the paper's recipe: AFM starts from a trained FM)", key="knob_pretrain")
    with right:
        st.select_slider("Learning rate", CHOICES["knob_lr"], key="knob_lr")
        st.radio("Optimiser", CHOICES["knob_optimizer"], horizontal=True, key="knob_optimizer")
        st.slider("Epochs", 1, 50, key="knob_epochs")
        st.select_slider("Batch size", CHOICES["knob_batch"], key="knob_batch")
        st.number_input("Seed", 0, 10_000, key="knob_seed")
    submitted = st.form_submit_button("Train AFM and FM", type="primary")

s = st.session_state
config = TrainConfig(
    task=ws.task,
    embed_dim=int(s.knob_k),
    attention_factor=int(s.knob_t),
    dropout=float(s.knob_dropout),
    attention_dropout=float(s.knob_attention_dropout),
    l2_attention=float(s.knob_l2),
    lr=float(s.knob_lr),
    optimizer=str(s.knob_optimizer),
    epochs=int(s.knob_epochs),
    batch_size=int(s.knob_batch),
    seed=int(s.knob_seed),
    pretrain=bool(s.knob_pretrain),
)
state.set_query(**{name: s[key] for key, (name, _, _) in KNOBS.items()}, task=ws.task)
live_changed = (
    live
    and bool(ws.models)
    and any(getattr(config, f) != getattr(ws.config, f) for f in ("attention_factor", "dropout", "attention_dropout"))
)

# ---------------------------------------------------------------------------- training
metric, valid_metric = state.metric_names(ws.task)
stop_clicked = st.button("Stop training", key="train_stop", help="Ends the running training with its best weights")


def train_both(config: TrainConfig) -> None:
    """Train FM then AFM, drawing the progress bar and curves live; a Stop (or any rerun) keeps
    the best weights reached so far."""
    ws.previous = {k: v for k, v in ws.histories.items()}
    bar = st.progress(0.0, text="starting")
    chart = st.empty()
    curves: dict[str, pd.DataFrame] = {}
    models: dict[str, Any] = {}
    best: dict[int, dict] = {}  # id(model) -> state_dict of its best epoch so far
    kinds = ("fm", "afm")
    started = time.perf_counter()

    def callback(p: Progress, kind: str, n: int) -> None:
        done = (n + p.fraction) / len(kinds)
        bar.progress(min(done, 1.0), text=f"{state.LABELS[kind]} epoch {p.epoch}/{p.epochs} · loss {p.train_loss:.4f}")
        if p.epoch_end and p.history is not None:
            if p.history.best_epoch == p.epoch and p.model is not None:
                best[id(p.model)] = {k: v.detach().clone() for k, v in p.model.state_dict().items()}
            if p.model is not None and type(p.model).__name__.lower() == kind:
                models[kind] = p.model
            curves[kind] = p.history.to_frame()
            chart.plotly_chart(afm.plots.learning_curves(curves, valid_metric, ws.previous))

    try:
        histories = {}
        for n, kind in enumerate(kinds):
            model, history = train_model(kind, config, ws.parts["train"], ws.parts.get("valid"),
                                         callback=lambda p, kind=kind, n=n: callback(p, kind, n))  # fmt: skip
            models[kind], histories[kind] = model, history.to_frame()
        bar.progress(1.0, text=f"done in {time.perf_counter() - started:.1f} s")
        chart.empty()  # the results section below draws the finished curves
        ws.config = config
        ws.set_models(models, histories, f"trained here ({time.perf_counter() - started:.1f} s)")
    except BaseException:
        # Stop button, a live knob change or leaving the page: keep what was trained so far,
        # with each model's best epoch, then let Streamlit carry on with its rerun.
        for model in models.values():
            if id(model) in best:
                model.load_state_dict(best[id(model)])
            model.eval()
        if models:
            ws.config = config
            ws.set_models({**ws.models, **models}, {**ws.histories, **curves}, "stopped early (best epochs kept)")
        raise


if submitted or live_changed:
    train_both(config)
elif stop_clicked:
    st.info("Training stopped; the models keep their best epoch so far.")

# ---------------------------------------------------------------------------- results
if ws.models:
    rows = []
    for kind in ws.models:
        row = {"model": state.LABELS[kind], **{f"test {k}": v for k, v in ws.metrics.get(kind, {}).items() if k != "n"}}
        history = ws.histories.get(kind)
        row["epochs"] = len(history) if history is not None else None
        rows.append(row)
    state.show_table(pd.DataFrame(rows), "metrics", key="dm-metrics")
    if ws.histories:
        state.show_figure(
            afm.plots.learning_curves(ws.histories, valid_metric, ws.previous, title=f"validation {metric} per epoch"),
            "learning-curves",
            key="dm-curves",
        )
    # save / download
    left, right = st.columns(2)
    with left:
        name = st.text_input("Run name", value=f"{ws.data_label}-k{config.embed_dim}-t{config.attention_factor}")
        if st.button("Save this pair as a run", key="dm-save"):
            try:
                path = afm.runs.save_run(
                    {k: (m, ws.histories.get(k)) for k, m in ws.models.items()},
                    name=name,
                    config=ws.config.to_dict(),
                    metrics={k: {f"test_{m}": v for m, v in ws.metrics.get(k, {}).items()} for k in ws.models},
                    metadata={"task": ws.task, "schema": ws.schema.to_dict(), "data": ws.data_label},
                )
                st.success(f"Saved run {path.name} in {path.parent}")
            except (ValueError, OSError) as err:
                st.error(f"Could not save the run: {err}")
    with right:
        for kind, model in ws.models.items():
            payload = state.checkpoint_bytes(model, **state.model_metadata(ws, kind))
            label = f"Download {state.LABELS[kind]} checkpoint"
            st.download_button(label, payload, file_name=f"{kind}.pt", key=f"dm-download-{kind}")


# ---------------------------------------------------------------------------- loading
def accept(loaded: dict[str, tuple[Any, dict[str, Any]]], source: str) -> None:
    """Put loaded models in the workspace if they fit its data; say why not otherwise."""
    for kind, (model, _) in loaded.items():
        c = model.config
        if c.n_fields != data.n_fields or c.n_features < data.n_features:
            st.error(
                f"The {kind} model expects {c.n_fields} fields and {c.n_features} features, but the data has "
                f"{data.n_fields} fields and {data.n_features} features: load data it was trained on first."
            )
            return
    models = {**ws.models, **{m.config.kind: m for m, _ in loaded.values()}}
    histories = {**ws.histories}
    for model, meta in loaded.values():
        epochs = (meta.get("history") or {}).get("epochs")
        if epochs:
            histories[model.config.kind] = pd.DataFrame(epochs)
    ws.set_models(models, histories, source)
    st.success(f"Loaded {', '.join(state.LABELS[m.config.kind] for m, _ in loaded.values())} from {source}.")


with st.expander("Load a saved run or upload a checkpoint"):
    runs = afm.runs.list_runs()
    if runs.empty:
        st.caption(f"No saved runs in {afm.runs.runs_dir()} yet.")
    else:
        choice = st.selectbox("Saved run", runs["name"], key="dm-run")
        if st.button("Load run", key="dm-load-run"):
            try:
                run = afm.runs.load_run(runs.set_index("name").loc[choice, "path"])
                accept(run["models"], f"run {choice}")
            except ValueError as err:
                st.error(f"Could not load run {choice}: {err}")
    upload_ckpt = st.file_uploader("Checkpoint (.pt) saved by afm", type=["pt"], key="dm-ckpt")
    ckpt_raw = state.upload_bytes(upload_ckpt) if upload_ckpt is not None else None
    if ckpt_raw is not None and st.button("Use this checkpoint", key="dm-use-ckpt"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.pt"  # never a path taken from the upload's name
            path.write_bytes(ckpt_raw)
            try:
                model, meta = afm.load_model(path)
                accept({model.config.kind: (model, meta)}, f"upload {upload_ckpt.name}")
            except ValueError as err:
                st.error(f"{upload_ckpt.name} is not a usable afm checkpoint: {str(err).split(': ', 1)[-1]}")

loaded_note.caption(f"Now loaded: **{ws.source}**.")
state.show_status()
