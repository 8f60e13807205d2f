"""The Sweeps page's parts: the parameters it offers, this session's stored sweeps, collecting a finished sweep job
and the estimate of a sweep's time."""

from __future__ import annotations

import dataclasses
from typing import Any

import jobs
import pandas as pd
import state
import streamlit as st

import afm.sweeps

# parameter -> (what the paper's figure shows, default values, seeds, FM pre-training, a note), chosen on the sample's
# validation part: t and λ move its error by about a seed's spread, so they default to error bars over seeds.
PARAMETERS: dict[str, tuple[str, str, int, bool, str]] = {
    "dropout": ("Dropout on the pairwise-interaction layer (AFM and FM)", "0, 0.1, 0.2, 0.3, 0.4, 0.5", 1, True, ""),
    "attention_factor": ("Attention factor t, the attention network's hidden size (AFM)", "1, 4, 16, 64", 3, True, ""),
    "l2_attention": (
        "λ, the L2 penalty on the attention network's W (AFM)",
        "0, 0.01, 0.1, 1",
        2,
        False,
        "λ's default trains each AFM from random weights: an AFM started at its FM keeps near-uniform "
        "attention, so λ has nothing to regularise (on the sample, λ > 0 then only adds error).",
    ),
    "attention_dropout": ("Dropout on the attention weights (AFM)", "0, 0.1, 0.2, 0.3", 1, True, ""),
}


def stored(ws: state.Workspace, key: str) -> pd.DataFrame | None:  # this session's finished sweep of these settings
    return next((f for f in reversed(ws.sweeps) if f.attrs.get("key") == key and not f.attrs.get("stopped")), None)


def collect(ws: state.Workspace) -> bool:
    """Keep this session's finished sweep job's rows in ``ws.sweeps`` (the last 5, keyed by settings)."""
    job, job_key, data_id, _ = st.session_state.get("sweeps_job", (None,) * 4)
    if job is None or not job.done:
        return False
    del st.session_state["sweeps_job"]
    if job.state == jobs.FAILED:
        st.error(f"The sweep failed: {job.error}")
    elif job.result is not None and data_id == ws.data_id:
        frame = job.result.copy()
        frame.attrs = {"key": job_key, "stopped": job.state == jobs.STOPPED, "seconds": job.seconds}
        ws.sweeps[:] = [f for f in ws.sweeps if f.attrs.get("key") != job_key][-4:] + [frame]
    return True


def estimate(
    ws: state.Workspace,
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
        estimate_column.error(f"Values: {problem}")
        return None
    if stored(ws, key) is not None:
        estimate_column.caption("Results for these settings are in this session: Run shows them at once.")
        return None
    measured = afm.sweeps.measured_per_epoch(ws.sweeps[-1]) if ws.sweeps else None  # real epochs under real load
    timing = (ws.data_id, base.batch_size, base.embed_dim, base.attention_factor, base.optimizer)
    if not measured and st.session_state.get("sweeps_timing", (None,))[0] != timing:  # one short timing
        per_epoch = afm.sweeps.seconds_per_epoch(ws.parts["train"], ws.parts["valid"], base)
        st.session_state.sweeps_timing = (timing, per_epoch)
    steps = afm.sweeps.plan(parameter, values, seeds)
    per_epoch, count = measured or st.session_state.sweeps_timing[1], afm.sweeps.trainings(steps)
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
