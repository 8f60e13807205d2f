"""Checkpoints: round trip, atomic writes, and files that must be refused without running code."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from afm import AFM, FM, load_model, save_model


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 40, (16, 4), generator=g), torch.rand(16, 4, generator=g)


@pytest.mark.parametrize(
    "model",
    [AFM(40, 4, embed_dim=6, attention_factor=3, dropout=0.2, attention_dropout=0.1, seed=3), FM(40, 4, embed_dim=5)],
)
def test_round_trip_gives_identical_predictions(tmp_path: Path, model: torch.nn.Module) -> None:
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape) * 0.3)
    model.eval()
    path = save_model(model, tmp_path / "m.pt", note="hello", metrics={"auc": 0.9}, fields=["a", "b"])
    loaded, meta = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert meta == {"note": "hello", "metrics": {"auc": 0.9}, "fields": ["a", "b"]}
    idx, val = _inputs()
    assert torch.equal(loaded(idx, val), model(idx, val))
    assert not loaded.training


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_model(FM(10, 2), path)
    first = path.read_bytes()
    with pytest.raises(TypeError, match="not a plain type"):
        save_model(FM(10, 2, embed_dim=3), path, bad=object())
    assert path.read_bytes() == first  # a failed save changes nothing
    save_model(AFM(10, 2), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text\n")
    with pytest.raises(ValueError, match="notes.txt"):
        load_model(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(3)}, other)  # a valid torch file, but not ours
    with pytest.raises(ValueError, match="other.pt: not an afm checkpoint"):
        load_model(other)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = save_model(AFM(50, 5), tmp_path / "m.pt")
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt"):
        load_model(cut)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_model(tmp_path / "absent.pt")


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    marker = ""

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (Path(self.marker),))


def test_pickle_carrying_file_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = str(marker)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "afm-checkpoint", "version": 1, "x": payload}, evil)
    with pytest.raises(ValueError, match="evil.pt.*pickled Python objects"):
        load_model(evil)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"  # a bare pickle, not even a zip archive
    raw.write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match="raw.pkl"):
        load_model(raw)
    assert not marker.exists()


def test_mismatched_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_model(AFM(10, 3, embed_dim=4), path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["embed_dim"] = 8
    torch.save(payload, path)
    with pytest.raises(ValueError, match="does not match its config"):
        load_model(path)
