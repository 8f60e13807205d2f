"""Attention: which field pairs move the AFM's predictions, and how far its attention says so."""

from __future__ import annotations

import dataclasses
import json
import time

import pandas as pd
import state
import streamlit as st

import afm
from afm import explain, faithfulness, plots

# radio label -> (field_pair_frame column, diverging colours centred at 0, colour bar title, URL code).
# Contribution first; the URL codes are the old option positions, so earlier links keep their meaning.
VALUES = {
    "mean |contribution| |c_ij|": ("mean_abs_contribution", False, "mean |c_ij|", 1),
    "signed mean contribution c_ij": ("mean_contribution", True, "mean c_ij", 2),
    "mean attention a_ij": ("mean_attention", False, "mean a_ij", 0),
}
JAIN_WALLACE = "[Jain & Wallace, *Attention is not Explanation* (NAACL 2019)](https://aclanthology.org/N19-1357/)"
WIEGREFFE_PINTER = (
    "[Wiegreffe & Pinter, *Attention is not not Explanation* (EMNLP 2019)](https://aclanthology.org/D19-1002/)"
)


def part_help(ws: state.Workspace) -> str:
    """Exactly which rows each part holds, in numbers."""
    sizes = {name: len(data) for name, data in ws.parts.items()}
    split = [name for name in ("train", "valid", "test") if name in sizes]
    text = f"'all' is every row of the data: {sizes['all']:,} rows"
    if ws.data_key.startswith("libfm:"):
        text += ", every row of every .libfm part file in the folder (train, validation and test files)"
    if split and sum(sizes[name] for name in split) == sizes["all"]:
        text += " = " + " + ".join(f"{name} {sizes[name]:,}" for name in split)
    return text + ". train/valid/test are the split the models were trained on."


def cached(name: str, key: tuple, compute):  # noqa: ANN001, ANN202 - a tiny per-session memo
    """``compute()`` once per ``key`` in this browser session (the newest 8 kept)."""
    store = st.session_state.setdefault(f"attention-cache-{name}", {})
    if key not in store:
        while len(store) >= 8:
            store.pop(next(iter(store)))
        store[key] = compute()
    return store[key]


st.title("Attention")
st.caption(
    "AFM adds up one contribution per pair of fields: c_ij = a_ij · s_ij, where s_ij = p·(v_i ⊙ v_j) x_i x_j is "
    "the pair's interaction and a_ij its attention. **c_ij is what moves the prediction.** a_ij is only a weight "
    "within one row: it is non-negative and sums to 1 over the row's pairs, so it says how the row's weight is "
    "shared, not how much the pair matters. A pair can get high attention and move nothing (s_ij ≈ 0). "
    "FM would weigh every pair the same."
)

ws = state.workspace()
if not state.require_models(ws):
    st.stop()

parts = list(ws.parts)
linked_part = state.query_value("attention_part", "all")
part = st.selectbox(
    "Rows to average over",
    parts,
    index=parts.index(linked_part if linked_part in parts else "all"),
    key="attention-part",
    help=part_help(ws),
)
value_names = list(VALUES)
codes = {code: name for name, (*_, code) in VALUES.items()}
value_name = st.radio(
    "Colour the heatmap by",
    value_names,
    index=value_names.index(codes.get(state.query_value("attention_value", 1, int), value_names[0])),
    horizontal=True,
    key="attention-value",
)
state.set_query(attention_part=part, attention_value=VALUES[value_name][3])

model, data = ws.models["afm"], ws.parts[part]
exp = state.explanation(ws, "afm", part)
frame = state.field_frame(ws, "afm", part)
column, diverging, short_name, _ = VALUES[value_name]
n_pairs = len(frame)

st.subheader("Field × field")
heat_col, agree_col = st.columns([5, 2])
with heat_col:
    fig = plots.pair_heatmap(
        explain.field_pair_matrix(frame, column),
        f"AFM: {value_name} over {len(data):,} rows ({part})",
        diverging=diverging,
        support=explain.field_pair_matrix(frame, "support"),
        value_name=short_name,
    )
    state.show_figure(fig, "attention-heatmap")
with agree_col:
    agreement = faithfulness.attention_agreement(model, data, exp)
    st.markdown("**Does attention say what matters?** For this model:")
    st.metric(
        "Spearman: attention vs |contribution|",
        f"{agreement['spearman']:.2f}",
        help=f"Rank correlation between each field pair's mean a_ij and mean |c_ij|, over the {n_pairs} field "
        "pairs; 1 = the same order, 0 = unrelated.",
    )
    st.metric(
        "Rows with the same top pair",
        f"{agreement['top_pair_agreement']:.1%}",
        help=f"The share of the {len(data):,} rows whose top-attention pair is also their top-|c| pair; by "
        f"chance it would be 1/{n_pairs} = {agreement['chance']:.1%}.",
    )
    st.metric(
        "var(log|c_ij|) explained by s_ij",
        f"{agreement['interaction_share']:.0%}",
        help="log|c| = log a + log|s|: var(log|s|) / var(log|c|) over every row and pair. The same share for "
        f"the attention, var(log a) / var(log|c|): {agreement['attention_share']:.1%}.",
    )
    st.caption(
        f"By chance the top pairs would match in 1/{n_pairs} = {agreement['chance']:.1%} of rows. The size of a "
        f"contribution comes more from s_ij ({agreement['interaction_share']:.0%} of var(log|c|)) than from "
        f"a_ij ({agreement['attention_share']:.1%})."
        if agreement["interaction_share"] > agreement["attention_share"]
        else f"By chance the top pairs would match in 1/{n_pairs} = {agreement['chance']:.1%} of rows."
    )
low, high = frame["mean_attention"].min(), frame["mean_attention"].max()
low_c, high_c = frame["mean_abs_contribution"].min(), frame["mean_abs_contribution"].max()
st.caption(
    f"Colour by mean |contribution| to see what moves the predictions. Here the field pairs' mean a_ij range from "
    f"{low:.5f} to {high:.5f} (uniform attention: 1/{n_pairs} = {1 / n_pairs:.5f}) while their mean |c_ij| range "
    f"from {low_c:.4f} to {high_c:.4f}, and mean attention ranks the pairs "
    f"{'much ' if agreement['spearman'] < 0.5 else ''}differently (Spearman {agreement['spearman']:.2f}): "
    "attention is not importance. Whether attention weights explain a model is debated: "
    f"{JAIN_WALLACE} show that attention often disagrees with other importance measures; {WIEGREFFE_PINTER} show "
    "that this depends on the model and the test. Here the contribution is exact (bias + linear terms + Σ c_ij = "
    "the prediction), so the page leads with it, and the deletion test below checks it."
)

st.subheader("Deletion: does removing a pair move the prediction?")
st.caption(
    "For each row, remove its top m pairs by a ranking and predict again. Removing a pair masks it out of the "
    "softmax and of the pooling, as if the pair did not exist: the row's other pairs share the attention among "
    "themselves. A ranking that finds what matters moves the predictions most; random removal is the baseline."
)
max_pairs = min(10, n_pairs)
curve = cached(
    "deletion",
    (ws.token, part, max_pairs),
    lambda: faithfulness.deletion_curve(model, data, max_pairs, task=ws.task, explanation=exp),
)
state.show_figure(plots.deletion_plot(curve), "attention-deletion")
first = curve[curve["removed"] == 1].set_index("ranking")["mean_abs_change"]
if len(first) == 3:
    st.markdown(
        f"Removing each row's top pair moves its prediction by **{first['contribution']:.3f}** on average when the "
        f"pair is chosen by |contribution|, **{first['attention']:.3f}** by attention, and **{first['random']:.3f}** "
        "for a random pair."
    )

st.subheader("Top feature pairs")
st.caption(
    "Feature pairs ranked by mean |contribution| over the rows where both features occur; count is that number of rows."
)
left, right = st.columns(2)
min_count = left.slider(
    "Minimum count", 1, 200, state.query_value("attention_min_count", 5, int), key="attention-min-count"
)
n_rows = right.number_input(
    "Rows to show", 5, 500, min(max(state.query_value("attention_rows", 20, int), 5), 500), 5, key="attention-rows"
)
state.set_query(attention_min_count=min_count, attention_rows=n_rows)
pairs = state.feature_frame(ws, "afm", part, min_count).head(int(n_rows))
table = pairs[["label", "mean_contribution", "mean_interaction", "mean_attention", "count"]].rename(
    columns={
        "label": "feature pair",
        "mean_attention": "attention a_ij",
        "mean_interaction": "interaction s_ij",
        "mean_contribution": "contribution c_ij",
    }
)
state.show_table(table, "attention-top-pairs")

planted_labels: list[str] = []
if ws.is_sample:
    st.subheader("Planted pairs vs what AFM learned")
    st.caption(
        "The sample was generated with a few planted field-pair effects. A good model ranks them near the top; "
        "rank 1 is the field pair with the largest mean |contribution| (or mean attention)."
    )
    truth = afm.datasets.sample_truth()
    recovery = explain.planted_recovery(frame, truth)
    planted = explain.planted_table(frame, truth)
    planted_labels = list(planted["planted pair"])
    k = recovery["k"]
    hits_attention = int((planted["rank by attention"] <= k).sum())
    a, b, c = st.columns(3)
    a.metric(f"Planted pairs in the top {k} by |contribution|", f"{recovery['top_k_hits']} / {k}")
    b.metric(f"Planted pairs in the top {k} by attention", f"{hits_attention} / {k}")
    c.metric("Spearman (strength vs |contribution|)", f"{recovery['spearman']:.2f}")
    state.show_table(planted, "attention-planted")
    state.show_figure(plots.rank_agreement(planted, len(frame)), "attention-rank-agreement")

st.subheader("Spread of attention per pair")
st.caption(
    "Mean attention hides how much a_ij varies from row to row: the same field pair can get much of a row's weight "
    "for some feature values and little for others. Boxes: quartiles; whiskers: 1.5 IQR; dashed line: the mean."
)
top = st.slider("Pairs, largest mean first", 1, n_pairs, min(15, n_pairs), key="attention-top") if n_pairs > 1 else 1
quantiles = explain.attention_quantiles(exp, frame["label"].tolist(), top=top)
state.show_figure(plots.attention_box(quantiles), "attention-spread")

# ---------------------------------------------------------------------------- seed stability
st.subheader("Would another seed agree?")
st.caption(
    "The ranking above comes from one trained model. Train the same configuration with other seeds (weights, "
    "batch order and dropout change; the data and its split do not) and see whether the pairs keep their places: "
    "each pair's mean |contribution| and mean attention across seeds with a 90% interval (the 5th to 95th "
    "percentile over seeds), its rank interval, and the mean Kendall τ between the seeds' rankings."
)
if "train" not in ws.parts:
    st.info("Seed stability needs a training part: load data on the **Data & model** page.")
    st.stop()
# the settings outlive the widgets (Streamlit drops a widget's state when another page runs), so coming
# back to the page finds the same settings and so the same results
remembered = st.session_state.setdefault("stability-settings", {})
left, right = st.columns(2)
n_seeds = int(left.number_input("Seeds (0, 1, ...)", 2, 10, remembered.get("seeds", 5), key="stability-seeds"))
epochs = int(
    right.number_input(
        "Epochs per training", 1, 200, remembered.get("epochs", min(ws.config.epochs, 200)), key="stability-epochs"
    )
)
remembered.update(seeds=n_seeds, epochs=epochs)
config = dataclasses.replace(ws.config, task=ws.task, epochs=epochs, seed=0)
key = json.dumps({"data": ws.data_key, "part": part, "config": config.to_dict()}, sort_keys=True, default=str)
runs = st.session_state.setdefault("stability-runs", {})  # settings -> {"frames": per-seed frames, ...}
entry = runs.get(key)
done = [] if entry is None else [int(f["seed"].iloc[0]) for f in entry["frames"]]
todo = [s for s in range(n_seeds) if s not in done]
go, stop = st.columns([1, 1])
run_clicked = go.button(
    f"Train {len(todo)} seed{'s' if len(todo) != 1 else ''}" if todo else "All seeds trained",
    key="stability-run",
    type="primary",
    disabled=not todo,
)
stop_clicked = stop.button("Stop", key="stability-stop", help="Stops after the seed in training; keeps the others")
st.caption(
    f"Settings: this session's training configuration ({'FM pre-training, ' if config.pretrain else ''}"
    f"k = {config.embed_dim}, t = {config.attention_factor}, {config.optimizer}, lr {config.lr}, "
    f"batch {config.batch_size}, up to {epochs} epoch{'s' if epochs > 1 else ''}), "
    f"trained on the train part ({len(ws.parts['train']):,} rows), "
    f"pairs measured on '{part}' ({len(data):,} rows). Results are kept for this session."
)

if run_clicked and todo:
    entry = runs.setdefault(key, {"frames": [], "seconds": 0.0})
    bar = st.progress(0.0, text="starting")
    started = time.perf_counter()

    def report(p: faithfulness.SeedProgress) -> None:
        n = len(done) + p.done
        if p.frame is not None:
            entry["frames"].append(p.frame)  # kept at once: a Stop keeps every finished seed
            text = f"seed {p.seed} done ({n + 1}/{n_seeds})"
        else:
            t = p.training
            text = f"seed {p.seed} ({n + 1}/{n_seeds}) · epoch {t.epoch}/{t.epochs} · loss {t.train_loss:.4f}"
        bar.progress((len(done) + p.fraction * len(todo)) / n_seeds, text=text)

    try:
        afm.seed_stability(config, ws.parts["train"], ws.parts.get("valid"), data, seeds=todo, callback=report)
    finally:  # a Stop (Streamlit's rerun) included: count the time the finished seeds took
        entry["seconds"] += time.perf_counter() - started
    st.rerun()  # the button and the results below show the finished seeds
elif stop_clicked:
    st.info("Stopped: the seeds finished so far are kept; press the train button to go on with the rest.")

entry = runs.get(key)
if not entry or not entry["frames"]:
    st.info(f"No seeds trained yet for these settings: press **Train {n_seeds} seeds** (one training per seed).")
    st.stop()
frames = [f for f in entry["frames"] if int(f["seed"].iloc[0]) < n_seeds]
stability, tau = faithfulness.stability_frame(pd.concat(frames, ignore_index=True))
trained = len(frames)
a, b, c = st.columns(3)
a.metric("Seeds trained", f"{trained} / {n_seeds}", help=f"{entry['seconds']:.0f} s of training in all")
b.metric("Mean Kendall τ between seeds (by |contribution|)", "—" if trained < 2 else f"{tau:.2f}")
attention_tau = stability.attrs["attention_tau"]
c.metric("Mean Kendall τ between seeds (by attention)", "—" if attention_tau is None else f"{attention_tau:.2f}")
detail = f" (τ = {tau:.2f} over the {n_pairs} field pairs; 1 = the same order every time, 0 = unrelated)."
st.markdown(f"**In words:** {faithfulness.tau_in_words(tau)}" + (detail if trained > 1 else "."))
if ws.is_sample:
    st.caption("Green diamonds: the pairs planted in the sample (`afm.datasets.sample_truth()`).")
state.show_figure(plots.stability_plot(stability, planted_labels), "attention-stability")
shown = stability[
    ["label", "mean_abs_contribution", "abs_contribution_lo", "abs_contribution_hi", "rank_lo", "rank_hi",
     "mean_attention", "attention_lo", "attention_hi", "attention_rank_lo", "attention_rank_hi", "seeds"]
]  # fmt: skip
shown = shown.rename(columns={"label": "field pair"})
shown.attrs = {}  # the per-seed records need not travel to the browser
state.show_table(shown, "attention-stability")
