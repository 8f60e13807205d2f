"""The dashboard's worker pool (app/jobs.py): bounded, shared identical jobs, queue places, Stop."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))
import jobs  # noqa: E402

import afm  # noqa: E402


def slow(seconds: float, value: object = "ok", started: threading.Event | None = None):  # noqa: ANN201
    """A job function that works for ``seconds`` in small steps, reporting progress and obeying Stop."""

    def work(job: jobs.Job) -> object:
        if started is not None:
            started.set()
        steps = max(int(seconds / 0.01), 1)
        for n in range(steps):
            if job.report((n + 1) / steps, f"step {n + 1}/{steps}"):
                return f"stopped at {n + 1}"
            time.sleep(0.01)
        return value

    return work


def test_identical_jobs_are_computed_once_and_shared() -> None:
    pool = jobs.Pool(workers=2)
    calls = []

    def work(job: jobs.Job) -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    a = pool.submit("same", "a", work, owner="s1")
    b = pool.submit("same", "b", work, owner="s2")
    assert a is b and a.owners == {"s1", "s2"}
    assert a.wait(10) and a.result == 42 and a.state == jobs.DONE
    c = pool.submit("same", "c", work, owner="s3")  # finished: served from the cache, nothing runs
    assert c is a and c.done and calls == [1]


def test_workers_bound_the_concurrency_and_queued_jobs_know_their_place() -> None:
    pool = jobs.Pool(workers=1)
    started = threading.Event()
    first = pool.submit("k1", "first", slow(0.5, started=started), owner="s1")
    assert started.wait(5)
    second = pool.submit("k2", "second", slow(0.05), owner="s2")
    third = pool.submit("k3", "third", slow(0.05), owner="s3")
    assert (pool.position(first), pool.position(second), pool.position(third)) == (0, 1, 2)
    assert first.state == jobs.RUNNING and second.state == jobs.QUEUED
    assert third.wait(10) and second.finished <= third.started  # one at a time, in order
    assert first.finished <= second.started


def test_threads_per_job_times_workers_never_exceed_the_cores() -> None:
    for workers in (1, 2, 3, 64):
        pool = jobs.Pool(workers=workers)
        assert pool.threads >= 1 and (pool.workers * pool.threads <= jobs.cores() or pool.threads == 1)


def test_stop_ends_a_job_only_when_nobody_else_waits_for_it() -> None:
    pool = jobs.Pool(workers=1)
    started = threading.Event()
    job = pool.submit("k", "long", slow(30, started=started), owner="s1")
    pool.submit("k", "long", slow(30), owner="s2")
    assert started.wait(5)
    assert job.stop("s1") is False and not job.stop_requested  # s2 still wants it
    t0 = time.perf_counter()
    assert job.stop("s2") is True
    assert job.wait(5) and time.perf_counter() - t0 < 2
    assert job.state == jobs.STOPPED and job.result.startswith("stopped at")
    assert pool.get("k") is None  # a stopped job is not served to the next asker
    again = pool.submit("k", "long", slow(0.05), owner="s3")
    assert again is not job and again.wait(5) and again.result == "ok"
    third = pool.submit("k2", "long", slow(30), owner="s4")
    assert third.stop("s4", wait_s=5) is True and third.done  # ``wait_s``: returns once it has ended


def test_a_failing_job_reports_its_error_and_the_pool_goes_on() -> None:
    pool = jobs.Pool(workers=1)

    def boom(job: jobs.Job) -> None:
        raise ValueError("no such column 'x'")

    bad = pool.submit("bad", "bad", boom, owner="s")
    assert bad.wait(5) and bad.state == jobs.FAILED and "no such column" in bad.error
    good = pool.submit("good", "good", slow(0.02), owner="s")
    assert good.wait(5) and good.result == "ok"


def test_the_cache_forgets_old_results_beyond_its_budget() -> None:
    pool = jobs.Pool(workers=1, cache_bytes=3 * 4000)  # room for three 4,000-byte results
    for n in range(5):
        job = pool.submit(f"m{n}", "m", lambda job: {"m": torch.nn.Linear(999, 1)}, owner="s")  # 1,000 floats
        assert job.wait(5)
    assert [k for k in ("m0", "m1", "m2", "m3", "m4") if pool.get(k)] == ["m2", "m3", "m4"]


def test_a_training_job_stopped_mid_way_keeps_the_best_epoch() -> None:
    parts = afm.datasets.load_parts("sample", seed=0)
    pool = jobs.Pool(workers=1)
    config = afm.TrainConfig(epochs=50, patience=50)

    def work(job: jobs.Job) -> dict:
        def callback(p: afm.Progress) -> bool:
            return job.report(p.fraction, f"epoch {p.epoch}")

        return afm.train_pair(config, parts["train"], parts["valid"], callback=callback)

    job = pool.submit("train", "train", work, owner="s")
    while not job.done and job.fraction < 0.02:  # into the FM's second epoch
        time.sleep(0.01)
    job.stop("s")
    assert job.wait(30) and job.state == jobs.STOPPED
    fm, history = job.result["fm"]
    assert history.stopped == "callback" and 1 <= len(history.epochs) < 50
    # the AFM is kept, untrained, started exactly at the FM's best epoch (issue 24)
    assert job.result["afm"][1].stopped == "fm_stopped" and job.result["afm"][1].epochs == []
    best = min(e["valid_rmse"] for e in history.epochs)
    valid = afm.evaluate(fm, parts["valid"], label_range=afm.label_range(parts["train"], "regression"))
    assert valid["rmse"] == pytest.approx(min(best, history.start["valid_rmse"]), rel=1e-5)


def test_models_of_unknown_provenance_are_never_shared() -> None:
    """Job keys name the starting models; a loaded checkpoint has no known provenance, so its key is the
    session's own (two sessions with different checkpoints on the same data never share a training)."""
    import session

    parts = afm.datasets.load_parts("sample", seed=0)
    fm, _ = afm.load_model(afm.datasets.SAMPLE_DIR / "pretrained" / "regression-fm.pt")
    one, two = (session.Workspace("sample", "bundled sample", "regression", parts) for _ in range(2))
    for ws in (one, two):
        ws.model_ids = {"fm": "pretrained-regression:fm"}
        ws.set_models({"fm": fm}, {}, "upload fm.pt")  # replacing the models forgets where the old ones came from
        assert ws.model_ids == {}
    assert one.model_id("fm") != two.model_id("fm")
    one.model_ids = {"fm": "job123:fm"}
    assert one.model_id("fm") == "job123:fm"


def test_watchers_count_the_sessions_waiting_for_unfinished_jobs() -> None:
    pool = jobs.Pool(workers=1)
    started = threading.Event()
    first = pool.submit("k1", "first", slow(0.4, started=started), owner="s1")
    assert started.wait(5)
    pool.submit("k1", "first again", slow(0.4), owner="s2")  # shared: two sessions wait for it
    queued = pool.submit("k2", "second", slow(0.05), owner="s3")
    assert pool.watchers() == 3
    assert first.wait(10) and queued.wait(10)
    assert pool.watchers() == 0  # finished jobs (kept in the cache) have nobody waiting


def test_progress_messages_slow_down_with_the_crowd() -> None:
    import progress  # app/progress.py (imports streamlit, not a running server)

    assert progress.pace(0) == progress.pace(1) == (0.25, 1.0)  # one session: progress 4x/s, curves 1x/s
    assert progress.pace(2) == (0.5, 2.0)
    assert progress.pace(8) == (2.0, None)  # a class: progress every 2 s, curves when the training ends
    seconds = [progress.pace(n)[0] for n in range(1, 20)]
    assert seconds == sorted(seconds) and max(seconds) == 2.0


@pytest.mark.slow
def test_a_server_pays_the_first_trainings_lazy_imports_at_start_not_at_import() -> None:
    """The first optimiser a process creates imports torch._dynamo (about 1 s holding the interpreter lock,
    which stalled every session when it fell inside the first training a class started). Importing the app's
    modules does no such work; ``caches.warm_up()`` (called once by the entry script) does it, then moves what is
    alive to the permanent generation, and a second call does nothing again."""
    code = (
        "import sys, gc; sys.path.insert(0, 'app'); "
        "import caches, session, widgets, training, progress, knobs, data_sources, sweep_sections, attention_sections; "
        "print('torch._dynamo' in sys.modules, gc.get_freeze_count()); caches.warm_up(); "
        "print('torch._dynamo' in sys.modules, gc.get_freeze_count()); n = gc.get_freeze_count(); caches.warm_up(); "
        "print(gc.get_freeze_count() == n)"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    before, frozen_before, after, frozen, once = out.stdout.split()[-5:]
    assert (before, frozen_before) == ("False", "0")  # nothing at import
    assert after == "True"  # not imported by torch itself: the warm-up did it
    assert int(frozen) > 100_000  # torch, pandas, plotly and the app's modules, frozen after the warm-up
    assert once == "True"  # an st.cache_resource: once per server
