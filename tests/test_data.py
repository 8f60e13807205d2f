"""Readers, the bundled sample, splits and schemas; bad input gives a located ValueError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

import afm
from afm.data import MISSING, OOV

ROOT = Path(__file__).resolve().parent.parent
FRAPPE = ROOT.parent / "shared" / "data" / "frappe"
needs_frappe = pytest.mark.skipif(not FRAPPE.is_dir(), reason="../shared/data/frappe is absent")


def write(tmp_path: Path, text: str, name: str = "d.libfm") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- libFM


def test_libfm_positional_fields_values_and_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "1 3:1 10:0.5 20:2\n-1 4:1 11:1.5 21:-1\n\n0.5 3:1 12:1 22:1\n")
    ds = afm.load_libfm(path, fields=["user", "item", "tag"])
    assert ds.idx.tolist() == [[3, 10, 20], [4, 11, 21], [3, 12, 22]]
    assert ds.val.tolist() == [[1, 0.5, 2], [1, 1.5, -1], [1, 1, 1]]
    assert ds.y.tolist() == [1, -1, 0.5]  # labels as in the file
    assert ds.idx.dtype == torch.int64 and ds.val.dtype == torch.float32
    assert ds.field_names == ["user", "item", "tag"] and ds.n_fields == 3 and ds.n_features == 23
    assert ds.schema.feature_label(11) == "item=#11"


def test_libfm_id_ranges_sort_tokens_into_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "1 12:1 3:1\n-1 4:1 10:1\n")
    ds = afm.load_libfm(path, fields={"user": (0, 9), "item": (10, 19)})
    assert ds.idx.tolist() == [[3, 12], [4, 10]] and ds.n_features == 20
    bad = write(tmp_path, "1 12:1 13:1\n", "bad.libfm")
    with pytest.raises(ValueError, match=r"bad.libfm, line 1: expected exactly one feature in each"):
        afm.load_libfm(bad, fields={"user": (0, 9), "item": (10, 19)})


def test_libfm_odd_whitespace_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "1\t3:1  10:1\r\n-1 4:1 11:1\r\n")
    assert afm.load_libfm(path).idx.tolist() == [[3, 10], [4, 11]]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("1 3:1 4:1\nyes 3:1 4:1\n", r"line 2: label 'yes' is not a number"),
        ("1 3:1 4:1\n1 3:1 4\n", r"line 2, token 3: '4' is not 'id:value'"),
        ("1 3:1 -4:1\n", r"line 1, token 3: feature id '-4' is not a non-negative integer"),
        ("1 3:1 4.5:1\n", r"line 1, token 3: feature id '4.5' is not a non-negative integer"),
        ("1 3:1 4:1\n1 3:1\n", r"line 2: 1 features, expected 2 \(as on line 1\)"),
        ("1 3:1 4:nan\n", r"line 1, token 3: value 'nan' is not finite"),
        ("inf 3:1 4:1\n", r"line 1: label 'inf' is not finite"),
        ("1 3:1 4:x\n", r"line 1, token 3: value 'x' is not a number"),
        ("1 3:1:1 4:1\n", r"line 1, token 2: '3:1:1' is not 'id:value'"),
        ("1\n", "a label with no features"),
    ],
)
def test_libfm_bad_input_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text, "broken.libfm")
    with pytest.raises(ValueError, match=message) as info:
        afm.load_libfm(path)
    assert "broken.libfm" in str(info.value)


def test_libfm_binary_garbage_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.libfm"
    path.write_bytes(b"\xff\xfe\x00 1 2:1")
    with pytest.raises(ValueError, match="x.libfm: not UTF-8"):
        afm.load_libfm(path)
    with pytest.raises(ValueError, match="cannot read file"):
        afm.load_libfm(tmp_path / "absent.libfm")


LIBFM_LINE = st.builds(
    lambda label, feats: " ".join([label] + [f"{i}:{v}" for i, v in feats]),
    st.sampled_from(["1", "-1", "0.5", "x", "nan", "", "1e400"]),
    st.lists(st.tuples(st.integers(-3, 50), st.sampled_from(["1", "0.5", "-2", "inf", "a", ""])), max_size=4),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_libfm_random_bytes_give_only_value_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.libfm"
    path.write_bytes(raw)
    try:
        ds = afm.load_libfm(path)
    except ValueError as err:
        assert "fuzz.libfm" in str(err)
    else:
        assert len(ds) > 0 and torch.isfinite(ds.val).all() and (ds.idx >= 0).all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LIBFM_LINE, min_size=1, max_size=6))
def test_libfm_mutated_lines_give_only_value_error(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "mut.libfm"
    path.write_text("\n".join(lines) + "\n")
    try:
        ds = afm.load_libfm(path)
    except ValueError as err:
        assert "mut.libfm" in str(err)
    else:
        assert torch.isfinite(ds.y).all() and torch.isfinite(ds.val).all() and (ds.idx >= 0).all()


# ---------------------------------------------------------------------------- tables


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "weather": ["rain", "sun", "rain", None, "sun", "snow"],
            "app": ["a", "b", "a", "b", "c", "a"],
            "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 3.0],
            "y": [0.5, 1.5, -0.5, 2.0, 1.0, 0.0],
        }
    )


def test_table_fields_vocabulary_oov_missing_and_standardising(frame: pd.DataFrame) -> None:
    ds = afm.load_table(frame, label="y", categorical=["weather", "app"], numeric=["rating"], min_count=2)
    weather, app, rating = ds.schema.fields
    assert weather.values == ["rain", "sun", OOV, MISSING]  # snow is rarer than min_count
    assert app.values == ["a", "b", OOV, MISSING] and app.offset == 4
    labels = [ds.schema.feature_label(int(i)) for i in ds.idx[:, 0]]
    assert labels == [
        "weather=rain",
        "weather=sun",
        "weather=rain",
        f"weather={MISSING}",
        "weather=sun",
        f"weather={OOV}",
    ]
    assert ds.schema.feature_label(int(ds.idx[4, 1])) == f"app={OOV}"
    x = np.array([1.0, 2, 3, 4, 5, 3])
    np.testing.assert_allclose(ds.val[:, 2].numpy(), (x - x.mean()) / x.std(), rtol=1e-6)
    assert (ds.val[:, :2] == 1).all()
    assert ds.y.tolist() == [0.5, 1.5, -0.5, 2.0, 1.0, 0.0]


def test_schema_round_trips_and_encodes_new_rows(frame: pd.DataFrame) -> None:
    ds = afm.load_table(frame, label="y")  # inferred: text columns categorical, numbers numeric
    assert [f.kind for f in ds.schema.fields] == ["categorical", "categorical", "numeric"]
    plain = json.loads(json.dumps(ds.schema.to_dict()))
    schema = afm.Schema.from_dict(plain)
    assert schema == ds.schema
    new = pd.DataFrame({"weather": ["hail", "rain"], "app": ["zzz", "c"], "rating": [3.0, 10.0]})
    idx, val = schema.encode(new)
    assert [schema.feature_label(int(i)) for i in idx[:, 0]] == [f"weather={OOV}", "weather=rain"]
    assert schema.feature_label(int(idx[0, 1])) == f"app={OOV}"
    named = schema.encode(pd.DataFrame({"weather": [MISSING, OOV], "app": ["a", "a"], "rating": [1.0, 1.0]}))[0]
    assert [schema.feature_label(int(i)) for i in named[:, 0]] == [f"weather={MISSING}", f"weather={OOV}"]
    again = afm.load_table(frame, label="y", schema=schema)
    assert torch.equal(again.idx, ds.idx) and torch.equal(again.val, ds.val)


def test_csv_and_parquet_files(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    a = afm.load_table(tmp_path / "t.csv", label="y", categorical=["weather", "app"], numeric=["rating"])
    b = afm.load_table(tmp_path / "t.parquet", label="y", categorical=["weather", "app"], numeric=["rating"])
    assert torch.equal(a.idx, b.idx) and torch.allclose(a.val, b.val) and torch.equal(a.y, b.y)


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        (lambda f: f.drop(columns="y"), {}, r"no label column 'y'"),
        (
            lambda f: f.assign(y=["a", 1, 2, 3, 4, 5]),
            {},
            r"column 'y', row 0 \(CSV line 2\): 'a' is not a finite \(float32\) number",
        ),
        (lambda f: f.assign(rating=[1, 2, np.nan, 4, 5, 6]), {}, r"column 'rating', row 2 \(CSV line 4\)"),
        (lambda f: f.assign(rating=[1, 2, 3, np.inf, 5, 6]), {}, r"column 'rating', row 3"),
        (lambda f: f.iloc[:0], {}, "empty table"),
        (lambda f: f, {"categorical": ["nope"]}, r"no column 'nope'"),
        (lambda f: f, {"categorical": ["y"]}, "used twice or as both label and feature"),
        (lambda f: f[["y"]], {}, "no feature columns"),
    ],
)
def test_table_bad_input_names_column_and_row(frame: pd.DataFrame, change, kwargs: dict, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=message):
        afm.load_table(change(frame), label="y", **kwargs)


def test_bad_table_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv: cannot read as CSV"):
        afm.load_table(tmp_path / "empty.csv", label="y")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match="junk.parquet: cannot read as Parquet"):
        afm.load_table(tmp_path / "junk.parquet", label="y")
    with pytest.raises(ValueError, match="no such file"):
        afm.load_table(tmp_path / "absent.csv", label="y")


@settings(max_examples=100, deadline=None)
@given(
    df=data_frames(
        [
            column("a", elements=st.one_of(st.none(), st.text(max_size=3))),
            column("b", elements=st.floats(allow_nan=True, allow_infinity=True)),
            column("y", elements=st.one_of(st.floats(), st.text(max_size=2), st.none())),
        ],
        index=range_indexes(max_size=8),
    )
)
def test_table_random_frames_give_only_value_error(df: pd.DataFrame) -> None:
    try:
        ds = afm.load_table(df, label="y")
    except ValueError:
        return
    assert len(ds) == len(df) and torch.isfinite(ds.val).all() and torch.isfinite(ds.y).all()


# ---------------------------------------------------------------------------- split and sample


def test_split_is_deterministic_and_partitions() -> None:
    ds = afm.datasets.sample()
    a = afm.split(ds, [0.8, 0.1, 0.1], seed=3)
    b = afm.split(ds, [0.8, 0.1, 0.1], seed=3)
    c = afm.split(ds, [0.8, 0.1, 0.1], seed=4)
    assert [len(p) for p in a] == [24000, 3000, 3000]
    assert all(torch.equal(x.idx, y.idx) and torch.equal(x.y, y.y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1].idx, c[1].idx)
    rows = torch.cat([p.idx for p in a])
    assert torch.equal(rows.unique(dim=0), ds.idx.unique(dim=0))
    with pytest.raises(ValueError, match="fractions"):
        afm.split(ds, [0.8, 0.5])


def test_sample_matches_its_data_card() -> None:
    reg, binary = afm.datasets.sample("regression"), afm.datasets.sample("binary")
    assert 20_000 <= len(reg) <= 50_000 and reg.n_fields == 9
    kinds = [f.kind for f in reg.schema.fields]
    assert kinds.count("numeric") == 1 and 6 <= kinds.count("categorical") <= 10
    assert set(binary.y.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(reg.idx, binary.idx)
    truth = afm.datasets.sample_truth()
    strengths = [p["strength"] for p in truth]
    assert strengths == sorted(strengths, reverse=True) and len(set(strengths)) == len(strengths)
    assert all(set(p["fields"]) <= set(reg.field_names) for p in truth)
    assert "weather=rain" in reg.schema.feature_labels()
    with pytest.raises(ValueError, match="label must be one of"):
        afm.datasets.sample("ranking")


def test_sample_generator_rebuilds_the_committed_files() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "sample_data" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------- Frappe


@needs_frappe
def test_frappe_parts_and_fields() -> None:
    parts = afm.datasets.frappe(FRAPPE)
    assert set(parts) == {"validation", "test"}  # the training part is not in ../shared
    val, test = parts["validation"], parts["test"]
    assert (len(val), len(test)) == (57_722, 28_860)
    assert int((val.y > 0).sum()) == 19_063 and int((test.y > 0).sum()) == 9_536
    assert set(val.y.unique().tolist()) == {-1.0, 1.0}
    assert val.field_names[:3] == ["user", "item", "daytime"] and val.n_features == 5_382
    for j, spec in enumerate(val.schema.fields):
        assert ((val.idx[:, j] >= spec.offset) & (val.idx[:, j] < spec.offset + spec.size)).all()
    assert val.schema.feature_label(5062) == "weather=#5062"


def test_frappe_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none of"):
        afm.datasets.frappe(tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        afm.datasets.movielens_tag(tmp_path / "absent")


def test_movielens_tag_parts_share_one_schema(tmp_path: Path) -> None:
    (tmp_path / "ml-tag.train.libfm").write_text("1 0:1 10:1 20:1\n-1 1:1 11:1 25:1\n")
    (tmp_path / "ml-tag.test.libfm").write_text("1 2:1 12:1 21:1\n")
    parts = afm.datasets.movielens_tag(tmp_path)
    assert parts["train"].schema is parts["test"].schema
    assert [(f.name, f.offset, f.size) for f in parts["test"].schema.fields] == [
        ("user", 0, 3),
        ("item", 10, 3),
        ("tag", 20, 6),
    ]


def test_download_without_network_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(ConnectionError, match="cannot download frappe .*no network") as info:
        afm.datasets.download("frappe", tmp_path)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_one_hot_says_whether_every_value_is_one() -> None:
    data = afm.datasets.sample("regression")
    assert not data.one_hot()  # the sample has a numeric field
    ids = data.subset(range(5))
    assert afm.Dataset(ids.idx, torch.ones_like(ids.val), ids.y, ids.schema).one_hot()
    zero = ids.val.clone()
    zero[2, 1] = 0.0
    assert not afm.Dataset(ids.idx, zero, ids.y, ids.schema).one_hot()
    assert data.subset([]).one_hot()  # nothing to scale
