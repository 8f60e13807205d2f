"""Training jobs for the dashboard: one bounded worker pool per server, identical jobs computed once.

A class shares one server. Every training any session asks for becomes a ``Job`` on one pool whose
workers times torch threads never exceed the cores (``AFM_WORKERS``, default: the cores, each job
one thread), so sessions queue instead of fighting over the cores. A job's key says what it computes
(data, settings, seed, starting models): a second session asking for the same key gets the same job,
running or finished, so thirty students pressing Train with the sample's default knobs cause one
training. Training is deterministic (seeded), so a shared result is exactly what the session would
have computed itself. Finished jobs are kept while their parameters fit in ``AFM_JOB_CACHE_MB``.

The script of a page never trains: it submits a job, shows its progress, and collects the result.
Stopping a job (``Job.stop``) ends it when no other session is waiting for it; ``fit`` then keeps each
model's best epoch. A job is a future of the pool's executor: ``Job.wait`` waits on it.

The server's one pool is ``caches.pool()`` (an ``st.cache_resource``); a session's jobs live in its named slots
(``session.Session.submit``/``current``/``stop``/``follow``/``collect``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from afm import settings

QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"
FINISHED = (DONE, STOPPED, FAILED)


def cores() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def job_key(*parts: Any) -> str:
    """A stable key for a job from JSON-able parts (data id, settings, starting models)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class Job:
    """One computation on the pool: its state, progress, partial curves and result."""

    key: str
    label: str
    fn: Callable[[Job], Any]
    state: str = QUEUED
    fraction: float = 0.0
    text: str = "waiting for a worker"
    curves: dict[str, Any] = field(default_factory=dict)  # kind -> history frame so far (epoch ends)
    result: Any = None
    error: str | None = None
    stop_reason: str | None = None  # why the server stopped it (Job.halt), in words
    owners: set[str] = field(default_factory=set)
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    future: Future | None = None  # the pool's future for this job's run (None for a job made by hand)
    # a copy of a model being trained, published now and then for a live picture (Job.publish)
    partial: dict[str, Any] = field(default_factory=dict)
    partial_epoch: tuple[int, int] = (0, 0)  # (epoch, epochs) of the last published copy
    partial_version: int = 0

    @property
    def done(self) -> bool:
        return self.state in FINISHED

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def seconds(self) -> float:
        """Seconds of running (so far, or in all)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def report(self, fraction: float, text: str, **curves: Any) -> bool:
        """Called by ``fn`` as it works; returns True when it should stop (a ``fit`` callback's answer)."""
        self.fraction, self.text = min(max(fraction, 0.0), 1.0), text
        self.curves.update(curves)
        return self._stop.is_set()

    def publish(self, kind: str, model: Any, epoch: int, epochs: int) -> None:
        """Called by ``fn``: ``model`` (a copy, never the one being trained) is the newest state of ``kind``."""
        self.partial[kind], self.partial_epoch = model, (epoch, epochs)
        self.partial_version += 1

    def stop(self, owner: str, wait_s: float = 0.0) -> bool:
        """``owner`` no longer wants this job; it stops when nobody else does. True when it was stopped; then
        up to ``wait_s`` seconds are spent waiting for it to end (its work checks for a stop every few batches)."""
        self.owners.discard(owner)
        if not self.owners and not self.done:
            self._stop.set()
            self.wait(wait_s)
            return True
        return False

    def halt(self, reason: str) -> None:
        """Stop the job for every session, saying why (the server's bounds: app/limits.py)."""
        self.stop_reason = reason
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished (or ``timeout`` seconds); True when finished. Waits on the run's future: the
        caller wakes when the job ends, not at the next tick of a poll."""
        if self.future is None or self.done:
            return self.done
        try:
            self.future.result(timeout)
        except TimeoutError:
            return self.done
        except Exception:  # noqa: BLE001 - _run keeps the job's error; the future itself never raises
            pass
        return self.done


class Pool:
    """A bounded worker pool with a queue, shared identical jobs and a bounded cache of results."""

    def __init__(self, workers: int | None = None, cache_bytes: int | None = None) -> None:
        self.workers = workers or settings.get("AFM_WORKERS") or cores()
        self.threads = max(1, cores() // self.workers)  # per job; workers * threads <= cores
        self.cache_bytes = cache_bytes or settings.get("AFM_JOB_CACHE_MB") * 2**20
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="afm-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # key -> job, oldest first
        self._lock = threading.Lock()

    def submit(self, key: str, label: str, fn: Callable[[Job], Any], owner: str) -> Job:
        """The job for ``key``: the one already queued, running or done (shared), else a new one."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state in (QUEUED, RUNNING, DONE) and not job.stop_requested:
                job.owners.add(owner)
                self._jobs.move_to_end(key)
                return job
            job = Job(key, label, fn, owners={owner})
            self._jobs[key] = job
            self._trim()
        job.future = self._executor.submit(self._run, job)
        return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def unfinished(self) -> list[Job]:
        """The jobs queued or running now."""
        with self._lock:
            return [j for j in self._jobs.values() if not j.done]

    def watchers(self) -> int:
        """How many sessions wait for a queued or running job now (a shared job counts each of them)."""
        with self._lock:
            return sum(len(j.owners) for j in self._jobs.values() if not j.done)

    def position(self, job: Job) -> int:
        """0 when running or finished, else the job's place in the queue (1 = next)."""
        if job.state != QUEUED:
            return 0
        with self._lock:
            queued = sorted((j for j in self._jobs.values() if j.state == QUEUED), key=lambda j: j.submitted)
        return next((n for n, j in enumerate(queued, 1) if j is job), 0)

    def _run(self, job: Job) -> None:
        if job.stop_requested:
            job.state, job.finished, job.text = STOPPED, time.time(), "stopped before it started"
            return
        job.state, job.started, job.text = RUNNING, time.time(), "starting"
        torch.set_num_threads(self.threads)  # process-wide; the same value for every worker
        try:
            job.result = job.fn(job)
            job.state = STOPPED if job.stop_requested else DONE
        except Exception as err:  # noqa: BLE001 - the job's session shows it; the server stays up
            job.error = " ".join(str(err).split())[:400] or type(err).__name__
            job.state = FAILED
            traceback.print_exc()
        finally:
            job.finished = time.time()
            with self._lock:
                if job.state != DONE and self._jobs.get(job.key) is job:
                    del self._jobs[job.key]  # a stopped or failed job is not a result to share
                self._trim()

    def _trim(self) -> None:
        """Forget the oldest finished jobs while the results' parameters exceed the cache (lock held)."""
        sizes = {k: _result_bytes(j.result) for k, j in self._jobs.items() if j.state == DONE}
        total = sum(sizes.values())
        for key in list(sizes):
            if total <= self.cache_bytes:
                break
            total -= sizes[key]
            del self._jobs[key]


def _result_bytes(result: Any) -> int:
    """Bytes of the parameters of the torch modules in a job's result (nested dicts/tuples)."""
    if isinstance(result, torch.nn.Module):
        return sum(p.numel() * p.element_size() for p in result.parameters())
    if isinstance(result, dict):
        return sum(_result_bytes(v) for v in result.values())
    if isinstance(result, (tuple, list)):
        return sum(_result_bytes(v) for v in result)
    return 0
