"""Sweeps: the paper's hyper-parameter figures (validation error against dropout, t, lambda), live."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import state
import streamlit as st

import afm.sweeps
from afm import plots

# parameter -> (what the paper's figure shows, default values); the values are the paper's grids, trimmed
PARAMETERS: dict[str, tuple[str, str]] = {
    "dropout": ("Dropout on the pairwise-interaction layer (AFM and FM)", "0, 0.1, 0.2, 0.3, 0.4, 0.5"),
    "attention_factor": ("Attention factor t, the attention network's hidden size (AFM)", "1, 4, 8, 16, 32"),
    "l2_attention": ("λ, the L2 penalty on the attention network's W (AFM)", "0, 0.01, 0.1, 1, 10"),
    "attention_dropout": ("Dropout on the attention weights (AFM)", "0, 0.1, 0.2, 0.3"),
}


def parse_values(parameter: str, text: str) -> list[float] | list[int]:
    """The values typed for ``parameter`` ("0, 0.1 0.2"), checked; ValueError names the bad one."""
    items = [item for item in re.split(r"[,\s;]+", text.strip()) if item]
    if not items:
        raise ValueError("type at least one value")
    values = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{item!r} is not a number") from None
        if parameter == "attention_factor" and (value < 1 or value != int(value)):
            raise ValueError(f"t must be a whole number >= 1, got {item}")
        if "dropout" in parameter and not 0 <= value < 1:
            raise ValueError(f"a dropout ratio must be in [0, 1), got {item}")
        if parameter == "l2_attention" and value < 0:
            raise ValueError(f"λ must be >= 0, got {item}")
        values.append(int(value) if parameter == "attention_factor" else value)
    return list(dict.fromkeys(values))  # drop repeats, keep the order typed


st.title("Sweeps")
st.caption(
    "The paper's hyper-parameter figures, made live on this session's data: train AFM (and FM, for dropout) once per "
    "value and seed, and plot the validation metric against the value. Short trainings show the trend, not the "
    "paper's final numbers."
)

ws = state.workspace()
if "train" not in ws.parts or "valid" not in ws.parts:
    st.info("A sweep needs a training and a validation part: load data on the **Data & model** page.")
    st.stop()
headline, _ = state.metric_names(ws.task)

# The parameter lives outside the form: picking one only changes the default values shown, it trains nothing.
names = list(PARAMETERS)
wanted = state.query_value("sweep_parameter", "dropout")
parameter = st.selectbox(
    "Parameter",
    names,
    index=names.index(wanted) if wanted in names else 0,
    format_func=lambda name: PARAMETERS[name][0],
    key="sweeps_parameter",
)
if parameter != wanted and "sweep_values" in st.query_params:
    del st.query_params["sweep_values"]  # the values in the URL were another parameter's
state.set_query(sweep_parameter=parameter)
with st.form("sweeps_form"):
    url_values = state.query_value("sweep_values", None)
    values_text = st.text_input(
        "Values (comma separated)",
        url_values or PARAMETERS[parameter][1],
        key=f"sweeps_values_{parameter}",  # one box per parameter, so each keeps its own grid
    )
    left, right = st.columns(2)
    # clamped: a hand-edited URL must not put a number input out of its range (that raises)
    epochs = left.number_input(
        "Epochs per training", 1, 100, min(max(state.query_value("sweep_epochs", 3, int), 1), 100), key="sweeps_epochs"
    )
    n_seeds = right.number_input(
        "Seeds (0, 1, ...)", 1, 10, min(max(state.query_value("sweep_seeds", 1, int), 1), 10), key="sweeps_seeds"
    )
    submitted = st.form_submit_button("Run sweep", type="primary")
st.caption(
    f"Every other setting is this session's training configuration ({ws.config.optimizer}, lr {ws.config.lr}, "
    f"k = {ws.config.embed_dim}, batch {ws.config.batch_size}). This page calls `afm.sweeps.run_sweep`, the same "
    "code as the reproduction command `python -m afm reproduce`, so its numbers match the report's for the same "
    "settings."
)

if submitted:
    try:
        values = parse_values(parameter, values_text)
    except ValueError as err:
        st.error(f"Values: {err}")
        st.stop()
    state.set_query(sweep_values=", ".join(str(v) for v in values), sweep_epochs=epochs, sweep_seeds=n_seeds)
    bar = st.progress(0.0, text="starting")

    def report(done: int, total: int, label: str) -> None:
        bar.progress(done / total, text=f"{done}/{total} trainings · {label}")

    frame = afm.sweeps.run_sweep(
        parameter,
        values,
        ws.parts["train"],
        ws.parts["valid"],
        base=dataclasses.replace(ws.config, epochs=int(epochs), task=ws.task),
        seeds=tuple(range(int(n_seeds))),
        callback=report,
    )
    bar.empty()
    ws.sweeps.append(frame)
    st.toast(f"Sweep of {parameter} done: {len(frame)} trainings in {frame['seconds'].sum():.0f} s")

if not ws.sweeps:
    st.info("No sweep yet in this session: pick a parameter and values, then **Run sweep**.")
    st.stop()

latest = ws.sweeps[-1]
st.subheader(f"Latest sweep: {latest['parameter'].iloc[0]}")
metrics = [c for c in latest.columns if c.startswith("valid_")]
wanted_metric = state.query_value("sweep_metric", f"valid_{headline}")
metric = st.selectbox(
    "Metric",
    metrics,
    index=metrics.index(wanted_metric) if wanted_metric in metrics else 0,
    key="sweeps_metric",
)
state.set_query(sweep_metric=metric)
fig = plots.sweep_plot(afm.sweeps.summarise(latest), metric)
state.show_figure(fig, "sweep")
st.caption("Mean over seeds per value; error bars are one standard deviation over seeds (none with one seed).")
state.show_table(latest, "sweep-latest", key="sweeps-latest")

st.subheader("All sweeps of this session")
# one file for every sweep, numbered in the order they ran
everything = pd.concat(ws.sweeps, keys=range(1, len(ws.sweeps) + 1), names=["sweep", "row"]).reset_index(level="row")
everything = everything.drop(columns="row").reset_index()
st.download_button(
    f"Download all session results (CSV, {len(ws.sweeps)} sweep{'s' if len(ws.sweeps) > 1 else ''})",
    everything.to_csv(index=False),
    file_name="afm-sweeps.csv",
    mime="text/csv",
    key="sweeps-all-csv",
)
if st.button("Clear results", key="sweeps_clear"):
    ws.sweeps.clear()
    st.rerun()
