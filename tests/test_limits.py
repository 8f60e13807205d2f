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
