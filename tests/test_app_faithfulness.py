"""AppTests of the Attention page's faithfulness parts: contribution first, the agreement figures, the
deletion curves and "Would another seed agree?". Every asserted number is recomputed here with ``afm``."""

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

APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"


@pytest.fixture(scope="module")
def parts() -> dict[str, afm.Dataset]:
    return afm.datasets.load_parts("sample", task="regression", seed=0)


@pytest.fixture(scope="module")
def model() -> afm.AFM:
    return afm.load_model(PRETRAINED / "regression-afm.pt")[0].eval()


@pytest.fixture(scope="module")
def at() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.run()
    app.switch_page("pages/attention.py").run()
    assert not app.exception, app.exception
    return app


def test_opens_coloured_by_mean_contribution_with_the_agreement_figures(at: AppTest, model, parts) -> None:
    assert at.radio(key="attention-value").value == "mean |contribution| |c_ij|"
    assert at.selectbox(key="attention-part").value == "all"
    data = parts["all"]
    frame = afm.field_pair_frame(model, data)
    (heat,) = chart(at, "attention-heatmap")["data"]
    expected = explain.field_pair_matrix(frame, "mean_abs_contribution").to_numpy()
    np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), expected, rtol=1e-6, equal_nan=True)
    assert heat["colorbar"]["title"]["text"] == "mean |c_ij|"

    agreement = afm.attention_agreement(model, data)
    assert metric(at, "Spearman: attention vs |contribution|") == f"{agreement['spearman']:.2f}"
    shown = metric(at, "Rows with the same top pair")
    assert shown == f"{agreement['top_pair_agreement']:.1%}"
    assert metric(at, "var(log|c_ij|) explained by s_ij") == f"{agreement['interaction_share']:.0%}"
    # the caveat and its sources are on the page
    text = " ".join(c.value for c in at.caption)
    assert "sums to 1 over the row's pairs" in text and "move nothing" in text
    assert "Attention is not Explanation" in text and "Attention is not not Explanation" in text
    assert "30,000 rows = train 24,000 + valid 3,000 + test 3,000" in at.selectbox(key="attention-part").help


def test_sampled_figures_say_so_and_equal_the_summarys(at: AppTest, model, parts) -> None:
    at.selectbox(key="attention-part").set_value("all").run()
    assert not at.exception
    summary = afm.summarize(model, parts["all"])  # 30,000 rows: the seeded 20,000-row sample
    text = " ".join(c.value for c in at.caption)
    assert "exact over all 30,000 rows" in text and "computed on a seeded sample of 20,000 of 30,000 rows" in text
    agreement = afm.attention_agreement(model, parts["all"], summary)
    assert metric(at, "Rows with the same top pair") == f"{agreement['top_pair_agreement']:.1%}"
    curve = afm.deletion_curve(model, parts["all"], 10, task="regression", explanation=summary)
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
    curve = afm.deletion_curve(model, data, max_pairs=10, task="regression")
    figure = chart(at, "attention-deletion")
    traces = {(t["name"], t["xaxis"]): t for t in figure["data"]}
    for ranking, label in (("contribution", "by |contribution| |c_ij|"), ("attention", "by attention a_ij"),
                           ("random", "random")):  # fmt: skip
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
    _, meta = afm.load_model(PRETRAINED / "regression-afm.pt")
    config = dataclasses.replace(afm.TrainConfig.from_dict(meta["config"]), task="regression", epochs=1)
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
