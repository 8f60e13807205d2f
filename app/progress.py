"""Drawing a job's progress: a bar (with the queue place while it waits), live curves, paced by the server's load.

``follow`` keeps the page's script beside a job until it ends (a click, Stop or another page, interrupts the wait,
not the job), waking when the job reports or ends (``Job.wait`` waits on the job's future). ``status_fragment``
is the sidebar's line about this session's jobs, an ``st.fragment`` that refreshes itself while one runs, so a
sweep started on one page shows its progress on every other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jobs
import limits
import streamlit as st

# Streamlit's "running" figure in the page header changes 5 times a second while a script runs, and each
# change made the browser restyle the whole page: about 0.1 CPU s per second of waiting, per browser tab
# (Data & model, a click that waits 8 s: 2.3-2.6 CPU s in Chromium with it, 1.6 without). While a training is
# followed the progress bar says the same, so the figure is hidden until the bar's last message.
LIVE_S = 0.25  # the live panel's redraws at most this often (a live training of the sample takes about a second)
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


def follow(
    job: jobs.Job,
    pool: jobs.Pool,
    chart_of: Callable[[dict[str, Any]], Any] | None = None,
    text_of: Callable[[jobs.Job], str] | None = None,
    live_of: Callable[[jobs.Job], None] | None = None,
) -> None:
    """A progress bar (the queue place while waiting; ``text_of(job)``, else the job's text, while it runs) and,
    with ``chart_of(curves)``, live curves, until ``job`` ends; then the bar says how it ended. Messages are paced
    by the server's load (``pace``); between them the script waits on the job's future. ``live_of(job)`` is
    called when the job has published a newer model (``Job.publish``), at most every ``LIVE_S`` seconds (or the
    progress pace, when slower): the live panel's redraw."""
    quiet = st.empty()
    quiet.markdown(QUIET_HEADER, unsafe_allow_html=True)
    bar, chart = st.progress(0.0, text="starting"), st.empty()
    shown, shown_at, drawn, drawn_at, seen, seen_at = None, 0.0, -1, 0.0, 0, 0.0
    while not job.done:
        every, curves_every = pace(pool.watchers())
        now = time.monotonic()
        place = pool.position(job)
        text = f"queued: {place - 1} job(s) ahead of yours" if place else text_of(job) if text_of else job.text
        if (text, round(job.fraction, 2)) != shown and now - shown_at >= every:
            bar.progress(job.fraction, text=text)  # a message to the browser only when something changed
            shown, shown_at = (text, round(job.fraction, 2)), now
        epochs = sum(len(c) for c in job.curves.values())
        due = curves_every is not None and now - drawn_at >= curves_every
        if chart_of is not None and due and epochs != drawn and job.curves:
            chart.plotly_chart(chart_of(dict(job.curves)), key=f"live-{epochs}")
            drawn, drawn_at = epochs, now
        if live_of is not None and job.partial_version != seen and now - seen_at >= max(LIVE_S, every):
            seen = job.partial_version
            live_of(job)
            seen_at = time.monotonic()  # from the end of the redraw: each picture stays LIVE_S on screen
        with limits.waiting():  # the page's own bounds do not count the wait (app/limits.py)
            job.wait(0.1 if live_of is not None else 0.25)  # wakes at once when the job ends
    ended = f"{job.state} after {job.seconds:.1f} s"
    bar.progress(1.0, text=f"{ended}: {job.stop_reason}" if job.stop_reason else ended)
    chart.empty()
    quiet.empty()


def status_fragment(
    line: Callable[[], str], busy: Callable[[], bool], finished: Callable[[], bool], every: float = 1.0
) -> None:
    """The sidebar's status ``line()``, redrawn every ``every`` seconds by an ``st.fragment`` while ``busy()`` (a
    job of this session runs); drawn once otherwise. When the jobs have ended (``finished()``: one that nothing
    collected yet, or none busy any more) the fragment reruns the whole page once: the page collects the job, and
    the status is drawn again without a timer, so an idle tab sends nothing."""
    ticking = busy()

    @st.fragment(run_every=every if ticking else None)
    def status() -> None:
        if ticking and (finished() or not busy()):
            st.rerun()
        st.caption(line())

    status()
