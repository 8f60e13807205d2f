"""No run outlives its page (app/limits.py): page runs past a time or memory bound stop with a message, a closed
tab's run and jobs end, and a job past its time bound stops keeping its best epoch."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "app"
sys.path.insert(0, str(APP))
import jobs  # noqa: E402
import limits  # noqa: E402

pytestmark = pytest.mark.slow

SCRIPT = """
import sys, time
sys.path.insert(0, {app!r})
import streamlit as st
import limits

with limits.guard():
    st.write("start")
    {body}
    st.write("finished")
st.write("after")
"""


def page(tmp_path: Path, body: str) -> AppTest:
    """An AppTest of a page whose body (inside ``limits.guard``) is ``body``."""
    script = tmp_path / "page.py"
    script.write_text(SCRIPT.format(app=str(APP), body=textwrap.indent(textwrap.dedent(body), "    ").strip()))
    return AppTest.from_file(str(script), default_timeout=30)


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_a_page_run_past_its_time_bound_stops_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_RUN_SECONDS", "1")
    began = time.monotonic()
    at = page(tmp_path, "while True:\n    pass").run()
    assert time.monotonic() - began < 10
    assert not at.exception
    assert [e.value for e in at.error] == [
        "This page stopped: it computed for more than 1 s, this server's bound for one page run "
        "(AFM_MAX_RUN_SECONDS). Try a smaller table, or ask whoever runs the server to raise it."
    ]
    assert texts(at) == ["start", "after"]  # the guard ends the page, the entry script goes on


@pytest.mark.skipif(limits.resident_mb() is None, reason="the memory bound reads /proc (Linux)")
def test_a_page_run_past_its_memory_bound_stops_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_RUN_MB", "200")
    at = page(tmp_path, "keep = []\nwhile True:\n    keep.append(bytearray(8 * 2**20))\n    time.sleep(0.002)").run()
    assert not at.exception
    assert len(at.error) == 1 and "more than 200 MB" in at.error[0].value and "AFM_MAX_RUN_MB" in at.error[0].value
    assert texts(at) == ["start", "after"]


def test_waiting_for_a_job_does_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_RUN_SECONDS", "1")
    body = """
    end = time.monotonic() + 2.5
    with limits.waiting():
        while time.monotonic() < end:
            pass
    """
    at = page(tmp_path, body).run()
    assert not at.error and texts(at) == ["start", "finished", "after"]


def test_a_closed_tabs_page_run_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_ORPHAN_GRACE_SECONDS", "0")
    monkeypatch.setattr(limits, "connected", lambda session_id: False)  # the tab is gone
    began = time.monotonic()
    at = page(tmp_path, "while True:\n    pass").run()
    assert time.monotonic() - began < 10
    assert not at.error and not at.exception
    assert texts(at) == ["start"]  # stopped as Streamlit stops a run: nothing after it


def slow(seconds: float):  # noqa: ANN201
    def work(job: jobs.Job) -> str:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if job.report(0.5, "working"):
                return "stopped"
            time.sleep(0.01)
        return "done"

    return work


def test_a_job_past_its_time_bound_stops_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_JOB_SECONDS", "1")
    pool = limits.watch_pool(jobs.Pool(workers=1))
    began = time.monotonic()
    job = pool.submit("long", "long", slow(60), owner="a")
    assert job.wait(10)
    assert 1 <= time.monotonic() - began < 10
    assert job.state == jobs.STOPPED and job.result == "stopped"
    assert job.stop_reason is not None and "more than 1 s" in job.stop_reason
    assert "AFM_MAX_JOB_SECONDS" in job.stop_reason and "best epoch" in job.stop_reason


def test_the_jobs_of_a_closed_tab_stop_unless_another_tab_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_ORPHAN_GRACE_SECONDS", "0")
    closed: set[str] = set()
    monkeypatch.setattr(limits, "connected", lambda session_id: session_id not in closed)
    limits.bind("owner-a", "tab-a")
    limits.bind("owner-b", "tab-b")
    pool = limits.watch_pool(jobs.Pool(workers=2))
    alone = pool.submit("alone", "alone", slow(60), owner="owner-a")
    shared = pool.submit("shared", "shared", slow(60), owner="owner-a")
    assert pool.submit("shared", "shared", slow(60), owner="owner-b") is shared
    time.sleep(0.5)
    assert not alone.done and not shared.done
    closed.add("tab-a")
    assert alone.wait(5) and alone.state == jobs.STOPPED
    assert not shared.wait(1.0)  # tab b still waits for it
    assert shared.owners == {"owner-b"}
    closed.add("tab-b")
    assert shared.wait(5) and shared.state == jobs.STOPPED


def test_a_short_disconnection_within_the_grace_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_ORPHAN_GRACE_SECONDS", "3")
    closed: set[str] = set()
    monkeypatch.setattr(limits, "connected", lambda session_id: session_id not in closed)
    limits.bind("owner-c", "tab-c")
    pool = limits.watch_pool(jobs.Pool(workers=1))
    job = pool.submit("blip", "blip", slow(2.0), owner="owner-c")
    time.sleep(0.4)
    closed.add("tab-c")  # the connection drops for 1 s, then comes back
    time.sleep(1.0)
    closed.discard("tab-c")
    assert job.wait(10) and job.state == jobs.DONE and job.result == "done"
