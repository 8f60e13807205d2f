"""The Explain page's "What if" editor: one widget per field, numbers kept inside the training range.

Kept out of ``pages/explain.py`` so the page stays a short script. The guardrails:

- a numeric field's input is bounded by the range its training rows span (``afm.explain.numeric_ranges``;
  the row's own value is always allowed), unless "Allow numbers outside the training range" is ticked;
  beyond it a warning says the model extrapolates;
- edits belong to one row: the URL keeps them with the row they were made on (``explain_edit_row``), and
  the widgets' keys name the row, so choosing another row starts from that row's own values.
"""

from __future__ import annotations

import math
from typing import Any

import session
import streamlit as st
import widgets

from afm import explain

COLUMNS = 3  # widgets per line


def parse_pairs(text: str) -> dict[str, str]:
    """'field=value;field=value' (the URL form of filters and edits) -> dict."""
    return dict(item.split("=", 1) for item in text.split(";") if "=" in item)


def join_pairs(values: dict[str, object]) -> str:
    return ";".join(f"{name}={value}" for name, value in values.items())


def as_number(text: object, default: float) -> float:
    """A number typed into the URL, or ``default`` when it is not one (or not finite)."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def edit_fields(
    ws: session.Workspace, part: str, row: int, original: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The editor for row ``row`` of ``part`` (``original``: ``explain.row_values`` of it). Returns
    ``(values, edited)``: every field's value, and the fields whose value differs from the row's."""
    schema = ws.schema
    here = f"{part}:{row}"
    same_row = widgets.query_value("explain_edit_row", here) == here  # links from before the guard: their row
    linked = parse_pairs(widgets.query_value("explain_edit", "")) if same_row else {}
    ranges = explain.numeric_ranges(ws.parts.get("train", ws.parts["all"]))
    beyond = st.checkbox(
        "Allow numbers outside the training range",
        widgets.query_value("explain_beyond", False, bool),
        key="explain-beyond",
        help="The model saw nothing beyond the training rows' range; there its terms are extrapolations "
        "(x_i scales w_i·x_i and every pair with field i).",
    )
    values: dict[str, Any] = {}
    numeric = {spec.name for spec in schema.fields if spec.kind != "categorical"}
    unusable = [  # a link's edits the editor cannot use: no such field, or not a finite number for a numeric one
        name
        for name in linked
        if name not in schema.field_names or (name in numeric and not math.isfinite(as_number(linked[name], math.nan)))
    ]
    kept: list[str] = []  # sentences about the numbers kept inside the training range
    columns = st.columns(COLUMNS)
    for f, spec in enumerate(schema.fields):
        slot, key = columns[f % COLUMNS], f"explain-edit-{part}-{row}-{spec.name}"  # a new row starts afresh
        if spec.kind == "categorical":
            default = linked.get(spec.name, original[spec.name])
            if default not in spec.values:
                unusable.append(spec.name)
                default = original[spec.name]
            label = widgets.literal(spec.name)
            values[spec.name] = slot.selectbox(label, spec.values, index=spec.values.index(default), key=key)
        elif spec.kind == "numeric":
            default = as_number(linked.get(spec.name), original[spec.name])
            low, high = ranges.get(spec.name, (original[spec.name],) * 2)  # no training rows: the row's value
            low, high = min(low, original[spec.name]), max(high, original[spec.name])  # the row's own value is fine
            # no min/max on the widget: Streamlit would refuse an out-of-range number silently (a red box, the old
            # value kept); the value is kept inside the range here, and a sentence below says what was kept
            typed = slot.number_input(
                f"{widgets.literal(spec.name)} (original units)",
                value=default if beyond else min(max(default, low), high),
                key=f"{key}-{'free' if beyond else 'bounded'}",  # new bounds, new widget
                help=f"training rows: {low:.4g} … {high:.4g}",
            )
            values[spec.name] = typed if beyond else min(max(typed, low), high)
            if values[spec.name] != typed:
                kept.append(
                    f"{widgets.literal(spec.name)}: {typed:.4g} is outside the training rows' range {low:.4g} … "
                    f"{high:.4g}, so {values[spec.name]:.4g} was kept"
                )
        else:
            low, high = spec.offset, spec.offset + spec.size - 1
            default = min(max(int(as_number(linked.get(spec.name), original[spec.name])), low), high)
            label = f"{widgets.literal(spec.name)} (feature id)"
            values[spec.name] = int(slot.number_input(label, low, high, default, 1, key=key))
    edited = {
        name: value
        for name, value in values.items()
        if (value != original[name] if isinstance(value, str) else not math.isclose(value, original[name]))
    }
    if unusable and widgets.from_link("explain_edit"):
        widgets.link_notice("explain_edit", f"the editor has no value for {widgets.literal(', '.join(unusable))}")
    if kept:
        st.info(
            "; ".join(kept) + ". The model saw nothing beyond the training rows; tick **Allow numbers outside the "
            "training range** to use such a number anyway."
        )
    widgets.set_query(explain_edit=join_pairs(edited), explain_edit_row=here, explain_beyond=beyond)
    outside = explain.out_of_range(values, ranges)
    if outside:
        st.warning(
            "Outside the range of the training rows, so the model extrapolates: "
            + ", ".join(
                f"{widgets.literal(name)} = {values[name]:.4g} (training rows: {lo:.4g} … {hi:.4g})"
                for name, (lo, hi) in outside.items()
            )  # fmt: skip
        )
    return values, edited
