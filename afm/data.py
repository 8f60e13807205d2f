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
from collections.abc import Iterator, Sequence
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


def _too_big(source: str, rows: int | str, columns: int, budget: int) -> ShapeError:
    return ShapeError(
        f"{source}: {rows} rows x {columns} columns is over this installation's budget of {budget:,} cells "
        "(AFM_MAX_CELLS): use fewer rows or columns"
    )


# ---------------------------------------------------------------------------- shape budgets
#
# What a table may be, checked before its data is read: rows x columns (AFM_MAX_CELLS), the bytes it takes once
# decoded (AFM_MAX_DECODED_MB), its columns (AFM_MAX_COLUMNS), the bytes of its header (a CSV's header line, a
# Parquet file's footer: AFM_MAX_HEADER_KB), of a CSV line (AFM_MAX_LINE_KB) and of a cell (AFM_MAX_CELL_KB), and
# the length of a column name (AFM_MAX_NAME_CHARS). A CSV is scanned once, in 1 MB pieces, for its header, lines
# and cells (quotes respected); a Parquet file's footer and page headers are walked without decoding a value
# (its dictionaries are read only when their headers cannot bound what they expand to).

KB, MB = 1024, 1024 * 1024
_SCAN_CHUNK = 1 << 20


class ShapeError(ValueError):
    """A table over one of its shape budgets, refused before its data is read: one line naming the file (its
    given name, not a server path), what is over which budget, the figure and the setting that raises it."""


@dataclass(frozen=True)
class Budgets:
    """The shape budgets in force (afm/settings.py holds each setting, its default and why)."""

    cells: int
    decoded_mb: int
    columns: int
    header_kb: int
    line_kb: int
    cell_kb: int
    name_chars: int

    @classmethod
    def from_settings(cls) -> Budgets:
        """The budgets now; a setting that does not parse raises ValueError naming it."""
        return cls(
            cells=int(settings.get("AFM_MAX_CELLS")),
            decoded_mb=int(settings.get("AFM_MAX_DECODED_MB")),
            columns=int(settings.get("AFM_MAX_COLUMNS")),
            header_kb=int(settings.get("AFM_MAX_HEADER_KB")),
            line_kb=int(settings.get("AFM_MAX_LINE_KB")),
            cell_kb=int(settings.get("AFM_MAX_CELL_KB")),
            name_chars=int(settings.get("AFM_MAX_NAME_CHARS")),
        )

    @property
    def decoded(self) -> int:
        return self.decoded_mb * MB


def _size_text(n: float) -> str:
    """A size in words: bytes below 10 KB, KB below 10 MB, else MB."""
    if n < 10 * KB:
        return f"{int(n):,} bytes"
    if n < 10 * MB:
        return f"{n / KB:,.0f} KB"
    return f"{n / MB:,.0f} MB"


def _over(name: str, what: str, limit: str, variable: str) -> ShapeError:
    return ShapeError(f"{name}: {what}; at most {limit} here ({variable})")


def _check_columns(name: str, count: int, budgets: Budgets) -> None:
    if count > budgets.columns:
        raise _over(name, f"{count:,} columns", f"{budgets.columns:,}", "AFM_MAX_COLUMNS")


def _utf8_chars(raw: bytes | memoryview) -> int:
    """The characters in UTF-8 bytes (the bytes that do not continue a character), without decoding them."""
    arr = np.frombuffer(raw, dtype=np.uint8)
    return int(np.count_nonzero((arr & 0xC0) != 0x80))


def _check_name(name: str, column: int, chars: int, budgets: Budgets) -> None:
    """A column name over the bound is refused (never shown: it would go to the browser whole)."""
    if chars > budgets.name_chars:
        raise _over(
            name,
            f"the name of column {column:,} is {chars:,} characters long",
            f"{budgets.name_chars:,} characters",
            "AFM_MAX_NAME_CHARS",
        )


def _decoded_error(name: str, rows: str, columns: int, size: str, budgets: Budgets) -> ShapeError:
    return _over(
        name, f"{rows} rows x {columns:,} column{'s' * (columns != 1)} need {size} once decoded",
        f"{budgets.decoded_mb:,} MB",
        "AFM_MAX_DECODED_MB",
    )  # fmt: skip


# ---------------------------------------------------------------------------- shape: CSV


def _csv_pieces(source: str | os.PathLike[str] | io.BytesIO) -> Iterator[bytes | memoryview]:
    """The bytes of a CSV in 1 MB pieces: an upload's without a copy, a file's read one piece at a time."""
    if isinstance(source, io.BytesIO):
        view = memoryview(source.getvalue())  # the upload's own bytes (BytesIO shares them)
        for start in range(0, len(view), _SCAN_CHUNK):
            yield view[start : start + _SCAN_CHUNK]
        return
    with open(source, "rb") as file:
        while piece := file.read(_SCAN_CHUNK):
            yield piece


def _delimiters(arr: np.ndarray, in_quotes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Positions in ``arr`` of the commas and newlines outside quotes, which of them are newlines, and whether
    the piece ends inside quotes. A quote toggles (``""`` inside quotes toggles twice)."""
    quotes = np.flatnonzero(arr == 34)
    ends = np.flatnonzero((arr == 44) | (arr == 10))
    if quotes.size or in_quotes:
        outside = ((np.searchsorted(quotes, ends) + in_quotes) & 1) == 0
        ends = ends[outside]
        in_quotes = (in_quotes + quotes.size) & 1
    return ends, arr[ends] == 10, in_quotes


class _CsvScan:
    """One pass over a CSV's bytes: its header record first (within AFM_MAX_HEADER_KB), then every line and cell
    against their budgets, the rows against AFM_MAX_CELLS and the decoded estimate against AFM_MAX_DECODED_MB;
    the first budget passed raises ``ShapeError`` at once, so a hostile file costs a piece of 1 MB at a time."""

    def __init__(self, name: str, budgets: Budgets) -> None:
        self.name, self.b = name, budgets
        self.header = bytearray()  # the bytes before the header record's end, while it is being found
        self.width = 0  # columns, once the header is read
        self.pos = 0  # bytes consumed
        self.in_quotes = 0
        self.last_end = -1  # position of the last comma or newline (outside quotes)
        self.last_newline = -1  # position of the last record end
        self.fields = 0  # commas seen in the current record
        self.text = 0  # bytes of the cells that are not numbers (a number takes 8 bytes once read, a text its own + 8)
        self.records = 0  # data records ended (the header not counted); data record r is on line r + 2

    def run(self, pieces: Iterator[bytes | memoryview], everything: bytes | None) -> None:
        for piece in pieces:
            if not self.width:
                rest = self._header_piece(piece, everything)
                if rest is None:
                    continue
                piece = rest
            self._data_piece(np.frombuffer(piece, dtype=np.uint8))
        if not self.width:  # a file of one line: it is the header
            self._parse_header(bytes(self.header))
            return
        if self.pos - self.last_newline > 1:  # a last record without its newline
            self.records += 1
            self._check_rows()

    def _header_piece(self, piece: bytes | memoryview, everything: bytes | None) -> memoryview | None:
        """Collect the header record (blank lines before it skipped, as pandas does); the rest of ``piece`` once
        it is found, None while it is not."""
        self.header += piece
        arr = np.frombuffer(self.header, dtype=np.uint8)
        text = np.flatnonzero(~np.isin(arr, (9, 10, 13, 32)))[:1]  # where the header starts
        quotes, records = np.flatnonzero(arr == 34), np.flatnonzero(arr == 10)
        if quotes.size:  # record ends: newlines outside quotes
            records = records[(np.searchsorted(quotes, records) & 1) == 0]
        records = records[records > text[0]] if text.size else records[:0]
        limit = self.b.header_kb * KB
        if not records.size:
            if len(self.header) > limit:
                raise self._header_too_long(everything, None)
            return None
        first = int(records[0])
        if first > limit:
            raise self._header_too_long(everything, first)
        self._parse_header(bytes(self.header[int(text[0]) : first]))
        self.pos = first + 1
        self.last_end = self.last_newline = first
        rest = memoryview(bytes(self.header[first + 1 :]))
        self.header = bytearray()
        return rest

    def _header_too_long(self, everything: bytes | None, first: int | None) -> ShapeError:
        length = first
        if length is None and everything is not None:
            newline = everything.find(b"\n")
            length = newline if newline >= 0 else len(everything)
        size = _size_text(length) if length is not None else f"more than {_size_text(self.b.header_kb * KB)}"
        return _over(self.name, f"its header line is {size}", f"{self.b.header_kb:,} KB", "AFM_MAX_HEADER_KB")

    def _parse_header(self, raw: bytes) -> None:
        import csv

        text = raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
        try:
            names = next(csv.reader(io.StringIO(text, newline="")), [])
        except csv.Error:  # bytes no CSV holds (a lone CR, NUL): counted plainly, pandas says what is wrong
            names = text.split(",")
        _check_columns(self.name, len(names), self.b)
        for j, column in enumerate(names, start=1):
            _check_name(self.name, j, len(column), self.b)
        self.width = max(len(names), 1)

    def _data_piece(self, arr: np.ndarray) -> None:
        ends, newline, self.in_quotes = _delimiters(arr, self.in_quotes)
        at = ends + self.pos
        b, nl = self.b, np.flatnonzero(newline)
        if at.size:
            cells = np.diff(at, prepend=self.last_end) - 1
            starts = np.concatenate(([self.last_end + 1], at[:-1] + 1)) - self.pos  # each cell's first byte
            first = arr[np.clip(starts, 0, max(arr.size - 1, 0))] if arr.size else np.zeros(0, np.uint8)
            number = (starts >= 0) & (cells <= 24) & (((first >= 48) & (first <= 57)) | np.isin(first, (43, 45, 46)))
            self.text += int(cells[~number].sum())
            k = int(np.argmax(cells))
            if cells[k] > b.cell_kb * KB:
                line = 2 + self.records + int(np.count_nonzero(nl < k))
                raise self._cell(int(cells[k]), line)
            if nl.size:
                lines = np.diff(at[nl], prepend=self.last_newline) - 1
                k = int(np.argmax(lines))
                if lines[k] > b.line_kb * KB:
                    raise self._line(int(lines[k]), 2 + self.records + k)
                fields = np.diff(nl, prepend=-1 - self.fields)  # commas and the newline of each record
                k = int(np.argmax(fields))
                if fields[k] > b.columns:
                    raise _over(self.name, f"line {2 + self.records + k:,} has {int(fields[k]):,} fields",
                                f"{b.columns:,}", "AFM_MAX_COLUMNS")  # fmt: skip
                self.fields = int(at.size - 1 - nl[-1])
                self.records += int(nl.size)
                self.last_newline = int(at[nl[-1]])
            else:
                self.fields += int(at.size)
            self.last_end = int(at[-1])
        self.pos += arr.size
        if self.pos - 1 - self.last_end > b.cell_kb * KB:  # a cell still growing
            raise self._cell(self.pos - 1 - self.last_end, 2 + self.records, more=True)
        if self.pos - 1 - self.last_newline > b.line_kb * KB:
            raise self._line(self.pos - 1 - self.last_newline, 2 + self.records, more=True)
        self._check_rows()

    def _check_rows(self) -> None:
        b, rows = self.b, self.records
        if rows * self.width > b.cells:
            raise _too_big(self.name, f"more than {b.cells // self.width:,}", self.width, b.cells)
        decoded = 8 * rows * self.width + self.text  # 8 bytes a cell (int64, float64, a text's offset) + the texts
        if decoded > b.decoded:
            raise _decoded_error(self.name, f"{rows:,} or more", self.width, f"more than {b.decoded_mb:,} MB", b)

    def _cell(self, size: int, line: int, more: bool = False) -> ShapeError:
        what = f"a cell on line {line:,} is {'more than ' if more else ''}{_size_text(size)}"
        return _over(self.name, what, f"{self.b.cell_kb:,} KB", "AFM_MAX_CELL_KB")

    def _line(self, size: int, line: int, more: bool = False) -> ShapeError:
        what = f"line {line:,} is {'more than ' if more else ''}{_size_text(size)}"
        return _over(self.name, what, f"{self.b.line_kb:,} KB", "AFM_MAX_LINE_KB")


def check_csv_shape(source: str | os.PathLike[str] | io.BytesIO, name: str, budgets: Budgets | None = None) -> None:
    """Raise ``ShapeError`` when a CSV (a path or an upload's bytes) is over a shape budget, from one scan of its
    bytes before any parse: the header record (at most AFM_MAX_HEADER_KB, found first), its columns and their
    names, every line and cell, the rows and an estimate of the decoded bytes (8 per cell plus the text)."""
    everything = source.getvalue() if isinstance(source, io.BytesIO) else None
    _CsvScan(name, budgets or Budgets.from_settings()).run(_csv_pieces(source), everything)


# ---------------------------------------------------------------------------- shape: Parquet


class _Unreadable(Exception):
    """A Parquet structure this walk cannot follow (then pyarrow reads it, or says what is wrong)."""


class _Thrift:
    """Just enough of Thrift's compact protocol to walk Parquet's footer and page headers in place: fields are
    read or skipped, strings located (never copied), and every length checked against the buffer."""

    def __init__(self, buf: Any, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Unreadable
        value = self.buf[self.pos]
        self.pos += 1
        return int(value)

    def advance(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise _Unreadable
        self.pos += n

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise _Unreadable

    def signed(self) -> int:  # i16, i32, i64: zigzag varints
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def binary(self) -> tuple[int, int]:
        """(start, length) of a string or binary field, skipped over."""
        n, start = self.varint(), self.pos
        self.advance(n)
        return start, n

    def fields(self) -> Iterator[tuple[int, int]]:
        """(field id, type) of a struct's fields; the caller reads or ``skip``s each one."""
        last = 0
        while (b := self.byte()) != 0:
            last = last + (b >> 4) if b >> 4 else self.signed()
            yield last, b & 0x0F

    def list_header(self) -> tuple[int, int]:
        b = self.byte()
        size = self.varint() if b >> 4 == 15 else b >> 4
        if size > self.end - self.pos:  # every element takes a byte at least
            raise _Unreadable
        return size, b & 0x0F

    def skip(self, kind: int, depth: int = 0, element: bool = False) -> None:
        if depth > 32:
            raise _Unreadable
        if kind in (1, 2):  # a bool: in the field header, or one byte as a list element
            self.advance(1 if element else 0)
        elif kind == 3:
            self.advance(1)
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.advance(8)
        elif kind == 8:
            self.binary()
        elif kind in (9, 10):
            size, inner = self.list_header()
            for _ in range(size):
                self.skip(inner, depth + 1, True)
        elif kind == 11:
            size = self.varint()
            if size > self.end - self.pos:
                raise _Unreadable
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(types >> 4, depth + 1, True)
                    self.skip(types & 0x0F, depth + 1, True)
        elif kind == 12:
            for _, inner in self.fields():
                self.skip(inner, depth + 1)
        else:
            raise _Unreadable


@dataclass
class _Page:
    kind: int  # 0 data, 2 dictionary, 3 data v2 (1: an index page)
    size: int  # uncompressed bytes
    values: int = 0  # values (data pages: nulls included) or dictionary entries
    nulls: int = -1  # v2 pages only
    encoding: int = 0
    levels: int = -1  # v2 pages: the bytes of the repetition and definition levels


def _page_header(t: _Thrift) -> tuple[_Page, int]:
    """The page header at ``t.pos``: the page and its compressed size; ``t.pos`` moves past the header."""
    page, compressed = _Page(-1, -1), -1
    for fid, kind in t.fields():
        if fid in (1, 2, 3) and kind == 5:
            value = t.signed()
            if fid == 1:
                page.kind = value
            elif fid == 2:
                page.size = value
            else:
                compressed = value
        elif fid in (5, 7, 8) and kind == 12:
            levels = [0, 0]
            for sub, sub_kind in t.fields():
                if sub_kind != 5:
                    t.skip(sub_kind)
                    continue
                value = t.signed()
                if sub == 1:
                    page.values = value
                elif (sub, fid) in ((2, 5), (2, 7), (4, 8)):
                    page.encoding = value
                elif (sub, fid) == (2, 8):
                    page.nulls = value
                elif fid == 8 and sub in (5, 6):
                    levels[sub - 5] = value
            if fid == 8:
                page.levels = sum(levels)
        else:
            t.skip(kind)
    if page.kind < 0 or page.size < 0 or compressed < 0 or page.values < 0:
        raise _Unreadable
    return page, compressed


@dataclass
class _Leaf:
    """A leaf column of a Parquet schema, as the footer states it."""

    path: str  # its dotted path ("a" for a top-level column)
    physical: int  # 0 BOOLEAN, 1 INT32, 2 INT64, 3 INT96, 4 FLOAT, 5 DOUBLE, 6 BYTE_ARRAY, 7 FIXED_LEN_BYTE_ARRAY
    length: int = 0  # FIXED_LEN_BYTE_ARRAY's bytes
    converted: int = -1  # 0 UTF8, 4 ENUM, 5 DECIMAL, 19 JSON, ...
    logical: int = -1  # the LogicalType union's member: 1 STRING, 4 ENUM, 5 DECIMAL, 12 JSON, ...
    repeated: bool = False  # inside a list (a repetition level)
    levels: bool = False  # has definition or repetition levels
    flat: bool = False  # a top-level, non-repeated column


@dataclass
class _Chunk:
    """A column chunk's metadata (the fields this check needs)."""

    physical: int = -1
    encodings: tuple[int, ...] = ()
    values: int = 0
    uncompressed: int = 0
    compressed: int = 0
    data_offset: int = -1
    dictionary_offset: int = -1
    nulls: int = -1
    elsewhere: bool = False  # a file_path: its data lives in another file


@dataclass
class _Footer:
    rows: int = 0
    leaves: list[_Leaf] = field(default_factory=list)
    groups: list[tuple[int, list[_Chunk]]] = field(default_factory=list)  # (rows, chunks) of each row group


def _schema(t: _Thrift, buf: Any, name: str, b: Budgets) -> list[_Leaf]:
    """The schema's leaves, with the column budget checked from the element count (before any is read) and each
    name's length from its bytes (never decoded whole)."""
    count, element = t.list_header()
    if element != 12 or count < 1:
        raise _Unreadable
    _check_columns(name, count - 1, b)  # the root and, for nested columns, their groups count too
    elements = []
    for j in range(count):
        ints: dict[int, int] = {}  # 1 type, 2 type_length, 3 repetition_type, 5 num_children, 6 converted_type
        logical, text = -1, ""
        for fid, ftype in t.fields():
            if fid == 4 and ftype == 8:
                start, n = t.binary()
                if j and n > b.name_chars:
                    _check_name(name, j, _utf8_chars(buf[start : start + n]), b)
                text = bytes(buf[start : start + n]).decode("utf-8", errors="replace")
            elif fid in (1, 2, 3, 5, 6) and ftype == 5:
                ints[fid] = t.signed()
            elif fid == 10 and ftype == 12:  # LogicalType, a union: the member set names the type
                for member, member_type in t.fields():
                    logical = member
                    t.skip(member_type)
            else:
                t.skip(ftype)
        kind, length, repetition, children, converted = (
            ints.get(k, d) for k, d in ((1, -1), (2, 0), (3, 0), (5, -1), (6, -1))
        )
        elements.append((kind, length, repetition, children, converted, logical, text))
    leaves: list[_Leaf] = []
    stack: list[tuple[int, str, bool, bool]] = []  # open groups: (children left, path, repeated, levels)

    def place(i: int, path: str, repeated: bool, levels: bool) -> None:
        kind, length, repetition, children, converted, logical, text = elements[i]
        full = f"{path}.{text}" if path else text
        repeated, levels = repeated or repetition == 2, levels or repetition != 0
        if children >= 0:
            stack.append((children, full, repeated, levels))
        elif kind < 0:
            raise _Unreadable
        else:
            leaves.append(_Leaf(full, kind, length, converted, logical, repeated, levels, not path and not repeated))

    root_children = elements[0][3]
    if root_children < 0:
        raise _Unreadable
    stack.append((root_children, "", False, False))
    for i in range(1, count):
        while stack and stack[-1][0] == 0:
            stack.pop()
        if not stack:
            raise _Unreadable
        left, path, repeated, levels = stack.pop()
        stack.append((left - 1, path, repeated, levels))
        place(i, path, repeated, levels)
    return leaves


def _column_chunk(t: _Thrift) -> _Chunk:
    chunk = _Chunk()
    for fid, ftype in t.fields():
        if fid == 1 and ftype == 8:
            chunk.elsewhere = t.binary()[1] > 0
        elif fid == 3 and ftype == 12:
            for sub, sub_type in t.fields():
                if sub in (1, 5, 6, 7, 9, 11) and sub_type in (5, 6):
                    value = t.signed()
                    if sub == 1:
                        chunk.physical = value
                    elif sub == 5:
                        chunk.values = value
                    elif sub == 6:
                        chunk.uncompressed = value
                    elif sub == 7:
                        chunk.compressed = value
                    elif sub == 9:
                        chunk.data_offset = value
                    else:
                        chunk.dictionary_offset = value
                elif sub == 2 and sub_type == 9:
                    size, inner = t.list_header()
                    encodings = []
                    for _ in range(size):
                        if inner != 5:
                            raise _Unreadable
                        encodings.append(t.signed())
                    chunk.encodings = tuple(encodings)
                elif sub == 12 and sub_type == 12:
                    for stat, stat_type in t.fields():
                        if stat == 3 and stat_type == 6:
                            chunk.nulls = t.signed()
                        else:
                            t.skip(stat_type)
                else:
                    t.skip(sub_type)
        else:
            t.skip(ftype)
    return chunk


def _row_groups(t: _Thrift, columns: int) -> list[tuple[int, list[_Chunk]]]:
    count, element = t.list_header()
    if element != 12:
        raise _Unreadable
    groups = []
    for _ in range(count):
        rows, chunks = -1, []
        for fid, ftype in t.fields():
            if fid == 1 and ftype == 9:
                size, inner = t.list_header()
                if inner != 12 or size != columns:
                    raise _Unreadable
                chunks = [_column_chunk(t) for _ in range(size)]
            elif fid == 3 and ftype == 6:
                rows = t.signed()
            else:
                t.skip(ftype)
        if rows < 0 or len(chunks) != columns:
            raise _Unreadable
        groups.append((rows, chunks))
    return groups


def _read_footer(buf: Any, name: str, b: Budgets) -> _Footer:
    """The footer, walked in place: the schema's columns and names (budgets checked as they come), the footer's
    size, then the row groups' column chunks. Nothing of pyarrow runs on it: pyarrow's Python accessors abort the
    process on some damaged footers, which a hostile upload must not be able to do."""
    size = len(buf)
    if size < 12 or bytes(buf[:4]) != b"PAR1" or bytes(buf[size - 4 :]) != b"PAR1":
        raise ValueError("not a Parquet file: no PAR1 marks at its start and end")
    length = int.from_bytes(bytes(buf[size - 8 : size - 4]), "little")
    if not 0 < length <= size - 12:
        raise ValueError("its footer's length is out of the file")
    footer, t, schema_seen = _Footer(), _Thrift(buf, size - 8 - length, size - 8), False

    def size_check() -> None:
        if length > b.header_kb * KB:
            raise _over(
                name, f"its metadata (the Parquet footer) is {_size_text(length)}", f"{b.header_kb:,} KB",
                "AFM_MAX_HEADER_KB",
            )  # fmt: skip

    try:
        for fid, ftype in t.fields():
            if fid == 2 and ftype == 9 and not schema_seen:
                footer.leaves, schema_seen = _schema(t, buf, name, b), True
                size_check()
            elif fid == 3 and ftype == 6:
                footer.rows = t.signed()
            elif fid == 4 and ftype == 9 and schema_seen:
                footer.groups = _row_groups(t, len(footer.leaves))
            elif fid == 4:
                raise _Unreadable
            else:
                t.skip(ftype)
    except _Unreadable:
        size_check()
        raise ValueError("its footer cannot be read") from None
    size_check()
    if not schema_seen or footer.rows < 0 or sum(rows for rows, _ in footer.groups) != footer.rows:
        raise ValueError("its footer cannot be read")
    if any(chunk.elsewhere for _, chunks in footer.groups for chunk in chunks):
        raise ValueError("its data lies in other files (a column chunk's file_path)")
    return footer


def _walk_pages(buf: Any, chunk: _Chunk, allowance: int) -> list[_Page]:
    """Every page header of one column chunk, as pyarrow will read them: from its first page (the dictionary's,
    if any) through its compressed size; at most ``allowance`` pages."""
    size, start = len(buf), chunk.data_offset
    if chunk.values == 0:  # an empty chunk: nothing to decode (writers may point it nowhere)
        return []
    if 0 < chunk.dictionary_offset < start:
        start = chunk.dictionary_offset
    end = min(start + chunk.compressed, size)
    if start < 4:
        raise _Unreadable
    pages: list[_Page] = []
    pos, seen = start, 0
    while pos < end and seen < chunk.values:
        if len(pages) >= allowance:
            raise _TooManyPages
        t = _Thrift(buf, pos, size)
        page, compressed = _page_header(t)
        pos = t.pos + compressed
        pages.append(page)
        if page.kind in (0, 3):
            seen += page.values
    return pages


def _value_cost(leaf: _Leaf) -> tuple[int, bool]:
    """(bytes a value takes in a DataFrame besides its own bytes, whether its bytes count) for a leaf column:
    8 for numbers, booleans and times; a text's bytes plus an 8-byte offset; binary, decimals and fixed-length
    bytes become Python objects (about 48 bytes each, 112 for a Decimal)."""
    if leaf.logical == 5 or leaf.converted == 5:
        return 112, False
    if leaf.physical == 7:
        return max(leaf.length, 0) + 48, False
    if leaf.physical == 6:
        return (8 if leaf.logical in (1, 4, 12) or leaf.converted in (0, 4, 19) else 48), True
    return 8, False


@dataclass
class _Bytes:
    """What a byte-array column chunk's values take once decoded, their own bytes only: at least ``low``, at
    most ``high``; ``needs_dictionary`` when only its dictionary can tell more closely."""

    low: int = 0
    high: int = 0
    longest_low: int = 0  # a value at least this long is certain
    needs_dictionary: bool = False


def _text_bytes(pages: list[_Page], chunk: _Chunk, levels_v1: bool) -> _Bytes:
    """Bounds on a byte-array chunk's decoded bytes from its page headers alone."""
    out, entries, count, references, nulls = _Bytes(), 0, 0, 0, 0
    for page in pages:
        if page.kind == 2:  # the dictionary: PLAIN entries, each after its 4-byte length
            entries, count = max(page.size - 4 * page.values, 0), page.values
            if count:
                out.longest_low = max(out.longest_low, -(-entries // count))
        elif page.kind in (0, 3):
            values = page.values - max(page.nulls, 0)
            if page.encoding in (2, 8):  # PLAIN_DICTIONARY, RLE_DICTIONARY: indices into the dictionary
                references += page.values
                nulls += max(page.nulls, 0)
                continue
            levels = page.levels if page.levels >= 0 else (page.values // 2 + 64 if levels_v1 else 0)
            if page.encoding in (0, 6):  # PLAIN, DELTA_LENGTH_BYTE_ARRAY: the bytes are in the page
                least = max(page.size - levels - (4 if page.encoding == 0 else 10) * values, 0)
                out.low += least
                out.high += page.size
                if values:
                    out.longest_low = max(out.longest_low, -(-least // values))
            else:  # DELTA_BYTE_ARRAY and the like: a value may repeat the one before it
                out.high += page.values * page.size
    if references and not count:  # indices without a dictionary page seen: only the dictionary can tell
        out.high += references * chunk.uncompressed
        out.needs_dictionary = True
    elif references:
        if not any(p.nulls >= 0 for p in pages) and chunk.nulls >= 0:
            nulls = chunk.nulls
        if count == 1:  # one entry: every non-null reference expands to it
            out.low += max(references - nulls, 0) * entries
        out.high += references * entries  # no entry is longer than all of them
        out.needs_dictionary = count > 1
    return out


def _parquet_buffer(source: str | os.PathLike[str] | io.BytesIO) -> Any:
    """The file's bytes without reading them: an upload's own buffer, or a file mapped into memory (pages are
    read from disk only where a header is)."""
    import mmap

    if isinstance(source, io.BytesIO):
        return memoryview(source.getvalue())
    with open(source, "rb") as file:
        try:
            return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return b""


def check_parquet_shape(
    source: str | os.PathLike[str] | io.BytesIO, name: str, budgets: Budgets | None = None
) -> list[str]:
    """Raise ``ShapeError`` when a Parquet file is over a shape budget, before any of its values is decoded:
    its columns and their names and the footer's size (the footer walked in place, before pyarrow parses it),
    rows x columns, and the bytes it takes once decoded: numbers from their counts, texts from their page headers
    (the bytes of each page, and of each dictionary with its number of entries). Where the headers cannot bound a
    dictionary's expansion, its columns are read once as dictionaries (not expanded) and counted exactly.
    A file whose footer or page headers cannot be walked raises ValueError. Returns the text columns whose
    longest value is left to check once read."""
    b = budgets or Budgets.from_settings()
    buf = _parquet_buffer(source)
    try:
        footer = _read_footer(buf, name, b)
        columns = len(footer.leaves)
        if footer.rows * max(columns, 1) > b.cells:
            raise _too_big(name, f"{footer.rows:,}", columns, b.cells)
        return _decoded_bytes(source, buf, footer, name, b)
    finally:
        try:
            buf.close() if hasattr(buf, "close") else buf.release() if isinstance(buf, memoryview) else None
        except BufferError:
            pass  # a view still held: the garbage collector closes it


class _TooManyPages(Exception):
    """More page headers than a writer puts in a table of this many cells."""


def _decoded_bytes(source: Any, buf: Any, footer: _Footer, name: str, b: Budgets) -> list[str]:
    """Bound the bytes the table needs once decoded from its footer and page headers (see
    ``check_parquet_shape``); returns the text columns whose longest value is left to check once read."""
    rows, columns = footer.rows, len(footer.leaves)
    allowance = 1_000 + 4 * len(footer.groups) * columns + rows * max(columns, 1) // 100  # pages to walk
    low = high = largest_page = 0
    texts: dict[str, list[int]] = {}  # text column -> [low, high] of its values' own bytes
    by_dictionary: set[str] = set()  # text columns whose dictionaries alone can tell their bytes
    cell: ShapeError | None = None  # the first value certainly over AFM_MAX_CELL_KB
    for group_rows, chunks in footer.groups:
        for leaf, chunk in zip(footer.leaves, chunks, strict=True):
            if chunk.physical != leaf.physical or min(chunk.values, chunk.compressed, chunk.uncompressed) < 0:
                raise ValueError(f"column {leaf.path!r}: its chunk's metadata does not match the schema")
            per_value, counts_bytes = _value_cost(leaf)
            fixed = chunk.values * per_value + (112 * group_rows if leaf.repeated else 0)
            low, high = low + fixed, high + fixed
            try:
                pages = _walk_pages(buf, chunk, allowance)
            except _TooManyPages:
                raise ValueError(f"more page headers than its {rows * columns:,} cells need") from None
            except _Unreadable:
                raise ValueError(f"column {leaf.path!r}: a page header cannot be read") from None
            allowance -= len(pages)
            largest_page = max([largest_page, *(p.size for p in pages)])
            if not counts_bytes:
                continue
            text = _text_bytes(pages, chunk, leaf.levels)
            if text.longest_low > b.cell_kb * KB and cell is None:
                cell = _over(
                    name, f"a value in column {leaf.path!r} is {_size_text(text.longest_low)} or more",
                    f"{b.cell_kb:,} KB", "AFM_MAX_CELL_KB",
                )  # fmt: skip
            low, high = low + text.low, high + text.high
            tally = texts.setdefault(leaf.path, [0, 0])
            tally[0], tally[1] = tally[0] + text.low, tally[1] + text.high
            if text.needs_dictionary and leaf.flat:
                by_dictionary.add(leaf.path)
    low = max(low, largest_page)  # pyarrow decompresses a page whole
    if low > b.decoded:
        raise _decoded_error(name, f"{rows:,}", columns, f"at least {_size_text(low)}", b)
    if cell is not None:
        raise cell
    if high <= b.decoded:
        return sorted(texts)
    doubt_high = sum(texts[c][1] for c in by_dictionary)
    doubt_low = sum(texts[c][0] for c in by_dictionary)
    if high - doubt_high + doubt_low > b.decoded:  # more than the dictionaries in doubt: refuse on the bound
        size_text = f"up to {_size_text(high)} (at least {_size_text(low)})"
        raise _decoded_error(name, f"{rows:,}", columns, size_text, b)
    exact, longest = _dictionary_bytes(source, sorted(by_dictionary))
    for column, length in longest.items():
        if length > b.cell_kb * KB:
            what = f"a value in column {column!r} is {_size_text(length)}"
            raise _over(name, what, f"{b.cell_kb:,} KB", "AFM_MAX_CELL_KB")
    high = high - doubt_high + sum(exact.values())
    if high > b.decoded:
        raise _decoded_error(name, f"{rows:,}", columns, _size_text(high), b)
    return sorted(set(texts) - set(longest))


def _dictionary_bytes(source: Any, columns: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """The exact bytes of the values of dictionary-encoded text columns, and each one's longest value, read with
    their dictionaries kept (memory: the dictionaries and a 4-byte index a value, never the expanded texts)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(source, columns=columns, read_dictionary=columns)
    if isinstance(source, io.BytesIO):
        source.seek(0)
    exact, longest = {}, {}
    for column in columns:
        total = most = 0
        for piece in table.column(column).chunks:
            if pa.types.is_dictionary(piece.type):
                lengths = pc.take(pc.binary_length(piece.dictionary), piece.indices)
            else:
                lengths = pc.binary_length(piece)
            total += int(pc.sum(lengths).as_py() or 0)
            most = max(most, int(pc.max(lengths).as_py() or 0))
        exact[column], longest[column] = total, most
    del table
    return exact, longest


def _check_cells_read(frame: pd.DataFrame, columns: list[str], name: str, budgets: Budgets) -> None:
    """The longest value of each text column a Parquet file's headers could not bound, once read."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for column in columns:
        if column not in frame.columns:
            continue
        try:
            lengths = pc.binary_length(pa.array(frame[column], from_pandas=True))
        except (pa.ArrowException, TypeError, ValueError):
            continue  # not text
        most = int(pc.max(lengths).as_py() or 0)
        if most > budgets.cell_kb * KB:
            what = f"a value in column {column!r} is {_size_text(most)}"
            raise _over(name, what, f"{budgets.cell_kb:,} KB", "AFM_MAX_CELL_KB")


# what pyarrow and pandas raise on a damaged file besides ValueError and OSError (a flipped byte in a Parquet
# file's metadata, say): the file cannot be read, which is all the reader says
_READER_ERRORS = (TypeError, KeyError, IndexError, NotImplementedError, MemoryError, OverflowError)


def _arrow_errors() -> tuple[type[Exception], ...]:
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow ships with afm
        return ()
    return (pa.ArrowException,)


def _read_table(
    path_or_frame: str | os.PathLike[str] | pd.DataFrame | io.BytesIO, name: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Read a table within its shape budgets (``Budgets``: rows x columns, decoded bytes, columns, header, line,
    cell and name sizes), each checked before the data is read: a Parquet file's from its footer and page headers
    (``check_parquet_shape``; a small, highly compressed file cannot expand past them), a CSV's from one scan of
    its bytes (``check_csv_shape``). Budget messages name the file by its given name, never a server path."""
    import pandas as pd

    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame, name or "frame"
    source = name or str(path_or_frame)
    shown = Path(source).name or source
    suffix = Path(source).suffix.lower()
    budgets = Budgets.from_settings()  # a setting that does not parse says so itself
    try:
        if suffix in (".parquet", ".pq"):
            unchecked = check_parquet_shape(path_or_frame, shown, budgets)
            if isinstance(path_or_frame, io.BytesIO):
                path_or_frame.seek(0)
            frame = pd.read_parquet(path_or_frame)
            _check_cells_read(frame, unchecked, shown, budgets)
        else:
            check_csv_shape(path_or_frame, shown, budgets)
            # compression=None: the bytes scanned are the bytes parsed (no archive expands behind the scan)
            header = pd.read_csv(path_or_frame, nrows=0, compression=None)
            if isinstance(path_or_frame, io.BytesIO):
                path_or_frame.seek(0)
            width = max(len(header.columns), 1)
            rows = budgets.cells // width
            frame = pd.read_csv(path_or_frame, keep_default_na=True, nrows=rows + 1, compression=None)
            if len(frame) * width > budgets.cells:
                raise _too_big(shown, f"more than {rows:,}", width, budgets.cells)
    except ShapeError:
        raise
    except FileNotFoundError:
        raise ValueError(f"{source}: no such file") from None
    except (
        pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError,
        *_READER_ERRORS, *_arrow_errors(),
    ) as err:  # fmt: skip
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
