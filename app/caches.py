"""The server's shared things, each made once: the worker pool, the start-up warm-up, the bundled datasets and
pre-trained models, and the whole-data explanations keyed by what a model is.

``st.cache_resource`` for read-only shared objects, ``st.cache_data`` for frames. Nothing runs at import: the
entry script (streamlit_app.py) calls ``warm_up()`` once per server.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jobs
import limits
import pandas as pd
import streamlit as st
import torch

import afm
from afm import settings

if TYPE_CHECKING:  # typing only: session imports this module
    from session import Workspace

PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"
KINDS = ("afm", "fm")


@st.cache_resource(show_spinner=False)
def pool() -> jobs.Pool:
    """The server's one worker pool (``AFM_WORKERS`` workers, ``AFM_JOB_CACHE_MB`` of finished results)."""
    return limits.watch_pool(jobs.Pool())  # its jobs are bounded, and stopped when their tabs close


@st.cache_resource(show_spinner=False)
def warm_up() -> bool:
    """What a server pays once at start, before the first session's first click (called by the entry script).

    The first optimiser a process creates imports torch._dynamo (torch.optim's _disable_dynamo): about 1 s of
    imports holding the interpreter lock. Left lazy, it fell inside the first training a class started (py-spy,
    8 sessions: 1.7 s of that training), stalling every session's page and the health check meanwhile.

    Streamlit collects all garbage after every script run (runner.postScriptGC). With torch, pandas and plotly
    loaded, that walks ~250k long-lived objects (0.12 s with the interpreter lock held, per run of every
    session: a third of the lock's time with 8 sessions training). Objects alive now (modules, classes) live
    as long as the server, so they go to the permanent generation once; the collections then walk only what
    the runs create.

    Every environment setting is parsed here too (``afm.settings``): a misconfigured server stops at its first
    page with one line naming the variable, rather than in some session's click."""
    settings.values()  # every AFM_* variable parsed now: a bad value stops the server, naming the variable
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    torch.set_num_threads(pool().threads)  # workers times threads never exceed the cores (app/jobs.py)
    gc.collect()
    gc.freeze()
    return True


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
    return afm.datasets.load_parts(path, seed=seed, roots=afm.datasets.data_roots())  # checked again as it is read


# A Summary holds exact per-pair sums and the full explanation of a seeded sample of at most
# afm.explain.SAMPLE_ROWS rows (about 240 MB at 39 fields): never [N, P] for all N. Six entries: AFM and FM
# on three parts.
@st.cache_resource(show_spinner=False, max_entries=6)
def _summary(token: str, kind: str, part: str, _model: Any, _data: afm.Dataset) -> afm.Summary:
    return afm.summarize(_model, _data)


@st.cache_data(show_spinner=False, max_entries=32)
def _field_frame(token: str, kind: str, part: str, _model: Any, _data: afm.Dataset) -> pd.DataFrame:
    return afm.field_pair_frame(_model, _data, summary=_summary(token, kind, part, _model, _data))


FEATURE_ROWS = 500  # the most feature pairs a page lists


@st.cache_data(show_spinner=False, max_entries=32)
def _feature_frame(token: str, kind: str, part: str, min_count: int, _model: Any, _data: afm.Dataset) -> pd.DataFrame:
    summary = _summary(token, kind, part, _model, _data)
    # the first FEATURE_ROWS only: a sample of Criteo-like data has millions of distinct feature pairs
    return afm.feature_pair_frame(_model, _data, top=FEATURE_ROWS, min_count=min_count, summary=summary)


# Distinct features per field: one torch.unique per field over every row (0.7 s on an 820k x 39 upload),
# which the Data & model page showed on each of its reruns. Keyed by what the data is (Workspace.data_id).
@st.cache_resource(show_spinner=False, max_entries=8)
def cardinalities(data_id: str, _data: afm.Dataset) -> dict[str, int]:
    return _data.cardinalities()


def model_key(ws: Workspace, kind: str) -> str:
    """The cache key of a model's explanations: its provenance where known (the bundled models, a pool job's
    result: the same objects in every session, so thirty sessions share one summary), else the session's token."""
    return f"{ws.data_id}|{ws.model_id(kind)}"


def summary(ws: Workspace, kind: str, part: str = "all") -> afm.Summary:
    """The whole-data explanation of ``part`` by model ``kind`` (cached per model): exact sums per pair and
    field, and the full explanation of a seeded row sample (``summary.sample``, ``summary.sample_data``;
    ``summary.sample_note()`` says how many rows)."""
    return _summary(model_key(ws, kind), kind, part, ws.models[kind], ws.parts[part])


def field_frame(ws: Workspace, kind: str, part: str = "all") -> pd.DataFrame:
    """``afm.field_pair_frame`` of ``part``: exact over every row."""
    return _field_frame(model_key(ws, kind), kind, part, ws.models[kind], ws.parts[part])


def feature_frame(ws: Workspace, kind: str, part: str = "all", min_count: int = 5) -> pd.DataFrame:
    """The first ``FEATURE_ROWS`` rows of ``afm.feature_pair_frame`` of ``part``, on the summary's row sample
    (see ``sample_note``)."""
    return _feature_frame(model_key(ws, kind), kind, part, min_count, ws.models[kind], ws.parts[part])


def sample_note(ws: Workspace, kind: str, part: str = "all") -> str:
    """For a caption: "computed on a seeded sample of 20,000 of 820,000 rows" (or "on all N rows")."""
    return summary(ws, kind, part).sample_note()


def evaluate_part(model: Any, parts: dict[str, afm.Dataset], task: str, part: str) -> dict[str, float]:
    """A model's metrics on ``parts[part]``, predictions clipped to the training labels' range ({} without it)."""
    if part not in parts:
        return {}
    train = parts.get("train")
    clip_range = afm.label_range(train, task) if train is not None else None
    return afm.evaluate(model, parts[part], task, label_range=clip_range)
