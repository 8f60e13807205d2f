"""AFM vs FM: the same split, both models' metrics, learning curves, predictions, and per field pair
what attention changes (FM weighs every pair the same; AFM learns a weight per pair and row)."""

from __future__ import annotations

import caches
import numpy as np
import pandas as pd
import session
import streamlit as st
import widgets

import afm
from afm import plots

st.title("AFM vs FM")
st.caption(
    "Both models on the same split of the same data: metrics, learning curves, predictions, and per field pair "
    "how AFM's learned attention re-weights the interactions that FM weighs uniformly."
)

ws = widgets.workspace()
if not widgets.require_models(ws):
    st.stop()
models = {session.LABELS[kind]: ws.models[kind] for kind in session.KINDS}  # "AFM", "FM" -> model
headline, valid_column = widgets.metric_names(ws.task)
spec = afm.TASKS[ws.task]

# ---------------------------------------------------------------------------- metrics
st.subheader("Metrics on the same split")
scores = {
    (label, part): caches.evaluate_part(model, ws.parts, ws.task, part)
    for label, model in models.items()
    for part in ("valid", "test")
}
rows = [  # a fixed order (the task's metrics, headline first), whatever order a training left the dicts in
    {
        "part": afm.plots.PART_WORDS[part],
        "metric": spec.label(name),
        "AFM": scores["AFM", part][name],
        "FM": scores["FM", part][name],
    }
    for part in ("valid", "test")
    for name in spec.metrics
]
table = pd.DataFrame(rows)
table["AFM − FM"] = table["AFM"] - table["FM"]
for column, part in zip(st.columns(2), ("test", "valid"), strict=True):
    afm_value, fm_value = scores["AFM", part][headline], scores["FM", part][headline]
    column.metric(
        f"AFM {part} {headline.upper()}",
        f"{afm_value:.4f}",
        delta=f"{afm_value - fm_value:+.4f} vs FM",
        # a negative delta is good news for an error metric: draw it green
        delta_color="inverse" if afm.metrics.LOWER_IS_BETTER[headline] else "normal",
        help=f"FM: {fm_value:.4f}. Delta = AFM − FM.",
    )
widgets.show_table(
    table,
    "afm-vs-fm-metrics",
    key="compare-metrics",
    column_config={"AFM − FM": st.column_config.NumberColumn(format="%+.4f")},
)
if ws.task == "regression":
    st.caption("Regression predictions are clipped to the training labels' range before scoring, as in the paper.")

# ---------------------------------------------------------------------------- learning curves
st.subheader("Learning curves")
histories = {session.LABELS[k]: frame for k, frame in ws.histories.items()}
previous = {session.LABELS[k]: frame for k, frame in ws.previous.items()}
left, right = st.columns(2)
with left:
    fig = plots.learning_curves(histories, valid_column, previous, title=f"Validation {headline.upper()} per epoch")
    widgets.show_figure(fig, "compare-valid-curve")
with right:
    fig = plots.learning_curves(histories, "train_loss", previous, title="Training loss per epoch")
    widgets.show_figure(fig, "compare-train-loss")
if not histories:
    st.caption("These models came without a training history.")

# ---------------------------------------------------------------------------- predictions
st.subheader("Predictions on the test part")
test = ws.parts["test"]
raw = {label: afm.predict(model, test).double().numpy() for label, model in models.items()}
y = test.y.double().numpy()
if not spec.binary:
    lo, hi = afm.label_range(ws.parts["train"])
    clipped = {k: np.clip(v, lo, hi) for k, v in raw.items()}
    fig = plots.prediction_density(y, clipped, title="Predicted vs true (test)")
    widgets.show_figure(fig, "compare-predictions")
    st.caption(
        f"How many of the {len(y):,} test rows fall in each cell of label × prediction, one panel per model on the "
        "same axes and colour scale (darker: more rows); on the dotted diagonal the prediction is right. Predictions "
        "are clipped to the training label range, as the RMSE sees them."
    )
else:
    probabilities = {k: spec.probability(v) for k, v in raw.items()}  # logits -> p
    fig = plots.calibration_plot(y, probabilities, title="Calibration (test)")
    widgets.show_figure(fig, "compare-calibration")
    st.caption(
        "Labels are 0/1, so a scatter of probability against label is two stripes. Instead the test rows are "
        "grouped into ten bins of predicted probability: each point is a bin's mean probability against the share "
        "of positive labels in it (bigger points: more rows). On the diagonal a model's probabilities mean what they "
        "say; AUC measures ranking, this measures calibration."
    )

# ---------------------------------------------------------------------------- per field pair
st.subheader("Where AFM − FM comes from: attention, or different weights")
part = widgets.part_picker(ws, "compare_part", "all", "Rows to explain", key="compare_part")
afm_frame, fm_frame = caches.field_frame(ws, "afm", part), caches.field_frame(ws, "fm", part)
split = afm.attention.afm_fm_difference(ws.models["afm"], ws.models["fm"], ws.parts[part])
st.markdown(
    f"Per prediction, AFM − FM is **{split['abs_difference']:.3g}** on average (in size; {split['difference']:+.3g} "
    f"signed) for the AFM trained {widgets.recipe_words(ws)}. It splits exactly into what AFM's **attention** moves, "
    f"(a_ij − 1/P)·s_ij summed over the row: **{split['abs_attention']:.3g}** on average, and what the two models' "
    f"**different weights** (w0, w, V, p) make of the same pairs with uniform attention: "
    f"**{split['abs_weights']:.3g}**."
)
widgets.show_figure(plots.difference_split(afm.attention.difference_frame(afm_frame, fm_frame)), "compare-split")
st.caption(
    "Per field pair, AFM's mean c_ij minus FM's: the blue part is what the weights change (AFM's uniform part "
    "s_ij / P against FM's c_ij), the purple part what attention moves; the diamond is their sum. FM weighs every "
    "pair alike; AFM's attention re-weights them row by row."
)

# both frames list the pairs in the same triu order, so the columns line up row by row
pairs = pd.DataFrame(
    {
        "label": afm_frame["label"],
        "afm_mean_abs_contribution": afm_frame["mean_abs_contribution"],
        "fm_mean_abs_contribution": fm_frame["mean_abs_contribution"].to_numpy(),
        "afm_mean_attention": afm_frame["mean_attention"],
    }
)
pairs["difference"] = pairs["afm_mean_abs_contribution"] - pairs["fm_mean_abs_contribution"]
pairs = pairs.sort_values("difference", ascending=False, ignore_index=True)
# the sample's planted pairs, labelled as the frame labels them (hatched bars)
truth = afm.datasets.sample_truth() if ws.is_sample else []
planted = list(afm.explain.planted_table(afm_frame, truth)["planted pair"]) if truth else []
widgets.show_figure(plots.contribution_difference(pairs, planted=planted), "compare-contribution-difference")
st.caption(
    "Mean |c_ij| over the rows: how much each pair moves predictions. Red: AFM leans on the pair more than FM; "
    "blue: less. Both models learn their own embeddings, so a difference mixes attention with what each learned."
    + (" Hatched bars with a green outline: the pairs planted in the sample." if planted else "")
)
widgets.show_table(pairs.rename(columns={"label": "field pair"}), "compare-field-pairs", key="compare-pairs")
