"""No run outlives its page: bounds for page runs and training jobs, and an end for a closed tab's work.

Streamlit stops a script run at its next call into Streamlit after a stop request (a rerun, a closed tab); a
run busy in Python code for minutes never gets there, and a training job on the server's pool goes on whatever
happens to the tab that asked for it. On a class server, that is a core gone for good. One watchdog thread per
server (started by the first ``guard``) looks every ``WATCH_S`` seconds:

- a page run (``guard``, around ``page.run()`` in the entry script) that has computed for more than
  ``AFM_MAX_RUN_SECONDS``, or during which the server's resident memory grew by more than ``AFM_MAX_RUN_MB``,
  gets ``RunLimitExceeded`` raised in its thread; the guard shows one plain message saying which bound and
  which setting. Time spent waiting for a job (``waiting()``, as ``progress.follow`` does) counts for neither;
- a page run whose session has been disconnected for ``AFM_ORPHAN_GRACE_SECONDS`` gets Streamlit's own
  ``StopException``: the run ends as a stopped run does;
- a job whose sessions are all disconnected for that long is let go by each of them, so it stops (``fit``
  keeps the best epoch; nobody collects it), and a job running past ``AFM_MAX_JOB_SECONDS`` is stopped with a
  reason its page shows.

An exception raised in another thread (CPython's ``PyThreadState_SetAsyncExc``) arrives at that thread's next
Python instruction: a run inside one long C call (a parse, a matrix product) ends when the call returns. The
data budgets (``afm.data.Budgets``) are what bound those calls. ``RunLimitExceeded`` is a ``StopException``, a
``BaseException``: no ``except Exception`` in a page swallows it, and one that arrives after its guard has
closed ends the run quietly, as Streamlit ends a stopped run.

Memory is read from /proc (Linux); elsewhere the memory bound is not checked.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import jobs
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from afm import settings

WATCH_S = 0.25  # the watchdog's period
FORGET_AFTER_SESSIONS = 1000  # past this many sessions seen, those gone for an hour are forgotten


class RunLimitExceeded(StopException):
    """Raised in a page run's thread by the watchdog when the run passes a bound (the guard shows why)."""


def resident_mb() -> float | None:
    """The server process's resident memory in MB (None where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@dataclass
class Run:
    """One page run being watched: its thread, session, compute time and memory growth so far."""

    ident: int
    session_id: str | None
    spent: float = 0.0  # seconds computed before the current stretch
    since: float | None = field(default_factory=time.monotonic)  # start of the current stretch (None: waiting)
    grown: float = 0.0  # MB grown before the current stretch
    mark: float | None = field(default_factory=resident_mb)  # resident MB at the start of the current stretch
    reason: str | None = None  # set once, when the watchdog stops the run

    def seconds(self, now: float) -> float:
        return self.spent + (now - self.since if self.since is not None else 0.0)

    def growth(self, rss: float | None) -> float:
        if rss is None or self.mark is None or self.since is None:
            return self.grown
        return self.grown + rss - self.mark

    def pause(self) -> None:
        now, rss = time.monotonic(), resident_mb()
        self.spent, self.grown, self.since = self.seconds(now), self.growth(rss), None

    def resume(self) -> None:
        self.since, self.mark = time.monotonic(), resident_mb()


_lock = threading.Lock()
_runs: dict[int, Run] = {}  # thread ident -> the page run it is doing
_owners: dict[str, str] = {}  # a Session's job owner id -> its Streamlit session id
_last_alive: dict[str, float] = {}  # Streamlit session id -> when it was last seen connected
_pools: weakref.WeakSet[jobs.Pool] = weakref.WeakSet()
_watchdog: threading.Thread | None = None


def _connected(session_id: str) -> bool:
    """Whether a Streamlit session is connected now (True where there is no server, as in AppTest)."""
    from streamlit import runtime

    return not runtime.exists() or runtime.get_instance().is_active_session(session_id)


# the test seam: which sessions are connected (a test replaces it to close a tab without a browser)
connected: Callable[[str], bool] = _connected


def start() -> None:
    """Start the server's watchdog thread (once)."""
    global _watchdog
    with _lock:
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(target=_watch, name="afm-watchdog", daemon=True)
            _watchdog.start()


def watch_pool(pool: jobs.Pool) -> jobs.Pool:
    """Watch ``pool``'s jobs (the server's pool, from ``caches.pool``); returns it."""
    _pools.add(pool)
    start()
    return pool


def bind(owner: str, session_id: str | None = None) -> None:
    """``owner`` (a ``Session``'s id, the owner of its jobs) belongs to the Streamlit session ``session_id``
    (this run's, by default): when that session has been gone for the grace, its jobs are let go."""
    if session_id is None:
        ctx = get_script_run_ctx()
        session_id = ctx.session_id if ctx is not None else None
    if session_id is not None:
        _owners[owner] = session_id


@contextmanager
def guard() -> Iterator[None]:
    """Watch the page run inside: past a bound, it stops with one message (see the module's docstring)."""
    ctx = get_script_run_ctx()
    if ctx is None:  # not a page run (a plain Python call)
        yield
        return
    start()
    run = Run(threading.get_ident(), ctx.session_id)
    with _lock:
        _runs[run.ident] = run
    try:
        yield
    except RunLimitExceeded:
        with _lock:
            _runs.pop(run.ident, None)
        st.error(run.reason or "This page run was stopped: it passed one of this server's bounds.")
    finally:
        with _lock:
            _runs.pop(run.ident, None)


@contextmanager
def waiting() -> Iterator[None]:
    """Time and memory inside are not the page run's own (it waits for a job): its bounds do not count them."""
    run = _runs.get(threading.get_ident())
    if run is None or run.since is None:
        yield
        return
    run.pause()
    try:
        yield
    finally:
        run.resume()


def _raise_in(ident: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in the thread ``ident`` at its next Python instruction (CPython)."""
    hit = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))
    if hit > 1:  # never expected: undo rather than raise in several threads
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


def _gone(session_id: str | None, now: float, grace: float) -> bool:
    """True when ``session_id`` has been disconnected for more than ``grace`` seconds."""
    if session_id is None:
        return False
    if connected(session_id):
        _last_alive[session_id] = now
        return False
    return now - _last_alive.setdefault(session_id, now) > grace


def check() -> None:
    """One look at every watched page run and job (the watchdog calls it every ``WATCH_S`` seconds)."""
    now, rss = time.monotonic(), resident_mb()
    grace = settings.get("AFM_ORPHAN_GRACE_SECONDS")
    max_s, max_mb = settings.get("AFM_MAX_RUN_SECONDS"), settings.get("AFM_MAX_RUN_MB")
    with _lock:
        for run in list(_runs.values()):
            if run.reason is not None:
                continue
            if _gone(run.session_id, now, grace):
                run.reason = "its tab was closed"
                _raise_in(run.ident, StopException)
            elif run.seconds(now) > max_s:
                run.reason = (
                    f"This page stopped: it computed for more than {max_s} s, this server's bound for one page run "
                    "(AFM_MAX_RUN_SECONDS). Try a smaller table, or ask whoever runs the server to raise it."
                )
                _raise_in(run.ident, RunLimitExceeded)
            elif run.growth(rss) > max_mb:
                run.reason = (
                    f"This page stopped: it needed more than {max_mb:,} MB of the server's memory, this server's "
                    "bound for one page run (AFM_MAX_RUN_MB). Try a smaller table, or ask whoever runs the server "
                    "to raise it."
                )
                _raise_in(run.ident, RunLimitExceeded)
    for pool in list(_pools):
        _check_jobs(pool, now, grace)
    if len(_last_alive) > FORGET_AFTER_SESSIONS:  # a long-lived server: forget sessions gone for an hour
        for session_id, seen in list(_last_alive.items()):
            if now - seen > 3600:
                _last_alive.pop(session_id, None)
        for owner, session_id in list(_owners.items()):
            if session_id not in _last_alive and not connected(session_id):
                _owners.pop(owner, None)


def _check_jobs(pool: jobs.Pool, now: float, grace: float) -> None:
    max_job_s = settings.get("AFM_MAX_JOB_SECONDS")
    for job in pool.unfinished():
        for owner in list(job.owners):
            if _gone(_owners.get(owner), now, grace):
                job.stop(owner)  # stops it when nobody else waits for it
        if job.state == jobs.RUNNING and not job.stop_requested and job.seconds > max_job_s:
            job.halt(
                f"it ran for more than {max_job_s} s, this server's bound for one training job "
                "(AFM_MAX_JOB_SECONDS); the best epoch so far is kept"
            )


def _watch() -> None:
    while True:
        time.sleep(WATCH_S)
        try:
            check()
        except Exception:  # noqa: BLE001 - the watchdog must outlive any one bad look
            traceback.print_exc()
