"""benchmarks/load.py's scheduler account: what a process's threads ran and waited in a time window."""

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


# spins for 1 s, says so, then sleeps (saying so first)
BUSY = """
import sys, time
print("spinning", flush=True)
end = time.perf_counter() + 1.0
while time.perf_counter() < end:
    pass
print("sleeping", flush=True)
time.sleep(5)
"""


def test_sched_sampler_accounts_a_busy_then_sleeping_process() -> None:
    load = load_module()
    child = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    try:
        sampler = load.SchedSampler(child.pid, every=0.02)
        assert child.stdout.readline().strip() == "spinning"
        busy_from = time.time()
        time.sleep(0.4)
        busy_to = time.time()
        assert child.stdout.readline().strip() == "sleeping"
        time.sleep(0.1)
        sleep_from = time.time()
        time.sleep(0.4)
        sleep_to = time.time()
        time.sleep(0.1)  # a sample after the window
        sampler.stop()
    finally:
        child.kill()
        child.wait()
    busy = sampler.account(busy_from, busy_to)
    idle = sampler.account(sleep_from, sleep_to)
    assert busy is not None and idle is not None
    # spinning: the main thread ran or waited for a CPU for the whole window; the process is its main thread
    assert busy["main_ran"] + busy["main_waited"] == pytest.approx(busy["window"], abs=0.1)
    assert busy["main_ran"] > 0.05
    assert busy["all_ran"] == pytest.approx(busy["main_ran"], abs=0.02)
    # sleeping: it neither ran nor waited
    assert idle["main_ran"] + idle["main_waited"] < 0.05
    # no samples before the sampler started: no account
    assert sampler.account(busy_from - 60, busy_to) is None
