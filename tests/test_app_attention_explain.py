"""AppTests of the Attention, Explain-a-prediction and How-AFM-works pages.

Each page must render without an exception and show the numbers the model computes: the tests
load the bundled pre-trained models themselves and recompute every asserted number from ``afm``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from apphelpers import chart, decode, metric  # noqa: F401
from streamlit.testing.v1 import AppTest

import afm
from afm import explain

pytestmark = pytest.mark.slow  # AppTest pages: whole page runs, in the whole suite only

APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"


# ---------------------------------------------------------------------------- helpers


def table(at: AppTest, column: str) -> Any:
    """The one table with ``column`` (st.dataframe without selections carries no key in AppTest)."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) == 1, f"tables with {column!r}: {[list(d.value.columns) for d in at.dataframe]}"
    return frames[0]


def open_app(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def waterfall_total(at: AppTest) -> float:
    (trace,) = chart(at, "explain-waterfall")["data"]
    assert trace["type"] == "waterfall" and trace["measure"][-1] == "total"
    relative = np.asarray(trace["y"][:-1], dtype=float)
    assert math.isclose(float(trace["y"][-1]), float(relative.sum()), abs_tol=1e-9)  # the bar ends at the sum
    return float(trace["y"][-1])


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def models(pretrained) -> dict[str, Any]:
    """The bundled pre-trained AFM and FM, loaded here, not through the app."""
    return {kind: pretrained(f"regression-{kind}") for kind in ("afm", "fm")}


@pytest.fixture(scope="module")
def attention_app() -> AppTest:
    return open_app("pages/attention.py")


@pytest.fixture(scope="module")
def explain_app() -> AppTest:
    return open_app("pages/explain.py")


@pytest.fixture(scope="module")
def how_app() -> AppTest:
    return open_app("pages/how_afm_works.py")


# ---------------------------------------------------------------------------- Attention


def test_attention_heatmap_is_the_models_mean_attention(attention_app: AppTest, models, parts) -> None:
    at = attention_app
    at.selectbox(key="attention-part").set_value("all")
    at.radio(key="attention-value").set_value("mean attention a_ij").run()
    assert not at.exception
    frame = afm.field_pair_frame(models["afm"], parts["all"])
    expected = explain.field_pair_matrix(frame, "mean_attention")
    (heat,) = chart(at, "attention-heatmap")["data"]
    assert heat["type"] == "heatmap"
    assert heat["x"] == heat["y"] == parts["all"].field_names
    np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), expected.to_numpy(), rtol=1e-6, equal_nan=True)
    assert np.isnan(np.asarray(heat["z"], dtype=float)[np.tril_indices(len(expected))]).all()  # upper triangle only
    # a fixed scale anchored at 1/P (P = 36): 0..m/P, m >= 2, white at 1/P; the numbers are in the cells
    n_pairs = len(frame)
    top = float(frame["mean_attention"].max())
    assert heat["zmin"] == 0 and heat["zmax"] == pytest.approx(max(2, math.ceil(top * n_pairs - 1e-9)) / n_pairs)
    assert "1/P" in heat["colorbar"]["ticktext"]
    decimals = afm.plots.cell_decimals(heat["zmin"], heat["zmax"])
    for r, c in zip(*np.triu_indices(len(expected), 1), strict=True):
        assert heat["text"][r][c] == f"{expected.iat[r, c]:.{decimals}f}"
    # the sample's planted pairs are framed
    figure = chart(at, "attention-heatmap")
    frames = [s for s in figure["layout"].get("shapes", []) if s["type"] == "rect"]
    assert len(frames) == len(afm.datasets.sample_truth())

    at.radio(key="attention-value").set_value("signed mean contribution c_ij").run()
    (heat,) = chart(at, "attention-heatmap")["data"]
    signed = explain.field_pair_matrix(frame, "mean_contribution").to_numpy()
    np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), signed, rtol=1e-6, equal_nan=True)
    assert np.nanmin(signed) < 0 < np.nanmax(signed)
    assert heat["zmin"] == -heat["zmax"] == -afm.plots.nice_ceiling(np.nanmax(np.abs(signed)))  # symmetric about 0
    # pairs whose signed mean hides cancelling effects are named in a warning
    hidden = afm.plots.cancelling_pairs(frame)
    warnings = " ".join(w.value for w in at.warning)
    assert all(label in warnings for label in hidden["label"])
    assert (len(hidden) > 0) == ("cancel" in warnings)
    assert at.query_params["attention_value"] == "2"  # the view is in the URL


def test_attention_tables_planted_pairs_and_spread(attention_app: AppTest, models, parts) -> None:
    at = attention_app
    at.selectbox(key="attention-part").set_value("test")
    at.slider(key="attention-min-count").set_value(10)
    at.number_input(key="attention-rows").set_value(10).run()
    assert not at.exception
    data = parts["test"]
    exp = afm.explain_dataset(models["afm"], data)
    expected = afm.feature_pair_frame(models["afm"], data, top=10, min_count=10, explanation=exp)
    top = table(at, "feature pair")
    assert list(top["feature pair"]) == list(expected["label"])
    np.testing.assert_allclose(top["contribution c_ij"], expected["mean_contribution"], rtol=1e-9)
    assert (top["count"] >= 10).all()

    frame = afm.field_pair_frame(models["afm"], data, exp)
    truth = afm.datasets.sample_truth()
    recovery = afm.planted_recovery(frame, truth)
    planted = table(at, "planted pair")
    assert len(planted) == len(truth)
    assert dict(zip(planted["planted pair"], planted["rank by |contribution|"], strict=True)) == recovery["ranks"]
    # the pre-trained regression AFM's attention part is negligible: no rank by attention, said in words
    assert afm.attention_effect(models["afm"], data, exp).negligible
    assert list(planted["rank by attention"]) == [None] * len(truth)
    k = recovery["k"]
    assert metric(at, f"Planted pairs in the top {k} by |contribution|") == f"{recovery['top_k_hits']} / {k}"
    assert metric(at, f"Planted pairs in the top {k} by attention") == "no ranking"
    assert any("predicts as its FM" in w.value for w in at.warning)
    assert metric(at, "Spearman (strength vs |contribution|)") == f"{recovery['spearman']:.2f}"
    chart(at, "attention-rank-agreement")

    (box,) = chart(at, "attention-spread")["data"]
    attention = exp.attention.double().numpy()
    best = int(attention.mean(0).argmax())
    assert box["type"] == "box" and box["x"][0] == frame.loc[best, "label"]
    assert len(box["x"]) == 15 and np.asarray(box["q1"]).size == 15  # a few numbers per box, not every row
    np.testing.assert_allclose(
        [box["q1"][0], box["median"][0], box["q3"][0], box["mean"][0]],
        [*np.quantile(attention[:, best], [0.25, 0.5, 0.75]), attention[:, best].mean()],
        rtol=1e-9,
    )


def test_attention_scale_holds_across_a_change_of_models_and_the_run_before_is_beside(models, parts) -> None:
    at = open_app("pages/attention.py", attention_value="0")  # coloured by mean attention
    ws = at.session_state["afm"].ws
    n_pairs = len(parts["all"].field_names) * (len(parts["all"].field_names) - 1) // 2
    (heat,) = chart(at, "attention-heatmap")["data"]
    assert (heat["zmin"], heat["zmax"]) == pytest.approx((0, 2 / n_pairs))  # nearly uniform: 0..2/P
    old_t, original = ws.config.attention_factor, ws.models["afm"]

    # a live change: t and the models change (a sharper attention stands in for the retrained AFM)
    sharp = copy.deepcopy(original)
    with torch.no_grad():
        sharp.h.mul_(300.0)
    ws.set_models({"afm": sharp, "fm": ws.models["fm"]}, ws.histories, "test", replace(ws.config, attention_factor=8))
    at.run()
    assert not at.exception, at.exception
    sharp_frame = afm.field_pair_frame(sharp, parts["all"])
    top = float(sharp_frame["mean_attention"].max())
    assert top > 2 / n_pairs  # the scale has to grow, in whole steps of 1/P
    widened = (0, math.ceil(top * n_pairs - 1e-9) / n_pairs)
    figure = chart(at, "attention-heatmap")  # one figure, two panels: before (left) and now (right)
    panels = [a["text"] for a in figure["layout"]["annotations"][:2]]
    assert panels == [f"before: t = {old_t}", "now: t = 8"]
    before, now = figure["data"]
    assert (before["name"], before["xaxis"], now["name"], now["xaxis"]) == (panels[0], "x", panels[1], "x2")
    names = parts["all"].field_names
    for heat, frame in ((before, afm.field_pair_frame(original, parts["all"])), (now, sharp_frame)):
        assert (heat["zmin"], heat["zmax"]) == pytest.approx(widened)  # one scale for both pictures
        # the triangle's blank first column and last row are left out of the half-width panels
        assert (heat["y"], heat["x"]) == (names[:-1], names[1:])
        expected = explain.field_pair_matrix(frame, "mean_attention").loc[names[:-1], names[1:]].to_numpy()
        np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), expected, rtol=1e-6, equal_nan=True)

    # back to the nearly uniform models: the session's scale does not shrink back to 0..2/P
    ws.set_models(
        {"afm": original, "fm": ws.models["fm"]}, ws.histories, "test", replace(ws.config, attention_factor=old_t)
    )
    at.run()
    figure = chart(at, "attention-heatmap")
    assert figure["layout"]["annotations"][0]["text"] == "before: t = 8"
    assert all((heat["zmin"], heat["zmax"]) == pytest.approx(widened) for heat in figure["data"])
    # and once neither picture holds the sharp model's values, the session's range is still the wide one
    ws.set_models({"afm": copy.deepcopy(original), "fm": ws.models["fm"]}, ws.histories, "test", ws.config)
    at.run()
    figure = chart(at, "attention-heatmap")
    for heat in figure["data"]:
        assert np.nanmax(np.asarray(heat["z"], dtype=float)) < 2 / n_pairs
        assert (heat["zmin"], heat["zmax"]) == pytest.approx(widened)
    assert [a["text"] for a in figure["layout"]["annotations"][:2]] == ["before", "now"]  # no setting changed


def test_presentation_mode_from_the_url(attention_app: AppTest) -> None:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["present"] = "1"
    at.run()
    assert at.sidebar.toggle(key="present-toggle").value and at.session_state["afm"].present
    at.switch_page("pages/attention.py").run()
    assert not at.exception, at.exception
    layout = chart(at, "attention-heatmap")["layout"]
    # larger type on screen, and a heatmap short enough to sit above the fold at 1024 x 768
    assert layout["font"]["size"] == 18 and layout["height"] == 440
    assert [p.proto.popover.label for p in at.get("popover")] == ["About these numbers"]
    # without the parameter: Streamlit's own sizes, the words on the page
    assert not attention_app.session_state["afm"].present
    layout = chart(attention_app, "attention-heatmap")["layout"]
    assert "height" not in layout and layout.get("font", {}).get("size") != 18
    assert not attention_app.get("popover")


# ---------------------------------------------------------------------------- Explain a prediction


def test_explain_waterfall_ends_at_the_prediction_of_the_chosen_row(explain_app: AppTest, models, parts) -> None:
    at = explain_app
    at.radio(key="explain-mode").set_value("Row by index")
    at.selectbox(key="explain-part").set_value("test")
    at.radio(key="explain-model").set_value("afm").run()
    data = parts["test"]
    seen = []
    for row in (3, 17):
        at.number_input(key="explain-row-test").set_value(row).run()
        assert not at.exception
        with torch.no_grad():
            afm_pred = float(models["afm"](data.idx[row : row + 1], data.val[row : row + 1]))
            fm_pred = float(models["fm"](data.idx[row : row + 1], data.val[row : row + 1]))
        assert waterfall_total(at) == pytest.approx(afm_pred, abs=1e-4)
        assert metric(at, "AFM prediction") == f"{afm_pred:.4f}"
        assert metric(at, "FM prediction") == f"{fm_pred:.4f}"
        assert metric(at, "Label") == f"{float(data.y[row]):.4g}"
        assert at.query_params["explain_row"] == str(row)
        seen.append(afm_pred)
        at.radio(key="explain-model").set_value("fm").run()
        assert waterfall_total(at) == pytest.approx(fm_pred, abs=1e-4)
        at.radio(key="explain-model").set_value("afm").run()
    assert seen[0] != pytest.approx(seen[1], abs=1e-3)  # changing the row changed the chart
    (heat,) = chart(at, "explain-row-attention")["data"]
    # relative attention P·a_ij, coloured by its log: exp(z) sums to P over the row's pairs (a_ij sum to 1)
    z = np.exp(np.asarray(heat["z"], dtype=float))
    assert np.nansum(z) == pytest.approx(float(np.isfinite(z).sum()), abs=1e-4)
    assert any("pulls the prediction" in m.value for m in at.markdown)


def test_explain_filter_and_what_if(explain_app: AppTest, models, parts) -> None:
    at = explain_app
    data, schema = parts["test"], parts["test"].schema
    at.selectbox(key="explain-part").set_value("test")
    at.radio(key="explain-mode").set_value("Filter by field values").run()
    at.selectbox(key="explain-where-weather").set_value("rain")
    at.selectbox(key="explain-where-app_category").set_value("outdoor").run()
    assert not at.exception
    fields = {spec.name: (f, spec) for f, spec in enumerate(schema.fields)}
    (w, weather), (c, category) = fields["weather"], fields["app_category"]
    rain, outdoor = weather.offset + weather.values.index("rain"), category.offset + category.values.index("outdoor")
    matching = ((data.idx[:, w] == rain) & (data.idx[:, c] == outdoor)).nonzero().flatten().tolist()
    assert at.selectbox(key="explain-match").options == [str(r) for r in matching]
    row = matching[1]
    at.selectbox(key="explain-match").set_value(row).run()
    with torch.no_grad():
        expected = float(models["afm"](data.idx[row : row + 1], data.val[row : row + 1]))
    assert waterfall_total(at) == pytest.approx(expected, abs=1e-4)

    # What if it were sunny? Edit the weather field and compare with the model on the edited ids.
    at.radio(key="explain-mode").set_value("What if: edit the fields").run()
    assert at.number_input(key="explain-row-test").value == row  # the edit starts from the filtered row
    at.selectbox(key=f"explain-edit-test-{row}-weather").set_value("sunny").run()
    assert not at.exception
    idx = data.idx[row : row + 1].clone()
    idx[0, w] = weather.offset + weather.values.index("sunny")
    with torch.no_grad():
        sunny = float(models["afm"](idx, data.val[row : row + 1]))
    assert waterfall_total(at) == pytest.approx(sunny, abs=1e-4)
    assert metric(at, "AFM prediction") == f"{sunny:.4f}" and metric(at, "Label") == "—"
    assert sunny > expected + 1.0  # the planted effect: outdoor apps do far better in sunshine than in rain
    assert at.query_params["explain_edit"] == "weather=sunny"


def test_explain_row_change_explains_one_row_only(explain_app: AppTest, monkeypatch) -> None:
    at = explain_app
    at.radio(key="explain-mode").set_value("Row by index").run()
    rows: list[int] = []
    base = afm.model._FactorizationMachine  # AFM and FM share explain()
    original = base.explain

    def counting(self, idx, val=None):
        rows.append(idx.shape[0])
        return original(self, idx, val)

    monkeypatch.setattr(base, "explain", counting)
    at.number_input(key="explain-row-test").set_value(5).run()
    assert not at.exception
    assert rows == [1, 1]  # AFM and FM, one row each: nothing explains the whole part on a row change


def test_what_if_numbers_stay_in_the_training_range_unless_allowed(models, parts) -> None:
    at = open_app("pages/explain.py", explain_mode="2", explain_part="test", explain_row="0")
    data, train = parts["test"], parts["train"]
    f = data.field_names.index("app_rating")
    spec = data.schema.fields[f]
    column = train.val[:, f].double() * spec.std + spec.mean
    low, high = float(column.min()), float(column.max())  # about 1.43 and 5.0 on the sample
    assert not at.warning and not at.info  # the row's own value is inside
    # a number beyond the range: kept at the range's end, and a sentence says what was kept and why
    at.number_input(key="explain-edit-test-0-app_rating-bounded").set_value(high + 3.0).run()
    assert not at.exception
    sentence = (
        f"app_rating: {high + 3.0:.4g} is outside the training rows' range {low:.4g} … {high:.4g}, "
        f"so {high:.4g} was kept"
    )
    assert any(sentence in i.value and "Allow numbers outside the training range" in i.value for i in at.info), [
        i.value for i in at.info
    ]
    values = explain.row_values(data.schema, data.idx[0], data.val[0]) | {"app_rating": high}
    idx, val = explain.encode_row(data.schema, values)
    with torch.no_grad():
        assert waterfall_total(at) == pytest.approx(float(models["afm"](idx, val)), abs=1e-4)  # the kept value

    at.checkbox(key="explain-beyond").check().run()
    at.number_input(key="explain-edit-test-0-app_rating-free").set_value(high + 3.0).run()
    assert not at.exception
    (warning,) = at.warning
    assert "app_rating = " + f"{high + 3.0:.4g}" in warning.value and f"{high:.4g}" in warning.value
    values = explain.row_values(data.schema, data.idx[0], data.val[0]) | {"app_rating": high + 3.0}
    idx, val = explain.encode_row(data.schema, values)
    with torch.no_grad():
        expected = float(models["afm"](idx, val))
    assert waterfall_total(at) == pytest.approx(expected, abs=1e-4)
    assert at.query_params["explain_edit"] == f"app_rating={high + 3.0}"
    assert at.query_params["explain_edit_row"] == "test:0" and at.subheader[0].value == "Row 0 of test (edited)"

    # another row starts from its own values: the edit of row 0 does not follow
    at.number_input(key="explain-row-test").set_value(1).run()
    assert not at.exception and not at.warning
    assert at.subheader[0].value == "Row 1 of test"
    assert metric(at, "Label") == f"{float(data.y[1]):.4g}"
    with torch.no_grad():
        assert waterfall_total(at) == pytest.approx(float(models["afm"](data.idx[1:2], data.val[1:2])), abs=1e-4)
    assert at.query_params["explain_edit"] == "" and at.query_params["explain_edit_row"] == "test:1"


def test_waterfall_is_relative_to_an_average_row_by_default(models, parts) -> None:
    at = open_app("pages/explain.py", explain_part="test", explain_row="4")
    assert at.toggle(key="explain-relative").value is True
    (trace,) = chart(at, "explain-waterfall")["data"]
    summary = afm.summarize(models["afm"], parts["all"])
    assert trace["x"][0] == "average prediction"
    assert float(trace["y"][0]) == pytest.approx(summary.mean_prediction, abs=1e-9)
    with torch.no_grad():
        prediction = float(models["afm"](parts["test"].idx[4:5], parts["test"].val[4:5]))
    assert waterfall_total(at) == pytest.approx(prediction, abs=1e-4)
    assert any("Each term is this row's minus its average over all rows" in c.value for c in at.caption)
    assert any(x.startswith("attention: ") for x in trace["x"])  # AFM's attention parts are bars of their own
    at.toggle(key="explain-relative").set_value(False).run()
    (trace,) = chart(at, "explain-waterfall")["data"]
    assert trace["x"][0] == "bias w0"
    assert float(trace["y"][0]) == pytest.approx(float(models["afm"].w0.detach()), abs=1e-7)
    assert waterfall_total(at) == pytest.approx(prediction, abs=1e-4)


# ---------------------------------------------------------------------------- How AFM works


def check_how_numbers(at: AppTest, models, parts) -> None:
    part = at.selectbox(key="how-part").value
    data = parts[part]
    row, pair = int(at.number_input(key=f"how-row-{part}").value), int(at.selectbox(key="how-pair").value)
    exp = models["afm"].explain(data.idx[row : row + 1], data.val[row : row + 1])
    score, attention = float(exp.score[0, pair]), float(exp.attention[0, pair])
    for label, value in (("a'_ij (NumPy)", score), ("a'_ij (model)", score)):
        assert float(metric(at, label)) == pytest.approx(value, abs=2e-6), label
    for label in ("a_ij (NumPy)", "a_ij (model)"):
        assert float(metric(at, label)) == pytest.approx(attention, abs=2e-6), label
    prediction = float(exp.prediction[0])
    assert float(metric(at, "ŷ (model)")) == pytest.approx(prediction, abs=1e-4)
    assert float(metric(at, "ŷ (sum of these)")) == pytest.approx(prediction, abs=1e-4)
    shown_sum = sum(float(metric(at, name)) for name in ("AFM's w0", "AFM's Σ w_i x_i", "Σ c_ij"))
    assert shown_sum == pytest.approx(prediction, abs=2e-4)  # the numbers on the page add up (to 4 decimals)
    assert len(at.success) == 4 and not at.error  # the page's own NumPy-vs-model checks all pass


def test_how_afm_works_shows_the_models_score_and_attention(how_app: AppTest, models, parts) -> None:
    at = how_app
    assert len(at.latex) >= 8
    check_how_numbers(at, models, parts)
    at.number_input(key="how-row-test").set_value(11)
    at.selectbox(key="how-pair").set_value(3).run()
    assert not at.exception
    assert at.query_params["how_row"] == "11" and at.query_params["how_pair"] == "3"
    check_how_numbers(at, models, parts)


def test_a_link_reproduces_the_view(models, parts) -> None:
    at = open_app("pages/explain.py", explain_part="valid", explain_row="42", explain_model="fm")
    assert at.number_input(key="explain-row-valid").value == 42
    data = parts["valid"]
    with torch.no_grad():
        expected = float(models["fm"](data.idx[42:43], data.val[42:43]))
    assert waterfall_total(at) == pytest.approx(expected, abs=1e-4)
    at.query_params.update({"how_part": "valid", "how_row": "7", "how_pair": "5"})
    at.switch_page("pages/how_afm_works.py").run()
    assert not at.exception
    assert at.number_input(key="how-row-valid").value == 7 and at.selectbox(key="how-pair").value == 5
    check_how_numbers(at, models, parts)


def test_binary_task_shows_logits_and_probabilities() -> None:
    at = open_app("pages/explain.py", task="binary", explain_row="8")
    data = afm.datasets.load_parts("sample", task="binary", seed=0)["test"]
    model = afm.load_model(PRETRAINED / "binary-afm.pt")[0].eval()
    with torch.no_grad():
        logit = float(model(data.idx[8:9], data.val[8:9]))
    assert waterfall_total(at) == pytest.approx(logit, abs=1e-4)
    assert metric(at, "AFM logit") == f"{logit:.4f}"
    assert metric(at, "AFM probability") == f"{1 / (1 + math.exp(-logit)):.3f}"
    for page in ("pages/how_afm_works.py", "pages/attention.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    at.switch_page("pages/how_afm_works.py").run()
    assert len(at.success) == 4 and not at.error
