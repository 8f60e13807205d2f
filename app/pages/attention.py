"""Attention: which field pairs the AFM listens to, over the rows of one part of the data."""

from __future__ import annotations

import state
import streamlit as st

import afm
from afm import explain, plots

VALUES = {  # radio label -> (field_pair_frame column, diverging colours centred at 0, colour bar title)
    "mean attention a_ij": ("mean_attention", False, "mean a_ij"),
    "mean |contribution| |c_ij|": ("mean_abs_contribution", False, "mean |c_ij|"),
    "signed mean contribution c_ij": ("mean_contribution", True, "mean c_ij"),
}

st.title("Attention")
st.caption(
    "AFM weighs each pair of fields per row with a softmax attention a_ij (summing to 1 over the row's pairs), "
    "then adds the pair's contribution c_ij = a_ij · s_ij to the prediction. Averaged over the rows, these show "
    "which feature interactions the model relies on; FM would weigh every pair the same."
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
    help="'all' is every row of the data; train/valid/test are the split the models were trained on.",
)
value_names = list(VALUES)
value_name = st.radio(
    "Colour the heatmap by",
    value_names,
    index=min(max(state.query_value("attention_value", 0, int), 0), len(value_names) - 1),
    horizontal=True,
    key="attention-value",
)
state.set_query(attention_part=part, attention_value=value_names.index(value_name))

exp = state.explanation(ws, "afm", part)
frame = state.field_frame(ws, "afm", part)
column, diverging, short_name = VALUES[value_name]
st.subheader("Field × field")
fig = plots.pair_heatmap(
    explain.field_pair_matrix(frame, column),
    f"AFM: {value_name} over {len(ws.parts[part]):,} rows ({part})",
    diverging=diverging,
    support=explain.field_pair_matrix(frame, "support"),
    value_name=short_name,
)
state.show_figure(fig, "attention-heatmap")

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
table = pairs[["label", "mean_attention", "mean_interaction", "mean_contribution", "count"]].rename(
    columns={
        "label": "feature pair",
        "mean_attention": "attention a_ij",
        "mean_interaction": "interaction s_ij",
        "mean_contribution": "contribution c_ij",
    }
)
state.show_table(table, "attention-top-pairs")

if ws.is_sample:
    st.subheader("Planted pairs vs what AFM learned")
    st.caption(
        "The sample was generated with a few planted field-pair effects. A good model ranks them near the top; "
        "rank 1 is the field pair with the largest mean |contribution| (or mean attention)."
    )
    truth = afm.datasets.sample_truth()
    recovery = explain.planted_recovery(frame, truth)
    planted = explain.planted_table(frame, truth)
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
    "Mean attention hides how much a_ij varies from row to row: the same field pair can matter a lot for some "
    "feature values and little for others. Boxes: quartiles; whiskers: 1.5 IQR; dashed line: the mean."
)
n_pairs = len(frame)
top = st.slider("Pairs, largest mean first", 1, n_pairs, min(15, n_pairs), key="attention-top") if n_pairs > 1 else 1
quantiles = explain.attention_quantiles(exp, frame["label"].tolist(), top=top)
state.show_figure(plots.attention_box(quantiles), "attention-spread")
