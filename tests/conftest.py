"""Shared pytest set-up: the markers, and the fixtures many test files use.

Markers (selected with ``-m``):

- ``slow``: a test that takes more than a second or so (a training run, an AppTest page, every docs
  example, since each runs in a process of its own). In the whole suite; left out of the quick subset.
- ``browser``: drives a real Chromium against a real Streamlit server (tests/test_browser.py). In the whole
  suite; left out of the quick subset.
- ``long``: a documentation example of many minutes (the full paper reproduction); runs only when selected
  with ``-m long``.

The quick subset, for the loop while you edit (README's contributing lines give its time)::

    python -m pytest -q -m "not slow and not browser"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import afm

PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: more than a few seconds; in the whole suite, not the quick subset")
    config.addinivalue_line("markers", "browser: a real Chromium against a real server; not in the quick subset")
    config.addinivalue_line("markers", "long: a documentation example of many minutes; runs only under -m long")


@pytest.fixture(scope="session")
def parts() -> dict[str, afm.Dataset]:
    """The pairs sample's regression label split into train / valid / test (seed 0), as the pre-trained models
    were trained on it. Shared by every test file: treat it as read-only."""
    return afm.datasets.load_parts("sample", task="regression", seed=0)


@pytest.fixture(scope="session")
def binary_parts() -> dict[str, afm.Dataset]:
    """The pairs sample's binary label, split as ``parts``."""
    return afm.datasets.load_parts("sample", task="binary", seed=0)


@pytest.fixture(scope="session")
def pretrained() -> Callable[[str], afm.AFM | afm.FM]:
    """``pretrained("regression-afm")``: a bundled pre-trained model (sample_data/pretrained/<name>.pt), in eval
    mode, loaded fresh on each call (tests may change it)."""

    def load(name: str) -> afm.AFM | afm.FM:
        path = Path(PRETRAINED / f"{name}.pt")
        return afm.load_model(path)[0].eval()

    return load
