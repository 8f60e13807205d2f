"""AppTests of the "AFM vs FM" and "Sweeps" pages: what they show equals what ``afm`` computes directly."""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import afm
import afm.sweeps

pytestmark = pytest.mark.slow  # AppTest pages: whole page runs, in the whole suite only

APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"


def start(page: str, task: str = "regression", **query: str) -> AppTest:
    """The app on ``page``, in a fresh session on the sample (pre-trained models) for ``task``."""
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params.update(task=task, **query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def as_array(value: Any) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly's typed array ``{"dtype", "bdata"[, "shape"]}``."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return array.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else array
    return np.asarray(value)


def charts(at: AppTest) -> dict[str, dict[str, Any]]:
    """title -> plotly spec of every chart on the page (streamlit keeps the figure JSON in ``proto.spec``)."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page that has ``column``."""
    frames = [frame.value for frame in at.dataframe if column in frame.value.columns]
    assert frames, f"no table with a {column!r} column"
    return frames[0]


def run_button(at: AppTest) -> Any:
    return next(button for button in at.button if button.label == "Run sweep")


def reference(task: str) -> tuple[dict[str, afm.Dataset], dict[str, Any], dict[str, dict[str, Any]]]:
    """The sample's split and the bundled models, loaded without the app: (parts, models, metadata)."""
    parts = afm.datasets.load_parts("sample", task=task, seed=0)
    loaded = {kind: afm.load_model(PRETRAINED / f"{task}-{kind}.pt") for kind in ("afm", "fm")}
    return parts, {k: m for k, (m, _) in loaded.items()}, {k: meta for k, (_, meta) in loaded.items()}


@pytest.fixture(scope="module")
def compare() -> AppTest:
    return start("pages/compare.py")


@pytest.fixture(scope="module")
def regression() -> tuple[dict[str, afm.Dataset], dict[str, Any], dict[str, dict[str, Any]]]:
    return reference("regression")


def test_compare_metrics_equal_direct_evaluation(compare: AppTest, regression: tuple) -> None:
    parts, models, _ = regression
    label_range = (float(parts["train"].y.min()), float(parts["train"].y.max()))  # as caches.evaluate_part clips
    shown = table(compare, "AFM − FM")
    # words, in a fixed order: validation then test, the headline metric first
    assert list(zip(shown["part"], shown["metric"], strict=True)) == [
        ("validation", "RMSE"), ("validation", "MAE"), ("test", "RMSE"), ("test", "MAE")
    ]  # fmt: skip
    shown = shown.set_index(["part", "metric"])
    for part in ("valid", "test"):
        direct = {k: afm.evaluate(m, parts[part], "regression", label_range=label_range) for k, m in models.items()}
        for metric in ("rmse", "mae"):
            row = shown.loc[({"valid": "validation"}.get(part, part), metric.upper())]
            assert row["AFM"] == pytest.approx(direct["afm"][metric], rel=1e-12)
            assert row["FM"] == pytest.approx(direct["fm"][metric], rel=1e-12)
            assert row["AFM − FM"] == pytest.approx(direct["afm"][metric] - direct["fm"][metric], abs=1e-12)
    test_afm, test_fm = shown.loc[("test", "RMSE"), "AFM"], shown.loc[("test", "RMSE"), "FM"]
    metric = next(m for m in compare.metric if m.label == "AFM test RMSE")
    assert metric.value == f"{test_afm:.4f}"
    assert metric.proto.delta == f"{test_afm - test_fm:+.4f} vs FM"


def test_compare_curves_and_scatter_show_the_models(compare: AppTest, regression: tuple) -> None:
    parts, models, meta = regression
    specs = charts(compare)
    assert len(specs) == 5, list(specs)
    for title, column in (("Validation RMSE per epoch", "valid_rmse"), ("Training loss per epoch", "train_loss")):
        lines = {trace["name"]: as_array(trace["y"]) for trace in specs[title]["data"]}
        for kind, name in (("afm", "AFM"), ("fm", "FM")):
            saved = [epoch[column] for epoch in meta[kind]["history"]["epochs"]]
            np.testing.assert_allclose(lines[name], saved, rtol=1e-12)
    # the predictions as a density: per model the test rows counted per (label, prediction) cell
    density = [trace for trace in specs["Predicted vs true (test)"]["data"] if trace["type"] == "heatmap"]
    assert [trace["name"] for trace in density] == ["AFM", "FM"]
    lo, hi = float(parts["train"].y.min()), float(parts["train"].y.max())
    y = parts["test"].y.double().numpy()
    predictions = {
        k.upper(): np.clip(afm.predict(m, parts["test"]).double().numpy(), lo, hi) for k, m in models.items()
    }
    edges = afm.plots.density_edges(y, predictions)
    for trace in density:
        counts, _, _ = np.histogram2d(y, predictions[trace["name"]], bins=[edges, edges])
        np.testing.assert_array_equal(np.nan_to_num(as_array(trace["z"]).astype(float)), counts.T)
    assert sum(np.nansum(as_array(t["z"]).astype(float)) for t in density) == 2 * len(y)


def test_compare_splits_afm_minus_fm_into_attention_and_weights(compare: AppTest, regression: tuple) -> None:
    parts, models, _ = regression
    afm_frame = afm.field_pair_frame(models["afm"], parts["all"])
    fm_frame = afm.field_pair_frame(models["fm"], parts["all"])
    expected = afm.attention.difference_frame(afm_frame, fm_frame).head(15)
    spec = charts(compare)["AFM − FM mean contribution per field pair: weights and attention"]
    weights, attention, total = spec["data"]
    assert list(weights["x"]) == list(expected["label"])
    np.testing.assert_allclose(as_array(weights["y"]), expected["weights"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(as_array(attention["y"]), expected["attention"], rtol=1e-9, atol=1e-12)
    # the two parts add up to AFM's mean c_ij minus FM's, pair by pair
    np.testing.assert_allclose(as_array(weights["y"]) + as_array(attention["y"]), as_array(total["y"]), atol=1e-7)
    direct = afm_frame.set_index("label")["mean_contribution"] - fm_frame.set_index("label")["mean_contribution"]
    np.testing.assert_allclose(as_array(total["y"]), direct.loc[list(total["x"])], atol=1e-9)
    split = afm.attention.afm_fm_difference(models["afm"], models["fm"], parts["all"])
    assert split["difference"] == pytest.approx(split["weights"] + split["attention"])
    assert any(f"**{split['abs_attention']:.3g}**" in m.value for m in compare.markdown)


def test_compare_contribution_difference_is_afm_minus_fm(compare: AppTest, regression: tuple) -> None:
    parts, models, _ = regression
    afm_frame = afm.field_pair_frame(models["afm"], parts["all"])
    fm_frame = afm.field_pair_frame(models["fm"], parts["all"])
    difference = (afm_frame["mean_abs_contribution"] - fm_frame["mean_abs_contribution"]).to_numpy()
    expected = pd.Series(difference, index=afm_frame["label"]).sort_values(ascending=False)
    bars = charts(compare)["Mean |contribution| per field pair: AFM − FM"]["data"][0]
    assert list(bars["x"]) == list(expected.index)
    np.testing.assert_allclose(as_array(bars["y"]), expected.to_numpy(), rtol=1e-12)
    # the planted pairs' bars are hatched, the others plain
    planted = set(afm.explain.planted_table(afm_frame, afm.datasets.sample_truth())["planted pair"])
    hatched = [label for label, shape in zip(bars["x"], bars["marker"]["pattern"]["shape"], strict=True) if shape]
    assert set(hatched) == planted and len(planted) == len(afm.datasets.sample_truth())
    shown = table(compare, "AFM − FM mean |contribution|")  # column names in words, not afm_mean_abs_contribution
    assert list(shown["field pair"]) == list(expected.index)
    np.testing.assert_allclose(
        shown["mean |contribution| (FM)"],
        fm_frame.set_index("label").loc[shown["field pair"], "mean_abs_contribution"],
    )
    np.testing.assert_allclose(
        shown["AFM − FM mean |contribution|"], shown["mean |contribution| (AFM)"] - shown["mean |contribution| (FM)"]
    )


def test_compare_part_is_read_from_and_written_to_the_url(regression: tuple) -> None:
    parts, models, _ = regression
    at = start("pages/compare.py", compare_part="test")
    assert at.selectbox(key="compare_part").value == "test"
    split = afm.attention.afm_fm_difference(models["afm"], models["fm"], parts["test"])
    assert any(f"**{split['abs_difference']:.3g}**" in m.value for m in at.markdown)
    at.selectbox(key="compare_part").select("valid").run()
    assert not at.exception
    assert at.query_params["compare_part"] == "valid"


def test_compare_binary_shows_auc_and_calibration() -> None:
    parts, models, _ = reference("binary")
    at = start("pages/compare.py", task="binary")
    shown = table(at, "AFM − FM").set_index(["part", "metric"])
    direct = afm.evaluate(models["afm"], parts["test"], "binary")
    for metric in ("auc", "logloss", "accuracy"):
        assert shown.loc[("test", afm.TASKS["binary"].label(metric)), "AFM"] == pytest.approx(direct[metric], rel=1e-12)
    assert any(m.label == "AFM test AUC" for m in at.metric)
    curves = {trace["name"]: trace for trace in charts(at)["Calibration (test)"]["data"]}
    rows = as_array(curves["AFM"]["customdata"])
    assert rows.sum() == len(parts["test"])  # every test row sits in one bin
    # the bins' positive rates, weighted by their rows, give back the share of positives
    positives = (as_array(curves["AFM"]["y"]) * rows).sum()
    assert positives == pytest.approx(float((parts["test"].y > 0).sum()), rel=1e-9)


def test_sweep_shows_an_estimate_runs_as_a_job_and_keeps_results() -> None:
    at = start("pages/sweeps.py")
    ws = at.session_state["afm"].ws
    values = at.text_input(key="sweeps_values_dropout")
    assert values.value == "0, 0.1, 0.2, 0.3, 0.4, 0.5"  # the paper's grid by default
    assert at.number_input(key="sweeps_epochs").value == ws.config.epochs  # early stopping ends trainings
    estimate = next(c.value for c in at.caption if c.value.startswith("Estimate: about"))
    assert "6 FM + 6 AFM trainings" in estimate and float(estimate.split("**")[1].removesuffix(" s")) > 0

    values.input("0, 2").run()  # a dropout ratio of 2 is refused before anything trains
    run_button(at).click().run()
    assert not at.exception and at.error and "[0, 1)" in at.error[0].value
    assert ws.sweeps == []

    at.text_input(key="sweeps_values_dropout").input("0, 0.3")
    at.number_input(key="sweeps_epochs").set_value(1)
    at.number_input(key="sweeps_seeds_dropout").set_value(1).run()
    assert any("2 FM + 2 AFM trainings" in c.value for c in at.caption)
    run_button(at).click().run()
    assert not at.exception, at.exception
    shown = table(at, "validation RMSE")
    assert len(shown) == 4 and len(ws.sweeps) == 1
    pairs = list(zip(shown["model"], shown["value"], strict=True))
    assert pairs == [("fm", 0.0), ("afm", 0.0), ("fm", 0.3), ("afm", 0.3)]
    assert any(b.proto.label.startswith("Download all session results") for b in at.get("download_button"))
    assert at.query_params["sweep_values"] == "0.0, 0.3" and at.query_params["sweep_epochs"] == "1"

    # The same trainings done directly: each value's FM and the AFM started at it (seeded, deterministic on the CPU).
    base = dataclasses.replace(ws.config, epochs=1, task=ws.task)
    clip = afm.label_range(ws.parts["train"], ws.task)
    for dropout in (0.0, 0.3):
        pair = afm.train_pair(dataclasses.replace(base, dropout=dropout), ws.parts["train"], ws.parts["valid"])
        for kind in ("fm", "afm"):
            direct = afm.evaluate(pair[kind][0], ws.parts["valid"], ws.task, label_range=clip)
            row = shown[(shown["model"] == kind) & (shown["value"] == dropout)].iloc[0]
            assert row["validation RMSE"] == pytest.approx(direct["rmse"], abs=1e-9)
            assert row["validation MAE"] == pytest.approx(direct["mae"], abs=1e-9)

    lines = {trace["name"]: trace for trace in charts(at)["validation RMSE against dropout"]["data"]}
    np.testing.assert_allclose(as_array(lines["afm"]["y"]), shown.loc[shown["model"] == "afm", "validation RMSE"])

    # The same settings again: the session's results, at once, without a new job.
    assert any(c.value.startswith("Results for these settings are in this session") for c in at.caption)
    started = time.perf_counter()
    run_button(at).click().run()
    assert not at.exception and len(ws.sweeps) == 1 and time.perf_counter() - started < 5
    np.testing.assert_array_equal(table(at, "validation RMSE")["validation RMSE"], shown["validation RMSE"])

    # Other settings: the estimate now uses the seconds per epoch the finished sweep measured.
    at.text_input(key="sweeps_values_dropout").input("0, 0.1").run()
    measured = afm.sweeps.measured_per_epoch(ws.sweeps[-1])
    estimate = next(c.value for c in at.caption if c.value.startswith("Estimate: about"))
    assert "as the last sweep ran" in estimate and f"{measured['afm']:.2f} s per epoch" in estimate

    at.button(key="sweeps_clear").click().run()
    assert not at.exception and ws.sweeps == [] and not at.dataframe


def test_a_sweep_link_restores_settings_and_says_results_are_not_stored() -> None:
    link = dict(sweep_parameter="attention_factor", sweep_values="2, 8", sweep_seeds="2", sweep_pretrain="false")
    at = start("pages/sweeps.py", **link)
    assert at.selectbox(key="sweeps_parameter").value == "attention_factor"
    assert at.toggle(key="sweeps_pretrain_attention_factor").value is False
    assert at.text_input(key="sweeps_values_attention_factor").value == "2, 8"
    assert at.number_input(key="sweeps_seeds_attention_factor").value == 2
    assert any("2 FM + 4 AFM trainings" in c.value for c in at.caption)  # one FM per seed, every AFM from it
    assert any("this link restores the sweep's settings" in i.value.lower() for i in at.info)
    assert at.session_state["afm"].ws.sweeps == []  # opening a link trains nothing


def test_a_stopped_sweep_shows_its_finished_values_and_says_so() -> None:
    sys.path.insert(0, str(APP.parent))
    import jobs
    import session
    import sweep_sections

    at = start("pages/sweeps.py")
    ws = at.session_state["afm"].ws
    base = dataclasses.replace(ws.config, epochs=1, task=ws.task)
    frame = afm.sweeps.run_sweep(
        "dropout", [0.0, 0.3], ws.parts["train"], ws.parts["valid"], base=base,
        callback=lambda fraction, text: text.startswith("2/4"),  # Stop once the first value is done
    )  # fmt: skip
    assert frame.attrs["stopped"] and list(frame["value"]) == [0.0, 0.0]
    # the key of the page's default settings, as if its default sweep had been stopped
    default = dataclasses.replace(ws.config, task=ws.task, pretrain=True)
    key = jobs.job_key("sweep", ws.data_id, "dropout", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], (0,), default.to_dict())
    for result, finished in ((pd.DataFrame(), 0), (frame, 1)):  # stopped during the first value, then after it
        job = jobs.Job(key, "sweep", lambda job: None, state=jobs.STOPPED, result=result)
        job.started, job.finished = 100.0, 103.0
        meta = {"key": key, "data_id": ws.data_id, "estimate": None}
        at.session_state["afm"].slots[sweep_sections.SLOT] = session.Slot(job, meta, sweep_sections.collect)
        at.run()
        assert not at.exception, at.exception
        assert any(w.value.startswith(f"Stopped after 3 s: {finished} value(s) finished and shown") for w in at.warning)
    shown = table(at, "validation RMSE")
    np.testing.assert_allclose(shown["validation RMSE"], frame["valid_rmse"])
    captions = " ".join(c.value for c in at.caption)
    assert len(ws.sweeps) == 1 and ws.sweeps[0].attrs["key"] == key  # the later one replaced the earlier
    assert "the settings above differ" not in captions  # the stopped sweep is the page's settings' sweep ...
    assert "Estimate: about" in captions and "in this session" not in captions  # ... but not their stored result
