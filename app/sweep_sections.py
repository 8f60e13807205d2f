"""The Sweeps page's parts: the parameters it offers, this session's stored sweeps, collecting a finished sweep job
and the estimate of a sweep's time."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import jobs
import pandas as pd
import session

import afm.sweeps
from afm.config import knob_of

# parameter -> (what the paper's figure shows, default values, seeds, FM pre-training, a note), chosen on the sample's
# validation part: t and λ move its error by about a seed's spread, so they default to error bars over seeds.
# (the first element, what the figure shows, is the knob's own description: afm.config.knob_of(name).description)
PARAMETERS: dict[str, tuple[str, str, int, bool, str]] = {
    "dropout": (knob_of("dropout").description, "0, 0.1, 0.2, 0.3, 0.4, 0.5", 1, True, ""),
    "attention_factor": (knob_of("attention_factor").description, "1, 4, 16, 64", 3, True, ""),
    "l2_attention": (
        knob_of("l2_attention").description,
        "0, 0.01, 0.1, 1",
        2,
        False,
        "λ's default trains each AFM from random weights: an AFM started at its FM keeps near-uniform "
        "attention, so λ has nothing to regularise (on the sample, λ > 0 then only adds error).",
    ),
    "attention_dropout": (knob_of("attention_dropout").description, "0, 0.1, 0.2, 0.3", 1, True, ""),
}


def parse(parameter: str, text: str) -> tuple[list[Any], str | None]:
    """The values typed (or linked) for ``parameter``, or no values and what is wrong, in words: a value that is not
    a finite number ("1e400", "nan") is named as such rather than with Python's message about converting it."""
    if any(not math.isfinite(float(item)) for item in re.findall(r"[^,\s;]+", text) if _is_float(item)):
        return [], "every value must be a finite number"
    try:
        return afm.sweeps.parse_values(parameter, text), None
    except (ValueError, OverflowError) as err:
        return [], str(err)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def stored(ws: session.Workspace, key: str) -> pd.DataFrame | None:  # this session's finished sweep of these settings
    return next((f for f in reversed(ws.sweeps) if f.attrs.get("key") == key and not f.attrs.get("stopped")), None)


SLOT = "sweep"  # the session's job slot for sweeps (one at a time)


def collect(ws: session.Workspace, job: jobs.Job, meta: dict[str, Any]) -> str | None:
    """The sweep slot's collect callback: keep a finished sweep's rows in ``ws.sweeps`` (the last 5, keyed by
    settings); a failure is returned as the page's message."""
    if job.state == jobs.FAILED:
        return f"The sweep failed: {job.error}"
    if job.result is not None and meta["data_id"] == ws.data_id:
        frame = job.result.copy()
        frame.attrs = {"key": meta["key"], "stopped": job.state == jobs.STOPPED, "seconds": job.seconds}
        ws.sweeps[:] = [f for f in ws.sweeps if f.attrs.get("key") != meta["key"]][-4:] + [frame]
    return None


def estimate(
    ws: session.Workspace,
    estimate_column: Any,
    problem: str | None,
    key: str,
    parameter: str,
    values: list,
    seeds: tuple[int, ...],
    base: afm.TrainConfig,
) -> float | None:
    """Show the sweep's estimated seconds (or why there is none) in ``estimate_column``; return the estimate."""
    if problem:
        estimate_column.error(f"Values: {session.literal(problem, 300)}")
        return None
    if stored(ws, key) is not None:
        estimate_column.caption("Results for these settings are in this session: Run shows them at once.")
        return None
    measured = afm.sweeps.measured_per_epoch(ws.sweeps[-1]) if ws.sweeps else None  # real epochs under real load
    timing = (ws.data_id, base.batch_size, base.embed_dim, base.attention_factor, base.optimizer)
    me = session.get()
    if not measured and (me.sweeps_timing is None or me.sweeps_timing[0] != timing):  # one short timing
        me.sweeps_timing = (timing, afm.sweeps.seconds_per_epoch(ws.parts["train"], ws.parts["valid"], base))
    steps = afm.sweeps.plan(parameter, values, seeds)
    assert me.sweeps_timing is not None or measured
    per_epoch = measured or me.sweeps_timing[1]  # type: ignore[index]
    count = afm.sweeps.trainings(steps)
    same = base == dataclasses.replace(ws.config, task=ws.task)  # then the session's models ran as long as these will
    expected = afm.sweeps.expected_epochs(base, ws.histories if same else None)
    estimate = afm.sweeps.estimate_seconds(steps, per_epoch, expected)
    estimate_column.caption(
        f"Estimate: about **{estimate:.0f} s** for {count['fm']} FM + {count['afm']} AFM trainings "
        f"(~{expected['fm']:.0f} and ~{expected['afm']:.0f} epochs at {per_epoch['fm']:.2f} and "
        f"{per_epoch['afm']:.2f} s per epoch, {'as the last sweep ran' if measured else 'timed just now'}), plus any "
        "wait in the queue."
    )
    return estimate
