"""The pages' shared widgets: the session's workspace for a page, the data controls' helpers, figures and
tables with their downloads, the URL's settings, saving and loading models, the sidebar's status line.

State lives in ``session`` (``session.get()``), shared computations in ``caches``; nothing here runs at import.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import caches
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import progress
import session
import streamlit as st
import torch
import training
from session import KINDS, LABELS, PRETRAINED_SOURCES, Workspace, literal  # literal: text stays text

import afm
from afm import settings
from afm.config import RECIPE_WORDS

# ---------------------------------------------------------------------------- session


def workspace(banner: bool = True) -> Workspace:
    """This session's workspace for a page (created on first use: the sample, pre-trained models loaded), with
    every finished job of the session collected into it (``Session.collect_all``). ``banner``: a page's first
    call says when the session's link asked for other models (``training.link_banner``).

    The link is captured here too (``training.capture_link``, once per session): a page opened by its own
    address (``/attention?...``) runs without the entry script, because Streamlit runs a script of the folder
    ``pages/`` beside the entry script directly when its address is asked for first."""
    training.capture_link()
    me = session.get()
    ws = me.workspace()
    me.collect_all()
    ws = me.workspace()
    link_to_url(ws)
    if banner:
        training.link_banner(ws)
    return ws


def replace_workspace(new: Workspace, what: str) -> bool:
    """Make ``new`` the session's workspace, asking first when trained models would be lost. True when done.

    Models trained or loaded in this session are lost with their data; the bundled pre-trained ones are not
    (they come back with the sample). The question stays on the page until answered."""
    me = session.get()
    ws = me.workspace()
    at_stake = bool(ws.models) and ws.source not in PRETRAINED_SOURCES.values()
    if at_stake and me.confirmed_replace != what:
        me.pending_replace = (new, what)
        return False
    me.stop(training.SLOT, wait_s=0)
    me.forget(training.SLOT)
    me.ws, me.pending_replace, me.confirmed_replace = new, None, None
    return True


def show_data_in(key: str, value: Any, ws: Workspace) -> None:
    """Set the widget ``key`` to ``value`` when it is new or the session's data has changed since it was set, so
    a data control shows the data in use (a page visit clears widget state; a replacement changes the data)."""
    marker = f"_{key}_for"
    shown_for = session.get().remember("data-controls")
    if not session.has_widget(key) or shown_for.get(marker) != ws.data_id:
        session.set_widget(key, value)
        shown_for[marker] = ws.data_id


def confirm_replace() -> Workspace | None:
    """The question ``replace_workspace`` left: "replace and lose the models?"; the new workspace if yes."""
    me = session.get()
    if not me.pending_replace:
        return None
    new, what = me.pending_replace
    ws = me.workspace()
    st.warning(
        f"Using {literal(what)} replaces the data and the models trained on it ({literal(ws.source)}, on "
        f"{literal(ws.data_label)})."
    )
    left, right = st.columns(2)
    if left.button(f"Replace: use {literal(what, 60)}", key="confirm-replace", type="primary"):
        me.confirmed_replace = what
        replace_workspace(new, what)
        return new
    if right.button("Keep my models", key="cancel-replace"):
        me.pending_replace = None
        for name in ("_data_task_for", "_data_source_for"):  # the data controls show the data again
            me.remember("data-controls").pop(name, None)
        st.rerun()
    return None


# what the sidebar calls each of a session's long actions while it runs
SLOT_WORDS = {"train": "Training now", "sweep": "Sweep now", "seeds": "Seeds now"}


def status_line() -> str:
    """The sidebar's words about the data, the models and this session's running jobs."""
    me = session.get()
    ws = me.workspace()
    kinds = " and ".join(LABELS[k] for k in KINDS if k in ws.models)
    models = f"{kinds}, {literal(ws.source)}" if ws.models else "no models yet"
    settings = f"  \nSettings: {afm.config.describe(ws.config, ['attention_factor', 'dropout', 'attention_dropout'])}"
    settings += f"  \nAFM recipe: {recipe_words(ws)}"
    busy = "".join(
        f"  \n{SLOT_WORDS.get(name, name)}: {literal(held.job.text)}"
        for name, held in me.slots.items()
        if not held.job.done
    )
    return f"Data: {literal(ws.data_label)} · task: {ws.task}  \nModels: {models}{settings if ws.models else ''}{busy}"


def show_status(slot: Any = None, following: str | None = None) -> None:
    """The sidebar's status line. With ``slot`` (an ``st.empty``, from the entry script) it is drawn there as a
    fragment that refreshes itself while a job of the session runs and reruns the page when one ends uncollected
    (a sweep that finished while another page was open); without, the kept slot is refreshed now (after a
    training or a load). ``following``: the slot the page draws itself, left out of the refreshing."""
    me = session.get()
    link_to_url(me.workspace())
    if slot is None:
        if me.status_slot is not None:
            me.status_slot.caption(status_line())
        return
    me.status_slot = slot
    with slot.container():
        others = lambda: any(me.running(name) for name in list(me.slots) if name != following)  # noqa: E731
        progress.status_fragment(status_line, others, me.uncollected)


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

TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def link_notice(name: str, words: str) -> None:
    """Say, in words, that the link's value of ``name`` was not used and why (never a Python message); once: the
    value counts as seen (``from_link`` is False for it from now on), so later runs of the page do not repeat it."""
    st.warning(f"Link value {literal(name)} ignored: {words}.")
    if (raw := st.query_params.get(name)) is not None:
        session.get().remember("url-written")[name] = raw


def from_link(name: str) -> bool:
    """The URL's value of ``name`` came with the link (or was typed), not from this app's ``set_query``, and has
    had no notice yet: the pages rewrite the URL as the user works, and only a value the app did not write deserves
    a notice."""
    raw = st.query_params.get(name)
    return raw is not None and session.get().remember("url-written").get(name) != raw


def query_value(
    name: str,
    default: Any,
    cast: type = str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    choices: Any = None,
) -> Any:
    """A setting from the URL query string, or ``default`` when absent. A value the page cannot use (not a whole
    number for ``int``, not true/false for ``bool``, not one of ``choices``) gives ``default``; a whole number
    outside ``lo`` .. ``hi`` is brought inside. Either way a value that came with a link (``from_link``) gets a
    notice in words (``link_notice``): a hand-edited or stale link never fails the page, never shows a Python
    message and is never silently ignored."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    text, notice = str(raw).strip(), link_notice if from_link(name) else lambda name, words: None
    if cast is bool:
        if text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        notice(name, "it must be true or false")
        return default
    if cast is int:
        within = f" from {lo:,} to {hi:,}" if lo is not None and hi is not None else ""
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            notice(name, f"it must be a whole number{within}")
            return default
        value = int(text)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            notice(name, f"it must be a whole number{within}")
            return min(max(value, lo if lo is not None else value), hi if hi is not None else value)
    else:
        try:
            value = cast(text)
        except (TypeError, ValueError, OverflowError):
            notice(name, "the page cannot use it")
            return default
    if choices is not None and value not in list(choices):
        options = [str(c) for c in choices]
        listed = f"one of {literal(', '.join(options))}" if len(options) <= 8 else "one of the page's options"
        notice(name, f"it must be {listed}")
        return default
    return value


def set_query(**values: Any) -> None:
    """Write settings into the URL so the configuration can be shared (remembered as the app's own, so that
    ``query_value`` gives no notice about them)."""
    written = session.get().remember("url-written")
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        written[name] = text
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def link_to_url(ws: Workspace) -> None:
    """The URL carries the data and the settings of the models shown (not of untrained widget values);
    a link the session was opened with stays as it was shared until it is reproduced or replaced."""
    if not session.get().link:
        set_query(data=ws.data_id, task=ws.task, **{k.name: getattr(ws.config, k.name) for k in training.WIDGET_KNOBS})


# ---------------------------------------------------------------------------- output helpers


def figure_html(fig: go.Figure) -> str:
    """The figure as a stand-alone HTML page with plotly.js inside it: it opens offline (a classroom)."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


PRESENT_FONT = 18  # plotly font size in presentation mode (a projector at 1024 × 768)


def show_figure(fig: go.Figure, name: str, key: str | None = None) -> None:
    """A plotly chart (its toolbar has the PNG button) plus an HTML download that works offline (plotly.js
    is embedded in the file, about 4.5 MB, rather than fetched from a CDN). In presentation mode
    (``session.get().present``, set by streamlit_app.py) the figure's fonts are larger on screen."""
    shown = fig
    if session.get().present:
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
    limit_mb = settings.get("AFM_MAX_UPLOAD_MB") or st.get_option("server.maxUploadSize")
    try:
        return int(float(limit_mb) * 1024 * 1024)
    except (TypeError, ValueError):
        return 50 * 1024 * 1024


def upload_bytes(upload: Any) -> bytes | None:
    """The uploaded file's bytes, or None after an ``st.error`` when it is larger than the limit."""
    size, limit = upload.size, max_upload_bytes()
    if size > limit:
        st.error(
            f"{literal(upload.name)} is {size / 2**20:.1f} MB; uploads are limited to {limit / 2**20:.1f} MB here."
        )
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
    """An error for the browser, as literal text (``literal``): one line, with quoted file contents (a bad token, a
    label) left out and the server's data folders named by their names only (``afm.datasets.public_message``)."""
    text = afm.datasets.public_message(" ".join(str(err).split()) or type(err).__name__)
    return literal(re.sub(r"(label |feature id |value )?'[^']*'(?= is not)", "a token", text), 400)


def part_picker(ws: Workspace, url_name: str, default: str, label: str = "Rows", key: str | None = None) -> str:
    """A select box of the workspace's parts (widget ``key``), linked to the URL parameter ``url_name``."""
    parts = list(ws.parts)
    fallback = default if default in parts else parts[0]
    part = st.selectbox(
        label,
        parts,
        index=parts.index(query_value(url_name, fallback, choices=parts)),
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
        seen = caches.cardinalities(ws.data_id, data)
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
                st.success(f"Saved run {literal(path.name)} in the runs folder.")
            except (ValueError, OSError, RuntimeError) as err:
                st.error(f"Could not save the run: {literal(' '.join(str(err).split()), 300)}")
    with right:
        for kind, model in ws.models.items():
            payload = checkpoint_bytes(model, **model_metadata(ws, kind))
            st.download_button(f"Download {LABELS[kind]} checkpoint", payload, file_name=f"{kind}.pt",
                               key=f"dm-download-{kind}")  # fmt: skip


def accept_models(ws: Workspace, loaded: dict[str, tuple[Any, dict[str, Any]]], source: str) -> bool:
    """Put loaded models in the workspace if they fit its data (True); say why not otherwise (False). Models the
    workspace keeps (an FM beside a newly loaded AFM) keep their own source: the sidebar names each one's."""
    data = ws.parts["all"]
    for model, _ in loaded.values():
        try:
            data.check_fits(model)
        except ValueError as err:
            st.error(f"{literal(err, 400)}. Load the data it was trained on first.")
            return False
    histories = dict(ws.histories)
    for model, meta in loaded.values():
        epochs = (meta.get("history") or {}).get("epochs")
        if epochs:
            histories[model.config.kind] = pd.DataFrame(epochs)
    new = {m.config.kind: m for m, _ in loaded.values()}
    sources = {kind: ws.sources.get(kind, ws.source) for kind in ws.models if kind not in new}
    sources.update(dict.fromkeys(new, source))
    ws.set_models({**ws.models, **new}, histories, session.sources_words(sources))
    ws.sources = sources
    st.success(f"Loaded {', '.join(LABELS[m.config.kind] for m, _ in loaded.values())} from {literal(source)}.")
    return True


LOAD_LABEL = "Load a saved run or upload a checkpoint"
CHECKPOINT_LABEL = "Checkpoint (.pt) saved by afm"


def load_models_expander(ws: Workspace) -> None:
    """Load a saved run, or upload a checkpoint. The expander stays open while checkpoints are being loaded (an
    AFM, then an FM), whatever the page draws above it meanwhile, and the uploader is emptied after each use, so
    the next file can be chosen at once."""
    memo = session.get().remember("load-models")  # "open": a checkpoint was chosen; "uploads": the uploader's round
    with st.expander(LOAD_LABEL, expanded=bool(memo.get("open")), key="dm-load"):  # a key: one expander wherever
        if message := memo.pop("loaded", None):  # drawn, so the browser keeps it open as the user left it
            st.success(message)
        runs = afm.runs.list_runs()
        if runs.empty:
            st.caption(f"No saved runs in {literal(afm.runs.runs_dir().name)}/ yet.")
        else:
            choice = st.selectbox("Saved run", runs["name"], key="dm-run")
            if st.button("Load run", key="dm-load-run"):
                try:
                    accept_models(ws, afm.runs.load_run(runs.set_index("name").loc[choice, "path"])["models"],
                                  f"run {choice}")  # fmt: skip
                except ValueError as err:
                    st.error(f"Could not load run {literal(choice)}: {literal(err, 400)}")
        round_ = memo.get("uploads", 0)  # a new key empties the uploader: the first keeps "dm-ckpt"
        upload = st.file_uploader(CHECKPOINT_LABEL, type=["pt"], key="dm-ckpt" if not round_ else f"dm-ckpt-{round_}")
        if upload is not None:
            memo["open"] = True  # from now on the expander is drawn open
        raw = upload_bytes(upload) if upload is not None else None
        if raw is not None and st.button("Use this checkpoint", key="dm-use-ckpt"):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "upload.pt"  # never a path taken from the upload's name
                path.write_bytes(raw)
                try:
                    model, meta = afm.load_model(path)
                except ValueError as err:
                    reason = literal(str(err).split(": ", 1)[-1], 400)
                    st.error(f"{literal(upload.name)} is not a usable afm checkpoint: {reason}")
                    return
            if accept_models(ws, {model.config.kind: (model, meta)}, f"upload {upload.name}"):
                memo["uploads"] = round_ + 1
                memo["loaded"] = f"Loaded {LABELS[model.config.kind]} from {literal(f'upload {upload.name}')}."
                st.rerun()  # the page (and the sidebar) with the new model, the uploader empty for the next file


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
