"""Finite models only (issue 27, item 5): a checkpoint with NaN or infinite weights is refused by ``load_model``
(the command line and the dashboard both use it) with one line naming the file and the parameter, and the CLI's
predict and explain never write non-finite predictions: a model that makes them exits 2 with one line."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

import afm
from afm.checkpoint import save_model
from afm.cli import main

PRETRAINED = afm.datasets.SAMPLE_DIR / "pretrained"
APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")
NAN_MESSAGE = "parameter V holds 12 non-finite values (NaN or infinity): this checkpoint cannot predict"


def damaged(tmp_path: Path, change, name: str = "model.pt") -> Path:  # noqa: ANN001
    """The bundled regression AFM with ``change(model)`` applied, saved as ``tmp_path / name`` with its metadata."""
    model, meta = afm.load_model(PRETRAINED / "regression-afm.pt")
    with torch.no_grad():
        change(model)
    return save_model(model, tmp_path / name, **meta)


def nan_v(model: afm.AFM) -> None:
    model.V.view(-1)[:12] = float("nan")


def overflowing(model: afm.AFM) -> None:
    """Finite weights whose predictions are not: w0 + sum_i w_i x_i overflows float32."""
    model.w0.fill_(3e38)
    model.w.fill_(3e38)


@pytest.fixture
def nan_checkpoint(tmp_path: Path) -> Path:
    return damaged(tmp_path, nan_v)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_load_model_refuses_non_finite_weights_naming_the_file_and_parameter(tmp_path: Path) -> None:
    path = damaged(tmp_path, nan_v)
    with pytest.raises(ValueError) as info:
        afm.load_model(path)
    assert str(info.value) == f"{path}: {NAN_MESSAGE}"
    inf_w = damaged(tmp_path, lambda m: m.W.view(-1)[3:4].fill_(float("-inf")), "inf.pt")
    with pytest.raises(ValueError, match=r"inf\.pt: parameter W holds 1 non-finite values \(NaN or infinity\)"):
        afm.load_model(inf_w)
    assert afm.load_model(damaged(tmp_path, overflowing, "big.pt"))[0].w0.item() == pytest.approx(3e38)  # finite


def test_a_nan_checkpoint_through_the_cli_is_one_line_and_no_file(
    nan_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--checkpoint", str(nan_checkpoint), "--data", "sample", "--out", str(out)]) == 2
    assert one_line_error(capsys) == f"afm predict: error: {nan_checkpoint}: {NAN_MESSAGE}"
    assert not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    for command in ("explain", "evaluate"):
        assert main([command, "--checkpoint", str(nan_checkpoint), "--data", "sample"]) == 2
        assert one_line_error(capsys) == f"afm {command}: error: {nan_checkpoint}: {NAN_MESSAGE}"
        assert capsys.readouterr().out == ""


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf in the model's sums
def test_non_finite_predictions_are_never_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model with finite weights can still overflow: predict writes nothing, explain explains nothing."""
    path = damaged(tmp_path, overflowing, "big.pt")
    out = tmp_path / "predictions.csv"
    out.write_text("the previous predictions\n")
    assert main(["predict", "--checkpoint", str(path), "--data", "sample", "--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert line == (
        f"afm predict: error: {path}: the model's prediction for row 0 of sample (regression) is not finite "
        f"(NaN or infinity): nothing written to {out}"
    )
    assert out.read_text() == "the previous predictions\n"  # the old file stays whole, no temporary is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pt", "predictions.csv"]
    assert main(["explain", "--checkpoint", str(path), "--data", "sample"]) == 2
    assert one_line_error(capsys) == (
        f"afm explain: error: {path}: the model's predictions on sample (regression) are not finite (NaN or infinity): "
        "nothing to explain"
    )


@pytest.mark.slow
def test_a_nan_checkpoint_uploaded_to_the_dashboard_is_a_plain_error(
    nan_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    raw = nan_checkpoint.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:  # the upload's code path: the bytes written to a file of its own
        path = Path(tmp) / "upload.pt"
        path.write_bytes(raw)
        with pytest.raises(ValueError) as info:
            afm.load_model(path)
    assert str(info.value).split(": ", 1)[-1] == NAN_MESSAGE

    app = AppTest.from_file(APP, default_timeout=180).run()
    assert not app.exception
    before = dict(app.session_state["afm"].ws.models)
    uploaders = [u for u in app.get("file_uploader") if u.proto.label == "Checkpoint (.pt) saved by afm"]
    assert len(uploaders) == 1
    uploaders[0].upload("model.pt", raw).run()
    app.button(key="dm-use-ckpt").click().run()
    assert not app.exception
    errors = [e.value.replace("\\", "") for e in app.error]  # the page writes messages as literal text
    assert f"model.pt is not a usable afm checkpoint: {NAN_MESSAGE}" in errors, errors
    assert app.session_state["afm"].ws.models == before  # the models in use are kept
