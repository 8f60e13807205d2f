"""Ready-made datasets: the bundled teaching samples, and Frappe / MovieLens-tag from a local folder.

``sample()`` needs nothing (``sample(name="salient")``: the second sample, where attention is needed);
``frappe(root)`` and ``movielens_tag(root)`` read the ``{name}.train/validation/test.libfm`` parts present
in ``root``. ``download(name, root)`` fetches the files from the NFM authors' public repository for users
with internet (never at import).
"""

from __future__ import annotations

import json
import os
import re
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import settings
from .data import Dataset, FieldSpec, Schema, load_libfm, load_table, split


def _sample_dir() -> Path:
    """The bundled sample's folder: the copy installed inside the package (``afm/sample_data``, from the
    repository's top-level ``sample_data/`` by pyproject's package-dir mapping), else, in a source checkout
    or an editable install, that top-level folder itself."""
    installed = resources.files(__package__ or "afm") / "sample_data"
    if isinstance(installed, Path) and installed.is_dir():
        return installed.resolve()
    return Path(__file__).resolve().parent.parent / "sample_data"


SAMPLE_DIR = _sample_dir()
SAMPLE_CSV = SAMPLE_DIR / "sample.csv"
SAMPLE_TRUTH = SAMPLE_DIR / "planted_pairs.json"
SAMPLE_LABELS = {"regression": "engagement", "binary": "clicked"}
SALIENT_CSV = SAMPLE_DIR / "salient.csv"
SALIENT_TRUTH = SAMPLE_DIR / "salient_truth.json"
SALIENT_LABELS = {"regression": "watch_score", "binary": "finished"}


@dataclass(frozen=True)
class BundledSample:
    """One bundled teaching sample: its CSV, its ground-truth JSON, task -> label column, numeric fields."""

    name: str
    csv: Path
    truth: Path
    labels: dict[str, str]
    numeric: tuple[str, ...] = ()
    card: str = "README.md"  # its data card, in SAMPLE_DIR


# name -> sample; ``sample(name=...)`` and ``load_parts(name)`` read these
SAMPLES: dict[str, BundledSample] = {
    "sample": BundledSample("sample", SAMPLE_CSV, SAMPLE_TRUTH, SAMPLE_LABELS, ("app_rating",)),
    "salient": BundledSample("salient", SALIENT_CSV, SALIENT_TRUTH, SALIENT_LABELS, (), "SALIENT.md"),
}

# Frappe's field layout (see the data set's README): name -> inclusive global id range.
FRAPPE_FIELDS: dict[str, tuple[int, int]] = {
    "user": (0, 956),
    "item": (957, 5038),
    "daytime": (5039, 5045),
    "weekday": (5046, 5052),
    "isweekend": (5053, 5054),
    "homework": (5055, 5057),
    "cost": (5058, 5059),
    "weather": (5060, 5068),
    "country": (5069, 5148),
    "city": (5149, 5381),
}
MOVIELENS_TAG_FIELDS = ["user", "item", "tag"]
PARTS = ("train", "validation", "test")
FRAPPE_ENV = "AFM_FRAPPE"  # where Frappe is when no folder is given (reproduce, the dashboard's default)
_SOURCE = "https://raw.githubusercontent.com/hexiangnan/neural_factorization_machine/master/data"
_REMOTE = {"frappe": "frappe", "movielens_tag": "ml-tag"}


def _bundled(name: str) -> BundledSample:
    if name not in SAMPLES:
        raise ValueError(f"unknown bundled sample {name!r}; expected one of {sorted(SAMPLES)}")
    return SAMPLES[name]


@cache
def sample_frame(name: str = "sample") -> pd.DataFrame:
    """A bundled sample as a DataFrame: ``"sample"`` (categorical fields, ``app_rating``, two label columns)
    or ``"salient"`` (six categorical fields, two label columns)."""
    return pd.read_csv(_bundled(name).csv)


def sample(label: str = "regression", name: str = "sample") -> Dataset:
    """A bundled teaching sample, ``name`` one of ``SAMPLES``: ``label="regression"`` (the first sample's
    engagement, the salient sample's watch_score) or ``"binary"`` (clicked, finished).

    Every categorical column is a field, in the file's column order; the first sample's ``app_rating`` is
    its numeric field. The other label column is left out.
    """
    bundled = _bundled(name)
    if label not in bundled.labels:
        raise ValueError(f"label must be one of {sorted(bundled.labels)}, got {label!r}")
    frame = sample_frame(name)
    target = bundled.labels[label]
    other = [c for c in bundled.labels.values() if c != target]
    features = frame.drop(columns=other)
    numeric = list(bundled.numeric)
    categorical = [c for c in features.columns if c not in numeric and c != target]
    return load_table(features, target, categorical, numeric, name=f"{name} ({label})")


def sample_truth() -> list[dict[str, Any]]:
    """The planted field pairs, strongest first: ``{"fields": [a, b], "strength", "variance_share",
    "effects": {"value_a|value_b": effect}, "story"}``."""
    return json.loads(SAMPLE_TRUTH.read_text())["planted_pairs"]


@cache
def _salient_truth_text() -> str:
    return SALIENT_TRUTH.read_text()


def salient_truth() -> dict[str, Any]:
    """The salient sample's ground truth (``salient_truth.json``; ``sample_data/SALIENT.md`` explains it):
    ``fields`` (column order), ``pairs`` (field pairs in ``torch.triu_indices`` order), ``salience``,
    ``decisive_pairs`` (``{"fields", "values", "pair_index", "salience", "verdict", "rows", "story"}``),
    ``tastes`` (the ordinary pairs' tables: ``{"fields", "pair_index", "strength", "effects", "story"}``), the
    main effects, noise and label models. A fresh dict each call."""
    return json.loads(_salient_truth_text())


def _decoded(data: Dataset | pd.DataFrame) -> tuple[list[str], dict[str, np.ndarray]]:
    """Field names and, per field, each row's value as text: from a Dataset's categorical ids (through its
    schema) or from a frame's columns."""
    if isinstance(data, pd.DataFrame):
        names = [c for c in data.columns if c not in SALIENT_LABELS.values()]
        return names, {c: data[c].astype(str).to_numpy() for c in names}
    idx = data.idx.numpy()
    values = {}
    for j, spec in enumerate(data.schema.fields):
        if spec.kind != "categorical":
            raise ValueError(f"salient_weights: field {spec.name!r} is not categorical")
        values[spec.name] = np.asarray(spec.values, dtype=object)[idx[:, j] - spec.offset]
    return data.schema.field_names, values


def salient_weights(data: Dataset | pd.DataFrame, truth: dict[str, Any] | None = None) -> np.ndarray:
    """The TRUE attention weights of the salient sample's recipe, one row per row of ``data``: float64
    [N, P], P = F(F-1)/2 pairs over ``data``'s fields in their order (``torch.triu_indices(F, F, 1)``, the
    models' pair order), each row non-negative and summing to 1.

    ``data``: a ``Dataset`` of the salient sample (``sample("regression", name="salient")``, any part of
    ``load_parts("salient")``; its rows decoded through its schema) or a frame with the sample's columns
    (label columns are ignored). The weights are the generator's: w = softmax over the row's pairs of
    sigma_ij, sigma_ij = the salience of a decisive value pair (``truth["decisive_pairs"]``), else 0; they are
    recomputed here rather than stored per row.
    """
    truth = salient_truth() if truth is None else truth
    names, values = _decoded(data)
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    if not pairs:
        raise ValueError(f"salient_weights: the data needs at least two fields, got {names}")
    sigma = np.zeros((len(data), len(pairs)))
    for decisive in truth["decisive_pairs"]:
        (fa, fb), (va, vb) = decisive["fields"], decisive["values"]
        if fa not in values or fb not in values:
            raise ValueError(f"salient_weights: the data has no {fa!r} or {fb!r} field (fields: {names})")
        a, b = names.index(fa), names.index(fb)
        q = pairs.index((min(a, b), max(a, b)))
        hit = (values[fa] == va) & (values[fb] == vb)
        sigma[hit, q] = np.maximum(sigma[hit, q], float(decisive["salience"]))
    e = np.exp(sigma - sigma.max(axis=1, keepdims=True))  # the generator's softmax, operation for operation
    return e / e.sum(axis=1, keepdims=True)


def _read_parts(
    root: str | os.PathLike[str], stem: str, fields: Any, files: dict[str, Path] | None = None
) -> dict[str, Dataset]:
    """The parts of ``stem`` in the folder ``root``: part -> Dataset, sharing one schema. ``files`` (a server's
    ``folder_files``): read exactly these checked, resolved files instead of looking in the folder again."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder")
    if files is not None:
        found = dict(files)
    else:
        found = {part: root / f"{stem}.{part}.libfm" for part in PARTS if (root / f"{stem}.{part}.libfm").is_file()}
    if not found:
        raise ValueError(f"{root}: none of {[f'{stem}.{p}.libfm' for p in PARTS]} is there")
    parts = {part: load_libfm(path, fields, name=f"{stem}.{part}") for part, path in found.items()}
    # positional fields: one schema covering the ids of every part, so the parts share a model
    specs = []
    for j, spec in enumerate(next(iter(parts.values())).schema.fields):
        lo = min(p.schema.fields[j].offset for p in parts.values())
        hi = max(p.schema.fields[j].offset + p.schema.fields[j].size for p in parts.values())
        specs.append(FieldSpec(spec.name, spec.kind, lo, hi - lo))
    schema = Schema(specs)
    for ds in parts.values():
        ds.schema = schema
    return parts


def frappe(root: str | os.PathLike[str]) -> dict[str, Dataset]:
    """Frappe parts found in ``root`` (``frappe.{train,validation,test}.libfm``): part -> Dataset.

    Fields: user, item, daytime, weekday, isweekend, homework, cost, weather, country, city
    (5,382 feature ids); labels ±1 as in the files.
    """
    return _read_parts(root, "frappe", FRAPPE_FIELDS)


def default_frappe_root() -> Path:
    """Frappe's folder when none is given: ``$AFM_FRAPPE`` if set, else ``data/frappe`` relative to the working
    directory, or ``data/`` when only that holds the parts (``python -m afm download frappe`` writes there)."""
    folder = settings.get(FRAPPE_ENV)
    if folder is not None:
        return Path(folder)
    root = Path("data") / "frappe"
    if not (root / "frappe.validation.libfm").is_file() and (root.parent / "frappe.validation.libfm").is_file():
        return root.parent
    return root


def movielens_tag(root: str | os.PathLike[str]) -> dict[str, Dataset]:
    """MovieLens-tag parts found in ``root`` (``ml-tag.{train,validation,test}.libfm``): user, item, tag."""
    return _read_parts(root, "ml-tag", MOVIELENS_TAG_FIELDS)


def download(name: str, root: str | os.PathLike[str], timeout: float = 30.0) -> list[Path]:
    """Fetch ``frappe`` or ``movielens_tag`` (three libFM parts) into ``root``; returns the paths.

    Needs internet; without it, raises ``ConnectionError`` with a one-line reason. Each file is
    written to a temporary name and renamed, so an interrupted download leaves no partial part.
    """
    if name not in _REMOTE:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(_REMOTE)}")
    stem, root = _REMOTE[name], Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for part in PARTS:
        url, target = f"{_SOURCE}/{stem}/{stem}.{part}.libfm", root / f"{stem}.{part}.libfm"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ConnectionError(f"cannot download {name} ({url}): no network or no access ({reason})") from None
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        written.append(target)
    return written


def concat(parts: list[Dataset], name: str = "") -> Dataset:
    """The rows of ``parts`` one after the other, as one ``Dataset`` (the parts must share a schema)."""
    if not parts:
        raise ValueError("nothing to concatenate")
    schema = parts[0].schema
    if any(p.schema is not schema and p.schema.to_dict() != schema.to_dict() for p in parts[1:]):
        raise ValueError("the parts have different schemas")
    return Dataset(
        torch.cat([p.idx for p in parts]),
        torch.cat([p.val for p in parts]),
        torch.cat([p.y for p in parts]),
        schema,
        name or "+".join(p.name for p in parts),
    )


def load_parts(
    spec: str | os.PathLike[str],
    *,
    task: str = "regression",
    label: str | None = None,
    categorical: list[str] | None = None,
    numeric: list[str] | None = None,
    fields: list[str] | None = None,
    schema: Schema | None = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    roots: list[Path] | None = None,
    max_mb: float | None = None,
) -> dict[str, Dataset]:
    """Resolve a data spec (as the CLI's ``--data`` takes it) into ``{"train", "valid", "test"}``.

    ``"sample"`` or ``"salient"`` (``SAMPLES``): a bundled sample (label from ``task``), split by the
    fractions with ``seed``.
    A folder: its ``*.train/validation/test.libfm`` parts; without a train part, the validation
    part is split into train and valid (for a Frappe folder given by the user with only the validation and
    test parts).
    A ``.libfm`` file, or a CSV/Parquet table (``label`` required): split by the fractions.
    ``schema`` (from a checkpoint) encodes tables with a trained model's vocabulary.
    ``"all"`` is every row of the data: for a folder, every row of every part file found
    (train, validation, test, in that order, concatenated); otherwise the whole sample, file or
    table before the split.

    ``roots`` (a server's ``data_roots()``): ``spec`` is a path typed into a server, checked by ``allowed_path``
    (under the roots, within ``max_mb``), a folder's parts read from the files ``folder_files`` checked, and
    every message names paths below their root (``public_message``), never the server's absolute paths.
    """
    options: dict[str, Any] = {
        "task": task, "label": label, "categorical": categorical, "numeric": numeric, "fields": fields,
        "schema": schema, "valid_fraction": valid_fraction, "test_fraction": test_fraction, "seed": seed,
    }  # fmt: skip
    if roots is None:
        return _load_parts(spec, None, **options)
    roots = [Path(r).resolve() for r in roots]
    try:
        path = allowed_path(str(spec), roots, max_mb)
        files = folder_files(path, roots, max_mb) if path.is_dir() else None
        return _load_parts(path, files, **options)
    except (ValueError, OSError) as err:
        raise ValueError(public_message(str(err), roots)) from None


def _load_parts(
    spec: str | os.PathLike[str],
    files: dict[str, Path] | None,
    *,
    task: str,
    label: str | None,
    categorical: list[str] | None,
    numeric: list[str] | None,
    fields: list[str] | None,
    schema: Schema | None,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, Dataset]:
    """``load_parts``' work; ``files``: a server folder's checked part files (``folder_files``)."""
    text = str(spec)
    path = Path(text)
    if text in SAMPLES:
        data = sample("binary" if task == "binary" else "regression", name=text)
        if schema is not None:
            label = _bundled(text).labels["binary" if task == "binary" else "regression"]
            data = load_table(sample_frame(text), label, schema=schema, name=data.name)
    elif path.is_dir():
        stem = _folder_stem(path)
        if stem is None:
            raise ValueError(f"{path}: no frappe.*.libfm or ml-tag.*.libfm parts in this folder")
        layout = FRAPPE_FIELDS if stem == "frappe" else MOVIELENS_TAG_FIELDS
        parts = _read_parts(path, stem, layout, files)
        out: dict[str, Dataset] = {}
        if "train" in parts:
            out["train"] = parts["train"]
            if "validation" in parts:
                out["valid"] = parts["validation"]
        elif "validation" in parts:
            out["train"], out["valid"] = split(parts["validation"], [1 - valid_fraction, valid_fraction], seed)
        if "test" in parts:
            out["test"] = parts["test"]
        out["all"] = concat(list(parts.values()), name=f"{stem}.all")  # every row of every part file
        return out
    elif path.suffix.lower() == ".libfm":
        if schema is not None and all(f.kind == "ids" for f in schema.fields):
            data = load_libfm(path, {f.name: (f.offset, f.offset + f.size - 1) for f in schema.fields})
        else:
            data = load_libfm(path, fields)
    elif path.suffix.lower() in (".csv", ".parquet", ".pq", ".tsv", ".txt"):
        if schema is not None:
            label = label or schema.label
        if not label:
            raise ValueError(f"{path}: a table needs --label (the label column)")
        data = load_table(path, label, categorical, numeric, schema=schema)
    elif not path.exists():
        raise ValueError(f"{text}: no such file or folder (expected 'sample', a .libfm/.csv/.parquet file or a folder)")
    else:
        raise ValueError(f"{path}: unknown data format (expected .libfm, .csv or .parquet, or a folder)")
    return split_parts(data, valid_fraction, test_fraction, seed)


def split_parts(
    data: Dataset, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> dict[str, Dataset]:
    """``{"train", "valid", "test", "all"}``: ``data`` split by the fractions with ``seed`` ("test" only
    when ``test_fraction`` > 0), and the whole of it as "all"."""
    fractions = [1 - valid_fraction - test_fraction, valid_fraction, test_fraction]
    if not (0 < valid_fraction and 0 <= test_fraction and fractions[0] > 0):
        raise ValueError(f"valid and test fractions must leave rows to train on, got {valid_fraction}, {test_fraction}")
    names = ["train", "valid", "test"] if test_fraction > 0 else ["train", "valid"]
    pieces = split(data, [f for f in fractions if f > 0], seed)
    return {**dict(zip(names, pieces, strict=True)), "all": data}


def data_roots() -> list[Path]:
    """The folders a server may read data from: ``$AFM_DATA_ROOTS`` (separated by ``os.pathsep``), else
    the bundled sample's folder and a ``data/`` folder in the working directory."""
    listed = settings.get("AFM_DATA_ROOTS")
    roots = [SAMPLE_DIR, Path("data")] if listed is None else listed
    return [r.resolve() for r in roots]


# a libFM file read from a server path (200 MB; its tensors take about 27x its size); afm/settings.py holds it
MAX_SERVER_FILE_MB: float = settings.default("AFM_MAX_SERVER_FILE_MB")

_REFUSED = (
    "not an allowed data path: give a .libfm file or a folder of parts under this server's data folders "
    "(AFM_DATA_ROOTS)"
)


def _root_of(path: Path, roots: list[Path]) -> Path | None:
    """The root that holds ``path`` (a resolved path: the root itself or anything below it), else None."""
    return next((r for r in roots if path == r or r in path.parents), None)


def shown_path(path: str | os.PathLike[str], roots: list[Path] | None = None) -> str:
    """How a message names a server path: the name of the data folder (root) that holds it and the path below it
    ("data/frappe/frappe.train.libfm"), never the server's absolute path; a path under no root: its file name.
    ``path`` is taken as it is (not resolved: a link is named where it lies)."""
    roots = data_roots() if roots is None else [Path(r).resolve() for r in roots]
    path = Path(path)
    root = _root_of(path, roots)
    if root is None:
        return path.name
    if not root.name:  # the root is "/": the whole disk is allowed, there is nothing to hide
        return path.as_posix()
    return (Path(root.name) / path.relative_to(root)).as_posix()


def public_message(text: str, roots: list[Path] | None = None) -> str:
    """``text`` (an error message) with the absolute path of every data folder replaced by the folder's name,
    as ``shown_path`` names paths: "/srv/afm/data/frappe/x.libfm, line 3: ..." -> "data/frappe/x.libfm, line 3:
    ..."."""
    roots = data_roots() if roots is None else [Path(r).resolve() for r in roots]
    for root in sorted(roots, key=lambda r: len(str(r)), reverse=True):
        if root.name:
            text = re.sub(re.escape(str(root)) + r"(?![\w.-])", root.name.replace("\\", r"\\"), text)
    return text


def _locate(text: str, roots: list[Path]) -> Path:
    """The resolved path that ``text`` names under one of ``roots``: an absolute path as it is; a relative one
    from the working directory, else as a path under a root named by its folder name ("data/frappe"), else
    below each root ("frappe"). Raises the one refusal when none lies under a root."""
    raw = Path(text)
    candidates = [raw]
    if not raw.is_absolute():
        head, rest = (raw.parts[0], raw.parts[1:]) if raw.parts else ("", ())
        candidates = [
            Path.cwd() / raw,
            *(r.joinpath(*rest) for r in roots if r.name == head),
            *(r / raw for r in roots),
        ]
    inside = [p for p in (c.resolve() for c in candidates) if _root_of(p, roots) is not None]
    found = next((p for p in inside if p.exists()), inside[0] if inside else None)
    if found is None:
        raise ValueError(_REFUSED)
    return found


def _limit_mb(max_mb: float | None) -> float:
    return float(settings.get("AFM_MAX_SERVER_FILE_MB")) if max_mb is None else max_mb


def allowed_path(text: str, roots: list[Path] | None = None, max_mb: float | None = None) -> Path:
    """``text`` as a path under one of ``roots`` (default ``data_roots()``), for a server that must not
    expose its disk. Raises ValueError with one message that says nothing about whether the path exists
    when it is outside the roots, or is not a regular file or folder (FIFOs, devices); with a message that names
    the path below its root (``shown_path``) when it is a file over ``max_mb`` (``$AFM_MAX_SERVER_FILE_MB``,
    default 200), or a folder whose part files (``folder_files``) are not all inside the roots, each and
    together within ``max_mb``. Symbolic links are resolved first, the folder's part files' included.

    A relative ``text`` is looked for from the working directory, then under the roots ("data/frappe" or
    "frappe" for ``data/frappe``), so the names messages give can be typed back."""
    roots = data_roots() if roots is None else [Path(r).resolve() for r in roots]
    limit = _limit_mb(max_mb)
    try:
        if not text.strip():
            raise ValueError(_REFUSED)
        path = _locate(text.strip(), roots)
        is_dir, is_file = path.is_dir(), path.is_file()
        size = path.stat().st_size if is_file else 0
    except (OSError, RuntimeError, ValueError):  # ENAMETOOLONG, EACCES, a symlink loop, a NUL byte
        raise ValueError(_REFUSED) from None
    if is_dir:
        folder_files(path, roots, limit)
    elif not is_file:  # missing, FIFO, device, socket
        raise ValueError(_REFUSED)
    elif size > limit * 2**20:
        raise ValueError(f"{shown_path(path, roots)} is over {limit:g} MB, this server's limit for one file")
    return path


def _folder_stem(folder: Path) -> str | None:
    """The data set whose parts a folder holds: "frappe" or "ml-tag" (by its ``*.libfm`` file names), else None."""
    stems = {p.name.split(".")[0] for p in folder.glob("*.libfm")}
    return "frappe" if "frappe" in stems else "ml-tag" if "ml-tag" in stems else None


def folder_files(folder: Path, roots: list[Path] | None = None, max_mb: float | None = None) -> dict[str, Path]:
    """The part files a server folder resolves to (``{stem}.{train,validation,test}.libfm``): part -> the file's
    resolved path, each checked before anything opens it: it must lie under one of ``roots`` (a part that is a
    symbolic link to a file outside them is refused, its target neither opened nor named), be a regular file, and
    be within ``max_mb`` MB, and the parts together within ``max_mb`` MB as well. Messages name paths below their
    root (``shown_path``). An empty dict when the folder holds no frappe or ml-tag parts."""
    roots = data_roots() if roots is None else [Path(r).resolve() for r in roots]
    limit, folder = _limit_mb(max_mb), Path(folder)
    stem = _folder_stem(folder)
    files: dict[str, Path] = {}
    total = 0
    for part in PARTS if stem else ():
        link = folder / f"{stem}.{part}.libfm"
        if not os.path.lexists(link):
            continue
        shown = shown_path(link, roots)
        try:
            target = Path(os.path.realpath(link))
            inside = _root_of(target, roots) is not None
            info = os.stat(target) if inside else None
        except (OSError, RuntimeError, ValueError):
            raise ValueError(f"{shown} is not a readable file") from None
        if not inside:
            raise ValueError(f"{shown} is a link to a file outside the data folders")
        if info is None or not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{shown} is not a regular file")
        if info.st_size > limit * 2**20:
            raise ValueError(f"{shown} is over {limit:g} MB, this server's limit for one file")
        total += info.st_size
        files[part] = target
    if total > limit * 2**20:
        raise ValueError(
            f"{shown_path(folder, roots)}: its parts are {total / 2**20:.3g} MB together, over {limit:g} MB, this "
            "server's limit for one data set"
        )
    return files
