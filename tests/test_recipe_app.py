"""The recipes of docs/ARCHITECTURE.md, each done once: add a page, add a long action (and, in
tests/test_recipe_knob.py and tests/test_recipe_model.py, add a knob and add a model kind)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text()

# "Add a page": a short top-to-bottom script on the shared helpers (the recipe's own words, as code).
NEW_PAGE = """
import caches
import streamlit as st
import widgets

import afm

st.title("Strongest pairs")
ws = widgets.workspace()
if not widgets.require_models(ws):
    st.stop()
part = widgets.part_picker(ws, "strong_part", "test")
frame = caches.field_frame(ws, "afm", part)
top = int(widgets.query_value("strong_top", 5, int))
widgets.set_query(strong_top=top)
matrix = afm.explain.field_pair_matrix(frame, "mean_abs_contribution")
widgets.show_figure(afm.plots.pair_heatmap(matrix, "mean |contribution|"), "strongest-pairs")
widgets.show_table(frame.head(top), "strongest-pairs")
"""

# "Add a long action": work on the pool in a named slot of the session, followed, then collected by a callback.
LONG_ACTION = """
import jobs
import session
import streamlit as st
import widgets

ws = widgets.workspace()
me = session.get()


def work(job: jobs.Job) -> int:
    total = 0
    for n in range(1, 11):
        total += n
        if job.report(n / 10, f"step {n}/10"):
            break
    return total


def collect(ws: session.Workspace, job: jobs.Job, meta: dict) -> str:
    me.remember("demo-results")[meta["what"]] = job.result
    return f"{meta['what']}: {job.result}"


if st.button("Sum", key="demo-run"):
    me.submit("demo", jobs.job_key("demo", "sum to 10"), "demo sum", work, collect, {"what": "sum"})
me.follow("demo")
message = me.collect("demo", ws)
if message:
    st.success(message)
"""


@pytest.fixture()
def app_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's modules import each other by plain names (streamlit_app.py puts app/ on the path)."""
    monkeypatch.syspath_prepend(str(APP_DIR))
    monkeypatch.syspath_prepend(str(ROOT))


def _page(tmp_path: Path, text: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_every_page_is_registered_in_the_navigation() -> None:
    """Step 2 of "add a page": a file in app/pages/ that PAGES does not list is never shown."""
    tree = ast.parse((APP_DIR / "streamlit_app.py").read_text())
    registered = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Page" and node.args
    }
    files = {f"pages/{p.name}" for p in (APP_DIR / "pages").glob("*.py")}
    assert files == registered


@pytest.mark.usefixtures("app_path")
def test_add_a_page_as_the_recipe_says(tmp_path: Path) -> None:
    import afm

    at = AppTest.from_file(_page(tmp_path, NEW_PAGE, "strongest.py"), default_timeout=180)
    at.query_params.update(strong_top="3")
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Strongest pairs"
    shown = at.dataframe[0].value
    ws = at.session_state["afm"].ws
    expected = afm.field_pair_frame(ws.models["afm"], ws.parts["test"]).head(3)
    assert len(shown) == 3
    assert list(shown.iloc[:, 0]) == list(expected.iloc[:, 0])  # the cached frame is the library's frame
    assert [c.key for c in at.get("plotly_chart")] == ["chart-strongest-pairs"]
    assert at.query_params["strong_top"] in ("3", ["3"]) and at.query_params["strong_part"] in ("test", ["test"])


@pytest.mark.usefixtures("app_path")
def test_add_a_long_action_as_the_recipe_says(tmp_path: Path) -> None:
    at = AppTest.from_file(_page(tmp_path, LONG_ACTION, "long_action.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert not at.success  # nothing runs until asked
    at.button(key="demo-run").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["sum: 55"]  # followed to its end, then collected by the callback
    me = at.session_state["afm"]
    assert me.memo["demo-results"] == {"sum": 55} and "demo" not in me.slots and me.messages["demo"] == "sum: 55"
    at.button(key="demo-run").click().run()  # the same key again: the pool's finished job is shared, not rerun
    assert [s.value for s in at.success] == ["sum: 55"]


@pytest.mark.parametrize("recipe", ["## Add a knob", "## Add a page", "## Add a long action", "## Add a model kind"])
def test_the_recipes_are_in_the_architecture_page(recipe: str) -> None:
    assert recipe in ARCHITECTURE
    body = ARCHITECTURE.split(recipe, 1)[1].split("\n## ", 1)[0]
    assert "tests/test_recipe" in body, f"{recipe}: name the test that does it"
