"""How AFM works: the paper's equations one by one, each with the live numbers of one sample and one pair."""

from __future__ import annotations

import math

import attention_sections
import caches
import numpy as np
import pandas as pd
import streamlit as st
import widgets

import afm
from afm import explain

st.title("How AFM works")
st.caption(
    "The equations of Xiao et al. (IJCAI 2017), step by step, each followed by the numbers of one real sample "
    "and one pair of its fields, recomputed here with NumPy from the trained parameters and checked against "
    "the model. Change the sample or the pair and every number follows."
)

ws = widgets.workspace()
spec = afm.TASKS[ws.task]
if not widgets.require_models(ws):
    st.stop()
schema, afm_model, fm_model = ws.schema, ws.models["afm"], ws.models["fm"]

part, row, pair, pair_labels = attention_sections.sample_and_pair_picker(ws)
data = ws.parts[part]
idx, val = data.idx[row : row + 1], data.val[row : row + 1]  # (1, F)
exp, fm_exp = afm_model.explain(idx, val), fm_model.explain(idx, val)

# The paper's equations in NumPy from the trained parameters, checked below against the model's own numbers.
params = afm.paper_parameters(afm_model)
steps = explain.paper_steps(params, idx[0].numpy(), val[0].numpy())
fm_steps = explain.paper_steps(afm.paper_parameters(fm_model), idx[0].numpy(), val[0].numpy())
labels = schema.feature_labels()
features = [labels[i] for i in idx[0].tolist()]
i, j = steps["pairs"][pair]
x = val[0].numpy()
n_pairs = len(pair_labels)

st.markdown(
    f"**The sample.** Row {row} of *{part}* has one non-zero feature per field (F = {schema.n_fields}), so "
    f"P = F(F−1)/2 = {n_pairs} pairs. The chosen pair: **{widgets.literal(features[i])} × "
    f"{widgets.literal(features[j])}**."
)
widgets.show_table(
    pd.DataFrame({"field": schema.field_names, "feature": features, "x_i": x, "w_i x_i (AFM)": steps["linear"]}),
    "how-sample",
)

st.header("1 · Factorization machine")
st.latex(
    r"\hat{y}_{FM}(\mathbf{x}) = w_0 + \sum_{i=1}^{n} w_i x_i"
    r" + \sum_{i=1}^{n}\sum_{j=i+1}^{n} \langle \mathbf{v}_i, \mathbf{v}_j \rangle\, x_i x_j"
)
st.markdown(
    "Every pair of features gets the weight ⟨v_i, v_j⟩ of two learned k-dimensional embeddings. "
    "With FM's own parameters, for this sample:"
)
widgets.metric_row(
    ("FM's w0", f"{fm_steps['w0']:.4f}"),
    ("FM's Σ w_i x_i", f"{fm_steps['linear'].sum():.4f}"),
    ("Σ ⟨v_i, v_j⟩ x_i x_j", f"{fm_steps['interaction'].sum():.4f}"),
    ("FM's ŷ", f"{fm_steps['prediction']:.4f}"),
)
widgets.check_equal(fm_steps["prediction"], float(fm_exp.prediction[0]), "FM's prediction")

st.header("2 · Pair-wise interaction layer")
st.latex(r"f_{PI}(\mathcal{E}) = \{(\mathbf{v}_i \odot \mathbf{v}_j)\, x_i x_j\}_{(i,j) \in \mathcal{R}_\mathbf{x}}")
st.markdown(
    f"AFM keeps the element-wise product as a k = {len(params['p'])} vector u_ij instead of summing it at once. "
    f"From here on, the numbers are AFM's. For **{widgets.literal(features[i])} × {widgets.literal(features[j])}** "
    f"(x_i = {x[i]:.3f}, x_j = {x[j]:.3f}):"
)
code = f"v_i  = {widgets.vector_text(params['V'][idx[0, i]])}\nv_j  = {widgets.vector_text(params['V'][idx[0, j]])}\n"
st.code(code + f"u_ij = {widgets.vector_text(steps['u'][pair])}", language=None, wrap_lines=True)

st.header("3 · Sum pooling: FM as a neural network")
st.latex(
    r"\hat{y} = \mathbf{p}^T \sum_{(i,j) \in \mathcal{R}_\mathbf{x}} (\mathbf{v}_i \odot \mathbf{v}_j)\, x_i x_j + b"
)
st.markdown(
    f"Summing the {n_pairs} vectors and projecting with p = 1 (b = 0) gives back FM's pair term. "
    f"With FM's embeddings, the pooled vector is below and the sum of its entries is "
    f"**{fm_steps['pooled'].sum():.4f}**, the Σ ⟨v_i, v_j⟩ x_i x_j of step 1."
)
st.code(f"Σ u_ij (FM) = {widgets.vector_text(fm_steps['pooled'])}", language=None, wrap_lines=True)

st.header("4 · Attention-based pooling")
st.latex(
    r"f_{Att}(f_{PI}(\mathcal{E})) = \sum_{(i,j) \in \mathcal{R}_\mathbf{x}}"
    r" a_{ij}\, (\mathbf{v}_i \odot \mathbf{v}_j)\, x_i x_j"
)
st.markdown("AFM weighs each pair vector by an attention a_ij before summing; steps 5 and 6 say where a_ij comes from.")
st.code(f"Σ a_ij u_ij (AFM) = {widgets.vector_text(steps['attention_pooled'])}", language=None, wrap_lines=True)

st.header("5 · The attention network")
st.latex(r"a'_{ij} = \mathbf{h}^T \mathrm{ReLU}(\mathbf{W} (\mathbf{v}_i \odot \mathbf{v}_j)\, x_i x_j + \mathbf{b})")
t = params["W"].shape[0]
st.markdown(
    f"A one-layer network scores each pair: W is {t}×{len(params['p'])}, b and h have t = {t} entries "
    "(the attention factor). For the chosen pair:"
)
code = f"W u_ij + b       = {widgets.vector_text(steps['hidden'][pair])}\n"
st.code(code + f"ReLU(W u_ij + b) = {widgets.vector_text(steps['relu'][pair])}", language=None, wrap_lines=True)
widgets.metric_row(
    ("a'_ij (NumPy)", f"{steps['score'][pair]:.6f}"), ("a'_ij (model)", f"{float(exp.score[0, pair]):.6f}")
)
widgets.check_equal(float(steps["score"][pair]), float(exp.score[0, pair]), "attention score a'_ij")

st.header("6 · Softmax over the pairs of the sample")
st.latex(
    r"a_{ij} = \frac{\exp(a'_{ij})}{\sum_{(i',j') \in \mathcal{R}_\mathbf{x}} \exp(a'_{i'j'})}"
    r"\qquad s_{ij} = \mathbf{p}^T (\mathbf{v}_i \odot \mathbf{v}_j)\, x_i x_j \qquad c_{ij} = a_{ij}\, s_{ij}"
)
widgets.metric_row(
    ("exp(a'_ij)", f"{math.exp(steps['score'][pair]):.6g}"),
    ("Σ exp(a'_i'j')", f"{steps['denominator']:.6g}"),
    ("a_ij (NumPy)", f"{steps['attention'][pair]:.6f}"),
    ("a_ij (model)", f"{float(exp.attention[0, pair]):.6f}"),
)
widgets.check_equal(float(steps["attention"][pair]), float(exp.attention[0, pair]), "attention a_ij")
st.markdown(
    f"The {n_pairs} weights sum to 1; FM's equal share would be 1/P = {1 / max(n_pairs, 1):.4f}. "
    "The pair's interaction s_ij projects u_ij on p; its contribution c_ij is what it adds to the prediction."
)
agree = afm.attention_agreement(afm_model, ws.parts["all"], caches.summary(ws, "afm", "all"))
st.info(
    f"**Attention is not importance.** The row's {n_pairs} weights a_ij always sum to 1; what moves the prediction "
    "is c_ij = a_ij · s_ij, sized mostly by s_ij: a pair can get high attention and move nothing. Here, over all "
    f"{len(ws.parts['all']):,} rows: Spearman(mean a_ij, mean |c_ij|) = {agree['spearman']:.2f} over the field "
    f"pairs; a row's top-attention pair is its top-|c| pair in {agree['top_pair_agreement']:.0%} of rows "
    f"({caches.sample_note(ws, 'afm', 'all')}). See Jain "
    "& Wallace, *Attention is not Explanation* (NAACL 2019); Wiegreffe & Pinter, *… not not Explanation* (EMNLP 2019)."
)
widgets.metric_row(
    ("s_ij = pᵀ u_ij", f"{steps['interaction'][pair]:.4f}"), ("c_ij = a_ij s_ij", f"{steps['contribution'][pair]:.4f}")
)
names = [f"{features[a]} × {features[b]}" for a, b in steps["pairs"]]
st.caption(f"All pairs of this sample (the chosen one is row {pair + 1}):")
widgets.show_table(
    pd.DataFrame(
        {
            "pair": names,
            "a'_ij": steps["score"],
            "a_ij": steps["attention"],
            "s_ij": steps["interaction"],
            "c_ij": steps["contribution"],
        }
    ),
    "how-pairs",
)

st.header("7 · AFM's prediction")
st.latex(
    r"\hat{y}_{AFM}(\mathbf{x}) = w_0 + \sum_{i=1}^{n} w_i x_i + \mathbf{p}^T \sum_{i=1}^{n}\sum_{j=i+1}^{n}"
    r" a_{ij} (\mathbf{v}_i \odot \mathbf{v}_j)\, x_i x_j = w_0 + \sum_i w_i x_i + \sum_{i<j} c_{ij}"
)
widgets.metric_row(
    ("AFM's w0", f"{steps['w0']:.4f}"),
    ("AFM's Σ w_i x_i", f"{steps['linear'].sum():.4f}"),
    ("Σ c_ij", f"{steps['contribution'].sum():.4f}"),
    ("ŷ (sum of these)", f"{steps['prediction']:.4f}"),
    ("ŷ (model)", f"{float(exp.prediction[0]):.4f}"),
)
widgets.check_equal(steps["prediction"], float(exp.prediction[0]), "AFM's prediction")
if spec.binary:
    st.markdown(f"For clicks ŷ is a logit: the probability is σ(ŷ) = **{spec.probability(steps['prediction']):.4f}**.")

st.header("8 · Training objective")
label = float(data.y[row])
LOSS = {  # the task's loss (binary: True), plus lambda times the L2 norm of W
    True: r"L = \sum_{\mathbf{x} \in \mathcal{T}} -y \log \sigma(\hat{y}_{AFM}(\mathbf{x})) - (1-y) \log\big(1 - "
    r"\sigma(\hat{y}_{AFM}(\mathbf{x}))\big) + \lambda \lVert \mathbf{W} \rVert^2",
    False: r"L = \sum_{\mathbf{x} \in \mathcal{T}} (\hat{y}_{AFM}(\mathbf{x}) - y(\mathbf{x}))^2"
    r" + \lambda \lVert \mathbf{W} \rVert^2",
}
st.latex(LOSS[spec.binary])
loss_name = "this sample's log loss" if spec.binary else "this sample's squared error"
loss = spec.sample_loss(steps["prediction"], label)
penalty = float(np.square(params["W"].astype(np.float64)).sum())
widgets.metric_row(
    ("label y", f"{label:.4g}"),
    (loss_name, f"{loss:.4f}"),
    ("λ (l2_attention)", f"{ws.config.l2_attention:g}"),
    ("λ ‖W‖²", f"{ws.config.l2_attention * penalty:.4f}", f"‖W‖² = {penalty:.4f}"),
)
st.markdown(
    "λ keeps the attention network from overfitting (only W is penalised, as in the paper). During training, "
    f"dropout {ws.config.dropout:g} acts on the pooled vector of step 4 and {ws.config.attention_dropout:g} on the "
    "attention weights; both are off when predicting, as here."
)
