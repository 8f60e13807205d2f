"""Sweeps: the paper's hyper-parameter figures (validation error against dropout, t, lambda), live."""

from __future__ import annotations

import dataclasses

import jobs
import pandas as pd
import session
import streamlit as st
import sweep_sections
import widgets

import afm.sweeps
from afm import plots

st.title("Sweeps")
st.caption(
    "The paper's hyper-parameter figures (Xiao et al. 2017, Fig. 2-4), made live on this session's data: for each "
    "value and seed, train an FM and an AFM started exactly at it (FM pre-training, the default recipe), and plot the "
    "validation metric against the value. For t and λ one FM per seed is trained and every AFM starts from it."
)

ws = widgets.workspace()
if "train" not in ws.parts or "valid" not in ws.parts:
    st.info("A sweep needs a training and a validation part: load data on the **Data & model** page.")
    st.stop()
headline, _ = widgets.metric_names(ws.task)
me = session.get()
if message := me.messages.pop(sweep_sections.SLOT, None):  # a sweep that ended while the session looked elsewhere
    st.error(widgets.literal(message, 400))
if me.sweeps_from_link is None:  # read once: was this session opened with a sweep link?
    me.sweeps_from_link = "sweep_values" in st.query_params

# Nothing here trains until Run is pressed, so the settings sit outside a form and the estimate follows them.
names = list(sweep_sections.PARAMETERS)
wanted = widgets.query_value("sweep_parameter", "dropout", choices=names)
parameter = st.selectbox(
    "Parameter",
    names,
    index=names.index(wanted),
    format_func=lambda name: sweep_sections.PARAMETERS[name][0],
    key="sweeps_parameter",
)
if parameter != wanted and "sweep_values" in st.query_params:
    del st.query_params["sweep_values"]  # the values in the URL were another parameter's
widgets.set_query(sweep_parameter=parameter)
values_text = st.text_input(
    "Values (comma separated)",
    widgets.query_value("sweep_values", None) or sweep_sections.PARAMETERS[parameter][1],
    key=f"sweeps_values_{parameter}",  # one box per parameter, so each keeps its own grid
)
left, right, third = st.columns(3)
epochs = left.number_input(  # clamped: a hand-edited URL must not put a number input out of its range (that raises)
    "Epochs per training (at most)",
    1,
    200,
    widgets.query_value("sweep_epochs", min(max(ws.config.epochs, 1), 200), int, lo=1, hi=200),
    key="sweeps_epochs",
    help=f"Early stopping (patience {ws.config.patience}) ends most trainings sooner.",
)
seeds_default = widgets.query_value("sweep_seeds", sweep_sections.PARAMETERS[parameter][2], int, lo=1, hi=10)
n_seeds = right.number_input("Seeds (0, 1, ...)", 1, 10, seeds_default, key=f"sweeps_seeds_{parameter}")
pretrain = third.toggle(
    "FM pre-training",
    widgets.query_value("sweep_pretrain", sweep_sections.PARAMETERS[parameter][3], bool),
    key=f"sweeps_pretrain_{parameter}",
    help="On: each AFM starts exactly at its FM (the default recipe). Off: at random weights.",
)
if sweep_sections.PARAMETERS[parameter][4]:
    st.caption(sweep_sections.PARAMETERS[parameter][4])
values, problem = sweep_sections.parse(parameter, values_text)
base = dataclasses.replace(ws.config, epochs=int(epochs), task=ws.task, pretrain=pretrain)
seeds = tuple(range(int(n_seeds)))
key = jobs.job_key("sweep", ws.data_id, parameter, values, seeds, base.to_dict())

run_column, estimate_column, stop_column = st.columns([1, 3, 1], vertical_alignment="center")
run = run_column.button("Run sweep", type="primary", key="sweeps_run")
estimate = sweep_sections.estimate(ws, estimate_column, problem, key, parameter, values, seeds, base)
others = [n for n in ("embed_dim", "attention_factor", "dropout", "l2_attention") if n != parameter]
st.caption(
    f"Every other setting is this session's training configuration ({afm.config.describe(base, others)}; lr {base.lr}, "
    f"AFM lr {base.finetune_lr}, batch {base.batch_size}). This page calls `afm.sweeps.run_sweep`. Links (the address "
    "bar) keep the sweep's settings, not its results."
)

if run and not problem:
    shown = ", ".join(str(v) for v in values)
    widgets.set_query(sweep_values=shown, sweep_epochs=epochs, sweep_seeds=n_seeds, sweep_pretrain=pretrain)
    me.sweeps_from_link = False
    if (frame := sweep_sections.stored(ws, key)) is not None:
        ws.sweeps[:] = [f for f in ws.sweeps if f is not frame] + [frame]  # shown at once, as the latest
    else:
        # one sweep at a time per session: submitting lets the earlier one go
        work = afm.sweeps.sweep_job(parameter, values, ws.parts["train"], ws.parts["valid"], base=base, seeds=seeds)
        label = f"sweep of {parameter}: {len(values)} values × {len(seeds)} seed(s)"
        meta = {"key": key, "data_id": ws.data_id, "estimate": estimate}
        me.submit(sweep_sections.SLOT, key, label, work, sweep_sections.collect, meta)

if me.current(sweep_sections.SLOT) is not None:
    help_stop = "Ends the sweep; finished values are kept"
    if me.running(sweep_sections.SLOT) and stop_column.button("Stop", key="sweeps_stop", help=help_stop):
        if me.stop(sweep_sections.SLOT) != "stopped":  # another session waits for it: it goes on for them
            st.info("Left the sweep: another session asked for the same one, which goes on for them.")
    if me.running(sweep_sections.SLOT):  # a click (Stop, another page) ends this wait
        job_estimate = me.meta(sweep_sections.SLOT)["estimate"]
        of = f" of about {job_estimate:.0f} s" if job_estimate else ""
        me.follow(sweep_sections.SLOT, text_of=lambda job: f"{job.text} · {job.seconds:.0f} s{of}")
    if me.current(sweep_sections.SLOT) is not None:  # ended (not left): its rows go into the workspace
        me.collect(sweep_sections.SLOT, ws)
        st.rerun()  # draw the page again with the results (and the settings' "in this session" note)
if me.sweeps_from_link and sweep_sections.stored(ws, key) is None:
    st.info(
        "This link restores the sweep's settings; press **Run sweep** to compute its results (links do not "
        "store results)."
    )
if not ws.sweeps:
    st.info("No sweep yet in this session: pick a parameter and values, then **Run sweep**.")
    st.stop()

latest = sweep_sections.stored(ws, key) if sweep_sections.stored(ws, key) is not None else ws.sweeps[-1]
st.subheader(f"Sweep of {latest['parameter'].iloc[0]}" if len(latest) else "Sweep")
if latest.attrs.get("stopped"):
    st.warning(
        f"Stopped after {latest.attrs['seconds']:.0f} s: {len(latest) and latest['value'].nunique()} value(s) "
        "finished and shown; the rest were not trained. **Run sweep** computes the whole sweep."
    )
if latest.attrs.get("key") != key:
    st.caption("These results are the session's latest sweep; the settings above differ from it.")
if len(latest):  # (a sweep stopped before its first value has no rows)
    metrics = [c for c in latest.columns if c.startswith("valid_")]
    wanted_metric = widgets.query_value("sweep_metric", f"valid_{headline}", choices=metrics)
    metric = st.selectbox(
        "Metric",
        metrics,
        index=metrics.index(wanted_metric) if wanted_metric in metrics else 0,
        key="sweeps_metric",
        format_func=plots.words,
    )
    widgets.set_query(sweep_metric=metric)
    widgets.show_figure(plots.sweep_plot(afm.sweeps.summarise(latest), metric), "sweep")
    st.caption("Mean over seeds per value; error bars are one standard deviation over seeds (none with one seed).")
    widgets.show_table(latest, "sweep-latest", key="sweeps-latest")

st.subheader("All sweeps of this session")  # one file for every sweep, numbered in the order they ran
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
