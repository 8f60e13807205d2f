"""Helpers shared by the AppTest files: read plotly charts and metrics off a page."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest


def decode(value: Any) -> Any:
    """Plotly's JSON with its typed arrays ({"dtype", "bdata", "shape"}) turned into NumPy arrays."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            return array.reshape([int(s) for s in str(shape).split(",")]) if shape else array
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def chart(at: AppTest, name: str) -> dict[str, Any]:
    """The figure (data and layout) of the chart that ``state.show_figure(fig, name)`` drew."""
    for element in at.get("plotly_chart"):
        if element.key == f"chart-{name}":
            return decode(json.loads(element.proto.spec))
    raise AssertionError(f"no chart {name!r}; charts: {[e.key for e in at.get('plotly_chart')]}")


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert len(values) == 1, f"metric {label!r}: {[m.label for m in at.metric]}"
    return values[0]
