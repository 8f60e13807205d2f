"""The training knobs as widgets, generated from ``afm.TrainConfig`` (``afm.config.knobs``).

A knob's widget, label, help, range and choices come from its field in ``afm/config.py``; nothing here
names a setting, so a new field in ``TrainConfig`` gets a widget (and a URL parameter) by itself.
Session keys are ``knob_<field>``; URL parameters are the field names.
"""

from __future__ import annotations

from typing import Any

import session
import streamlit as st

import afm
from afm.config import Knob, knobs

KNOBS: list[Knob] = [k for k in knobs(afm.TrainConfig) if k.widget]
LIVE: list[Knob] = [k for k in KNOBS if k.live]


def key(k: Knob) -> str:
    return f"knob_{k.name}"


def init(config: afm.TrainConfig, link: dict[str, Any] | None = None) -> None:
    """Fill the session's knob values once per session: a shared link's (``training.capture_link`` checked
    them and noted the ones ignored), else ``config``'s (the loaded models' settings)."""
    link = link or {}
    for k in KNOBS:
        if session.has_widget(key(k)):
            continue
        value = link.get(k.name, getattr(config, k.name))
        if k.choices and value not in k.choices and value is not None:
            value = min(k.choices, key=lambda c: abs(c - value)) if k.type in (int, float) else k.default
        session.set_widget(key(k), value)


def widget(k: Knob, on_change: Any = None) -> None:
    """The widget for one knob (its value is the session's widget ``key(k)``). ``on_change`` (outside
    forms only) is called when the user moves it, not when a link or the code sets it."""
    common = {"key": key(k), "help": k.help, **({"on_change": on_change} if on_change is not None else {})}
    if k.type is bool:
        st.checkbox(k.label, **common)
    elif k.kind == "choice" or (k.choices and not k.optional):
        (st.radio if len(k.choices or ()) <= 3 else st.select_slider)(k.label, list(k.choices), **common)
    elif k.choices:  # optional with choices: None means "the default rule" (e.g. finetune_lr -> lr)
        st.select_slider(k.label, [None, *k.choices], format_func=_none_label, **common)
    elif k.kind == "fraction":
        lo, hi = k.bounds or (0.0, 0.9)
        st.slider(k.label, float(lo), float(hi), step=0.05, **common)
    elif k.type is int and not k.optional and k.bounds and k.bounds[1] - k.bounds[0] <= 500:
        st.slider(k.label, int(k.bounds[0]), int(k.bounds[1]), **common)
    elif k.type is int:
        lo, hi = k.bounds or (0, 10_000)
        st.number_input(k.label, int(lo), int(hi), step=1, placeholder="default", **common)
    else:
        lo, hi = k.bounds or (0.0, 1e6)
        st.number_input(k.label, float(lo), float(hi), step=0.001, format="%.4f", **common)


def _none_label(value: Any) -> str:
    return "default" if value is None else str(value)


def config(task: str) -> afm.TrainConfig:
    """The session's knobs as a ``TrainConfig`` for ``task``."""
    return afm.TrainConfig(task=task, **{k.name: k.check(session.widget(key(k))) for k in KNOBS})
