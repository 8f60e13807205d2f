"""Session state, caches and small UI helpers shared by the dashboard's pages.

Caching lives here only: ``st.cache_resource`` for read-only shared things (datasets, the bundled
pre-trained models, whole-data explanations keyed by a model token), ``st.cache_data`` for
frames. Models being trained belong to their browser session (``st.session_state``).
"""

from __future__ import annotations

import gc
import io
import math
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
import training

import afm
from afm.config import RECIPE_WORDS
from afm.train import TrainConfig

PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"
# The "libFM file or folder on disk" option: off for a public deployment (AFM_SERVER_PATHS=off); when on,
# it reads only under afm.datasets.data_roots() (AFM_DATA_ROOTS).
SERVER_PATHS = os.environ.get("AFM_SERVER_PATHS", "on").strip().lower() not in ("off", "0", "false", "no")
KINDS = ("afm", "fm")
LABELS = {"afm": "AFM", "fm": "FM"}

# The first optimiser a process creates imports torch._dynamo (torch.optim's _disable_dynamo): about 1 s of
# imports holding the interpreter lock. Left lazy, it fell inside the first training a class started (py-spy,
# 8 sessions: 1.7 s of that training), stalling every session's page and the health check meanwhile. Paid here,
# once per server, and frozen with the rest below.
torch.optim.Adam([torch.zeros(1, requires_grad=True)])

# Streamlit collects all garbage after every script run (runner.postScriptGC). With torch, pandas and plotly
# loaded, that walks ~250k long-lived objects (0.12 s with the interpreter lock held, per run of every
# session: a third of the lock's time with 8 sessions training). Objects alive now (modules, classes) live
# as long as the server, so they go to the permanent generation once; the collections then walk only what
# the runs create.
gc.collect()
gc.freeze()


@dataclass
class Workspace:
    """One browser session's data and models."""

    data_key: str  # "sample", "salient" (the bundled samples), "upload:<content digest>", "libfm:<name>:<digest>"
    data_label: str
    task: str
    parts: dict[str, afm.Dataset]
    models: dict[str, Any] = field(default_factory=dict)  # kind -> AFM | FM (eval mode)
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    previous: dict[str, pd.DataFrame] = field(default_factory=dict)  # last run's curves, drawn faded
    previous_models: dict[str, Any] = field(default_factory=dict)  # the models before the last set_models
    previous_config: TrainConfig | None = None  # ... and the settings they were trained with
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> test metrics
    config: TrainConfig = field(default_factory=TrainConfig)
    source: str = "pre-trained on the sample"
    model_ids: dict[str, str] = field(default_factory=dict)  # kind -> how it was made (a job key), for sharing
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # changes whenever the models do
    sweeps: list[pd.DataFrame] = field(default_factory=list)

    @property
    def schema(self) -> afm.Schema:
        return self.parts["all"].schema

    @property
    def is_sample(self) -> bool:
        """The first bundled sample, whose planted pairs the pages compare with."""
        return self.data_key == "sample"

    @property
    def bundled(self) -> str | None:
        """The name of the bundled sample in use ("sample" or "salient", ``afm.datasets.SAMPLES``), else None."""
        return self.data_key if self.data_key in afm.datasets.SAMPLES else None

    @property
    def data_id(self) -> str:
        """What the data is, for links and shared jobs: "sample-binary", "salient-regression", "upload:<hash>"..."""
        return f"{self.data_key}-{self.task}" if self.bundled else self.data_key

    def set_models(
        self,
        models: dict[str, Any],
        histories: dict[str, pd.DataFrame],
        source: str,
        config: TrainConfig | None = None,
    ) -> None:
        """Replace the models (with the settings they were trained with, when known)."""
        if self.models:
            self.previous_models, self.previous_config = dict(self.models), self.config
        self.models, self.histories, self.source = models, histories, source
        self.model_ids = {}  # unknown provenance: never shared (training.model_id falls back to the token)
        if config is not None:
            self.config = config
        self.metrics = {k: evaluate_part(m, self, "test") for k, m in models.items()}
        self.token = uuid.uuid4().hex


# ---------------------------------------------------------------------------- cached resources


@st.cache_resource(show_spinner=False)
def sample_parts(task: str, name: str = "sample") -> dict[str, afm.Dataset]:
    """A bundled sample's seed-0 80/10/10 split (the split the pre-trained models were made on)."""
    return afm.datasets.load_parts(name, task=task, seed=0)


def pretrained_path(task: str, kind: str, name: str = "sample") -> Path:
    """The bundled pre-trained model of a sample: ``pretrained/{task}-{kind}.pt`` for the first sample,
    ``pretrained/{name}-{task}-{kind}.pt`` for the others."""
    return PRETRAINED / (f"{task}-{kind}.pt" if name == "sample" else f"{name}-{task}-{kind}.pt")


@st.cache_resource(show_spinner=False)
def pretrained(task: str, name: str = "sample") -> dict[str, tuple[Any, dict[str, Any]]]:
    """The bundled pre-trained AFM and FM for ``task`` on sample ``name``: kind -> (model, metadata). Read-only."""
    return {kind: afm.load_model(pretrained_path(task, kind, name)) for kind in KINDS}


@st.cache_resource(show_spinner=False, max_entries=4)
def libfm_parts(path: str, seed: int) -> dict[str, afm.Dataset]:
    return afm.datasets.load_parts(path, seed=seed)


# A Summary holds exact per-pair sums and the full explanation of a seeded sample of at most
# afm.explain.SAMPLE_ROWS rows (about 240 MB at 39 fields): never [N, P] for all N. Six entries: AFM and FM
# on three parts.
@st.cache_resource(show_spinner=False, max_entries=6)
def _summary(token: str, kind: str, part: str, _model: Any, _data: afm.Dataset) -> afm.Summary:
    return afm.summarize(_model, _data)


@st.cache_data(show_spinner=False, max_entries=32)
def _field_frame(token: str, kind: str, part: str, _model: Any, _data: afm.Dataset) -> pd.DataFrame:
    return afm.field_pair_frame(_model, _data, summary=_summary(token, kind, part, _model, _data))


@st.cache_data(show_spinner=False, max_entries=32)
def _feature_frame(token: str, kind: str, part: str, min_count: int, _model: Any, _data: afm.Dataset) -> pd.DataFrame:
    summary = _summary(token, kind, part, _model, _data)
    # the first FEATURE_ROWS only: a sample of Criteo-like data has millions of distinct feature pairs
    return afm.feature_pair_frame(_model, _data, top=FEATURE_ROWS, min_count=min_count, summary=summary)


# Distinct features per field: one torch.unique per field over every row (0.7 s on an 820k x 39 upload),
# which the Data & model page showed on each of its reruns. Keyed by what the data is (Workspace.data_id).
@st.cache_resource(show_spinner=False, max_entries=8)
def _cardinalities(data_id: str, _data: afm.Dataset) -> dict[str, int]:
    return _data.cardinalities()


def model_key(ws: Workspace, kind: str) -> str:
    """The cache key of a model's explanations: its provenance where known (the bundled models, a pool job's
    result: the same objects in every session, so thirty sessions share one summary), else the session's token."""
    return f"{ws.data_id}|{training.model_id(ws, kind)}"


def summary(ws: Workspace, kind: str, part: str = "all") -> afm.Summary:
    """The whole-data explanation of ``part`` by model ``kind`` (cached per model token): exact sums per
    pair and field, and the full explanation of a seeded row sample (``summary.sample``,
    ``summary.sample_data``; ``summary.sample_note()`` says how many rows)."""
    return _summary(model_key(ws, kind), kind, part, ws.models[kind], ws.parts[part])


def field_frame(ws: Workspace, kind: str, part: str = "all") -> pd.DataFrame:
    """``afm.field_pair_frame`` of ``part``: exact over every row."""
    return _field_frame(model_key(ws, kind), kind, part, ws.models[kind], ws.parts[part])


FEATURE_ROWS = 500  # the most feature pairs a page lists


def feature_frame(ws: Workspace, kind: str, part: str = "all", min_count: int = 5) -> pd.DataFrame:
    """The first ``FEATURE_ROWS`` rows of ``afm.feature_pair_frame`` of ``part``, on the summary's row sample
    (see ``sample_note``)."""
    return _feature_frame(model_key(ws, kind), kind, part, min_count, ws.models[kind], ws.parts[part])


def sample_note(ws: Workspace, kind: str, part: str = "all") -> str:
    """For a caption: "computed on a seeded sample of 20,000 of 820,000 rows" (or "on all N rows")."""
    return summary(ws, kind, part).sample_note()


def evaluate_part(model: Any, ws: Workspace, part: str) -> dict[str, float]:
    if part not in ws.parts:
        return {}
    train = ws.parts.get("train")
    clip_range = afm.label_range(train, ws.task) if train is not None else None
    return afm.evaluate(model, ws.parts[part], ws.task, label_range=clip_range)


# ---------------------------------------------------------------------------- session


SAMPLE_LABELS = {"sample": "bundled sample", "salient": "bundled salient sample"}
# a workspace's source while it holds a sample's bundled models (they come back with the sample: nothing at stake)
PRETRAINED_SOURCES = {"sample": "pre-trained on the sample", "salient": "pre-trained on the salient sample"}


def sample_workspace(task: str = "regression", name: str = "sample") -> Workspace:
    """A workspace on bundled sample ``name`` with its pre-trained AFM and FM loaded."""
    ws = Workspace(name, SAMPLE_LABELS.get(name, name), task, sample_parts(task, name))
    loaded = pretrained(task, name)
    histories = {k: afm.History.from_dict(meta["history"]).to_frame() for k, (_, meta) in loaded.items()}
    ws.config = TrainConfig.from_dict(loaded["afm"][1]["config"])
    ws.set_models({k: m for k, (m, _) in loaded.items()}, histories, PRETRAINED_SOURCES[name])
    ws.model_ids = {k: f"pretrained-{name}-{task}:{k}" for k in loaded}
    return ws


def workspace(banner: bool = True) -> Workspace:
    """This session's workspace (created on first use: the sample, pre-trained models loaded); a training
    that finished since the last run is collected into it (``training.collect``). ``banner``: a page's
    first call says when the session's link asked for other models (``training.link_banner``)."""
    if "ws" not in st.session_state:
        task = st.query_params.get("task", "regression")
        name = str(st.query_params.get("data", "sample")).rsplit("-", 1)[0]  # a link's "salient-binary" -> salient
        st.session_state.ws = sample_workspace(
            task if task in ("regression", "binary") else "regression", name if name in SAMPLE_LABELS else "sample"
        )
    ws = st.session_state.ws
    message = training.collect(ws)
    if message:
        st.session_state.train_message = message
    link_to_url(ws)
    if banner:
        training.link_banner(ws)
    return ws


def replace_workspace(new: Workspace, what: str) -> bool:
    """Make ``new`` the session's workspace, asking first when trained models would be lost. True when done.

    Models trained or loaded in this session are lost with their data; the bundled pre-trained ones are not
    (they come back with the sample). The question stays on the page until answered."""
    ws = st.session_state.ws
    at_stake = bool(ws.models) and ws.source not in PRETRAINED_SOURCES.values()
    if at_stake and st.session_state.get("confirmed_replace") != what:
        st.session_state.pending_replace = (new, what)
        return False
    training.stop(quiet=True)
    st.session_state.pop("job", None)
    st.session_state.ws = new
    st.session_state.pop("pending_replace", None)
    st.session_state.pop("confirmed_replace", None)
    return True


def show_data_in(key: str, value: Any, ws: Workspace) -> None:
    """Set the widget ``key`` to ``value`` when it is new or the session's data has changed since it was set, so
    a data control shows the data in use (a page visit clears widget state; a replacement changes the data)."""
    marker = f"_{key}_for"
    if key not in st.session_state or st.session_state.get(marker) != ws.data_id:
        st.session_state[key], st.session_state[marker] = value, ws.data_id


def confirm_replace() -> Workspace | None:
    """The question ``replace_workspace`` left: "replace and lose the models?"; the new workspace if yes."""
    pending = st.session_state.get("pending_replace")
    if not pending:
        return None
    new, what = pending
    ws = st.session_state.ws
    st.warning(f"Using {what} replaces the data and the models trained on it ({ws.source}, on {ws.data_label}).")
    left, right = st.columns(2)
    if left.button(f"Replace: use {what}", key="confirm-replace", type="primary"):
        st.session_state.confirmed_replace = what
        replace_workspace(new, what)
        return new
    if right.button("Keep my models", key="cancel-replace"):
        for name in ("pending_replace", "_data_task_for", "_data_source_for"):  # the data controls show the data again
            st.session_state.pop(name, None)
        st.rerun()
    return None


def show_status(slot: Any = None) -> None:
    """The sidebar's line about the data and models; ``slot`` (an ``st.empty``) is kept for refreshes."""
    if slot is not None:
        st.session_state["_status_slot"] = slot
    ws = workspace(banner=False)
    kinds = " and ".join(LABELS[k] for k in KINDS if k in ws.models)
    models = f"{kinds}, {ws.source}" if ws.models else "no models yet"
    settings = f"  \nSettings: {training.describe(ws.config, ['attention_factor', 'dropout', 'attention_dropout'])}"
    settings += f"  \nAFM recipe: {recipe_words(ws)}"
    job = training.current()
    busy = f"  \nTraining now: {job.text}" if job is not None and not job.done else ""
    link_to_url(ws)
    st.session_state["_status_slot"].caption(
        f"Data: {ws.data_label} · task: {ws.task}  \nModels: {models}{settings if ws.models else ''}{busy}"
    )


def recipe_words(ws: Workspace) -> str:
    """The recipe of the session's AFM, in words: what its training kept (an "auto" training names the recipe it
    chose), else the recipe of its settings."""
    history = ws.histories.get("afm")
    kept = history.attrs.get("recipe") if history is not None else None
    recipe = kept or ws.config.afm_recipe
    words = RECIPE_WORDS.get(recipe, recipe)
    if ws.config.afm_recipe == "auto" and kept:
        words += ", chosen by auto"
    return words


def require_models(ws: Workspace) -> bool:
    """Tell the user to train or load models first; True when both are there."""
    if all(k in ws.models for k in KINDS):
        return True
    st.info("No trained AFM and FM for this data yet: train or load them on the **Data & model** page.")
    return False


# ---------------------------------------------------------------------------- URL settings


def query_value(name: str, default: Any, cast: type = str) -> Any:
    """A setting from the URL query string, or ``default`` when absent or malformed."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        return cast(raw) if cast is not bool else raw.lower() in ("1", "true", "yes", "on")
    except (TypeError, ValueError):
        return default


def set_query(**values: Any) -> None:
    """Write settings into the URL so the configuration can be shared."""
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def link_to_url(ws: Workspace) -> None:
    """The URL carries the data and the settings of the models shown (not of untrained widget values);
    a link the session was opened with stays as it was shared until it is reproduced or replaced."""
    if not st.session_state.get("link"):
        set_query(data=ws.data_id, task=ws.task, **{k.name: getattr(ws.config, k.name) for k in training.WIDGET_KNOBS})


# ---------------------------------------------------------------------------- output helpers


def figure_html(fig: go.Figure) -> str:
    """The figure as a stand-alone HTML page with plotly.js inside it: it opens offline (a classroom)."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


PRESENT_FONT = 18  # plotly font size in presentation mode (a projector at 1024 × 768)


def show_figure(fig: go.Figure, name: str, key: str | None = None) -> None:
    """A plotly chart (its toolbar has the PNG button) plus an HTML download that works offline (plotly.js
    is embedded in the file, about 4.5 MB, rather than fetched from a CDN). In presentation mode
    (``st.session_state["present"]``, set by streamlit_app.py) the figure's fonts are larger on screen."""
    shown = fig
    if st.session_state.get("present"):
        shown = go.Figure(fig)
        shown.update_layout(font={"size": PRESENT_FONT}, title_font={"size": PRESENT_FONT + 4})
    st.plotly_chart(shown, width="stretch", key=key or f"chart-{name}")
    st.download_button(
        "Download figure (HTML)",
        lambda: figure_html(fig),  # built on click only: it is 4.5 MB
        file_name=f"{name}.html",
        mime="text/html",
        key=f"html-{key or name}",
        on_click="ignore",
    )


def show_table(frame: pd.DataFrame, name: str, key: str | None = None, words: bool = True, **kwargs: Any) -> None:
    """A table plus a CSV download. With ``words`` the screen shows column names in words
    (``afm.plots.words``: a validation-metric column -> "validation RMSE"); the CSV keeps the frame's own names, so
    scripts that read it keep working."""
    shown = frame.rename(columns=lambda c: afm.plots.words(str(c))) if words else frame
    st.dataframe(shown, width="stretch", hide_index=True, key=key or f"table-{name}", **kwargs)
    st.download_button(
        "Download table (CSV)",
        frame.to_csv(index=False),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv-{key or name}",
    )


def max_upload_bytes() -> int:
    """Upload limit: ``$AFM_MAX_UPLOAD_MB``, else Streamlit's ``server.maxUploadSize`` (MB)."""
    limit_mb = os.environ.get("AFM_MAX_UPLOAD_MB") or st.get_option("server.maxUploadSize")
    try:
        return int(float(limit_mb) * 1024 * 1024)
    except (TypeError, ValueError):
        return 50 * 1024 * 1024


def upload_bytes(upload: Any) -> bytes | None:
    """The uploaded file's bytes, or None after an ``st.error`` when it is larger than the limit."""
    size, limit = upload.size, max_upload_bytes()
    if size > limit:
        st.error(f"{upload.name} is {size / 2**20:.1f} MB; uploads are limited to {limit / 2**20:.1f} MB here.")
        return None
    return upload.getvalue()


def checkpoint_bytes(model: Any, **metadata: Any) -> bytes:
    """A checkpoint file's bytes (the ``save_model`` format) for a download button."""
    buffer = io.BytesIO()
    torch.save(afm.checkpoint.checkpoint_dict(model, **metadata), buffer)
    return buffer.getvalue()


def model_metadata(ws: Workspace, kind: str) -> dict[str, Any]:
    history = ws.histories.get(kind)
    return {
        "task": ws.task,
        "schema": ws.schema.to_dict(),
        "config": ws.config.to_dict(),
        "metrics": {"test": ws.metrics.get(kind, {})},
        "history": {"epochs": history.to_dict("records") if history is not None else []},
        "data": ws.data_label,
    }


def metric_names(task: str) -> tuple[str, str]:
    """(headline metric, validation history column) for a task (``afm.TASKS``)."""
    headline = afm.TASKS[task].headline
    return headline, f"valid_{headline}"


def public_error(err: BaseException) -> str:
    """An error for the browser: one line, with quoted file contents (a bad token, a label) left out."""
    text = " ".join(str(err).split()) or type(err).__name__
    return re.sub(r"(label |feature id |value )?'[^']*'(?= is not)", "a token", text)[:400]


def part_picker(ws: Workspace, url_name: str, default: str, label: str = "Rows", key: str | None = None) -> str:
    """A select box of the workspace's parts (widget ``key``), linked to the URL parameter ``url_name``."""
    parts = list(ws.parts)
    linked = query_value(url_name, default)
    part = st.selectbox(
        label,
        parts,
        index=parts.index(linked if linked in parts else default if default in parts else parts[0]),
        key=key or f"part-{url_name}",
        help=PART_HELP,
    )
    set_query(**{url_name: part})
    return part


PART_HELP = (
    "'all' is every row of the data (for a libFM folder: the parts it loaded); train/valid/test are the split "
    "the models were trained on."
)


# ---------------------------------------------------------------------------- Data & model page pieces


def data_summary(ws: Workspace) -> None:
    """Rows, fields, features and the split of the workspace's data."""
    data = ws.parts["all"]
    cols = st.columns(4)
    cols[0].metric("Rows", f"{len(data):,}")
    cols[1].metric("Fields", data.n_fields)
    cols[2].metric("Features", f"{data.n_features:,}")
    cols[3].metric("Train rows", f"{len(ws.parts['train']):,}")
    split = " · ".join(f"{p} {len(ws.parts[p]):,} rows" for p in ("train", "valid", "test") if p in ws.parts)
    st.caption(f"Split: {split} · task: {ws.task}")
    with st.expander("Fields and cardinalities"):
        seen = _cardinalities(ws.data_id, data)
        frame = pd.DataFrame({
            "field": data.field_names,
            "kind": [f.kind for f in data.schema.fields],
            "features": [f.size for f in data.schema.fields],
            "distinct in data": [seen[n] for n in data.field_names],
        })  # fmt: skip
        show_table(frame, "fields")


def save_and_download(ws: Workspace, default_name: str) -> None:
    """Save the pair as a run folder, or download each checkpoint."""
    left, right = st.columns(2)
    with left:
        name = st.text_input("Run name", value=default_name)
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
            except (ValueError, OSError, RuntimeError) as err:
                st.error(f"Could not save the run: {' '.join(str(err).split())[:300]}")
    with right:
        for kind, model in ws.models.items():
            payload = checkpoint_bytes(model, **model_metadata(ws, kind))
            st.download_button(f"Download {LABELS[kind]} checkpoint", payload, file_name=f"{kind}.pt",
                               key=f"dm-download-{kind}")  # fmt: skip


def accept_models(ws: Workspace, loaded: dict[str, tuple[Any, dict[str, Any]]], source: str) -> None:
    """Put loaded models in the workspace if they fit its data; say why not otherwise."""
    data = ws.parts["all"]
    for model, _ in loaded.values():
        try:
            data.check_fits(model)
        except ValueError as err:
            st.error(f"{err}. Load the data it was trained on first.")
            return
    histories = dict(ws.histories)
    for model, meta in loaded.values():
        epochs = (meta.get("history") or {}).get("epochs")
        if epochs:
            histories[model.config.kind] = pd.DataFrame(epochs)
    ws.set_models({**ws.models, **{m.config.kind: m for m, _ in loaded.values()}}, histories, source)
    st.success(f"Loaded {', '.join(LABELS[m.config.kind] for m, _ in loaded.values())} from {source}.")


def load_models_expander(ws: Workspace) -> None:
    """Load a saved run, or upload a checkpoint."""
    with st.expander("Load a saved run or upload a checkpoint"):
        runs = afm.runs.list_runs()
        if runs.empty:
            st.caption(f"No saved runs in {afm.runs.runs_dir()} yet.")
        else:
            choice = st.selectbox("Saved run", runs["name"], key="dm-run")
            if st.button("Load run", key="dm-load-run"):
                try:
                    accept_models(ws, afm.runs.load_run(runs.set_index("name").loc[choice, "path"])["models"],
                                  f"run {choice}")  # fmt: skip
                except ValueError as err:
                    st.error(f"Could not load run {choice}: {err}")
        upload = st.file_uploader("Checkpoint (.pt) saved by afm", type=["pt"], key="dm-ckpt")
        raw = upload_bytes(upload) if upload is not None else None
        if raw is not None and st.button("Use this checkpoint", key="dm-use-ckpt"):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "upload.pt"  # never a path taken from the upload's name
                path.write_bytes(raw)
                try:
                    model, meta = afm.load_model(path)
                    accept_models(ws, {model.config.kind: (model, meta)}, f"upload {upload.name}")
                except ValueError as err:
                    st.error(f"{upload.name} is not a usable afm checkpoint: {str(err).split(': ', 1)[-1]}")


def pair_label_list(ws: Workspace) -> list[str]:
    pairs = torch.triu_indices(ws.schema.n_fields, ws.schema.n_fields, 1).T
    return afm.explain.pair_names(ws.schema.field_names, pairs)


# ---------------------------------------------------------------------------- small display helpers

# Float32 model against float64 NumPy: agreement to about 1e-6, so 1e-4 flags real differences only.
TOLERANCE = 1e-4


def vector_text(values: Any) -> str:
    """A vector with 3 decimals, for st.code."""
    return np.array2string(np.asarray(values), precision=3, floatmode="fixed", suppress_small=True, max_line_width=100)


def check_equal(ours: float, model: float, what: str) -> None:
    """A green tick when a recomputed number equals the model's, a red cross otherwise."""
    if math.isclose(ours, model, rel_tol=TOLERANCE, abs_tol=TOLERANCE):
        st.success(f"✓ {what}: the NumPy value equals the model's ({ours:.6f} vs {model:.6f}).")
    else:
        st.error(f"✗ {what}: the NumPy value {ours:.6f} differs from the model's {model:.6f}.")


def metric_row(*items: tuple[Any, ...]) -> None:
    """One ``st.metric`` per (label, value[, ...]) tuple, side by side."""
    for cell, item in zip(st.columns(len(items)), items, strict=True):
        cell.metric(*item[:2], **({"help": item[2]} if len(item) > 2 else {}))
