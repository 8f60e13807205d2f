"""Run folders: one training (one or more models) saved so it can be listed, reloaded, compared.

    runs/<name>/
        <model>.pt      checkpoints (e.g. afm.pt, fm.pt), the format of ``save_model``
        config.json     the settings that produced them
        metrics.json    {model: {metric: value}}
        history.csv     per-epoch history, one ``model`` column

The runs directory defaults to ``runs/`` (git-ignored) or ``$AFM_RUNS_DIR``. Names are sanitised
and a run folder is written under a temporary name and renamed, so nothing lands outside the
runs directory and no half-written run is ever listed. A save that was killed leaves a
``.incomplete-*`` folder (or an ``atomic_write`` temporary); listing or saving runs removes those
that are more than an hour old.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from . import settings
from .checkpoint import STALE_SECONDS, SaveError, load_model, remove_stale_temps, save_error, save_model
from .model import AFM, FM
from .train import History

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def runs_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The runs directory: ``path``, else ``$AFM_RUNS_DIR``, else ``runs/``."""
    return Path(path or settings.get("AFM_RUNS_DIR"))


def safe_run_name(name: str) -> str:
    """A name that is one plain folder name: letters, digits, '.', '_' and '-' only, 1-80 long."""
    cleaned = _SAFE.sub("-", str(name)).strip(".-_")[:80]
    if not cleaned:
        raise ValueError(f"run name {name!r} has no usable characters (use letters, digits, '.', '_', '-')")
    return cleaned


_INCOMPLETE = re.compile(r"\.incomplete-[a-z0-9_]{8}")  # what save_run's mkdtemp names


def clean_stale(root: str | os.PathLike[str] | None = None, age: float = STALE_SECONDS) -> int:
    """Remove what killed saves left in the runs directory: ``.incomplete-XXXXXXXX`` folders whose newest
    file is older than ``age`` seconds, and ``atomic_write`` temporaries that old in it and in its run
    folders. Returns how many were removed; nothing else is touched, and errors are ignored."""
    root, now, removed = runs_dir(root), time.time(), 0
    try:
        entries = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_symlink() or not entry.is_dir():
                continue
            if _INCOMPLETE.fullmatch(entry.name):
                newest = max([entry.stat().st_mtime] + [p.lstat().st_mtime for p in entry.rglob("*")])
                if now - newest > age:
                    shutil.rmtree(entry)
                    removed += 1
            elif not entry.name.startswith("."):
                removed += remove_stale_temps(entry, age=age)
        except OSError:
            continue
    return removed + remove_stale_temps(root, age=age)


def save_run(
    models: dict[str, tuple[AFM | FM, History | pd.DataFrame | None]],
    *,
    name: str | None = None,
    root: str | os.PathLike[str] | None = None,
    config: dict[str, Any] | None = None,
    metrics: dict[str, dict[str, float]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a run folder and return its path; an existing name gets a numeric suffix.

    ``models`` maps a short key ("afm", "fm") to ``(model, history)`` (a ``History`` or its
    per-epoch frame); ``metadata`` (plain types,
    e.g. the schema and task) goes into every checkpoint. A failed write (a full disk, say) leaves no
    folder behind and raises ``SaveError`` (an ``OSError``) with one line naming the run.
    """
    root = runs_dir(root)
    base = safe_run_name(name or time.strftime("%Y%m%d-%H%M%S") + "-" + "-".join(models))
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        clean_stale(root)
        tmp = Path(tempfile.mkdtemp(prefix=".incomplete-", dir=root))
        histories = []
        for key, (model, history) in models.items():
            key = safe_run_name(key)
            meta = dict(metadata or {})
            meta["metrics"] = (metrics or {}).get(key, {})
            if isinstance(history, History):
                meta["history"] = history.to_dict()
                histories.append(history.to_frame().assign(model=key))
            elif history is not None:  # a per-epoch frame, as the dashboard keeps it
                meta["history"] = {"epochs": history.to_dict("records")}
                histories.append(history.assign(model=key))
            save_model(model, tmp / f"{key}.pt", **meta)
        (tmp / "config.json").write_text(json.dumps(config or {}, indent=2, sort_keys=True, default=str) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2, sort_keys=True) + "\n")
        if histories:
            pd.concat(histories, ignore_index=True).to_csv(tmp / "history.csv", index=False)
        target, n = root / base, 1
        while True:
            try:
                os.rename(tmp, target)  # atomic, and refuses an existing non-empty folder
                break
            except OSError:
                if not target.exists():
                    raise
                n += 1
                target = root / f"{base}-{n}"
        return target
    except (OSError, RuntimeError) as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        cause = err.__cause__ if isinstance(err, SaveError) and err.__cause__ else err
        raise save_error(root / base, cause) from err
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def list_runs(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per complete run: ``name``, ``path``, ``created`` (local time), ``models``, and
    ``<model>_<metric>`` columns from metrics.json. Newest first."""
    root = runs_dir(root)
    clean_stale(root)
    rows = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        if not folder.is_dir() or folder.name.startswith(".") or not (folder / "metrics.json").is_file():
            continue
        try:
            metrics = json.loads((folder / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        row: dict[str, Any] = {
            "name": folder.name,
            "path": str(folder),
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(folder.stat().st_mtime)),
            "models": ",".join(sorted(p.stem for p in folder.glob("*.pt"))),
        }
        for key, values in metrics.items() if isinstance(metrics, dict) else []:
            for metric, value in values.items() if isinstance(values, dict) else []:
                row[f"{key}_{metric}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["name", "path", "created", "models"])
    return frame.sort_values("created", ascending=False, kind="stable").reset_index(drop=True) if rows else frame


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"models": {key: (model, metadata)}, "config": dict, "metrics": dict, "history": DataFrame|None}``."""
    folder = Path(path)
    if not (folder / "metrics.json").is_file():
        raise ValueError(f"{folder}: not a run folder (no metrics.json)")
    try:
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        metrics = json.loads((folder / "metrics.json").read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{folder}: broken JSON ({err})") from None
    models = {p.stem: load_model(p) for p in sorted(folder.glob("*.pt"))}
    if not models:
        raise ValueError(f"{folder}: the run holds no checkpoint")
    history = pd.read_csv(folder / "history.csv") if (folder / "history.csv").is_file() else None
    return {"models": models, "config": config, "metrics": metrics, "history": history}
