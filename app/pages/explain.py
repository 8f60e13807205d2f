"""Explain a prediction: one row's prediction taken apart into bias, linear terms and pair contributions."""

from __future__ import annotations

import math

import caches
import session
import streamlit as st
import torch
import what_if
import widgets
from what_if import join_pairs, parse_pairs

import afm
from afm import explain, plots

MODES = ["Row by index", "Filter by field values", "What if: edit the fields"]
ANY = "any"
COLUMNS = 3  # widgets per line for the per-field filters and editors


st.title("Explain a prediction")
st.caption(
    "Every prediction is a sum: the bias w0, one linear term w_i·x_i per field, and one contribution "
    "c_ij = a_ij·s_ij per pair of fields (FM: a_ij = 1). Pick a row, or edit its fields, and see where the "
    "number comes from. Only this row is explained, with the same code path the model predicts with."
)

ws = widgets.workspace()
if not widgets.require_models(ws):
    st.stop()
schema = ws.schema

mode = st.radio(
    "Choose the row",
    MODES,
    index=widgets.query_value("explain_mode", 0, int, lo=0, hi=len(MODES) - 1),
    horizontal=True,
    key="explain-mode",
)
part = widgets.part_picker(ws, "explain_part", "test", "Part of the data", key="explain-part")
data = ws.parts[part]
linked_row = widgets.query_value("explain_row", 0, int, lo=0, hi=len(data) - 1)

if mode == MODES[1]:
    # One selectbox per field of feature values present in this part; numeric fields have one feature only.
    linked_where = parse_pairs(widgets.query_value("explain_where", ""))
    mask = torch.ones(len(data), dtype=torch.bool)
    where: dict[str, str] = {}
    offered: dict[str, list[str]] = {}  # field -> the values its filter offers (a link's others get a notice)
    columns = st.columns(COLUMNS)
    for f, spec in enumerate(schema.fields):
        if spec.kind == "numeric":
            continue
        ids = data.idx[:, f].unique().tolist()
        names = {spec.label(i).split("=", 1)[1]: i for i in ids}
        options = offered[spec.name] = [ANY, *names]
        default = linked_where.get(spec.name, ANY)
        choice = columns[f % COLUMNS].selectbox(
            widgets.literal(spec.name),
            options,
            index=options.index(default) if default in options else 0,
            key=f"explain-where-{spec.name}",
        )
        if choice != ANY:
            where[spec.name] = choice
            mask &= data.idx[:, f] == names[choice]
    matching = mask.nonzero().flatten().tolist()
    unused = [n for n in linked_where if n not in offered or linked_where[n] not in offered[n]]
    if unused and widgets.from_link("explain_where"):
        widgets.link_notice("explain_where", f"this part has no {widgets.literal(', '.join(unused))} to filter by")
    widgets.set_query(explain_where=join_pairs(where))
    if not matching:
        st.warning("No row of this part matches these values: set a field back to 'any'.")
        st.stop()
    shown = matching[:1000]  # a longer list helps nobody; narrow the filters instead
    row = st.selectbox(
        f"Matching rows ({len(matching):,}{', first 1,000 listed' if len(matching) > 1000 else ''})",
        shown,
        index=shown.index(linked_row) if linked_row in shown else 0,
        key="explain-match",
    )
else:
    row = int(
        st.number_input(
            "Row index" if mode == MODES[0] else "Start from row",
            min_value=0,
            max_value=len(data) - 1,
            value=linked_row,
            step=1,
            key=f"explain-row-{part}",
            help=f"0 … {len(data) - 1:,} in the {part} part",
        )
    )
widgets.set_query(explain_mode=MODES.index(mode), explain_part=part, explain_row=row)

idx, val = data.idx[row : row + 1], data.val[row : row + 1]  # (1, F)
label: float | None = float(data.y[row])
if mode == MODES[2]:
    st.markdown("**Edit the fields** (the prediction below follows your values)")
    values, edited = what_if.edit_fields(ws, part, row, explain.row_values(schema, idx[0], val[0]))
    if edited:
        idx, val = explain.encode_row(schema, values)
        label = None  # an edited row is no longer a row of the data
        st.caption("Changed: " + widgets.literal(", ".join(f"{name} = {value}" for name, value in edited.items()), 400))

# One row only: explain() is the forward pass that also keeps its terms.
one_row = afm.Dataset(idx, val, torch.tensor([math.nan if label is None else label]), schema)
explanations = {kind: ws.models[kind].explain(idx, val) for kind in session.KINDS}
predictions = {kind: float(e.prediction[0]) for kind, e in explanations.items()}

st.subheader(f"Row {row} of {part}" + (" (edited)" if label is None else ""))
cells = st.columns(5 if ws.task == "binary" else 3)
for n, kind in enumerate(session.KINDS):
    if ws.task == "binary":
        cells[2 * n].metric(f"{session.LABELS[kind]} logit", f"{predictions[kind]:.4f}")
        cells[2 * n + 1].metric(
            f"{session.LABELS[kind]} probability", f"{afm.TASKS[ws.task].probability(predictions[kind]):.3f}"
        )
    else:
        cells[n].metric(f"{session.LABELS[kind]} prediction", f"{predictions[kind]:.4f}")
cells[-1].metric("Label", "—" if label is None else f"{label:.4g}")

kind = st.radio(
    "Waterfall of",
    list(session.KINDS),
    index=list(session.KINDS).index(widgets.query_value("explain_model", "afm", choices=session.KINDS)),
    format_func=session.LABELS.get,
    horizontal=True,
    key="explain-model",
)
relative = st.toggle(
    "Terms relative to an average row", widgets.query_value("explain_relative", True, bool), key="explain-relative"
)
widgets.set_query(explain_model=kind, explain_relative=relative)
baseline = caches.summary(ws, kind, "all") if relative else None
split = kind == "afm"  # AFM's pair bars are the uniform parts; what attention moves follows as its own bars
terms = explain.row_terms(explanations[kind], 0, one_row, top=12 if not split else 8, baseline=baseline, split=split)
if split:
    moved = float(explanations["afm"].attention_part.sum())
    st.caption(
        ("Each term is this row's minus its average over all rows. " if relative else "")
        + "AFM's pairs in two parts: the pair bars are the uniform parts s_ij / P (every pair weighted alike, as FM), "
        f"the framed bars the attention parts (a_ij − 1/P)·s_ij, what the attention moves: {moved:+.4f} in all "
        "for this row."
    )
elif relative:
    st.caption(
        f"The first bar is the average prediction over all {len(ws.parts['all']):,} rows; each term is this row's "
        "minus its average, so a field that does not matter shows about 0. Raw terms absorb the bias: every row has "
        "one feature per field, so a field with no effect can still show a large w_i·x_i."
    )
else:
    st.caption("Raw terms: the bias w0, then each w_i·x_i and c_ij as the model adds them.")
unit = "logit" if ws.task == "binary" else "prediction"
widgets.show_figure(
    plots.waterfall(terms, f"{session.LABELS[kind]}: how the {unit} {predictions[kind]:.4f} adds up"),
    "explain-waterfall",
)
with st.expander("The terms as a table"):
    widgets.show_table(terms, "explain-terms")

st.subheader(f"What drives it ({session.LABELS[kind]})")
whole = explain.row_terms(explanations[kind], 0, one_row, top=5, baseline=baseline) if split else terms
n_pairs = explanations[kind].attention.shape[1]
sentences = explain.pair_sentences(whole, top=5, with_attention=kind == "afm", n_pairs=n_pairs)
st.markdown(
    "\n".join(f"- {widgets.literal(sentence, 400)}" for sentence in sentences) or "This row has no field pairs."
)

st.subheader("AFM's attention for this row")
pair_frame = afm.field_pair_frame(ws.models["afm"], one_row, explanations["afm"])
relative_row = pair_frame["relative_attention"]
st.caption(
    f"Relative attention P·a_ij over this row's {len(pair_frame)} field pairs (1 = uniform, as FM would weigh them; "
    f"the a_ij sum to 1). Here it ranges from {relative_row.min():.5f} to {relative_row.max():.5f}, on a log scale "
    "whose range comes from this row."
)
fig = plots.pair_heatmap(
    explain.field_pair_matrix(pair_frame, "relative_attention"),
    "P·a_ij, this row",
    value_name="P·a_ij",
    kind="relative",
    n_pairs=len(pair_frame),
)  # white at 1 (uniform), as on the Attention page
fig.update_layout(height=380)
widgets.show_figure(fig, "explain-row-attention")
