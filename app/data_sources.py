"""Data & model's three data sources (the bundled samples, an uploaded table, a libFM file or folder on disk).

Each draws its controls and returns the session's workspace, replaced when the user pressed its button and the
replacement went through (``widgets.replace_workspace`` asks first when models would be lost).
"""

from __future__ import annotations

import hashlib
import io

import caches
import session
import streamlit as st
import widgets

import afm
from afm import settings

# the bundled samples: the contrast a teacher shows (their data cards: sample_data/README.md and SALIENT.md)
SAMPLE_CHOICES = {"sample": "pairs sample (FM suffices)", "salient": "salient sample (attention needed)"}
SAMPLE_NOTES = {
    "sample": "App engagement with a few planted field pairs, each a value × value table: exactly what FM represents, "
    "so AFM's attention has nothing to add and stays near uniform.",
    "salient": "Streaming sessions: usually the viewer's own tastes decide, but five decisive moments (live sport at "
    "prime time, animation with the kids, ...) override them when present. That row-dependent weighting is what "
    "FM's fixed sum of pairs cannot represent and AFM's attention can (the regression label shows it best).",
}
SAMPLE_HELP = (
    "Switch between the two to see the contrast: on the pairs sample AFM's attention stays uniform because FM "
    "already has what it needs; on the salient sample it cannot stay uniform."
)
# The "libFM file or folder on disk" option: off for a public deployment (AFM_SERVER_PATHS=off); when on,
# it reads only under afm.datasets.data_roots() (AFM_DATA_ROOTS).
SERVER_PATHS = settings.get("AFM_SERVER_PATHS")
SOURCES = ["bundled sample", "upload a CSV/Parquet table", "libFM file or folder on disk"]


def choose(ws: session.Workspace) -> session.Workspace:
    """The source radio (showing the session's data) and the chosen source's controls."""
    sources = SOURCES[: 3 if SERVER_PATHS else 2]
    kind = {"upload": 1, "libfm": 2}.get(ws.data_key.split(":")[0], 0)
    widgets.show_data_in(
        "data_source", sources[min(kind, len(sources) - 1)], ws
    )  # the control shows the session's data
    source = st.radio("Data source", sources, horizontal=True, key="data_source")
    return (bundled, upload, libfm)[sources.index(source)](ws)


def bundled(ws: session.Workspace) -> session.Workspace:
    tasks, names = list(afm.TASKS), list(SAMPLE_CHOICES)
    widgets.show_data_in("data_task", ws.task if ws.bundled else tasks[0], ws)
    widgets.show_data_in("data_sample", ws.bundled or names[0], ws)
    name = st.radio(
        "Sample", names, format_func=SAMPLE_CHOICES.get, horizontal=True, key="data_sample", help=SAMPLE_HELP
    )
    help_task = "regression: squared loss, RMSE; binary: log loss, AUC"
    task = st.radio("Label", tasks, horizontal=True, key="data_task", help=help_task)
    if (ws.bundled and (task, name) != (ws.task, ws.bundled)) or (
        not ws.bundled and st.button("Use the bundled sample")
    ):
        if widgets.replace_workspace(session.sample_workspace(task, name), f"the {SAMPLE_CHOICES[name]} ({task})"):
            ws = session.get().workspace()
    st.caption(SAMPLE_NOTES[name])
    return ws


def upload(ws: session.Workspace) -> session.Workspace:
    file = st.file_uploader("Table (CSV or Parquet)", type=["csv", "parquet"], key="data_upload")
    me = session.get()
    in_use = file is not None and me.upload_in_use == (file.file_id, ws.data_id)
    raw = widgets.upload_bytes(file) if file is not None and not in_use else None  # not parsed again once in use
    frame = None
    if in_use:
        st.caption(
            f"{widgets.literal(file.name)} is the data in use (its columns as chosen); upload a file to change it."
        )
    if raw is not None:
        try:
            frame = afm.read_table(io.BytesIO(raw), name=file.name)
        except ValueError as err:
            st.error(widgets.literal(err, 400))
    if frame is None or file is None or raw is None:
        return ws
    columns = list(frame.columns)
    with st.form("data_table_form"):
        label = st.selectbox("Label column", columns, index=len(columns) - 1)
        guess_categorical, guess_numeric = afm.guess_columns(frame, label)
        categorical = st.multiselect("Categorical columns", columns, default=guess_categorical)
        numeric = st.multiselect("Numeric columns", columns, default=guess_numeric)
        task = st.radio("Task", ["auto", *afm.TASKS], horizontal=True, help="auto: binary for two labels among -1/0/1")
        use = st.form_submit_button("Use this data")
    if use:
        try:
            data = afm.load_table(frame, label, categorical, numeric, name=file.name)
            parts = afm.datasets.split_parts(data, seed=0)
            task = afm.metrics.resolve_task(task, parts["train"])
            digest = hashlib.sha256(raw + repr((label, categorical, numeric, task)).encode()).hexdigest()[:12]
            new = session.Workspace(f"upload:{digest}", file.name, task, parts)
            if widgets.replace_workspace(new, file.name):
                ws = new
                me.upload_in_use = (file.file_id, new.data_id)
                shown = widgets.literal(file.name)
                st.success(f"Loaded {shown}: {len(data):,} rows, {data.n_fields} fields ({task}).")
        except ValueError as err:
            st.error(f"{widgets.literal(file.name)} cannot be used: {widgets.literal(err, 400)}")
    return ws


def libfm(ws: session.Workspace) -> session.Workspace:
    """A .libfm file or a folder of parts under the server's data folders (``afm.datasets.data_roots()``): every
    file a folder resolves to is checked (inside the roots, within the size cap, each and together) before it is
    read, and messages name paths by their data folder only (``afm.datasets.shown_path``)."""
    roots = afm.datasets.data_roots()
    default_path = afm.datasets.default_frappe_root()  # $AFM_FRAPPE, else data/frappe (or data/) if present
    try:
        default_path = afm.datasets.allowed_path(str(default_path), roots)  # shown only when under the data roots
    except ValueError:
        default_path = None  # (not Path(""): that is the working directory, a folder, and would be shown)
    shown = afm.datasets.shown_path(default_path, roots) if default_path and default_path.is_dir() else ""
    with st.form("data_libfm_form"):
        path = st.text_input("Path of a .libfm file or a folder of *.train/validation/test.libfm parts", value=shown)
        task = st.radio("Task", ["auto", *afm.TASKS], horizontal=True, help="auto: binary for ±1 labels")
        use = st.form_submit_button("Load")
    if use:
        try:
            folder = afm.datasets.allowed_path(path, roots)
            parts = caches.libfm_parts(str(folder), 0)
            task = afm.metrics.resolve_task(task, parts["train"])
            # the name for links, and a digest of the whole path: two folders of one name are different data
            # (shared trainings and cached explanations are keyed by it)
            name, where = folder.name, hashlib.sha256(str(folder).encode()).hexdigest()[:12]
            new = session.Workspace(f"libfm:{name}:{where}", name, task, parts)
            if widgets.replace_workspace(new, name):
                ws = new
                rows = ", ".join(f"{k} {len(v):,}" for k, v in parts.items())
                shown = widgets.literal(afm.datasets.shown_path(folder, roots))
                st.success(f"Loaded {shown}: {rows} rows ({task}).")
        except (ValueError, OSError) as err:
            st.error(f"Cannot load that path: {widgets.public_error(err)}")
    return ws
