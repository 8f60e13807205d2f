"""Datasets: libFM files and tables (CSV, Parquet, DataFrame) into one ``Dataset``.

A ``Dataset`` holds ``idx`` int64 [N, F] global feature ids (column j holds field j's feature),
``val`` float32 [N, F] feature values x_i, ``y`` float32 [N] labels as given, and a ``Schema``
that labels every feature id ("weather=rain"), serialises to plain types and encodes new rows.

Bad input raises ``ValueError`` naming the file, the line (libFM) or the row and column (tables),
and what was expected; nothing half-loaded is returned.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from . import settings

if TYPE_CHECKING:  # pandas loads when a table is read, not with the model and the trainer
    import pandas as pd

_ODD_WHITESPACE = re.compile(r"[^\S \n]| {2}")  # tabs, CR, unicode spaces, runs of spaces

_FLOAT32_MAX = float(np.finfo(np.float32).max)

OOV = "<oov>"
MISSING = "<missing>"


@dataclass
class FieldSpec:
    """One field: a block of ``size`` consecutive global feature ids starting at ``offset``.

    kind "categorical": one feature per value in ``values`` (the last two are OOV and missing);
    kind "numeric": one feature whose x_i is (value - mean) / std;
    kind "ids": libFM ids ``offset .. offset + size - 1`` whose meaning the file does not say.
    """

    name: str
    kind: str
    offset: int
    size: int
    values: list[str] = field(default_factory=list)
    mean: float = 0.0
    std: float = 1.0

    def label(self, feature_id: int) -> str:
        """'field=value' for a global feature id of this field."""
        local = feature_id - self.offset
        if not 0 <= local < self.size:
            raise ValueError(f"feature id {feature_id} is not in field {self.name!r}")
        if self.kind == "categorical":
            return f"{self.name}={self.values[local]}"
        if self.kind == "numeric":
            return self.name
        return f"{self.name}=#{feature_id}"


@dataclass
class Schema:
    """Field layout and feature labels; plain-type serialisable (checkpoints carry it)."""

    fields: list[FieldSpec]
    label: str | None = None

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def n_features(self) -> int:
        return max((f.offset + f.size for f in self.fields), default=0)

    def feature_label(self, feature_id: int) -> str:
        """'field=value' for a global feature id ("weather=rain", "app_rating", "user=#12")."""
        for spec in self.fields:
            if spec.offset <= feature_id < spec.offset + spec.size:
                return spec.label(feature_id)
        raise ValueError(f"feature id {feature_id} is outside the schema (0..{self.n_features - 1})")

    def feature_labels(self) -> list[str]:
        """Labels of all feature ids 0..n_features-1 (ids no field covers are labelled '#id')."""
        out = [f"#{i}" for i in range(self.n_features)]
        for spec in self.fields:
            for i in range(spec.offset, spec.offset + spec.size):
                out[i] = spec.label(i)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "fields": [vars(f).copy() for f in self.fields]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        try:
            return cls([FieldSpec(**f) for f in data["fields"]], data.get("label"))
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a valid schema: {err}") from None

    def encode(self, frame: pd.DataFrame, source: str = "frame") -> tuple[Tensor, Tensor]:
        """Encode table rows to ``(idx [N, F], val [N, F])``; unknown categories become OOV."""
        n = len(frame)
        idx = np.zeros((n, self.n_fields), dtype=np.int64)
        val = np.ones((n, self.n_fields), dtype=np.float32)
        for j, spec in enumerate(self.fields):
            if spec.name not in frame.columns:
                raise ValueError(f"{source}: column {spec.name!r} is missing (expected columns {self.field_names})")
            column = frame[spec.name]
            if spec.kind == "categorical":
                lookup = {v: i for i, v in enumerate(spec.values)}  # "<oov>"/"<missing>" name their own features
                missing = column.isna().to_numpy()
                local = column.astype(str).map(lookup).fillna(spec.size - 2).to_numpy(dtype=np.int64, copy=True)
                local[missing] = spec.size - 1
                idx[:, j] = spec.offset + local
            elif spec.kind == "numeric":
                x = _numeric_column(column, spec.name, source)
                idx[:, j] = spec.offset
                val[:, j] = (x - spec.mean) / spec.std
            else:
                raise ValueError(f"{source}: field {spec.name!r} holds libFM ids; encode libFM files with load_libfm")
        return torch.from_numpy(idx), torch.from_numpy(val)


@dataclass
class Dataset:
    """idx int64 [N, F], val float32 [N, F], y float32 [N] (labels as given), and the schema."""

    idx: Tensor
    val: Tensor
    y: Tensor
    schema: Schema
    name: str = ""

    def __post_init__(self) -> None:
        n, f = self.idx.shape
        if self.val.shape != (n, f) or self.y.shape != (n,) or f != self.schema.n_fields:
            raise ValueError(
                f"inconsistent dataset: idx {list(self.idx.shape)}, val {list(self.val.shape)}, "
                f"y {list(self.y.shape)}, schema with {self.schema.n_fields} fields"
            )

    def __len__(self) -> int:
        return self.idx.shape[0]

    @property
    def field_names(self) -> list[str]:
        return self.schema.field_names

    @property
    def n_fields(self) -> int:
        return self.schema.n_fields

    @property
    def n_features(self) -> int:
        return self.schema.n_features

    def one_hot(self) -> bool:
        """Whether every x_i is 1 (libFM files, categorical tables): models then skip scaling by x_i."""
        if self.val.numel() == 0:
            return True
        low, high = torch.aminmax(self.val)  # one pass, no [N, F] temporary
        return bool(low == 1) and bool(high == 1)

    def subset(self, rows: Tensor | Sequence[int], name: str | None = None) -> Dataset:
        rows = torch.as_tensor(rows, dtype=torch.long)
        return Dataset(self.idx[rows], self.val[rows], self.y[rows], self.schema, self.name if name is None else name)

    def check_fits(self, model: Any) -> None:
        """Raise ValueError unless ``model`` (an AFM or FM) can read this data: the same number of
        fields, and every feature id below the model's number of features."""
        c = model.config
        top = int(self.idx.max()) if len(self) else -1
        if self.n_fields != c.n_fields or top >= c.n_features:
            raise ValueError(
                f"{self.name or 'the data'} has {self.n_fields} fields and feature ids up to {top}, but the "
                f"{c.kind} model expects {c.n_fields} fields and ids below {c.n_features}: use the data it was "
                "trained on (or data encoded with its schema)"
            )

    def cardinalities(self) -> dict[str, int]:
        """Number of distinct features seen per field."""
        return {name: int(self.idx[:, j].unique().numel()) for j, name in enumerate(self.field_names)}

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, rows={len(self)}, fields={self.n_fields}, features={self.n_features})"


def split(dataset: Dataset, fractions: Sequence[float], seed: int = 0) -> list[Dataset]:
    """Shuffle with ``seed`` and cut into parts of the given fractions (deterministic).

    Fractions must be positive and sum to at most 1; the last part takes the rounding remainder
    when they sum to 1. Returns one ``Dataset`` per fraction.
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be positive and sum to at most 1, got {fractions}")
    n = len(dataset)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    sizes = [int(n * f) for f in fractions]
    if abs(sum(fractions) - 1) < 1e-9:
        sizes[-1] = n - sum(sizes[:-1])
    parts, start = [], 0
    for i, size in enumerate(sizes):
        parts.append(dataset.subset(order[start : start + size], f"{dataset.name}[part {i}]"))
        start += size
    return parts


# ---------------------------------------------------------------------------- libFM


def _read_text(path: str | os.PathLike[str]) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"{path}: cannot read file ({err.strerror or err})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (bad byte at offset {err.start})") from None


def _bad_libfm_token(path: str, line_no: int, tokens: list[str]) -> str | None:
    """Describe the first bad token of a line, or None (the slow path, for the error message)."""
    try:
        label = float(tokens[0])
    except ValueError:
        return f"{path}, line {line_no}: label {tokens[0][:40]!r} is not a number"
    if not abs(label) <= _FLOAT32_MAX:
        return f"{path}, line {line_no}: label {tokens[0][:40]!r} is not finite (in float32)"
    for column, token in enumerate(tokens[1:], start=2):
        where = f"{path}, line {line_no}, token {column}"
        if token.count(":") != 1:
            return f"{where}: {token[:40]!r} is not 'id:value'"
        fid, value = token.split(":")
        if not fid.isdigit() or not fid.isascii():
            return f"{where}: feature id {fid[:40]!r} is not a non-negative integer"
        try:
            x = float(value)
        except ValueError:
            return f"{where}: value {value[:40]!r} is not a number"
        if not abs(x) <= _FLOAT32_MAX:
            return f"{where}: value {value[:40]!r} is not finite (in float32)"
    return None


def load_libfm(
    path: str | os.PathLike[str],
    fields: Sequence[str] | dict[str, tuple[int, int]] | None = None,
    name: str | None = None,
) -> Dataset:
    """Read a libFM text file (``label id:value id:value ...``, one sample per line).

    ``fields``: None (field j is the j-th token of each line; names ``field_0``...), a list of
    names (the same, named), or a dict ``name -> (first_id, last_id)`` (inclusive id ranges;
    each line must then hold exactly one id of each range, in any order). Values are kept as
    x_i and labels as in the file (e.g. ±1). Blank lines are skipped.
    """
    source = str(path)
    text = _read_text(path)
    stripped = [ln.strip() for ln in text.split("\n")]
    line_nos = np.array([i + 1 for i, ln in enumerate(stripped) if ln], dtype=np.int64)
    kept = [ln for ln in stripped if ln]
    if not kept:
        raise ValueError(f"{source}: empty file (expected lines 'label id:value ...')")
    if _ODD_WHITESPACE.search(text):
        lengths = np.array([len(ln.split()) for ln in kept])
    else:  # single spaces only: counting them is 10x faster than splitting each line
        lengths = np.array([ln.count(" ") + 1 for ln in kept])
    ranges = fields if isinstance(fields, dict) else None
    n_fields = len(ranges) if ranges is not None else int(lengths[0]) - 1
    if n_fields < 1:
        raise ValueError(f"{source}, line {line_nos[0]}: a label with no features (expected 'label id:value ...')")
    bad = np.flatnonzero(lengths != n_fields + 1)
    if bad.size:
        k = bad[0]
        raise ValueError(
            f"{source}, line {line_nos[k]}: {lengths[k] - 1} features, expected {n_fields} "
            f"({'one per field range' if ranges else 'as on line ' + str(line_nos[0])})"
        )
    # Fast path: parse every token at once; on any failure, the slow path names the culprit.
    table = np.array(text.split(), dtype=object).reshape(-1, n_fields + 1)  # rows = kept lines
    labels_text = table[:, 0].tolist()
    features = table[:, 1:].ravel().tolist()
    try:
        joined = " ".join(features)
        parts = joined.replace(":", " ").split()
        if joined.count(":") != len(features) or len(parts) != 2 * len(features):
            raise ValueError("token shape")
        # int()/float() per token beat NumPy's string casts by ~4x here
        ids = np.array(list(map(int, parts[0::2])), dtype=np.int64).reshape(-1, n_fields)
        values = np.array(list(map(float, parts[1::2])), dtype=np.float64).reshape(-1, n_fields)
        y = np.array(list(map(float, labels_text)), dtype=np.float64)
        if (ids < 0).any() or not (np.abs(values).max() <= _FLOAT32_MAX and np.abs(y).max() <= _FLOAT32_MAX):
            raise ValueError("non-finite")
    except (ValueError, OverflowError):
        for line_no, line in zip(line_nos, kept, strict=True):
            message = _bad_libfm_token(source, int(line_no), line.split())
            if message is not None:
                raise ValueError(message) from None
        raise ValueError(f"{source}: cannot parse the file as libFM") from None

    if ranges is not None:
        ids, values, specs = _assign_ranges(source, ids, values, ranges, line_nos)
    else:
        names = list(fields) if fields is not None else [f"field_{j}" for j in range(n_fields)]
        if len(names) != n_fields:
            raise ValueError(f"{source}: {len(names)} field names given, but lines hold {n_fields} features")
        lo, hi = ids.min(0), ids.max(0)
        specs = [FieldSpec(str(n), "ids", int(a), int(b - a + 1)) for n, a, b in zip(names, lo, hi, strict=True)]
    return Dataset(
        torch.from_numpy(ids),
        torch.from_numpy(values.astype(np.float32)),
        torch.from_numpy(y.astype(np.float32)),
        Schema(specs),
        name or Path(source).name,
    )


def _assign_ranges(
    source: str, ids: np.ndarray, values: np.ndarray, ranges: dict[str, tuple[int, int]], line_nos: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[FieldSpec]]:
    """Sort each line's tokens into fields by id range; every line needs one id per range."""
    names = list(ranges)
    bounds = np.array([ranges[n] for n in names], dtype=np.int64)  # (F, 2) inclusive
    if (bounds[:, 0] > bounds[:, 1]).any() or (bounds[:, 0] < 0).any():
        raise ValueError(f"field id ranges must be (first, last) with 0 <= first <= last, got {ranges}")
    field_of = np.full(ids.shape, -1)
    for j, (a, b) in enumerate(bounds):
        field_of[(ids >= a) & (ids <= b)] = j
    if (field_of < 0).any():
        r, c = np.argwhere(field_of < 0)[0]
        raise ValueError(f"{source}, line {line_nos[r]}: feature id {ids[r, c]} is in no field range {ranges}")
    order = np.argsort(field_of, axis=1, kind="stable")
    sorted_fields = np.take_along_axis(field_of, order, 1)
    wrong = np.flatnonzero((sorted_fields != np.arange(len(names))).any(1))
    if wrong.size:
        r = wrong[0]
        raise ValueError(f"{source}, line {line_nos[r]}: expected exactly one feature in each of the fields {names}")
    specs = [FieldSpec(n, "ids", int(a), int(b - a + 1)) for n, (a, b) in zip(names, bounds, strict=True)]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(values, order, 1), specs


# ---------------------------------------------------------------------------- tables


def _numeric_column(column: pd.Series, name: str, source: str) -> np.ndarray:
    """A float64 array, or ValueError naming the first row that is not a finite number."""
    import pandas as pd

    x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.abs(x) <= _FLOAT32_MAX))  # NaN, inf, or beyond float32
    if bad.size:
        r = int(bad[0])
        raise ValueError(
            f"{source}: column {name!r}, row {r} (CSV line {r + 2}): "
            f"{column.iloc[r]!r} is not a finite (float32) number"
        )
    return x


def read_table(source: str | os.PathLike[str] | pd.DataFrame | io.BytesIO, name: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet table (a path, an in-memory upload with its file ``name``, or a DataFrame) as a
    DataFrame; a file that cannot be read raises ValueError naming it."""
    return _read_table(source, name)[0]


def guess_columns(frame: pd.DataFrame, label: str) -> tuple[list[str], list[str]]:
    """(categorical, numeric): number columns (not booleans) are numeric, every other column but the
    label is categorical. ``load_table`` uses this rule when given neither list."""
    import pandas as pd

    others = [c for c in frame.columns if c != label]
    numeric = [
        c for c in others if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return [c for c in others if c not in numeric], numeric


# rows x columns a table may have (50 million: about 400 MB of int64/float64 cells); afm/settings.py holds it
DEFAULT_MAX_CELLS: int = settings.default("AFM_MAX_CELLS")


def max_cells() -> int:
    """The budget of rows x columns for one table: ``$AFM_MAX_CELLS``, else 50 million. A value that is not a
    whole number of at least 1 raises ValueError naming the variable."""
    return int(settings.get("AFM_MAX_CELLS"))


def _too_big(source: str, rows: int | str, columns: int, budget: int) -> ValueError:
    return ValueError(
        f"{source}: {rows} rows x {columns} columns is over this installation's budget of {budget:,} cells "
        "(AFM_MAX_CELLS): use fewer rows or columns"
    )


def _read_table(
    path_or_frame: str | os.PathLike[str] | pd.DataFrame | io.BytesIO, name: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Read a table within the cell budget: Parquet's row and column counts come from its metadata
    before any data is read (a small, highly compressed file cannot expand past the budget); a CSV is
    read up to the budget's row count for its width, and one row more is an error."""
    import pandas as pd

    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame, name or "frame"
    source = name or str(path_or_frame)
    suffix = Path(source).suffix.lower()
    budget = max_cells()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path_or_frame).metadata
            if meta.num_rows * max(meta.num_columns, 1) > budget:
                raise _too_big(source, f"{meta.num_rows:,}", meta.num_columns, budget)
            if isinstance(path_or_frame, io.BytesIO):
                path_or_frame.seek(0)
            frame = pd.read_parquet(path_or_frame)
        else:
            header = pd.read_csv(path_or_frame, nrows=0)
            if isinstance(path_or_frame, io.BytesIO):
                path_or_frame.seek(0)
            width = max(len(header.columns), 1)
            frame = pd.read_csv(path_or_frame, keep_default_na=True, nrows=budget // width + 1)
            if len(frame) * width > budget:
                raise _too_big(source, f"more than {budget // width:,}", width, budget)
    except FileNotFoundError:
        raise ValueError(f"{source}: no such file") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        if "AFM_MAX_CELLS" in str(err):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{source}: cannot read as {'Parquet' if suffix in ('.parquet', '.pq') else 'CSV'} ({first[:200]})"
        ) from None
    return frame, source


def load_table(
    path_or_frame: str | os.PathLike[str] | pd.DataFrame,
    label: str,
    categorical: Sequence[str] | None = None,
    numeric: Sequence[str] | None = None,
    *,
    min_count: int = 1,
    schema: Schema | None = None,
    name: str | None = None,
) -> Dataset:
    """Read a CSV/Parquet file or a DataFrame into a ``Dataset``.

    Each categorical column is one field with a vocabulary (values seen at least ``min_count``
    times; rarer ones share the field's OOV feature; blanks map to its "missing" feature). Each
    numeric column is one field with a single feature whose x_i is the standardised value.
    When neither list is given, text/boolean columns are categorical and number columns numeric.
    Pass ``schema`` (e.g. from the training data) to encode new data with the same vocabulary.
    """
    frame, source = _read_table(path_or_frame)
    if len(frame) == 0:
        raise ValueError(f"{source}: empty table (no data rows)")
    if label not in frame.columns:
        raise ValueError(f"{source}: no label column {label!r} (columns: {list(frame.columns)[:20]})")
    y = _numeric_column(frame[label], label, source)
    if schema is None:
        schema = _fit_schema(frame, source, label, categorical, numeric, min_count)
    idx, val = schema.encode(frame, source)
    return Dataset(idx, val, torch.from_numpy(y.astype(np.float32)), schema, name or Path(source).name)


def _fit_schema(
    frame: pd.DataFrame,
    source: str,
    label: str,
    categorical: Sequence[str] | None,
    numeric: Sequence[str] | None,
    min_count: int,
) -> Schema:
    if categorical is None and numeric is None:
        categorical, numeric = guess_columns(frame, label)
    categorical, numeric = list(categorical or []), list(numeric or [])
    chosen = categorical + numeric
    if not chosen:
        raise ValueError(f"{source}: no feature columns (give categorical=[...] and/or numeric=[...])")
    for column in chosen:
        if column not in frame.columns:
            raise ValueError(f"{source}: no column {column!r} (columns: {list(frame.columns)[:20]})")
    if label in chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"{source}: a column is used twice or as both label and feature: {chosen}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    specs, offset = [], 0
    for column in frame.columns:  # keep the table's column order
        if column in categorical:
            counts = frame[column].dropna().astype(str).value_counts()
            values = sorted(v for v, c in counts.items() if c >= min_count)
            spec = FieldSpec(str(column), "categorical", offset, len(values) + 2, [*values, OOV, MISSING])
        elif column in numeric:
            x = _numeric_column(frame[column], column, source)
            with np.errstate(over="ignore", invalid="ignore"):
                std = float(x.std())
            if not (np.isfinite(x.mean()) and np.isfinite(std)):
                raise ValueError(
                    f"{source}: column {column!r}: values too large to standardise (|x| up to {abs(x).max():.3g})"
                )
            spec = FieldSpec(str(column), "numeric", offset, 1, mean=float(x.mean()), std=std if std > 0 else 1.0)
        else:
            continue
        specs.append(spec)
        offset += spec.size
    return Schema(specs, label)
