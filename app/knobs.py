"""The training knobs as widgets, generated from ``afm.TrainConfig`` (``afm.config.knobs``).

A knob's widget, label, help, range and choices come from its field in ``afm/config.py``; nothing here
names a setting, so a new field in ``TrainConfig`` gets a widget (and a URL parameter) by itself.
Session keys are ``knob_<field>``; URL parameters are the field names.
"""

from __future__ import annotations

from typing import Any

import state
import streamlit as st

import afm
from afm.config import Knob, knobs

KNOBS: list[Knob] = [k for k in knobs(afm.TrainConfig) if k.widget]
LIVE: list[Knob] = [k for k in KNOBS if k.live]


def key(k: Knob) -> str:
    return f"knob_{k.name}"


def init(config: afm.TrainConfig, from_url: bool) -> list[str]:
    """Fill the session's knob values (once per session): from the URL on a session's first view (a
    shared link), else from ``config``. A URL value that is malformed or out of range is ignored;
    returns a notice for each one ignored."""
    notices = []
    for k in KNOBS:
        if key(k) in st.session_state:
            continue
        value = getattr(config, k.name)
        raw = st.query_params.get(k.name) if from_url else None
        if raw is not None and not (k.optional and raw == "None"):
            try:
                value = k.check(raw)
            except (TypeError, ValueError) as err:
                notices.append(f"Link setting ignored: {err}.")
        if k.choices and value not in k.choices and value is not None:
            value = min(k.choices, key=lambda c: abs(c - value)) if k.type in (int, float) else k.default
        st.session_state[key(k)] = value
    return notices


def widget(k: Knob) -> None:
    """The widget for one knob (it reads and writes ``st.session_state[key(k)]``)."""
    label, help_text, name = k.label, k.help, key(k)
    if k.type is bool:
        st.checkbox(label, key=name, help=help_text)
    elif k.kind == "choice" or (k.choices and not k.optional):
        (st.radio if len(k.choices or ()) <= 3 else st.select_slider)(label, list(k.choices), key=name, help=help_text)
    elif k.choices:  # optional with choices: None means "the default rule" (e.g. finetune_lr -> lr)
        st.select_slider(label, [None, *k.choices], key=name, help=help_text, format_func=_none_label)
    elif k.kind == "fraction":
        lo, hi = k.bounds or (0.0, 0.9)
        st.slider(label, float(lo), float(hi), step=0.05, key=name, help=help_text)
    elif k.type is int and not k.optional and k.bounds and k.bounds[1] - k.bounds[0] <= 500:
        st.slider(label, int(k.bounds[0]), int(k.bounds[1]), key=name, help=help_text)
    elif k.type is int:
        lo, hi = k.bounds or (0, 10_000)
        st.number_input(label, int(lo), int(hi), step=1, key=name, help=help_text, placeholder="default")
    else:
        lo, hi = k.bounds or (0.0, 1e6)
        st.number_input(label, float(lo), float(hi), step=0.001, format="%.4f", key=name, help=help_text)


def _none_label(value: Any) -> str:
    return "default" if value is None else str(value)


def config(task: str) -> afm.TrainConfig:
    """The session's knobs as a ``TrainConfig`` for ``task``."""
    return afm.TrainConfig(task=task, **{k.name: k.check(st.session_state[key(k)]) for k in KNOBS})


def to_url(values: afm.TrainConfig) -> None:
    state.set_query(**{k.name: getattr(values, k.name) for k in KNOBS})
