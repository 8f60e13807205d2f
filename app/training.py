"""A session's training: the session's "train" job slot (``session.Session``): start it, watch it, Stop it.

One training at a time per session. A page's script never trains: it submits a job and draws its progress;
leaving the page, rerunning it or pressing Stop does not restart anything. ``collect`` (the slot's collect
callback, run on every page by ``widgets.workspace``) puts a finished job's models in the workspace with the
settings they were trained with.

Links: the settings in a link are read once, on the session's first view (``capture_link``); opening a
link never trains. When the loaded models were made with other settings, ``link_banner`` says so and
offers one button.
"""

from __future__ import annotations

import copy
import re
import sys
import time
from typing import Any

import jobs
import pandas as pd
import session
import streamlit as st

import afm
from afm import settings
from afm.config import describe, differences, knob_of, knobs

WIDGET_KNOBS = [k for k in knobs(afm.TrainConfig) if k.widget]
# AFM_TRACE_JOBS=1: one stderr line per collected training (benchmarks/load.py reads the server's timings from it)
TRACE = settings.get("AFM_TRACE_JOBS")


SLOT = "train"  # the session's job slot for trainings
PUBLISH_S = 0.2  # a live training publishes a copy of its AFM at most this often (and at every epoch end)


def current() -> jobs.Job | None:
    """This session's training job (running or finished and not yet collected)."""
    return session.get().current(SLOT)


def running() -> bool:
    return session.get().running(SLOT)


def start(ws: session.Workspace, config: afm.TrainConfig, live: bool = False, publish: bool = False) -> jobs.Job:
    """Submit the training of ``config`` on the workspace's data (this session's earlier job is let go).

    Only the models a change affects are trained: when only AFM knobs changed (t, the attention dropout,
    ...) the session's FM is kept and only the AFM is trained, from that FM. ``live`` (live mode: only live
    knobs moved) starts from the session's current weights where the shapes allow (the AFM unless t changed,
    the FM when the dropout changed), so a few epochs suffice. ``publish``: the job publishes a copy of the AFM
    it trains every ``PUBLISH_S`` seconds and at epoch ends, for the live panel. Identical jobs are shared
    across sessions."""
    me = session.get()
    me.link = None  # the user has chosen settings: a link's are history now
    changed = differences(ws.config, config)
    fm_settings = [k.name for k in WIDGET_KNOBS if not k.afm_only]
    has = {kind for kind in ("afm", "fm") if kind in ws.models and kind in ws.histories}
    reuse = "fm" in has and ws.config.task == config.task and not set(changed) & set(fm_settings)
    monitor = afm.TASKS[ws.task].monitor
    fm = (ws.models["fm"], afm.History(ws.task, monitor, ws.histories["fm"].to_dict("records"))) if reuse else None
    warm: dict[str, Any] = {}
    if live and ws.config.task == config.task and all(k.live for k in WIDGET_KNOBS if k.name in changed):
        warm = {kind: ws.models[kind] for kind in has if not (reuse and kind == "fm")}
        if "attention_factor" in changed:
            warm.pop("afm", None)  # W is t x k: a new t starts the AFM at the FM, as the paper does
    # The FM a job ends with: the session's (reused), one warm-started from it, or one trained from scratch,
    # which is named by its data and FM settings alone, so an AFM-only job from that FM and a job that trains
    # both get the same key when they compute the same thing.
    if reuse:
        fm_id = ws.model_id("fm")
    elif "fm" in warm:
        fm_id = jobs.job_key("warm", ws.data_id, {n: getattr(config, n) for n in fm_settings}, ws.model_id("fm"))
    else:
        fm_id = "fm-" + jobs.job_key(ws.data_id, config.task, {n: getattr(config, n) for n in fm_settings})
    afm_start = ws.model_id("afm") if "afm" in warm else None
    key = jobs.job_key(ws.data_id, config.to_dict(), fm_id, afm_start)
    train, valid = ws.parts["train"], ws.parts.get("valid")

    def work(job: jobs.Job) -> dict[str, Any]:
        curves: dict[str, pd.DataFrame] = {}
        published = [0.0]

        def callback(p: afm.Progress) -> bool:
            kind = p.model.config.kind
            share = p.fraction if fm is not None else (0.5 if kind == "afm" else 0.0) + p.fraction / 2
            if p.epoch_end and p.history is not None:
                curves[kind] = p.history.to_frame()
            text = f"{kind.upper()} epoch {p.epoch}/{p.epochs} · loss {p.train_loss:.4f}"
            now = time.monotonic()
            if publish and kind == "afm" and p.model is not None and (p.epoch_end or now - published[0] >= PUBLISH_S):
                job.publish("afm", copy.deepcopy(p.model).eval(), p.epoch, p.epochs)  # a copy: training goes on
                published[0] = now
            return job.report(share, text, **curves)

        pair = afm.train_pair(config, train, valid, callback=callback, fm=fm, warm=warm)
        return {"pair": pair, "reused_fm": fm is not None, "warm": sorted(warm), "fm_id": fm_id}

    what = ("AFM only (FM kept): " if reuse else "") + describe(config, changed or ["attention_factor"])
    return me.submit(SLOT, key, what, work, collect, {"data_id": ws.data_id, "config": config, "asked": time.time()})


def stop(quiet: bool = False) -> str | None:
    """Stop this session's training. The job ends when no other session waits for the same one; either
    way this session lets it go. Returns what happened in words (None when nothing was running)."""
    outcome = session.get().stop(SLOT, wait_s=0 if quiet else 30)
    return outcome.replace("the same work", "the same training") if outcome else None


def collect(ws: session.Workspace, job: jobs.Job, meta: dict[str, Any]) -> str | None:
    """The train slot's collect callback: put the finished ``job``'s models in ``ws``; returns a message for
    the page (or None)."""
    data_id, config = meta["data_id"], meta["config"]
    if TRACE:  # one line per collected job, for benchmarks/load.py: the server's side of "click to trained"
        sys.stderr.write(
            f"afm-trace session={session.get().sid[:8]} job={job.key[:8]} state={job.state} asked_to_shown="
            f"{time.time() - meta.get('asked', job.submitted):.2f} training={job.seconds:.2f}\n"
        )  # one write: lines stay whole
    if job.state == jobs.FAILED:
        return f"error: training failed: {job.error}"
    if data_id != ws.data_id:
        return None  # the data changed meanwhile; the models belong to other data
    pair = job.result["pair"]
    histories = {kind: history.to_frame() for kind, (_, history) in pair.items()}
    models = {kind: model for kind, (model, _) in pair.items()}
    if job.state == jobs.STOPPED:
        done = ", ".join(
            f"{kind.upper()} {len(h)} epoch(s), best {pair[kind][1].best_epoch}" for kind, h in histories.items()
        )
        source = f"stopped early ({done}; best epochs kept)"
        afm_history = pair["afm"][1] if "afm" in pair else None
        if afm_history is None:
            source += "; the AFM was not trained"
        elif afm_history.stopped == "fm_stopped":  # a Stop during the FM keeps an AFM started exactly at it
            source = f"{afm_history.message} (FM: {done.split(',')[0].removeprefix('FM ')})"
    else:
        source = f"trained here ({job.seconds:.1f} s)"
    if job.result.get("warm"):
        source += f"; live: {' and '.join(k.upper() for k in job.result['warm'])} from the previous weights"
    ws.previous = dict(ws.histories)
    ws.set_models(models, histories, source, config)  # without an AFM when stopped during the FM
    ws.model_ids = {"afm": f"{job.key}:afm", "fm": job.result["fm_id"]}
    return source


def watch(ws: session.Workspace, chart_of: Any = None, live_of: Any = None) -> str | None:
    """Draw this session's running training until it finishes (queue place, progress, live curves), then
    collect it. The script waits here; a click (Stop, a page change) interrupts the wait, not the job."""
    me = session.get()
    if me.current(SLOT) is None:
        return None
    me.follow(SLOT, chart_of, live_of=live_of)
    return me.collect(SLOT, ws)


# ---------------------------------------------------------------------------- links


# Every parameter a link may carry besides the knobs (their names: WIDGET_KNOBS): the data, the task, presentation
# mode, Streamlit's own embed options, and the settings the pages keep with ``widgets.query_value`` /
# ``widgets.part_picker`` (tests/test_literal_text.py checks that every name the pages read is here). Any other
# name is ignored with a notice.
PAGE_LINKS = frozenset({
    "data", "task", "present", "embed", "embed_options",
    "attention_part", "attention_value", "attention_min_count", "attention_rows",
    "explain_mode", "explain_part", "explain_row", "explain_where", "explain_model", "explain_relative",
    "explain_edit", "explain_edit_row", "explain_beyond",
    "compare_part", "how_part", "how_row", "how_pair",
    "sweep_parameter", "sweep_values", "sweep_epochs", "sweep_seeds", "sweep_pretrain", "sweep_metric",
})  # fmt: skip
# what a data id in a link looks like (session.Workspace.data_id): a bundled sample with its task, an upload's
# digest, a libFM folder's name and digest
DATA_ID = re.compile(r"(sample|salient)(-(regression|binary))?|upload:[0-9a-f]{12}|libfm:.{1,200}:[0-9a-f]{12}", re.S)


def link_words(text: str) -> str:
    """A link's text for a notice: literal (never Markdown or HTML) and short."""
    return session.literal(text, 80)


def capture_link() -> None:
    """Read a shared link's settings once per session, before any page rewrites the URL. Every value it cannot use
    (a knob's bad value, an unknown task, data it does not know, a name that is no setting) is kept as a notice in
    words for the first page (``link_banner``)."""
    me = session.get()
    if me.link_seen:
        return
    me.link_seen = True
    params = {name: st.query_params.get(name) for name in st.query_params}
    knob_names = {k.name: k for k in WIDGET_KNOBS}
    notices, values = [], {}
    for name, text in params.items():
        if name in knob_names:
            try:  # the knob's own validator: the CLI's flags and the widgets use the same one
                values[name] = knob_of(name).check(text)
            except (TypeError, ValueError) as err:
                notices.append(f"Link setting ignored: {session.literal(err, 160)}.")
        elif name not in PAGE_LINKS:
            by_symbol = [k.name for k in WIDGET_KNOBS if name in (k.symbol, *(f.lstrip("-") for f in k.flags))]
            hint = f" (a link names that setting {by_symbol[0]})" if by_symbol else ""
            notices.append(f"Link parameter {link_words(name)} ignored: this app has no setting of that name{hint}.")
    task, data, present = params.get("task"), params.get("data"), params.get("present")
    if task is not None and task not in afm.TASKS:
        notices.append(f"Link value task ignored: it must be {' or '.join(afm.TASKS)}; the page uses regression.")
    if present is not None and present.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        notices.append("Link value present ignored: it must be 1 (presentation mode) or 0.")
    if data is not None and not DATA_ID.fullmatch(data):
        notices.append(
            f"Link value data ignored: {link_words(data)} names no data this app knows; the page shows the bundled "
            "sample."
        )
        data = None
    me.link_notices = notices
    if values or data:
        me.link = {"values": values, "data": data}


def link_values() -> dict[str, Any]:
    """The settings of the link this session was opened with (valid ones only)."""
    return (session.get().link or {}).get("values", {})


def link_banner(ws: session.Workspace) -> None:
    """When this session was opened with a link whose models differ from the loaded ones: say so, with one
    button to train them. Nothing trains until it is pressed."""
    me = session.get()
    for notice in me.link_notices:
        st.warning(notice)
    me.link_notices = []
    link = me.link
    if not link:
        return
    if link.get("data") and link["data"] != ws.data_id:
        st.info(
            f"This link was made on other data ({link_words(link['data'])}), which this session has not loaded; the "
            f"page shows {session.literal(ws.data_label)}. Load that data on **Data & model** to see the link's models."
        )
        return
    try:
        wanted = afm.TrainConfig(**{**ws.config.to_dict(), **link["values"], "task": ws.config.task})
    except (TypeError, ValueError):
        return
    changed = differences(ws.config, wanted) if ws.models else list(link["values"])
    if not changed:
        return
    shown = f"the models shown were made with {describe(ws.config, changed)}" if ws.models else "no models yet"
    left, right = st.columns([4, 1])
    left.info(f"This link was made with **{describe(wanted, changed)}** ({shown}). Opening a link trains nothing.")
    if right.button("Train to reproduce", key="link-train", type="primary", disabled=running()):
        start(ws, wanted)
        watch(ws)
        st.rerun()
