"""A full disk while saving: one line and exit 2 in the CLI, a plain message in the dashboard, no partial
file and the old file intact; stale temporaries of killed saves are cleaned, and only those."""

from __future__ import annotations

import errno
import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import afm
from afm.checkpoint import SaveError, atomic_write, load_model, remove_stale_temps, save_model
from afm.cli import main
from afm.model import ModelConfig, build_model
from afm.runs import clean_stale, list_runs, save_run

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")
TORCH_ENOSPC = "[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file data/0: file write failed\nNo space left on device"  # noqa: E501


def tiny(seed: int) -> afm.AFM:
    return build_model(ModelConfig(kind="afm", n_features=12, n_fields=3, embed_dim=4, attention_factor=2, seed=seed))


REAL_TORCH_SAVE = torch.save


def full_disk_torch_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(f, io.BytesIO):  # the dashboard's download buttons save to memory: no disk involved
        return REAL_TORCH_SAVE(obj, f, *args, **kwargs)
    f.write(b"PK\x03\x04 half a checkpoint")  # a partial write, then the error torch's C++ writer raises
    raise RuntimeError(TORCH_ENOSPC)


def full_disk_replace(src: Any, dst: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("where", ["torch.save", "os.replace"])
def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "model.pt"
    old = tiny(0)
    save_model(old, path, note="old")
    before = path.read_bytes()
    if where == "torch.save":
        monkeypatch.setattr(torch, "save", full_disk_torch_save)
    else:
        monkeypatch.setattr(os, "replace", full_disk_replace)
    with pytest.raises(SaveError) as info:
        save_model(tiny(1), path, note="new")
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert str(info.value) == f"cannot write {path}: No space left on device"  # one line, names the file
    monkeypatch.undo()
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    model, meta = load_model(path)
    assert meta["note"] == "old" and torch.equal(model.V, old.V)


def test_any_write_error_is_one_line_naming_the_file(tmp_path: Path) -> None:
    def boom(f: Any) -> None:
        raise RuntimeError("PytorchStreamWriter failed writing file data/0:\nfile write failed")

    with pytest.raises(SaveError) as info:
        atomic_write(tmp_path / "x.bin", boom)
    assert (
        str(info.value)
        == f"cannot write {tmp_path / 'x.bin'}: PytorchStreamWriter failed writing file data/0: file write failed"
    )
    assert info.value.errno == errno.EIO and leftovers(tmp_path) == []
    (tmp_path / "file").touch()  # a file where a folder should be: mkdir's error, one line
    with pytest.raises(SaveError, match=r"^cannot write .*file/y\.bin: (Not a directory|File exists)$"):
        atomic_write(tmp_path / "file" / "y.bin", lambda f: f.write(b"1"))
    with pytest.raises(TypeError):  # not an I/O error: passes through unchanged, still cleaned up
        atomic_write(tmp_path / "z.bin", lambda f: f.write("text, not bytes"))
    assert leftovers(tmp_path) == []


def test_failed_run_save_leaves_no_folder_and_names_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_run({"afm": (tiny(0), None)}, name="kept", root=tmp_path)
    monkeypatch.setattr(torch, "save", full_disk_torch_save)
    with pytest.raises(SaveError) as info:
        save_run({"afm": (tiny(1), None), "fm": (tiny(2), None)}, name="new", root=tmp_path, metrics={"afm": {}})
    assert str(info.value) == f"cannot write {tmp_path / 'new'}: No space left on device"
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # no .incomplete-* left
    assert list(list_runs(tmp_path)["name"]) == ["kept"]


@pytest.mark.parametrize("where", ["torch.save", "os.replace"])
def test_cli_full_disk_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"the old file")
    if where == "torch.save":
        monkeypatch.setattr(torch, "save", full_disk_torch_save)
    else:
        monkeypatch.setattr(os, "replace", full_disk_replace)
    args = ["train", "--epochs", "1", "-k", "4", "-t", "2", "--out", str(ckpt), "--runs-dir", str(tmp_path / "runs")]
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"afm train: error: cannot write {ckpt}: No space left on device\n"
    assert ckpt.read_bytes() == b"the old file" and leftovers(tmp_path) == []
    # the run folder fails the same way (no --out)
    assert main(["train", "--epochs", "1", "-k", "4", "-t", "2", "--runs-dir", str(tmp_path / "runs"),
                 "--run-name", "r", "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err == f"afm train: error: cannot write {tmp_path / 'runs' / 'r'}: No space left on device\n"
    assert list((tmp_path / "runs").iterdir()) == []


def test_cli_predict_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, out = tmp_path / "m.pt", tmp_path / "p.csv"
    assert main(["train", "--epochs", "1", "-k", "4", "-t", "2", "--out", str(ckpt), "--no-run", "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(os, "replace", full_disk_replace)
    assert main(["predict", "--checkpoint", str(ckpt), "--data", "sample", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"afm predict: error: cannot write {out}: No space left on device\n"
    assert not out.exists() and leftovers(tmp_path) == []


def test_dashboard_save_on_a_full_disk_is_a_plain_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception
    monkeypatch.setattr(torch, "save", full_disk_torch_save)
    at.button(key="dm-save").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert errors[0].startswith("Could not save the run: cannot write ") and errors[0].endswith(
        ": No space left on device"
    )
    assert list((tmp_path / "runs").iterdir()) == []


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_temporaries_are_cleaned_and_nothing_else(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    save_run({"afm": (tiny(0), None)}, name="good", root=runs)
    old_incomplete = runs / ".incomplete-abc_1234"
    (old_incomplete / "sub").mkdir(parents=True)
    (old_incomplete / "sub" / ".afm.pt.k2j4h5g6.tmp").write_bytes(b"partial")
    for p in (old_incomplete / "sub" / ".afm.pt.k2j4h5g6.tmp", old_incomplete / "sub", old_incomplete):
        age(p, 7200)
    young_incomplete = runs / ".incomplete-young123"  # a save running right now
    young_incomplete.mkdir()
    half_young = runs / ".incomplete-halfyng1"  # old folder, but a file written a minute ago
    half_young.mkdir()
    (half_young / "afm.pt").write_bytes(b"x")
    age(half_young, 7200)
    age(half_young / "afm.pt", 60)
    not_ours = [runs / ".incomplete-toolongname", runs / "incomplete-abcdefgh", runs / ".keep"]
    for p in not_ours:
        p.mkdir()
        age(p, 7200)
    stale_tmp, young_tmp = runs / "good" / ".afm.pt.a1b2c3d4.tmp", runs / "good" / ".fm.pt.zzzzzzzz.tmp"
    odd = [runs / "good" / "notes.tmp", runs / "good" / ".afm.pt.short.tmp", runs / ".x.tmp"]
    for p in (stale_tmp, young_tmp, *odd):
        p.write_bytes(b"x")
    for p in (stale_tmp, *odd):
        age(p, 7200)

    frame = list_runs(runs)
    assert list(frame["name"]) == ["good"]
    left = {p.relative_to(runs).as_posix() for p in runs.rglob("*")}
    assert ".incomplete-abc_1234" not in left and "good/.afm.pt.a1b2c3d4.tmp" not in left
    for p in (young_incomplete, half_young, young_tmp, *not_ours, *odd):
        assert p.exists(), p
    assert clean_stale(runs) == 0  # nothing more to do

    age(young_tmp, 7200)
    save_run({"afm": (tiny(1), None)}, name="second", root=runs)  # saving cleans too
    assert not young_tmp.exists() and (runs / "second" / "afm.pt").is_file()


def test_atomic_write_cleans_its_own_stale_siblings(tmp_path: Path) -> None:
    target = tmp_path / "m.pt"
    stale, young = tmp_path / ".m.pt.abcdefgh.tmp", tmp_path / ".m.pt.ijklmnop.tmp"
    other = tmp_path / ".other.pt.abcdefgh.tmp"  # another file's temporary: left for its own next save
    for p in (stale, young, other):
        p.write_bytes(b"partial")
    for p in (stale, other):
        age(p, 7200)
    save_model(tiny(0), target)
    assert not stale.exists() and young.exists() and other.exists() and target.is_file()
    assert remove_stale_temps(tmp_path) == 1 and not other.exists() and young.exists()
