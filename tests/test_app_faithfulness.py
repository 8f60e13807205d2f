"""AppTests of the Attention page's faithfulness parts: what attention moves first, the agreement figures beside
their nulls, the deletion curves and "Would another seed agree?". Every asserted number is recomputed here with
``afm``. On the binary sample, whose pre-trained AFM's attention part is not negligible (the regression one's is:
its verdict has a test of its own)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from apphelpers import chart, decode, metric  # noqa: F401
from streamlit.testing.v1 import AppTest

import afm
from afm import explain, faithfulness

pytestmark = pytest.mark.slow  # AppTest pages: whole page runs, in the whole suite only

APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"


@pytest.fixture(scope="module")
def parts(binary_parts: dict[str, afm.Dataset]) -> dict[str, afm.Dataset]:
    return binary_parts  # this file's data is the binary label (conftest's ``parts`` is the regression one)


@pytest.fixture(scope="module")
def model() -> afm.AFM:
    return afm.load_model(PRETRAINED / "binary-afm.pt")[0].eval()


@pytest.fixture(scope="module")
def at() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.query_params["task"] = "binary"
    app.run()
    app.switch_page("pages/attention.py").run()
    assert not app.exception, app.exception
    return app


def test_opens_coloured_by_what_attention_moves_with_the_agreement_figures(at: AppTest, model, parts) -> None:
    assert at.radio(key="attention-value").value == "what attention moves |(a_ij − 1/P)·s_ij|"
    assert at.selectbox(key="attention-part").value == "all"
    data = parts["all"]
    frame = afm.field_pair_frame(model, data)
    (heat,) = chart(at, "attention-heatmap")["data"]
    expected = explain.field_pair_matrix(frame, "mean_abs_attention_part").to_numpy()
    np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), expected, rtol=1e-6, equal_nan=True)
    assert heat["colorbar"]["title"]["text"] == "mean |attention part|"
    # the headline in words, with the recipe
    effect = afm.attention_effect(model, data)
    assert any(f"Attention moves predictions by {effect.attention_abs:.3g} on average" in i.value for i in at.info)
    assert any("from FM (exact start)" in i.value for i in at.info)

    summary = afm.summarize(model, data)
    agreement = afm.attention_agreement(model, data, summary)
    assert metric(at, "Spearman: attention vs |contribution|") == f"{agreement['spearman']:.2f}"
    shown = metric(at, "Rows with the same top pair")
    assert shown == f"{agreement['top_pair_agreement']:.1%}"
    assert metric(at, "var(log|c_ij|) explained by s_ij") == f"{agreement['interaction_share']:.0%}"
    # each beside its nulls
    text = " ".join(c.value for c in at.caption)
    assert f"attention shuffled within rows: {agreement['spearman_permuted']:.2f}" in text
    assert f"uniform attention: {agreement['top_pair_uniform']:.1%}" in text
    # the caveat and its sources are on the page, and how far from uniform the attention is
    assert "attention part" in text and "How far from uniform" in text
    assert "Attention is not Explanation" in text and "Attention is not not Explanation" in text
    assert "30,000 rows = train 24,000 + valid 3,000 + test 3,000" in at.selectbox(key="attention-part").help


def test_relative_attention_is_on_a_log_scale_from_the_model(at: AppTest, model, parts) -> None:
    at.radio(key="attention-value").set_value("relative attention P·a_ij").run()
    assert not at.exception
    frame = afm.field_pair_frame(model, parts["all"])
    (heat,) = chart(at, "attention-heatmap")["data"]
    relative = explain.field_pair_matrix(frame, "relative_attention").to_numpy()
    np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), np.log(relative), rtol=1e-6, equal_nan=True)
    # symmetric about 0 (P·a_ij = 1), its width from the model on screen, the range written on the legend
    lo, hi = heat["zmin"], heat["zmax"]
    top = np.nanmax(np.abs(np.log(relative)))
    assert lo == -hi and top <= hi <= 1.5 * top
    assert "on screen:" in heat["colorbar"]["title"]["text"]
    at.radio(key="attention-value").set_value("what attention moves |(a_ij − 1/P)·s_ij|").run()


def test_a_negligible_attention_part_is_said_in_words_and_ranks_nothing(parts) -> None:
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.run()  # the regression sample: its pre-trained AFM's attention part is negligible
    app.switch_page("pages/attention.py").run()
    assert not app.exception
    model = afm.load_model(PRETRAINED / "regression-afm.pt")[0].eval()
    data = afm.datasets.load_parts("sample", task="regression", seed=0)["all"]
    assert afm.attention_effect(model, data).negligible
    assert any("so this AFM predicts as its FM" in w.value for w in app.warning)
    assert any("No ranking of pairs by attention" in m.value for m in app.markdown)
    names = {t["name"] for t in chart(app, "attention-deletion")["data"]}
    assert "by attention a_ij" not in names and "by |contribution| |c_ij|" in names
    assert not [m for m in app.metric if m.label == "Rows with the same top pair"]


def test_sampled_figures_say_so_and_equal_the_summarys(at: AppTest, model, parts) -> None:
    at.selectbox(key="attention-part").set_value("all").run()
    assert not at.exception
    summary = afm.summarize(model, parts["all"])  # 30,000 rows: the seeded 20,000-row sample
    text = " ".join(c.value for c in at.caption)
    assert "exact over all 30,000 rows" in text and "computed on a seeded sample of 20,000 of 30,000 rows" in text
    agreement = afm.attention_agreement(model, parts["all"], summary)
    assert metric(at, "Rows with the same top pair") == f"{agreement['top_pair_agreement']:.1%}"
    curve = afm.deletion_curve(model, parts["all"], 10, task="binary", explanation=summary)
    traces = {(t["name"], t["xaxis"]): t for t in chart(at, "attention-deletion")["data"]}
    mine = curve[curve["ranking"] == "contribution"]["mean_abs_change"]
    np.testing.assert_allclose(np.asarray(traces["by |contribution| |c_ij|", "x"]["y"], dtype=float), mine, atol=1e-9)
    at.selectbox(key="attention-part").set_value("test").run()  # 3,000 rows: every figure is exact
    assert "seeded sample" not in " ".join(c.value for c in at.caption)


def test_old_links_keep_their_colour(parts) -> None:
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.query_params["attention_value"] = "0"  # before issue 13, option 0 was (and still is) mean attention
    app.run()
    app.switch_page("pages/attention.py").run()
    assert app.radio(key="attention-value").value == "mean attention a_ij"


def test_deletion_chart_is_the_deletion_curve(at: AppTest, model, parts) -> None:
    at.selectbox(key="attention-part").set_value("test").run()
    assert not at.exception
    data = parts["test"]
    curve = afm.deletion_curve(model, data, max_pairs=10, task="binary")
    figure = chart(at, "attention-deletion")
    traces = {(t["name"], t["xaxis"]): t for t in figure["data"]}
    for ranking, label in (("contribution", "by |contribution| |c_ij|"), ("attention", "by attention a_ij"),
                           ("random", "random (= uniform attention: all tied)"),
                           ("permuted", "by attention shuffled within rows (median, 90% band)")):  # fmt: skip
        mine = curve[curve["ranking"] == ranking]
        np.testing.assert_allclose(np.asarray(traces[label, "x"]["y"], dtype=float), mine["mean_abs_change"], atol=1e-9)
        np.testing.assert_allclose(np.asarray(traces[label, "x2"]["y"], dtype=float), mine["mean_metric"], atol=1e-9)
    first = curve[curve["removed"] == 1].set_index("ranking")["mean_abs_change"]
    assert any(f"**{first['contribution']:.3f}**" in m.value for m in at.markdown)
    assert metric(at, "Spearman: attention vs |contribution|") == (
        f"{afm.attention_agreement(model, data)['spearman']:.2f}"
    )


def test_seed_stability_trains_once_and_shows_tau(at: AppTest, model, parts, monkeypatch) -> None:
    at.selectbox(key="attention-part").set_value("test")
    at.number_input(key="stability-seeds").set_value(2)
    at.number_input(key="stability-epochs").set_value(1).run()
    assert not at.exception
    assert "No seeds trained yet" in " ".join(i.value for i in at.info)
    trainings: list[int] = []
    original = afm.faithfulness.train_model

    def counting(*args, **kwargs):
        trainings.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(afm.faithfulness, "train_model", counting)
    at.button(key="stability-run").click().run()
    assert not at.exception, at.exception
    assert len(trainings) == 2
    # the same numbers from afm directly (training is deterministic for a seed)
    _, meta = afm.load_model(PRETRAINED / "binary-afm.pt")
    config = dataclasses.replace(afm.TrainConfig.from_dict(meta["config"]), task="binary", epochs=1)
    monkeypatch.setattr(afm.faithfulness, "train_model", original)
    frame, tau = afm.seed_stability(config, parts["train"], parts["valid"], parts["test"], seeds=2)
    assert metric(at, "Seeds trained") == "2 / 2"
    assert metric(at, "Mean Kendall τ between seeds (by |contribution|)") == f"{tau:.2f}"
    assert metric(at, "Mean Kendall τ between seeds (by attention)") == f"{frame.attrs['attention_tau']:.2f}"
    assert any(faithfulness.tau_in_words(tau) in m.value for m in at.markdown)
    shown = next(d.value for d in at.dataframe if "abs_contribution_lo" in d.value.columns)
    assert list(shown["field pair"]) == list(frame["label"])
    np.testing.assert_allclose(shown["mean_abs_contribution"], frame["mean_abs_contribution"], rtol=1e-9)
    np.testing.assert_allclose(shown["attention_hi"], frame["attention_hi"], rtol=1e-9)
    figure = chart(at, "attention-stability")
    planted = [t for t in figure["data"] if t["name"] == "planted pair"]
    assert planted and len(planted[0]["y"]) == len(afm.datasets.sample_truth())
    # back to the page (another part and back): nothing retrains, the results are still there
    trainings.clear()
    monkeypatch.setattr(afm.faithfulness, "train_model", counting)
    at.selectbox(key="attention-part").set_value("valid").run()
    at.selectbox(key="attention-part").set_value("test").run()
    assert not at.exception and trainings == []
    assert metric(at, "Mean Kendall τ between seeds (by |contribution|)") == f"{tau:.2f}"
    assert at.button(key="stability-run").disabled
    assert math.isfinite(tau)


def test_the_salient_sample_opens_from_a_link_and_shows_attention_against_the_truth() -> None:
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.query_params["data"] = "salient-regression"
    app.run()
    app.switch_page("pages/attention.py").run()
    assert not app.exception, app.exception
    ws = app.session_state["afm"].ws
    assert ws.bundled == "salient" and ws.data_id == "salient-regression"
    model = afm.load_model(PRETRAINED / "salient-regression-afm.pt")[0].eval()
    data = ws.parts["all"]
    summary = afm.summarize(model, data)
    found = afm.attention.truth_recovery(summary.sample, afm.datasets.salient_weights(summary.sample_data))
    assert metric(app, "Decisive rows whose top-attention pair is the true one") == f"{found['hit_rate']:.1%}"
    assert found["hit_rate"] > 0.9
    effect = afm.attention_effect(model, data, summary)
    assert any(f"Attention moves predictions by {effect.attention_abs:.3g}" in i.value for i in app.info)
    assert not app.warning or not any("predicts as its FM" in w.value for w in app.warning)
