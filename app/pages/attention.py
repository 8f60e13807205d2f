"""Attention: which field pairs move the AFM's predictions, and how far its attention says so."""

from __future__ import annotations

import attention_sections as sections
import caches
import session
import streamlit as st
import widgets

import afm
from afm import attention, explain, faithfulness, plots

# radio label -> (field_pair_frame column, diverging colours centred at 0, colour bar title, URL code).
# What attention moves first; the URL codes are stable, so earlier links keep their meaning.
VALUES = {
    "what attention moves |(a_ij − 1/P)·s_ij|": ("mean_abs_attention_part", False, "mean |attention part|", 3),
    "relative attention P·a_ij": ("relative_attention", False, "P·a_ij (1 = uniform)", 4),
    "mean |contribution| |c_ij|": ("mean_abs_contribution", False, "mean |c_ij|", 1),
    "signed mean contribution c_ij": ("mean_contribution", True, "mean c_ij", 2),
    "mean attention a_ij": ("mean_attention", False, "mean a_ij (fixed 0–2/P scale)", 0),
}
JAIN_WALLACE = "[Jain & Wallace, *Attention is not Explanation* (NAACL 2019)](https://aclanthology.org/N19-1357/)"
WIEGREFFE_PINTER = (
    "[Wiegreffe & Pinter, *Attention is not not Explanation* (EMNLP 2019)](https://aclanthology.org/D19-1002/)"
)


present = session.get().present  # presentation mode: the heatmap above the fold at 1024 × 768
if present:  # the words go into a popover beside the title
    title_col, about_col = st.columns([3, 1], vertical_alignment="center")
    title_col.title("Attention")
    notes = about_col.popover("About these numbers")
else:
    st.title("Attention")
    notes = st.container()
notes.caption(
    "AFM adds up one contribution per pair of fields: c_ij = a_ij · s_ij, where s_ij = p·(v_i ⊙ v_j) x_i x_j is "
    "the pair's interaction and a_ij its attention. Each splits exactly into a **uniform part** s_ij / P (what "
    "the model predicts with every pair weighted alike, as FM) and an **attention part** (a_ij − 1/P)·s_ij: what "
    "the attention moves. A model that starts at an FM has p = P·1, so a_ij that differs from 1/P in the fifth "
    "decimal can still move predictions a lot: read attention by what it moves, or as P·a_ij (1 = uniform)."
)

ws = widgets.workspace()
if not widgets.require_models(ws):
    st.stop()

parts = list(ws.parts)
linked_part = widgets.query_value("attention_part", "all", choices=parts)
part_col, value_col = st.columns([1, 4]) if present else (st.container(), st.container())
part = part_col.selectbox(
    "Rows to average over",
    parts,
    index=parts.index(linked_part),
    key="attention-part",
    help=sections.part_help(ws),
)
value_names = list(VALUES)
codes = {code: name for name, (*_, code) in VALUES.items()}
value_name = value_col.radio(
    "Colour the heatmap by",
    value_names,
    index=value_names.index(codes[widgets.query_value("attention_value", 3, int, choices=sorted(codes))]),
    horizontal=True,
    key="attention-value",
)
widgets.set_query(attention_part=part, attention_value=VALUES[value_name][3])

model, data = ws.models["afm"], ws.parts[part]
exp = caches.summary(ws, "afm", part)  # exact sums per pair + a seeded row sample (never [rows, pairs])
if not exp.exact:
    (notes if present else st).caption(
        f"Field-pair means are exact over all {exp.rows:,} rows; the row-by-row agreement, the deletion test, "
        f"the top feature pairs and the spread per pair are {exp.sample_note()}."
    )
frame = caches.field_frame(ws, "afm", part)
column, diverging, short_name, _ = VALUES[value_name]
n_pairs = len(frame)
effect = sections.effect_panel(ws, model, data, exp)

if not present:
    st.subheader("Field × field")
# after a change of models the heatmap before the change is drawn beside: both take the width
side_by_side = sections.previous_frame(ws, part, data) is not None
# (and in presentation mode, where the cells need the width for their numbers)
heat_col, agree_col = (st.container(), st.container()) if side_by_side or present else st.columns([5, 2])
with heat_col:
    sections.heatmap_section(ws, part, data, frame, value_name, column, short_name)
with agree_col:
    agreement = sections.agreement_panel(model, exp.sample_data, exp, n_pairs, effect)
low, high = frame["relative_attention"].min(), frame["relative_attention"].max()
low_c, high_c = frame["mean_abs_attention_part"].min(), frame["mean_abs_attention_part"].max()
st.caption(
    f"How far from uniform: the field pairs' mean relative attention P·a_ij ranges from {low:.5f} to {high:.5f} "
    f"(1 = uniform; per row {attention.uniform_words(effect)}); their mean |attention part| from {low_c:.4f} to "
    f"{high_c:.4f}. Whether attention weights explain a model is debated: {JAIN_WALLACE} show that attention often "
    f"disagrees with other importance measures; {WIEGREFFE_PINTER} show that this depends on the model and the "
    "test. So every attention figure here stands beside its value under uniform attention and with each row's "
    "attention shuffled among its pairs; the contribution is exact (bias + linear terms + Σ c_ij = the prediction)."
)
no_ranking = effect.negligible or agreement["tied"]  # then no view ranks pairs by attention

st.subheader("Deletion: does removing a pair move the prediction?")
st.caption(
    "For each row, remove its top m pairs by a ranking and predict again. Removing a pair masks it out of the "
    "softmax and of the pooling, as if the pair did not exist: the row's other pairs share the attention among "
    "themselves. A ranking that finds what matters moves the predictions most; random removal is the baseline."
)
max_pairs = min(10, n_pairs)
rankings = ("contribution", "random") if no_ranking else faithfulness.RANKINGS
curve = sections.cached(
    "deletion",
    (ws.token, part, max_pairs, rankings),
    lambda: faithfulness.deletion_curve(model, data, max_pairs, rankings, task=ws.task, explanation=exp),
)
widgets.show_figure(plots.deletion_plot(curve), "attention-deletion")
first = curve[curve["removed"] == 1].set_index("ranking")
if not no_ranking:
    change = first["mean_abs_change"]
    st.markdown(
        f"Removing each row's top pair moves its prediction by **{change['contribution']:.3f}** on average when the "
        f"pair is chosen by |contribution|, **{change['attention']:.3f}** by attention, **{change['random']:.3f}** "
        f"for a random pair (= by uniform attention, where every pair ties) and **{change['permuted']:.3f}** "
        f"by shuffled attention (90%: {first.loc['permuted', 'change_lo']:.3f}–"
        f"{first.loc['permuted', 'change_hi']:.3f})."
    )
else:
    st.markdown("No deletion by attention: this AFM's attention ranks nothing (see the verdict above).")

st.subheader("Top feature pairs")
st.caption(
    "Feature pairs ranked by mean |contribution| over the rows where both features occur; count is that number of rows."
)
left, right = st.columns(2)
min_count = left.slider(
    "Minimum count", 1, 200, widgets.query_value("attention_min_count", 5, int, lo=1, hi=200), key="attention-min-count"
)
n_rows = right.number_input(
    "Rows to show", 5, 500, widgets.query_value("attention_rows", 20, int, lo=5, hi=500), 5, key="attention-rows"
)
widgets.set_query(attention_min_count=min_count, attention_rows=n_rows)
pairs = caches.feature_frame(ws, "afm", part, min_count).head(int(n_rows))
table = pairs[["label", "mean_contribution", "mean_interaction", "mean_attention", "count"]].rename(
    columns={
        "label": "feature pair",
        "mean_attention": "attention a_ij",
        "mean_interaction": "interaction s_ij",
        "mean_contribution": "contribution c_ij",
    }
)
widgets.show_table(table, "attention-top-pairs")

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
    hits_attention = sum(r is not None and r <= k for r in planted["rank by attention"])
    a, b, c = st.columns(3)
    a.metric(f"Planted pairs in the top {k} by |contribution|", f"{recovery['top_k_hits']} / {k}")
    b.metric(f"Planted pairs in the top {k} by attention", "no ranking" if no_ranking else f"{hits_attention} / {k}")
    if no_ranking:
        planted["rank by attention"] = None
    c.metric("Spearman (strength vs |contribution|)", f"{recovery['spearman']:.2f}")
    widgets.show_table(planted, "attention-planted")
    widgets.show_figure(plots.rank_agreement(planted, len(frame)), "attention-rank-agreement")

if ws.bundled == "salient":
    sections.truth_section(ws, data, exp)

st.subheader("Spread of attention per pair")
st.caption(
    "Mean attention hides how much a_ij varies from row to row: the same field pair can get much of a row's weight "
    "for some feature values and little for others. Boxes: quartiles; whiskers: 1.5 IQR; dashed line: the mean."
)
top = st.slider("Pairs, largest mean first", 1, n_pairs, min(15, n_pairs), key="attention-top") if n_pairs > 1 else 1
quantiles = explain.attention_quantiles(exp, frame["label"].tolist(), top=top)
widgets.show_figure(plots.attention_box(quantiles), "attention-spread")
if no_ranking:
    st.caption("The order of these boxes is not a ranking: the attention part is negligible or the attention tied.")

sections.stability_section(ws, part, data, n_pairs, planted_labels)
