"""benchmarks/load.py's scheduler account: what a process's main thread and the whole process did in a window."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/schedstat").exists(), reason="needs Linux's /proc schedstat")


def load_module():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("afm_load_benchmark", ROOT / "benchmarks" / "load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# Spins by CPU time (not wall time), so a loaded machine only makes it slower: first in a thread that then
# ends, then in the main thread; each phase waits for a line on stdin and says when it is done.
CHILD = """
import sys, threading, time
def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
print("ready", flush=True)
sys.stdin.readline()
worker = threading.Thread(target=spin, args=(0.3,))
worker.start()
worker.join()
print("thread done", flush=True)
sys.stdin.readline()
spin(0.3)
print("main done", flush=True)
time.sleep(60)
"""


def test_sched_sampler_accounts_the_main_thread_and_threads_that_ended() -> None:
    load = load_module()
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def step(expect: str) -> tuple[float, float]:
        time.sleep(0.1)  # a sample wholly before the window
        start = time.time()
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == expect
        end = time.time()
        time.sleep(0.1)  # a sample begun after it
        return start, end

    try:
        sampler = load.SchedSampler(child.pid, every=0.02)
        assert child.stdout.readline().strip() == "ready"
        in_thread = step("thread done")
        in_main = step("main done")
        time.sleep(0.1)
        idle = (time.time(), time.time() + 0.3)
        time.sleep(0.5)
        sampler.stop()
    finally:
        child.kill()
        child.wait()
    thread, main, rest = (sampler.account(*w) for w in (in_thread, in_main, idle))
    assert thread is not None and main is not None and rest is not None
    # a thread that ended inside the window still counts for the process (0.3 CPU s, clock ticks of 10 ms)
    assert thread["all_ran"] >= 0.25 and thread["main_ran"] < 0.1
    assert main["main_ran"] >= 0.28 and main["all_ran"] >= 0.25
    for acc in (thread, main, rest):  # what the main thread did fits in the window the samples span
        assert acc["main_ran"] + acc["main_waited"] <= acc["window"] + 0.01
    assert rest["main_ran"] + rest["main_waited"] < 0.05 and rest["all_ran"] < 0.05
    assert sampler.account(in_thread[0] - 60, in_thread[1]) is None  # nothing sampled that early
