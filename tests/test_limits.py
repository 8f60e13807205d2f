"""Tables are read within a budget of rows x columns (AFM_MAX_CELLS), checked before the data is read."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import afm


def parquet_bytes(rows: int) -> bytes:
    table = pa.table({"a": pa.array(np.zeros(rows, dtype=np.int64)), "y": pa.array(np.ones(rows))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def test_a_parquet_over_the_budget_is_refused_from_its_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_CELLS", "1000")
    raw = parquet_bytes(600)  # 1,200 cells
    read = []
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: read.append(1))  # must not be reached
    with pytest.raises(ValueError, match=r"bomb.parquet: 600 rows x 2 columns is over .* budget of 1,000 cells"):
        afm.read_table(io.BytesIO(raw), name="bomb.parquet")
    assert not read


def test_a_parquet_within_the_budget_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_CELLS", "1000")
    frame = afm.read_table(io.BytesIO(parquet_bytes(500)), name="ok.parquet")
    assert frame.shape == (500, 2) and frame["y"].sum() == 500


def test_a_csv_is_read_up_to_the_budget(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("AFM_MAX_CELLS", "100")
    assert len(afm.read_table(io.BytesIO(b"a,b\n" + b"1,2\n" * 50), name="ok.csv")) == 50
    with pytest.raises(ValueError, match=r"big.csv: more than 50 rows x 2 columns"):
        afm.read_table(io.BytesIO(b"a,b\n" + b"1,2\n" * 51), name="big.csv")
    path = tmp_path / "big.csv"
    path.write_text("a,b,y\n" + "x,1,0\n" * 40)
    with pytest.raises(ValueError, match="AFM_MAX_CELLS"):
        afm.load_table(path, "y")


def test_server_paths_stay_under_the_data_roots(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import os

    root, outside = tmp_path / "data", tmp_path / "secret"
    root.mkdir(), outside.mkdir()
    (root / "a.libfm").write_text("1 0:1 3:1\n")
    (outside / "b.libfm").write_text("1 0:1 3:1\n")
    (root / "link.libfm").symlink_to(outside / "b.libfm")  # a link out of the root is outside too
    os.mkfifo(root / "pipe.libfm")
    assert afm.datasets.allowed_path(str(root / "a.libfm"), [root]) == (root / "a.libfm").resolve()
    assert afm.datasets.allowed_path(str(root), [root]) == root.resolve()
    messages = set()
    for text in (outside / "b.libfm", outside / "missing.libfm", root / "link.libfm", root / "pipe.libfm",
                 root / "missing.libfm", "/etc/passwd", "x" * 5000, root / ".." / "secret" / "b.libfm"):  # fmt: skip
        with pytest.raises(ValueError) as info:
            afm.datasets.allowed_path(str(text), [root])
        messages.add(str(info.value))
    assert len(messages) == 1 and "not an allowed data path" in messages.pop()  # nothing about existence
    with pytest.raises(ValueError, match="over 1e-06 MB"):
        afm.datasets.allowed_path(str(root / "a.libfm"), [root], max_mb=1e-6)
    monkeypatch.setenv("AFM_DATA_ROOTS", str(root))
    assert afm.datasets.data_roots() == [root.resolve()]
