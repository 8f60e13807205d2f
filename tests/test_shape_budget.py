"""Shape budgets (issue 27, item 1): a table's decoded bytes, columns, header, lines, cells and column names are
bounded before its data is read, from a Parquet file's footer and page headers and from one scan of a CSV's bytes;
each refusal is one line naming the file, the figure and the setting that raises it."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import afm
from afm import data as afm_data

MB = 1 << 20


def parquet_bytes(table: pa.Table, **options: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **{"compression": "zstd", **options})
    return buffer.getvalue()


def huge_string_table(value_mb: int = 8, rows: int = 8, entries: tuple[str, ...] = ()) -> pa.Table:
    """``rows`` rows whose text column is one ``value_mb`` MB string (held once, as a dictionary entry)."""
    value = "x" * (value_mb * MB)
    dictionary = pa.array([value, *entries])
    text = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), dictionary)
    return pa.table({"s": text, "y": pa.array(np.arange(rows))})


@pytest.fixture
def no_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way to read a Parquet file's or a CSV's data raises: a refusal must come before any of them."""
    calls: list[str] = []

    def forbidden(what: str):  # noqa: ANN202
        def call(*args: object, **kwargs: object) -> None:
            calls.append(what)
            raise AssertionError(f"{what} was called: data read before the shape check refused")

        return call

    monkeypatch.setattr(pq, "read_table", forbidden("pyarrow.parquet.read_table"))
    for method in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, method, forbidden(f"ParquetFile.{method}"))
    monkeypatch.setattr(pd, "read_parquet", forbidden("pandas.read_parquet"))
    monkeypatch.setattr(pd, "read_csv", forbidden("pandas.read_csv"))
    return calls


def refused(source: object, name: str | None = None) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(afm_data.ShapeError) as info:
        afm.read_table(source, name=name)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and message.count("(AFM_") == 1
    return message, time.perf_counter() - started


# ---------------------------------------------------------------------------- Parquet: decoded bytes


@pytest.mark.parametrize(
    "options",
    [{}, {"use_dictionary": False}, {"data_page_version": "2.0"}, {"compression": "snappy"}],
    ids=["dictionary", "plain", "page-v2", "snappy"],
)
def test_a_parquet_of_few_rows_and_one_huge_string_is_refused_from_its_headers(
    monkeypatch: pytest.MonkeyPatch, no_reads: list[str], options: dict
) -> None:
    """8 rows x one 8 MB string: KB on disk, 64 MB once decoded (the issue's file is 8 x 256 MB)."""
    table = huge_string_table()
    if options.get("use_dictionary") is False:
        table = table.set_column(0, "s", table["s"].cast(pa.string()))
    raw = parquet_bytes(table, **options)
    assert len(raw) < 600 * 1024
    monkeypatch.setenv("AFM_MAX_DECODED_MB", "16")
    message, seconds = refused(io.BytesIO(raw), "huge.parquet")
    assert message == (
        "huge.parquet: 8 rows x 2 columns need at least 64 MB once decoded; at most 16 MB here (AFM_MAX_DECODED_MB)"
    )
    assert seconds < 1 and not no_reads
    monkeypatch.delenv("AFM_MAX_DECODED_MB")  # within 512 MB: the cell budget refuses it, still before any read
    message, _ = refused(io.BytesIO(raw), "huge.parquet")
    assert message == "huge.parquet: a value in column 's' is 8,192 KB or more; at most 64 KB here (AFM_MAX_CELL_KB)"


def test_a_prefix_compressed_text_bomb_is_refused_on_its_bound(monkeypatch: pytest.MonkeyPatch, no_reads: list) -> None:
    """DELTA_BYTE_ARRAY stores each repeat as 'same as before': the headers bound it, no more."""
    table = pa.table({"s": ["x" * (8 * MB)] * 8, "y": list(range(8))})
    raw = parquet_bytes(table, use_dictionary=False, column_encoding={"s": "DELTA_BYTE_ARRAY"})
    monkeypatch.setenv("AFM_MAX_DECODED_MB", "16")
    message, _ = refused(io.BytesIO(raw), "delta.parquet")
    assert "need up to 64 MB (at least 8,192 KB) once decoded; at most 16 MB here (AFM_MAX_DECODED_MB)" in message
    assert not no_reads


def test_a_long_entry_among_many_is_counted_from_the_dictionary_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where page headers cannot bound a dictionary's expansion (several entries), the column is read once with its
    dictionary kept (never expanded) and counted exactly."""
    raw = parquet_bytes(huge_string_table(entries=tuple(f"v{i}" for i in range(200))))  # the mean entry: 41 KB
    monkeypatch.setenv("AFM_MAX_DECODED_MB", "16")
    monkeypatch.setenv("AFM_MAX_CELL_KB", str(16 * 1024))
    expanded = []
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: expanded.append(1))
    message, _ = refused(io.BytesIO(raw), "dict.parquet")
    assert (
        message == "dict.parquet: 8 rows x 2 columns need 64 MB once decoded; at most 16 MB here (AFM_MAX_DECODED_MB)"
    )
    monkeypatch.delenv("AFM_MAX_CELL_KB")
    message, _ = refused(io.BytesIO(raw), "dict.parquet")
    assert message == "dict.parquet: a value in column 's' is 8,192 KB; at most 64 KB here (AFM_MAX_CELL_KB)"
    assert not expanded
    few = parquet_bytes(huge_string_table(entries=("a", "b")))  # the mean entry is over the budget: certain
    message, _ = refused(io.BytesIO(few), "dict.parquet")
    assert message == "dict.parquet: a value in column 's' is 2,731 KB or more; at most 64 KB here (AFM_MAX_CELL_KB)"


def test_a_large_vocabulary_is_counted_exactly_and_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """100,000 rows of a 10,000-value category: the headers' bound (every row the longest value) is far over a
    tight budget, the exact count (the dictionaries read, not expanded) is within it, and the table reads."""
    rng = np.random.default_rng(0)
    values = np.array([f"value-{i:05d}-{'z' * int(rng.integers(0, 40))}" for i in range(10_000)], dtype=object)
    frame = pd.DataFrame({"c": values[rng.integers(0, 10_000, 100_000)], "y": rng.normal(size=100_000)})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, row_group_size=30_000)  # 4 row groups, a dictionary each
    raw = buffer.getvalue()
    counted = []
    original = afm_data._dictionary_bytes
    monkeypatch.setattr(afm_data, "_dictionary_bytes", lambda *a: counted.append(1) or original(*a))
    monkeypatch.setenv("AFM_MAX_DECODED_MB", "6")
    read = afm.read_table(io.BytesIO(raw), name="vocab.parquet")
    assert counted and read.equals(pd.read_parquet(io.BytesIO(raw)))
    monkeypatch.setenv("AFM_MAX_DECODED_MB", "3")  # 100,000 x (8 + 8) + ~2.3 MB of text: over 3 MB
    message, _ = refused(io.BytesIO(raw), "vocab.parquet")
    assert message.startswith("vocab.parquet: 100,000 rows x 2 columns need ") and "at most 3 MB" in message


def test_a_compressed_number_bomb_is_counted_from_its_row_count(
    monkeypatch: pytest.MonkeyPatch, no_reads: list
) -> None:
    table = pa.table({"a": pa.array(np.zeros(3_000_000, dtype=np.int64))})  # run-length encoded: a few KB
    raw = parquet_bytes(table)
    monkeypatch.setenv("AFM_MAX_DECODED_MB", "16")
    message, _ = refused(io.BytesIO(raw), "zeros.parquet")
    assert message.startswith("zeros.parquet: 3,000,000 rows x 1 column need at least 23 MB once decoded")
    assert not no_reads


# ---------------------------------------------------------------------------- columns, names, headers


def test_wide_tables_are_refused_before_any_parse(monkeypatch: pytest.MonkeyPatch, no_reads: list[str]) -> None:
    header = ",".join(f"c{j}" for j in range(100_000)).encode()
    message, seconds = refused(io.BytesIO(header + b"\n" + b",".join([b"1"] * 100_000) + b"\n"), "apps.csv")
    assert message == "apps.csv: 100,000 columns; at most 2,000 here (AFM_MAX_COLUMNS)" and seconds < 1
    column = pa.array(np.zeros(10, dtype=np.int64))
    raw = parquet_bytes(pa.table({f"c{j}": column for j in range(10_000)}))
    parsed = []
    monkeypatch.setattr(pq, "ParquetFile", lambda *a, **k: parsed.append(1))  # not even its footer is parsed
    message, seconds = refused(io.BytesIO(raw), "apps.parquet")
    assert message == "apps.parquet: 10,000 columns; at most 2,000 here (AFM_MAX_COLUMNS)" and seconds < 1
    assert not parsed and not no_reads
    monkeypatch.setenv("AFM_MAX_COLUMNS", "20000")
    monkeypatch.setenv("AFM_MAX_HEADER_KB", "64")  # the footer of 10,000 columns is about 2 MB
    message, _ = refused(io.BytesIO(raw), "apps.parquet")
    assert (
        message.startswith("apps.parquet: its metadata (the Parquet footer) is ") and "(AFM_MAX_HEADER_KB)" in message
    )
    assert not parsed


def test_a_one_line_header_of_commas_is_refused_by_its_length(no_reads: list[str], tmp_path: Path) -> None:
    raw = b"," * (46 * MB) + b"\n1\n"
    message, seconds = refused(io.BytesIO(raw), "commas.csv")
    assert message == "commas.csv: its header line is 46 MB; at most 4,096 KB here (AFM_MAX_HEADER_KB)"
    assert seconds < 2
    path = tmp_path / "commas.csv"  # from a path: read a piece at a time, at most the budget and a piece
    path.write_bytes(raw)
    message, _ = refused(path)
    assert message == "commas.csv: its header line is more than 4,096 KB; at most 4,096 KB here (AFM_MAX_HEADER_KB)"
    assert str(tmp_path) not in message and not no_reads  # the file's name, never the server's path


def test_long_column_names_are_refused_never_shown(monkeypatch: pytest.MonkeyPatch, no_reads: list[str]) -> None:
    name = "n" * 300
    message, _ = refused(io.BytesIO(f"a,{name}\n1,2\n".encode()), "names.csv")
    assert (
        message
        == "names.csv: the name of column 2 is 300 characters long; at most 200 characters here (AFM_MAX_NAME_CHARS)"
    )
    raw = parquet_bytes(pa.table({"a": [1, 2], "é" * (1 << 19): [3, 4]}))  # 512k characters, 1 MB of UTF-8
    message, _ = refused(io.BytesIO(raw), "names.parquet")
    assert message == (
        "names.parquet: the name of column 2 is 524,288 characters long; at most 200 characters here "
        "(AFM_MAX_NAME_CHARS)"
    )
    assert "nnn" not in message and "ééé" not in message and not no_reads
    big = f"{'m' * (45 * MB)},y\n1,2\n".encode()  # the 45 MB name: over the header first
    message, _ = refused(io.BytesIO(big), "name.csv")
    assert message == "name.csv: its header line is 45 MB; at most 4,096 KB here (AFM_MAX_HEADER_KB)"


def test_names_within_the_bound_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert afm.read_table(io.BytesIO(f"a,{'n' * 200}\n1,2\n".encode()), name="ok.csv").shape == (1, 2)
    name = "n" * 300
    monkeypatch.setenv("AFM_MAX_NAME_CHARS", "400")  # the setting raises the bound
    assert afm.read_table(io.BytesIO(f"a,{name}\n1,2\n".encode()), name="ok.csv").columns[1] == name


# ---------------------------------------------------------------------------- CSV lines and cells


def test_a_long_line_and_a_long_cell_are_refused_with_their_line(
    monkeypatch: pytest.MonkeyPatch, no_reads: list[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("AFM_MAX_LINE_KB", "1")
    message, _ = refused(io.BytesIO(b"a,b\n1,2\n3," + b"4" * 2000 + b"\n"), "line.csv")
    assert message == "line.csv: line 3 is 2,002 bytes; at most 1 KB here (AFM_MAX_LINE_KB)"
    monkeypatch.delenv("AFM_MAX_LINE_KB")
    quoted = b'a,b\n1,2\n3,"' + b"text, with commas\n" * 6000 + b'"\n'  # 102 KB in quotes, over many lines
    message, _ = refused(io.BytesIO(quoted), "cell.csv")
    assert message == "cell.csv: a cell on line 3 is 105 KB; at most 64 KB here (AFM_MAX_CELL_KB)"
    endless = b"a,b\n1," + b"x" * (3 * MB)  # still growing at the end of a piece: refused from the first pieces
    path = tmp_path / "endless.csv"
    path.write_bytes(endless)
    message, _ = refused(path)
    assert message.startswith("endless.csv: a cell on line 2 is more than ") and "(AFM_MAX_CELL_KB)" in message
    fields = b"a,b\n" + b",".join([b"1"] * 3000) + b"\n"
    message, _ = refused(io.BytesIO(fields), "fields.csv")
    assert message == "fields.csv: line 2 has 3,000 fields; at most 2,000 here (AFM_MAX_COLUMNS)"
    assert not no_reads


def test_a_csv_over_the_decoded_budget_stops_the_scan(monkeypatch: pytest.MonkeyPatch, no_reads: list[str]) -> None:
    monkeypatch.setenv("AFM_MAX_DECODED_MB", "1")
    raw = b"a,b,c\n" + b"1,2.5,some text\n" * 200_000
    message, _ = refused(io.BytesIO(raw), "many.csv")
    assert message.startswith("many.csv: ") and message.endswith(
        "or more rows x 3 columns need more than 1 MB once decoded; at most 1 MB here (AFM_MAX_DECODED_MB)"
    )
    assert not no_reads


def test_quoted_commas_and_newlines_are_cells_not_columns() -> None:
    raw = b'name,"note, with comma",y\n"a ""quoted"" one","line one\nline two",1\nb,plain,0\n'
    frame = afm.read_table(io.BytesIO(raw), name="quoted.csv")
    assert frame.equals(pd.read_csv(io.BytesIO(raw))) and frame.shape == (2, 3)


# ---------------------------------------------------------------------------- ordinary files


def test_the_bundled_samples_still_load_as_csv_and_parquet(tmp_path: Path) -> None:
    for sample in ("sample.csv", "salient.csv"):
        path = afm.datasets.SAMPLE_DIR / sample
        frame = pd.read_csv(path)
        assert afm.read_table(path).equals(frame)
        assert afm.read_table(io.BytesIO(path.read_bytes()), name=sample).equals(frame)
        frame.to_parquet(tmp_path / "s.parquet")
        assert afm.read_table(tmp_path / "s.parquet").equals(frame)
        assert afm.read_table(io.BytesIO((tmp_path / "s.parquet").read_bytes()), name="s.parquet").equals(frame)
    data = afm.load_table(tmp_path / "s.parquet", label=frame.columns[-1])
    assert len(data) == len(frame)


def test_a_setting_that_does_not_parse_says_so() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFM_MAX_COLUMNS", "many")
        with pytest.raises(ValueError, match=r"AFM_MAX_COLUMNS='many' is not an integer"):
            afm.read_table(io.BytesIO(b"a,b\n1,2\n"), name="x.csv")


# ---------------------------------------------------------------------------- hostile bytes


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_parquet_files_give_only_value_errors(data: st.DataObject) -> None:
    frame = pd.DataFrame({"c": ["a", "bb", None, "a"] * 5, "n": np.arange(20.0), "y": [0, 1] * 10})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, row_group_size=7)
    raw = bytearray(buffer.getvalue())
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        afm.read_table(io.BytesIO(bytes(raw)), name="damaged.parquet")
    except ValueError:
        pass


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=400) | st.text(alphabet=',"\n\r ab1é', max_size=400).map(str.encode))
def test_random_csv_bytes_give_only_value_errors(raw: bytes) -> None:
    try:
        afm.read_table(io.BytesIO(raw), name="random.csv")
    except ValueError:
        pass


# ---------------------------------------------------------------------------- memory


MEASURE = textwrap.dedent(
    """
    import io, sys, time
    import afm.data, pandas, pyarrow.parquet  # afm.data brings torch: all imported before the measure

    def peak_mb():  # this process's own peak resident set (ru_maxrss would carry the parent's over exec)
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024

    raw = open(sys.argv[1], "rb").read()
    before = peak_mb()
    started = time.perf_counter()
    try:
        afm.read_table(io.BytesIO(raw), name="bomb.parquet")
    except ValueError as err:
        print(err)
    seconds = time.perf_counter() - started
    print(f"{len(raw)} {before:.1f} {peak_mb():.1f} {seconds:.3f}")
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the peak resident set from /proc")
def test_the_256_mb_string_parquet_is_refused_in_little_memory(tmp_path: Path) -> None:
    """The issue's file (8 rows x one 256 MB string: 2 GB decoded) is refused by a fresh process whose peak
    resident memory stays at what importing afm, pandas and pyarrow takes (printed with -s)."""
    path = tmp_path / "bomb.parquet"
    write = (
        "import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq\n"
        "d = pa.DictionaryArray.from_arrays(pa.array(np.zeros(8, dtype=np.int32)), pa.array(['x' * (256 << 20)]))\n"
        "pq.write_table(pa.table({'s': d, 'y': pa.array(np.arange(8))}), sys.argv[1], compression='zstd')\n"
    )
    subprocess.run([sys.executable, "-c", write, str(path)], check=True)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], check=True, capture_output=True, text=True)
    message, figures = out.stdout.strip().splitlines()
    size, before, after, seconds = figures.split()
    print(f"\n{message}\nfile {int(size):,} bytes; peak RSS {before} MB after imports, {after} MB after; {seconds} s")
    assert message == (
        "bomb.parquet: 8 rows x 2 columns need at least 2,048 MB once decoded; at most 512 MB here (AFM_MAX_DECODED_MB)"
    )
    assert int(size) < 64 * 1024 and float(after) - float(before) < 16 and float(seconds) < 1


# ---------------------------------------------------------------------------- the dashboard


@pytest.mark.slow
def test_a_wide_upload_is_a_plain_error_in_the_dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Data & model page shows the library's message as it is, and draws no column widget for the table."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    script = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
    app = AppTest.from_file(str(script), default_timeout=180).run()
    app.radio(key="data_source").set_value("upload a CSV/Parquet table").run()
    header = ",".join(f"c{j}" for j in range(100_000)).encode()
    app.file_uploader(key="data_upload").upload("apps.csv", header + b"\n" + b",".join([b"1"] * 100_000)).run()
    assert not app.exception
    errors = [e.value.replace("\\", "") for e in app.error]  # the page writes messages as literal text
    assert "apps.csv: 100,000 columns; at most 2,000 here (AFM_MAX_COLUMNS)" in errors, errors
    assert not [box for box in app.selectbox if box.label == "Label column"]
