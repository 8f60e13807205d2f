"""This browser session, typed: its workspace (data, models, the settings they were made with), its named job
slots, what its link asked for, and what its pages remember between runs.

The only module that touches ``st.session_state`` (tests/test_structure.py fails on a raw key anywhere else):
``get()`` is the session's one ``Session`` object; the widget helpers (``widget``, ``set_widget``, ...) read and
write the values of widgets by their ``key=``, which Streamlit keeps there.

A long action (a training, a sweep, a seed-stability run) is a job on the server's pool (``caches.pool()``) held
in a named slot: ``submit`` puts it there (letting an earlier job of that slot go), ``current`` is the slot's job,
``stop`` asks it to end, ``follow`` draws its progress until it ends, ``collect`` hands over a finished job (and
runs the slot's ``collect`` callback, which turns the result into the workspace's models, rows, ...).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import caches
import jobs
import limits
import pandas as pd
import progress
import streamlit as st

import afm
from afm.train import TrainConfig

KEY = "afm"  # the one st.session_state entry this module owns (plus the widgets' own keys)
KINDS = ("afm", "fm")
LABELS = {"afm": "AFM", "fm": "FM"}
SAMPLE_LABELS = {"sample": "bundled sample", "salient": "bundled salient sample"}
# a workspace's source while it holds a sample's bundled models (they come back with the sample: nothing at stake)
PRETRAINED_SOURCES = {"sample": "pre-trained on the sample", "salient": "pre-trained on the salient sample"}


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
    sources: dict[str, str] = field(default_factory=dict)  # kind -> its own source, when the models' differ
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

    def model_id(self, kind: str) -> str:
        """What a model is, for job keys and shared caches: how it was made (a job key, "pretrained-..."), or, for
        a model of unknown provenance (an uploaded checkpoint, a loaded run), this workspace's token, never
        shared."""
        return self.model_ids.get(kind) or f"session-{self.token}:{kind}"

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
        self.models, self.histories, self.source, self.sources = models, histories, source, {}
        self.model_ids = {}  # unknown provenance: never shared (model_id falls back to the token)
        if config is not None:
            self.config = config
        self.metrics = {k: caches.evaluate_part(m, self.parts, self.task, "test") for k, m in models.items()}
        self.token = uuid.uuid4().hex


def sources_words(sources: dict[str, str]) -> str:
    """One source for models loaded from several: "upload a.pt" when they share it, else each model's ("AFM: upload
    a.pt; FM: upload b.pt")."""
    if len(set(sources.values())) <= 1:
        return next(iter(sources.values()), "")
    kinds = [k for k in KINDS if k in sources] + [k for k in sources if k not in KINDS]
    return "; ".join(f"{LABELS.get(kind, kind.upper())}: {sources[kind]}" for kind in kinds)


def sample_workspace(task: str = "regression", name: str = "sample") -> Workspace:
    """A workspace on bundled sample ``name`` with its pre-trained AFM and FM loaded."""
    ws = Workspace(name, SAMPLE_LABELS.get(name, name), task, caches.sample_parts(task, name))
    loaded = caches.pretrained(task, name)
    histories = {k: afm.History.from_dict(meta["history"]).to_frame() for k, (_, meta) in loaded.items()}
    ws.config = TrainConfig.from_dict(loaded["afm"][1]["config"])
    ws.set_models({k: m for k, (m, _) in loaded.items()}, histories, PRETRAINED_SOURCES[name])
    ws.model_ids = {k: f"pretrained-{name}-{task}:{k}" for k in loaded}
    return ws


# ---------------------------------------------------------------------------- text that stays text
# (here, the one module every other imports: the pages use it as widgets.literal, training's links as well)

# Streamlit renders st.info/warning/error/success/caption/markdown, metric and widget labels as Markdown (GitHub's,
# with Streamlit's :colour[...] directives and $...$ maths). literal() takes away every construct a single line can
# open: < > & become entities (no tag, no <autolink>, no entity); backslashes escape \ ` * ~ $ [ ] (code, emphasis,
# strikethrough, maths, links, images, footnotes, directives), an underscore that could open or close emphasis
# (not one inside a word: app_rating stays as it is) and a first character that would start a heading, a list or a
# quote. GitHub's autolinks (https://..., www...., name@host) are found in the text after the escapes are read, so
# an invisible word joiner (U+2060) goes after their "://", "www" and "@" instead. Punctuation that does nothing
# inside a line (a full stop, a colon, parentheses) is left alone, so plain messages read the same in the source.
_ALWAYS = re.compile(r"([\\`*~$\[\]])")
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_AUTOLINK = re.compile(r"(?i):(?=//)|www(?=\.)|@")
WORD_JOINER = "\u2060"
_LINE_START = re.compile(r"^(\s*)([#+\-=|]|\d+(?=[.)]))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def literal(text: Any, limit: int = 200) -> str:
    """``text`` (a user- or link-controlled string: a data id, a file, column or run name, a cell value, a message
    that quotes one) made literal inside Streamlit's Markdown: shown exactly as written, never as a link, bold,
    a heading or HTML (an address in it gets an invisible word joiner, so it is not made a link). Control characters
    and line breaks become spaces (the text stays on its line), and text longer than ``limit`` characters is cut
    with an ellipsis. For Markdown contexts only: plain-text ones (options
    of a select box, a table's cells, ``st.text``, ``st.code``) show ``text`` as it is."""
    text = _CONTROL.sub(" ", str(text))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _ALWAYS.sub(r"\\\1", text)
    text = _EMPHASIS_UNDERSCORE.sub(r"\\_", text)
    text = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, text)
    return _LINE_START.sub(
        lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit() else m.group(2) + "\\"), text
    )


# A slot's collect callback: (workspace, the finished job, the slot's meta) -> a message for the page, or None.
Collector = Callable[[Workspace, jobs.Job, dict[str, Any]], str | None]


@dataclass
class Slot:
    """One named long action of this session: its job, what the submitter wants kept beside it, and how a
    finished job goes into the workspace."""

    job: jobs.Job
    meta: dict[str, Any] = field(default_factory=dict)
    collect: Collector | None = None


@dataclass
class Session:
    """One browser session: the workspace, the job slots, the link, and what the pages remember."""

    sid: str = field(default_factory=lambda: uuid.uuid4().hex)
    ws: Workspace | None = None
    slots: dict[str, Slot] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # slot -> what its last collect said, for its page
    # the link this session was opened with (read once: training.capture_link)
    link_seen: bool = False
    link: dict[str, Any] | None = None
    link_notices: list[str] = field(default_factory=list)
    # Data & model: a replacement of the data waiting for "replace and lose the models?", and the answer
    pending_replace: tuple[Workspace, str] | None = None
    confirmed_replace: str | None = None
    upload_in_use: tuple[str, str] | None = None  # (upload file id, data id) of the table in use
    live_pending: bool = False  # a live knob moved: train at this run
    # Sweeps
    sweeps_from_link: bool | None = None
    sweeps_timing: tuple[Any, dict[str, float]] | None = None
    # presentation mode (the sidebar's toggle or ?present=1), read by the figures
    present: bool = False
    # small per-session memos of the pages (name -> {key: value}), e.g. the Attention page's effects
    memo: dict[str, dict[Any, Any]] = field(default_factory=dict)
    status_slot: Any = None  # the sidebar's status line (an st.empty), refreshed after a training

    # ------------------------------------------------------------------------ job slots

    def submit(
        self,
        slot: str,
        key: str,
        label: str,
        work: Callable[[jobs.Job], Any],
        collect: Collector | None = None,
        meta: dict[str, Any] | None = None,
    ) -> jobs.Job:
        """Put ``work`` on the server's pool as this session's ``slot`` job (the pool shares identical ``key``s
        across sessions); an earlier job in the slot is let go. ``meta`` is kept beside it for ``collect``."""
        self.stop(slot, wait_s=0)
        self.slots.pop(slot, None)
        job = caches.pool().submit(key, label, work, self.sid)
        self.slots[slot] = Slot(job, dict(meta or {}), collect)
        return job

    def current(self, slot: str) -> jobs.Job | None:
        """The slot's job (running, or finished and not yet collected)."""
        held = self.slots.get(slot)
        return held.job if held is not None else None

    def running(self, slot: str) -> bool:
        job = self.current(slot)
        return job is not None and not job.done

    def meta(self, slot: str) -> dict[str, Any]:
        held = self.slots.get(slot)
        return held.meta if held is not None else {}

    def stop(self, slot: str, wait_s: float = 30.0) -> str | None:
        """Stop the slot's job: it ends when no other session waits for the same one; either way this session
        lets it go. Returns what happened in words (None when nothing was running)."""
        job = self.current(slot)
        if job is None or job.done:
            return None
        if job.stop(self.sid, wait_s=wait_s):
            return "stopped"
        self.slots.pop(slot, None)
        return f"left: {len(job.owners)} other session(s) asked for the same work, which goes on for them"

    def forget(self, slot: str) -> None:
        """Let the slot's job go without stopping it (another session may want it)."""
        self.slots.pop(slot, None)

    def follow(self, slot: str, chart_of: Any = None, text_of: Any = None, live_of: Any = None) -> jobs.Job | None:
        """Draw the slot's job's progress until it ends (``progress.follow``; a job that has ended already gets
        its last message: "stopped after 12.3 s"); returns the job."""
        job = self.current(slot)
        if job is not None:
            progress.follow(job, caches.pool(), chart_of, text_of, live_of)
        return job

    def collect(self, slot: str, ws: Workspace | None = None) -> str | None:
        """Hand over the slot's finished job: the slot is emptied and its collect callback (if any) puts the
        result into ``ws`` (the session's workspace by default); returns the callback's message, which is also
        kept in ``messages[slot]`` for the slot's page."""
        held = self.slots.get(slot)
        if held is None or not held.job.done:
            return None
        del self.slots[slot]
        message = held.collect(ws or self.workspace(), held.job, held.meta) if held.collect else None
        if message:
            self.messages[slot] = message
        return message

    def uncollected(self) -> bool:
        """A job with a collect callback has ended and nothing has collected it yet."""
        return any(held.collect is not None and held.job.done for held in self.slots.values())

    def collect_all(self) -> None:
        """Collect every finished job that has a collect callback (called on every page by ``workspace()``)."""
        for slot in [name for name, held in self.slots.items() if held.collect and held.job.done]:
            self.collect(slot)

    # ------------------------------------------------------------------------ workspace

    def workspace(self) -> Workspace:
        """The workspace (created on first use: a bundled sample named by the link, pre-trained models loaded)."""
        if self.ws is None:
            task = st.query_params.get("task", "regression")
            name = str(st.query_params.get("data", "sample")).rsplit("-", 1)[0]  # "salient-binary" -> salient
            self.ws = sample_workspace(
                task if task in afm.TASKS else "regression", name if name in SAMPLE_LABELS else "sample"
            )
        return self.ws

    def remember(self, name: str, limit: int | None = None) -> dict[Any, Any]:
        """A per-session memo dict ``name`` (kept across pages and runs; the oldest entries beyond ``limit``
        are dropped when the caller adds one)."""
        store = self.memo.setdefault(name, {})
        while limit is not None and len(store) >= limit:
            store.pop(next(iter(store)))
        return store


def get() -> Session:
    """This browser session's ``Session`` (created on first use)."""
    if KEY not in st.session_state:
        st.session_state[KEY] = Session()
        limits.bind(st.session_state[KEY].sid)  # its jobs end when its tab has closed (app/limits.py)
    return st.session_state[KEY]


# ---------------------------------------------------------------------------- widget values (by their key=)


def widget(key: str, default: Any = None) -> Any:
    """The value of the widget made with ``key=key`` (``default`` before it exists)."""
    return st.session_state.get(key, default)


def has_widget(key: str) -> bool:
    return key in st.session_state


def set_widget(key: str, value: Any) -> None:
    """Set the value the widget ``key`` shows at its next drawing."""
    st.session_state[key] = value


def drop_widget(key: str) -> None:
    st.session_state.pop(key, None)
