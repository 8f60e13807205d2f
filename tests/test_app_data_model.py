"""The Data & model page, driven by AppTest: opens with content, trains live, loads and saves."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import afm
from afm.train import TrainConfig, evaluate, train_model

pytestmark = pytest.mark.slow  # AppTest pages: whole page runs, in the whole suite only

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")


def literal(text: str, limit: int = 200) -> str:
    """How the app shows a user- or link-controlled string in Markdown (app/session.py ``literal``)."""
    sys.path.insert(0, str(Path(APP).parent))
    try:
        import session
    finally:
        sys.path.remove(str(Path(APP).parent))
    return session.literal(text, limit)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception
    return at


def metrics_table(at: AppTest):  # noqa: ANN201
    return next(d.value for d in at.dataframe if "test RMSE" in d.value.columns or "test AUC" in d.value.columns)


def test_first_open_shows_the_pretrained_models(app: AppTest) -> None:
    assert app.title[0].value == "Data & model"
    assert [m.value for m in app.metric][:3] == ["30,000", "9", "53"]
    table = metrics_table(app)
    parts = afm.datasets.load_parts("sample", seed=0)
    for kind, label in (("afm", "AFM"), ("fm", "FM")):
        model, _ = afm.load_model(afm.datasets.SAMPLE_DIR / "pretrained" / f"regression-{kind}.pt")
        expected = evaluate(
            model, parts["test"], label_range=(float(parts["train"].y.min()), float(parts["train"].y.max()))
        )
        assert table.set_index("model").loc[label, "test RMSE"] == pytest.approx(expected["rmse"], abs=1e-12)
    assert any(b.label == "Download AFM checkpoint" for b in app.get("download_button"))


def test_form_trains_then_a_live_knob_retrains_keeping_previous_curves(app: AppTest) -> None:
    app.slider(key="knob_epochs").set_value(2)  # inside the form: sent with the submit
    next(b for b in app.button if b.label == "Train AFM and FM").click().run()
    assert not app.exception
    ws = app.session_state["afm"].ws
    assert ws.source.startswith("trained here") and len(ws.histories["afm"]) == 2
    # the page header's "running" figure is hidden only while the training is followed
    assert not [m for m in app.markdown if "stStatusWidget" in m.value]
    assert len(ws.previous["afm"]) == 5  # the pre-trained run's curve (5 epochs) stays, faded
    app.select_slider(key="knob_attention_factor").set_value(4).run()  # live mode: a t change trains at once
    assert not app.exception
    ws = app.session_state["afm"].ws
    assert ws.config.attention_factor == 4 and ws.config.epochs == 2
    assert len(ws.histories["afm"]) == 2 and len(ws.previous["afm"]) == 2
    chart = next(c for c in app.get("plotly_chart") if "(previous)" in c.proto.spec)
    assert chart is not None
    # the page's numbers are those of the same training done directly (training is deterministic)
    parts = afm.datasets.load_parts("sample", seed=0)
    model, _ = train_model("afm", TrainConfig(attention_factor=4, epochs=2), parts["train"], parts["valid"])
    expected = evaluate(
        model, parts["test"], label_range=(float(parts["train"].y.min()), float(parts["train"].y.max()))
    )
    assert metrics_table(app).set_index("model").loc["AFM", "test RMSE"] == pytest.approx(expected["rmse"], abs=1e-9)
    assert app.query_params["attention_factor"] in ("4", ["4"])  # the setting is in the URL


def test_binary_sample_and_run_round_trip(app: AppTest, tmp_path: Path) -> None:
    app.radio(key="data_task").set_value("binary").run()
    assert not app.exception
    assert "test AUC" in metrics_table(app).columns
    app.button(key="dm-save").click().run()
    assert not app.exception and app.success, [e.value for e in app.error]
    runs = afm.runs.list_runs(tmp_path / "runs")
    assert len(runs) == 1 and runs["models"][0] == "afm,fm"
    app.selectbox(key="dm-run").set_value(runs["name"][0])
    app.button(key="dm-load-run").click().run()
    assert not app.exception and any("Loaded AFM, FM" in s.value for s in app.success)


def test_bad_uploads_are_plain_errors(app: AppTest) -> None:
    app.radio(key="data_source").set_value("upload a CSV/Parquet table").run()
    app.file_uploader(key="data_upload").upload("junk.parquet", b"definitely not parquet").run()
    assert not app.exception
    assert any("junk.parquet: cannot read as Parquet" in e.value for e in app.error)

    app.radio(key="data_source").set_value("bundled sample").run()
    evil = pickle.dumps({"format": "afm-checkpoint"})
    app.file_uploader(key="dm-ckpt").upload("evil.pt", evil).run()
    app.button(key="dm-use-ckpt").click().run()
    assert not app.exception
    assert any("evil.pt is not a usable afm checkpoint" in e.value for e in app.error)


def test_uploaded_table_becomes_the_data(app: AppTest) -> None:
    frame = afm.datasets.sample_frame().head(2000)
    app.radio(key="data_source").set_value("upload a CSV/Parquet table").run()
    app.file_uploader(key="data_upload").upload("apps.csv", frame.to_csv(index=False).encode()).run()
    assert not app.exception
    # the column picker's defaults: the last column is the label, text columns are categorical
    next(b for b in app.button if b.label == "Use this data").click().run()
    assert not app.exception, app.exception
    ws = app.session_state["afm"].ws
    assert ws.data_label == "apps.csv" and len(ws.parts["all"]) == 2000 and not ws.models
    assert ws.schema.label == "clicked" and "weather" in ws.schema.field_names


@pytest.mark.parametrize(
    ("name", "value"),
    [("epochs", "0"), ("epochs", "100000"), ("dropout", "nan"), ("dropout", "0.95"), ("optimizer", "sgd"),
     ("epochs", "1" * 10_000), ("attention_factor", "2.5")],
    ids=lambda v: v if len(str(v)) < 20 else "10000-digits",
)  # fmt: skip
def test_crafted_link_values_are_ignored_with_a_notice(name: str, value: str) -> None:
    """A link's bad value is refused by the knob's own validator, in its words (the CLI's flag says the same:
    tests/test_cli.py::test_a_flag_refuses_what_a_link_refuses_with_the_same_words)."""
    from afm.config import knob_of

    with pytest.raises(ValueError) as refused:
        knob_of(name).check(value)
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params[name] = value
    at.run()
    assert not at.exception
    shown = f"Link setting ignored: {literal(str(refused.value), 160)}."  # as literal text (app/session.py)
    assert shown in [w.value for w in at.warning], [w.value for w in at.warning]
    notice = str(refused.value)  # in words, for a person: no Python message, no 10,000 digits echoed
    assert len(notice) < 120 and "int_max_str_digits" not in notice and "invalid literal" not in notice, notice
    assert at.session_state[f"knob_{name}"] == getattr(at.session_state["afm"].ws.config, name)  # the loaded models'
    assert not at.session_state["afm"].ws.source.startswith("trained here")  # a link never trains by itself


def upload_sample(app: AppTest, rows: int = 2000) -> None:
    frame = afm.datasets.sample_frame().head(rows)
    app.radio(key="data_source").set_value("upload a CSV/Parquet table").run()
    app.file_uploader(key="data_upload").upload("apps.csv", frame.to_csv(index=False).encode()).run()
    next(b for b in app.button if b.label == "Use this data").click().run()
    assert not app.exception, app.exception


def test_an_upload_and_its_models_survive_visits_to_other_pages(app: AppTest) -> None:
    upload_sample(app)
    app.slider(key="knob_epochs").set_value(2)
    next(b for b in app.button if b.label == "Train AFM and FM").click().run()
    ws = app.session_state["afm"].ws
    assert ws.data_label == "apps.csv" and set(ws.models) == {"afm", "fm"} and ws.source.startswith("trained here")
    for page in ("pages/attention.py", "pages/compare.py", "pages/how_afm_works.py", "pages/data_model.py"):
        app.switch_page(page).run()
        assert not app.exception, (page, app.exception)
    assert app.session_state["afm"].ws is ws and ws.models and ws.data_label == "apps.csv"
    assert app.radio(key="data_source").value == "upload a CSV/Parquet table"  # the control shows the session's data
    assert "apps.csv" in app.sidebar.caption[0].value and "trained here" in app.sidebar.caption[0].value


def test_replacing_trained_models_asks_first(app: AppTest) -> None:
    upload_sample(app)
    app.slider(key="knob_epochs").set_value(1)
    next(b for b in app.button if b.label == "Train AFM and FM").click().run()
    trained = app.session_state["afm"].ws
    app.radio(key="data_source").set_value("bundled sample").run()
    next(b for b in app.button if b.label == "Use the bundled sample").click().run()
    assert app.session_state["afm"].ws is trained and any("replaces the data" in w.value for w in app.warning)
    app.button(key="cancel-replace").click().run()
    assert app.session_state["afm"].ws is trained and app.radio(key="data_source").value == "upload a CSV/Parquet table"
    app.radio(key="data_source").set_value("bundled sample").run()
    next(b for b in app.button if b.label == "Use the bundled sample").click().run()
    app.button(key="confirm-replace").click().run()
    ws = app.session_state["afm"].ws
    assert not app.exception and ws.is_sample and ws.source == "pre-trained on the sample"


def test_a_shared_link_trains_nothing_and_offers_to_reproduce() -> None:
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["attention_factor"] = "8"
    at.query_params["epochs"] = "2"
    at.run()
    ws = at.session_state["afm"].ws
    assert not at.exception and ws.source == "pre-trained on the sample" and ws.config.attention_factor == 16
    assert any("made with **t = 8, epochs = 2**" in i.value for i in at.info), [i.value for i in at.info]
    assert at.query_params["attention_factor"] in ("8", ["8"])  # the link stays as shared until reproduced
    at.switch_page("pages/attention.py").run()  # other pages say it too, and train nothing either
    assert any("made with **t = 8" in i.value for i in at.info) and at.session_state["afm"].ws is ws
    at.button(key="link-train").click().run()
    ws = at.session_state["afm"].ws
    assert not at.exception and ws.config.attention_factor == 8 and len(ws.histories["afm"]) == 2
    at.switch_page("pages/data_model.py").run()
    assert not any("made with" in i.value for i in at.info)
    assert at.query_params["attention_factor"] in ("8", ["8"]) and at.query_params["data"] in (
        "sample-regression",
        ["sample-regression"],
    )


def test_the_url_carries_the_models_settings_not_untrained_knob_values(app: AppTest) -> None:
    app.slider(key="knob_epochs").set_value(3)  # moved but not trained
    app.run()
    assert app.query_params["epochs"] in ("100", ["100"])  # the loaded models' setting


def test_stop_with_nothing_running_says_so(app: AppTest) -> None:
    app.button(key="train_stop").click().run()
    assert any("Nothing is training now" in i.value for i in app.info)


def test_a_live_move_back_to_a_setting_trained_before_is_served_from_the_pool(app: AppTest) -> None:
    """Train (FM and AFM at t = 16), move t to 8 (the AFM from that FM), back to 16: the same computation as
    the first training's AFM, so the first job's model comes back at once, nothing retrained."""
    app.slider(key="knob_epochs").set_value(2)
    app.number_input(key="knob_seed").set_value(7)
    next(b for b in app.button if b.label == "Train AFM and FM").click().run()
    first = app.session_state["afm"].ws.models["afm"]
    app.select_slider(key="knob_attention_factor").set_value(8).run()
    assert app.session_state["afm"].ws.models["afm"] is not first
    app.select_slider(key="knob_attention_factor").set_value(16).run()
    assert not app.exception and app.session_state["afm"].ws.models["afm"] is first


def test_two_libfm_folders_of_one_name_are_different_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared trainings and cached explanations are keyed by the data's id: same-named folders must differ."""
    roots = tmp_path / "roots"
    for n, where in enumerate(("a", "b")):
        folder = roots / where / "toy"
        folder.mkdir(parents=True)
        lines = [f"{(i + n) % 3} {i % 4}:1 {4 + i % 5}:1 {9 + i % 2}:1" for i in range(60)]
        (folder / "toy.libfm").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("AFM_DATA_ROOTS", str(roots))
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.radio(key="data_source").set_value("libFM file or folder on disk").run()
    assert at.text_input[0].value == ""  # no default under the roots: nothing shown (not the working directory)
    ids = []
    for where in ("a", "b"):
        at.text_input[0].input(str(roots / where / "toy" / "toy.libfm"))
        next(b for b in at.button if b.label == "Load").click()
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        ws = at.session_state["afm"].ws
        assert ws.data_label == "toy.libfm" and len(ws.parts["all"]) == 60
        ids.append(ws.data_id)
    assert ids[0] != ids[1] and all(i.startswith("libfm:toy.libfm:") for i in ids)


def test_reruns_do_not_recount_the_features_per_field(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's field table: one torch.unique per field over every row (0.7 s on an 820k x 39 upload), counted
    once per data, not on each rerun."""
    calls = []
    original = afm.Dataset.cardinalities
    monkeypatch.setattr(afm.Dataset, "cardinalities", lambda self: calls.append(1) or original(self))
    app.run()  # the fixture's first run may have counted (or found the count cached by an earlier test)
    before = len(calls)
    app.run()
    app.run()
    assert len(calls) == before <= 1
    assert any("distinct in data" in d.value.columns for d in app.dataframe)


def test_the_live_panel_draws_the_knobs_beside_the_pictures_of_the_models(app: AppTest) -> None:
    """Live mode (on for the bundled sample): the live knobs and the panel's two heatmaps at the top of the page,
    drawn from the session's AFM; after a live change of t the panel settles on the new AFM's numbers."""
    import json

    import numpy as np
    from apphelpers import decode

    assert app.toggle(key="knob_live").value
    first = [c.key for c in app.get("plotly_chart") if c.key and c.key.startswith("live-")]
    assert first == ["live-heat-0", "live-moves-0"]
    app.select_slider(key="knob_attention_factor").set_value(8).run()  # a live change: trains at once
    assert not app.exception, app.exception
    ws = app.session_state["afm"].ws
    assert ws.config.attention_factor == 8 and ws.source.startswith("trained here")
    status = [c.value for c in app.caption if c.value.startswith("Live: settled after")]
    assert len(status) == 1, [c.value for c in app.caption]
    last = [c for c in app.get("plotly_chart") if c.key and c.key.startswith("live-heat-")][-1]
    z = np.asarray(decode(json.loads(last.proto.spec))["data"][0]["z"], dtype=float)
    rows = ws.parts["valid"].subset(np.arange(min(3000, len(ws.parts["valid"]))))
    frame = afm.field_pair_frame(ws.models["afm"], rows)
    expected = afm.explain.field_pair_matrix(frame, "relative_attention").to_numpy(dtype=float)
    shown = ~np.isnan(expected)
    # the settled picture is the new AFM's (relative attention is drawn on a log scale: ln(P·a_ij), 0 = uniform)
    np.testing.assert_allclose(z[shown], np.log(expected[shown]), rtol=1e-4, atol=1e-9)


def checkpoint_uploader(at: AppTest):  # noqa: ANN201
    """The checkpoint uploader of "Load a saved run or upload a checkpoint" (its key changes after each use)."""
    found = [u for u in at.get("file_uploader") if u.proto.label == "Checkpoint (.pt) saved by afm"]
    assert len(found) == 1, [u.proto.label for u in at.get("file_uploader")]
    return found[0]


def test_an_afm_then_an_fm_checkpoint_load_in_a_row(app: AppTest) -> None:
    """Two checkpoints in a row (issue 27, item 7): after the first is used, the expander is drawn open and its
    uploader is empty, ready for the second; both end up loaded, each named in the sidebar."""
    pretrained = afm.datasets.SAMPLE_DIR / "pretrained"
    expander = next(e for e in app.expander if e.label == "Load a saved run or upload a checkpoint")
    assert not expander.proto.expanded  # closed until a checkpoint is chosen
    for n, kind in enumerate(("afm", "fm")):
        uploader = checkpoint_uploader(app)
        assert uploader.value is None  # a fresh uploader each time
        uploader.upload(f"regression-{kind}.pt", (pretrained / f"regression-{kind}.pt").read_bytes()).run()
        app.button(key="dm-use-ckpt").click().run()
        assert not app.exception and not app.error, [e.value for e in app.error]
        expander = next(e for e in app.expander if e.label == "Load a saved run or upload a checkpoint")
        assert expander.proto.expanded  # kept open for the next one
        assert any(f"Loaded {kind.upper()} from upload regression-{kind}.pt" in s.value for s in app.success)
        assert (
            checkpoint_uploader(app).value is None and n + 1 == app.session_state["afm"].memo["load-models"]["uploads"]
        )
    ws = app.session_state["afm"].ws
    assert ws.sources == {"afm": "upload regression-afm.pt", "fm": "upload regression-fm.pt"}
    status = app.sidebar.caption[0].value
    assert "AFM and FM, AFM: upload regression-afm.pt; FM: upload regression-fm.pt" in status, status
