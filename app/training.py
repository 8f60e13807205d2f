"""A session's training: submit it to the server's pool (``jobs``), watch it, Stop it, collect it.

One training at a time per session (``st.session_state.job``). A page's script never trains: it
submits a job and draws its progress; leaving the page, rerunning it or pressing Stop does not
restart anything. ``collect`` (called by ``state.workspace`` on every page) puts a finished job's
models in the workspace with the settings they were trained with.

Links: the settings in a link are read once, on the session's first view (``capture_link``); opening a
link never trains. When the loaded models were made with other settings, ``link_banner`` says so and
offers one button.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import jobs
import pandas as pd
import streamlit as st

import afm
from afm.config import knobs

WIDGET_KNOBS = [k for k in knobs(afm.TrainConfig) if k.widget]
# AFM_TRACE_JOBS=1: one stderr line per followed job (benchmarks/load.py reads the server's timings from it)
TRACE = os.environ.get("AFM_TRACE_JOBS", "") not in ("", "0")
SHORT = {"attention_factor": "t", "embed_dim": "k", "l2_attention": "λ"}


def session_id() -> str:
    if "sid" not in st.session_state:
        st.session_state.sid = uuid.uuid4().hex
    return st.session_state.sid


def current() -> jobs.Job | None:
    """This session's training job (running or finished and not yet collected)."""
    return st.session_state.get("job")


def running() -> bool:
    job = current()
    return job is not None and not job.done


def describe(config: afm.TrainConfig, names: list[str] | None = None) -> str:
    """Settings in words: "t = 8, dropout on the interaction layer = 0.1"."""
    names = names or [k.name for k in WIDGET_KNOBS]
    labels = {k.name: k.label for k in WIDGET_KNOBS}
    return ", ".join(f"{SHORT.get(n, labels.get(n, n).split(':')[0].lower())} = {getattr(config, n)}" for n in names)


def differences(a: afm.TrainConfig, b: afm.TrainConfig) -> list[str]:
    return [k.name for k in WIDGET_KNOBS if getattr(a, k.name) != getattr(b, k.name)]


def start(ws: Any, config: afm.TrainConfig, live: bool = False) -> jobs.Job:
    """Submit the training of ``config`` on the workspace's data (this session's earlier job is let go).

    Only the models a change affects are trained: when only AFM knobs changed (t, the attention dropout,
    ...) the session's FM is kept and only the AFM is trained, from that FM. ``live`` (live mode: only live
    knobs moved) starts from the session's current weights where the shapes allow (the AFM unless t changed,
    the FM when the dropout changed), so a few epochs suffice. Identical jobs are shared across sessions."""
    stop(quiet=True)
    st.session_state.pop("link", None)  # the user has chosen settings: a link's are history now
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
        fm_id = model_id(ws, "fm")
    elif "fm" in warm:
        fm_id = jobs.job_key("warm", ws.data_id, {n: getattr(config, n) for n in fm_settings}, model_id(ws, "fm"))
    else:
        fm_id = "fm-" + jobs.job_key(ws.data_id, config.task, {n: getattr(config, n) for n in fm_settings})
    afm_start = model_id(ws, "afm") if "afm" in warm else None
    key = jobs.job_key(ws.data_id, config.to_dict(), fm_id, afm_start)
    train, valid = ws.parts["train"], ws.parts.get("valid")

    def work(job: jobs.Job) -> dict[str, Any]:
        curves: dict[str, pd.DataFrame] = {}

        def callback(p: afm.Progress) -> bool:
            kind = p.model.config.kind
            share = p.fraction if fm is not None else (0.5 if kind == "afm" else 0.0) + p.fraction / 2
            if p.epoch_end and p.history is not None:
                curves[kind] = p.history.to_frame()
            text = f"{kind.upper()} epoch {p.epoch}/{p.epochs} · loss {p.train_loss:.4f}"
            return job.report(share, text, **curves)

        pair = afm.train_pair(config, train, valid, callback=callback, fm=fm, warm=warm)
        return {"pair": pair, "reused_fm": fm is not None, "warm": sorted(warm), "fm_id": fm_id}

    what = ("AFM only (FM kept): " if reuse else "") + describe(config, changed or ["attention_factor"])
    job = jobs.pool().submit(key, what, work, session_id())
    st.session_state.job = job
    st.session_state.job_for = (ws.data_id, config)
    st.session_state.job_asked = time.time()
    return job


def model_id(ws: Any, kind: str) -> str:
    """What a model is, for job keys: how it was made (a job key, "pretrained-..."), or, for a model of
    unknown provenance (an uploaded checkpoint, a loaded run), this session's own id, never shared."""
    return ws.model_ids.get(kind) or f"session-{ws.token}:{kind}"


def stop(quiet: bool = False) -> str | None:
    """Stop this session's training. The job ends when no other session waits for the same one; either
    way this session lets it go. Returns what happened in words (None when nothing was running)."""
    job = current()
    if job is None or job.done:
        return None
    if job.stop(session_id(), wait_s=0 if quiet else 30):
        return "stopped"
    st.session_state.pop("job", None)
    return f"left: {len(job.owners)} other session(s) asked for the same training, which goes on for them"


def collect(ws: Any) -> str | None:
    """Put this session's finished job's models in ``ws``; returns a message for the page (or None)."""
    job = current()
    if job is None or not job.done:
        return None
    st.session_state.pop("job", None)
    data_id, config = st.session_state.pop("job_for", (None, None))
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


def watch(ws: Any, chart_of: Any = None) -> str | None:
    """Draw this session's running job until it finishes (queue place, progress, live curves), then
    collect it. The script waits here; a click (Stop, a page change) interrupts the wait, not the job."""
    job = current()
    if job is None:
        return None
    follow(job, chart_of)
    if TRACE:  # one line per followed job, for benchmarks/load.py: the server's side of "click to trained"
        asked = st.session_state.get("job_asked", job.submitted)
        sys.stderr.write(
            f"afm-trace session={session_id()[:8]} job={job.key[:8]} state={job.state} asked_to_shown="
            f"{time.time() - asked:.2f} training={job.seconds:.2f}\n"
        )  # one write: lines stay whole
    return collect(ws)


# Streamlit's "running" figure in the page header changes 5 times a second while a script runs, and each
# change made the browser restyle the whole page: about 0.1 CPU s per second of waiting, per browser tab
# (Data & model, a click that waits 8 s: 2.3-2.6 CPU s in Chromium with it, 1.6 without). While a training is
# followed the progress bar says the same, so the figure is hidden until the bar's last message.
QUIET_HEADER = "<style>[data-testid='stStatusWidget'] { display: none !important; }</style>"


def pace(watchers: int) -> tuple[float, float | None]:
    """Seconds between progress messages and between live-curve redraws (None: no live curves) when
    ``watchers`` sessions follow trainings on this server. Every message makes the server build it and a
    browser redraw the page; with a class training at once those redraws, not the trainings, took the
    time (8 sessions: 4.4 s to train, 13-19 s until each browser showed it), so the pace slows with the
    crowd: one session gets progress 4×/s and curves 1×/s; four or more get progress every second or two and
    their curves when the training ends."""
    crowd = max(1, watchers)
    return min(0.25 * crowd, 2.0), (1.0 * crowd if crowd < 4 else None)


def follow(job: jobs.Job, chart_of: Any = None, text_of: Any = None) -> None:
    """A progress bar (with the queue place while waiting; ``text_of(job)``, else the job's text, while it
    runs) and, with ``chart_of(curves)``, live curves, until ``job`` ends; then the bar says how it ended.
    Messages are paced by the server's load (``pace``)."""
    pool = jobs.pool()
    quiet = st.empty()
    quiet.markdown(QUIET_HEADER, unsafe_allow_html=True)
    bar, chart = st.progress(0.0, text="starting"), st.empty()
    shown, shown_at, drawn, drawn_at = None, 0.0, -1, 0.0
    while not job.done:
        every, curves_every = pace(pool.watchers())
        now = time.monotonic()
        place = pool.position(job)
        text = f"queued: {place - 1} job(s) ahead of yours" if place else text_of(job) if text_of else job.text
        if (text, round(job.fraction, 2)) != shown and now - shown_at >= every:
            bar.progress(job.fraction, text=text)  # a message to the browser only when something changed
            shown, shown_at = (text, round(job.fraction, 2)), now
        epochs = sum(len(c) for c in job.curves.values())
        if (chart_of is not None and curves_every is not None and epochs != drawn and job.curves
                and now - drawn_at >= curves_every):  # fmt: skip
            chart.plotly_chart(chart_of(dict(job.curves)), key=f"live-{epochs}")
            drawn, drawn_at = epochs, now
        time.sleep(0.25)
    bar.progress(1.0, text=f"{job.state} after {job.seconds:.1f} s")
    chart.empty()
    quiet.empty()


# ---------------------------------------------------------------------------- links


def capture_link() -> None:
    """Read a shared link's settings once per session, before any page rewrites the URL."""
    if "link_seen" in st.session_state:
        return
    st.session_state.link_seen = True
    raw = {k.name: st.query_params.get(k.name) for k in WIDGET_KNOBS if st.query_params.get(k.name) is not None}
    notices, values = [], {}
    for name, text in raw.items():
        k = next(k for k in WIDGET_KNOBS if k.name == name)
        if k.optional and text == "None":
            values[name] = None
            continue
        try:
            values[name] = k.check(text)
        except (TypeError, ValueError) as err:
            notices.append(f"Link setting ignored: {err}.")
    st.session_state.link_notices = notices
    if values or st.query_params.get("data"):
        st.session_state.link = {"values": values, "data": st.query_params.get("data")}


def link_values() -> dict[str, Any]:
    """The settings of the link this session was opened with (valid ones only)."""
    return (st.session_state.get("link") or {}).get("values", {})


def link_banner(ws: Any) -> None:
    """When this session was opened with a link whose models differ from the loaded ones: say so, with one
    button to train them. Nothing trains until it is pressed."""
    for notice in st.session_state.pop("link_notices", []):
        st.warning(notice)
    link = st.session_state.get("link")
    if not link:
        return
    if link.get("data") and link["data"] != ws.data_id:
        st.info(
            f"This link was made on other data ({link['data']}), which this session has not loaded; the page shows "
            f"{ws.data_label}. Load that data on **Data & model** to see the link's models."
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
        st.session_state.pop("link", None)
        watch(ws)
        st.rerun()
