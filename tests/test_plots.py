"""afm.plots: the anchored colour scales, the numbers in the heatmap's cells, planted frames, the density
of predictions, the words for column names, and the offline HTML download (app/widgets.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from afm import plots

APP = Path(__file__).resolve().parent.parent / "app"


def matrix(values: list[list[float]]) -> pd.DataFrame:
    names = [f"f{i}" for i in range(len(values))]
    return pd.DataFrame(values, index=names, columns=names, dtype=float)


NAN = float("nan")
ATTENTION = matrix([[NAN, 0.095, 0.106], [NAN, NAN, 0.099], [NAN, NAN, NAN]])  # nearly uniform, P = 10


def test_attention_scale_is_anchored_at_one_over_p_not_at_the_data() -> None:
    # values 0.095..0.106 (1/P = 0.1) must not be stretched across the whole scale: 0..2/P, white at 1/P
    assert plots.anchored_range(ATTENTION, "attention", n_pairs=10) == pytest.approx((0.0, 0.2))
    fig = plots.pair_heatmap(ATTENTION, "t", kind="attention", n_pairs=10)
    heat = fig.data[0]
    assert (heat.zmin, heat.zmax) == pytest.approx((0.0, 0.2))
    white = [stop for stop in heat.colorscale if stop[1] == plots.BLUE_WHITE_RED[2]]
    assert white[0][0] == pytest.approx(0.5)  # 1/P sits at the middle of 0..2/P
    assert list(heat.colorbar.tickvals)[:3] == pytest.approx([0.0, 0.1, 0.2])
    assert list(heat.colorbar.ticktext)[:3] == ["0", "1/P", "2/P"]


def test_attention_scale_grows_in_steps_of_one_over_p_and_only_widens() -> None:
    # a value of 0.35 > 2/P: the top becomes 4/P (0.4), white stays at 1/P (a quarter of the way)
    lo, hi = plots.anchored_range(np.array([0.05, 0.35]), "attention", n_pairs=10)
    assert (lo, hi) == pytest.approx((0.0, 0.4))
    scale = plots.anchored_colours(lo, hi, 0.1)
    assert [s for s in scale if s[1] == plots.BLUE_WHITE_RED[2]][0][0] == pytest.approx(0.25)
    # a later run with smaller values keeps the session's wider range
    assert plots.anchored_range(ATTENTION, "attention", 10, previous=(lo, hi)) == pytest.approx((0.0, 0.4))


def test_signed_and_magnitude_scales_are_anchored_at_zero() -> None:
    signed = np.array([-0.03, 0.13])
    assert plots.anchored_range(signed, "signed") == pytest.approx((-0.15, 0.15))  # nice ceiling of 0.13
    assert plots.anchored_range(signed, "magnitude") == pytest.approx((0.0, 0.15))
    # widening keeps the signed range symmetric
    assert plots.anchored_range(signed, "signed", previous=(-0.5, 0.5)) == pytest.approx((-0.5, 0.5))
    assert plots.anchored_range(np.array([0.01]), "signed", previous=(-0.5, 0.3)) == pytest.approx((-0.5, 0.5))
    assert [plots.nice_ceiling(v) for v in (0.13, 0.26, 3.0, 7.0, 0.507, 9.1)] == pytest.approx(
        [0.15, 0.3, 3, 8, 0.6, 10]
    )


def test_heatmap_cells_show_the_value_rounded() -> None:
    fig = plots.pair_heatmap(ATTENTION, "t", kind="attention", n_pairs=10)
    heat = fig.data[0]
    assert heat.texttemplate == "%{text}"
    assert plots.cell_decimals(0.0, 0.2) == 3
    z = ATTENTION.to_numpy()
    for r in range(3):
        for c in range(3):
            expected = "" if np.isnan(z[r, c]) else f"{round(z[r, c], 3):.3f}"
            assert heat.text[r][c] == expected
    assert heat.text[0][1] == "0.095" and heat.text[0][2] == "0.106"
    signed = plots.pair_heatmap(matrix([[NAN, -0.1234], [NAN, NAN]]), "s", diverging=True)
    assert (signed.data[0].zmin, signed.data[0].zmax) == pytest.approx((-0.15, 0.15))
    assert signed.data[0].text[0][1] == "-0.123"
    assert plots.cell_text(np.array([[-0.00004, 0.00006]]), 3) == [["0.000", "0.000"]]  # no "-0.000"


def test_heatmap_frames_planted_pairs_in_either_order() -> None:
    fig = plots.pair_heatmap(ATTENTION, "t", kind="attention", n_pairs=10, planted=[("f2", "f1"), ("f0", "f9")])
    (frame,) = [s for s in fig.layout.shapes if s.type == "rect"]  # f9 is no field: no frame
    # cell (f1, f2): row 1, column 2
    assert (frame.x0, frame.x1, frame.y0, frame.y1) == pytest.approx((1.5, 2.5, 0.5, 1.5))
    assert "planted" in fig.layout.annotations[0].text
    assert not plots.pair_heatmap(ATTENTION, "t", kind="attention", n_pairs=10).layout.shapes


def test_before_after_heatmap_shares_one_scale_and_frames_each_panel() -> None:
    now = matrix([[NAN, 0.05, 0.35], [NAN, NAN, 0.1], [NAN, NAN, NAN]])
    zrange = plots.anchored_range(np.concatenate([ATTENTION.to_numpy(), now.to_numpy()]), "attention", 10)
    fig = plots.before_after_heatmap(
        ATTENTION, now, ("before: t = 16", "now: t = 8"), "t", kind="attention", n_pairs=10, zrange=zrange,
        planted=[("f0", "f2")],
    )  # fmt: skip
    left, right = fig.data
    assert (left.name, right.name) == ("before: t = 16", "now: t = 8")
    assert (left.zmin, left.zmax) == (right.zmin, right.zmax) == pytest.approx((0.0, 0.4))
    assert (left.showscale, right.showscale) == (False, True)
    assert list(left.y) == ["f0", "f1"] and list(left.x) == ["f1", "f2"]  # blank row and column left out
    assert right.text[0][1] == "0.350" and np.asarray(right.z, dtype=float)[0, 1] == pytest.approx(0.35)
    frames = sorted((s.xref, s.x0, s.y0) for s in fig.layout.shapes)
    assert frames == [("x", 0.5, -0.5), ("x2", 0.5, -0.5)]  # cell (f0, f2) in each panel
    assert [a.text for a in fig.layout.annotations[:2]] == ["before: t = 16", "now: t = 8"]


def test_cancelling_pairs_finds_a_mean_that_hides_its_size() -> None:
    frame = pd.DataFrame(
        {
            "label": ["a × b", "a × c", "b × c"],
            "mean_contribution": [0.01, 0.4, -0.2],
            "mean_abs_contribution": [0.5, 0.45, 0.21],
        }
    )
    hidden = plots.cancelling_pairs(frame)
    assert list(hidden["label"]) == ["a × b"]
    assert hidden["ratio"].iloc[0] == pytest.approx(0.02)
    assert plots.cancelling_pairs(frame, top=1, ratio=0.01).empty


def test_prediction_density_counts_rows_per_cell_in_afm_fm_order() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=3000)
    predictions = {"FM": y + rng.normal(scale=0.5, size=3000), "AFM": y + rng.normal(scale=0.2, size=3000)}
    fig = plots.prediction_density(y, predictions, bins=20)
    heats = [t for t in fig.data if t.type == "heatmap"]
    assert [t.name for t in heats] == ["AFM", "FM"]  # fixed order, whatever the dict's
    edges = plots.density_edges(y, predictions, 20)
    for trace in heats:
        counts, _, _ = np.histogram2d(y, predictions[trace.name], bins=[edges, edges])
        z = np.nan_to_num(np.asarray(trace.z, dtype=float))
        np.testing.assert_array_equal(z, counts.T)
        assert z.sum() == 3000  # every row counted once
    assert heats[0].coloraxis == heats[1].coloraxis == "coloraxis"  # one colour scale for both panels


def test_contribution_difference_marks_planted_bars() -> None:
    frame = pd.DataFrame({"label": ["a × b", "a × c", "b × c"], "difference": [0.1, -0.2, 0.3]})
    bars = plots.contribution_difference(frame, planted=["a × c"]).data[0]
    assert list(bars.x) == ["b × c", "a × b", "a × c"]
    assert list(bars.marker.pattern.shape) == ["", "", "/"]
    assert list(bars.marker.line.width) == [0, 0, 3]
    ticks = plots.contribution_difference(frame, planted=["a × c"]).layout.xaxis
    assert list(ticks.tickvals) == list(bars.x)
    assert [plots.PLANTED_COLOUR in text for text in ticks.ticktext] == [False, False, True]


def test_words_and_fixed_model_order() -> None:
    assert plots.words("valid_rmse") == "validation RMSE"
    assert plots.words("afm_mean_abs_contribution") == "mean |contribution| (AFM)"
    assert plots.words("test_auc") == "test AUC"
    assert plots.words("something_else") == "something_else"
    history = pd.DataFrame({"epoch": [1, 2], "valid_rmse": [0.5, 0.4]})
    fig = plots.learning_curves({"FM": history, "AFM": history}, "valid_rmse")
    assert [t.name for t in fig.data] == ["AFM", "FM"]
    assert fig.layout.yaxis.title.text == "validation RMSE"


def test_downloaded_html_embeds_plotly_and_needs_no_network() -> None:
    sys.path.insert(0, str(APP))
    import widgets

    html = widgets.figure_html(go.Figure(go.Bar(x=[1], y=[2])))
    assert re.search(r"<script[^>]*\bsrc=", html) is None  # no script fetched from anywhere
    assert len(html) > 1_000_000 and "Plotly.newPlot" in html  # the 4.5 MB plotly.js bundle is inside
