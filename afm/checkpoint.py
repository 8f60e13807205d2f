"""Save and load models: one file of plain tensors and plain Python types.

A checkpoint is a dict ``{"format": "afm-checkpoint", "version": 1, "config": {...},
"state_dict": {name: Tensor}, "metadata": {...}}`` written with ``torch.save`` to a temporary
file beside the target and renamed over it, so a crash mid-save never leaves a broken file.
Loading uses ``torch.load(..., weights_only=True)``: no code in a file is ever run.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .config import MODEL_KINDS
from .model import AFM, FM, ModelConfig, build_model

FORMAT = "afm-checkpoint"
VERSION = 1

_UMASK = os.umask(0o022)  # read once at import: os.umask is process-wide, unsafe to flip in threads
os.umask(_UMASK)
_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError unless ``value`` is made only of plain types (and tensors)."""
    if isinstance(value, (*_PLAIN_SCALARS, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: dict keys must be str or int, got {type(key).__name__}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where}: {type(value).__name__} is not a plain type; "
        "checkpoint metadata may hold str, int, float, bool, None, lists, dicts and tensors"
    )


class SaveError(OSError):
    """A file could not be written (disk full, no permission, ...); ``str`` is one line naming the file."""

    def __str__(self) -> str:
        return str(self.strerror)


def save_error(target: str | os.PathLike[str], err: BaseException) -> SaveError:
    """``err`` (an ``OSError``, or the ``RuntimeError`` torch.save makes of one) as a one-line ``SaveError``.

    torch's C++ writer reports a full disk as e.g. "PytorchStreamWriter failed writing file data/0: file
    write failed"; any message that says "No space left on device" keeps errno ENOSPC.
    """
    if isinstance(err, SaveError):
        return err
    text = str(err.strerror) if isinstance(err, OSError) and err.strerror else str(err)
    code = err.errno if isinstance(err, OSError) and err.errno else None
    if "No space left on device" in str(err) or code == errno.ENOSPC:
        code, text = errno.ENOSPC, "No space left on device"
    reason = " ".join(text.split())[:200] or type(err).__name__
    return SaveError(code or errno.EIO, f"cannot write {target}: {reason}")


STALE_SECONDS = 3600.0  # a temporary file this old belongs to a save that was killed, not a running one
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # what atomic_write's mkstemp names: .<name>.XXXXXXXX.tmp


def remove_stale_temps(folder: str | os.PathLike[str], name: str | None = None, age: float = STALE_SECONDS) -> int:
    """Delete ``atomic_write``'s temporary files in ``folder`` (for target ``name`` only, if given) that
    are older than ``age`` seconds; returns how many. Other files and younger temporaries are left alone."""
    folder, now, removed = Path(folder), time.time(), 0
    pattern = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp") if name else _TEMP_NAME
    try:
        candidates = [p for p in folder.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return 0
    for p in candidates:
        try:
            if p.is_file() and not p.is_symlink() and now - p.stat().st_mtime > age:
                p.unlink()
                removed += 1
        except OSError:
            pass  # gone already, or not ours to remove: never fail a save over a stale file
    return removed


def atomic_write(path: str | os.PathLike[str], write: Any) -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on POSIX: readers see the old file or the new one, never a part. A failed
    write (a full disk, say) removes the temporary file, leaves any old ``path`` as it was and raises
    ``SaveError`` (an ``OSError``) with one line naming ``path``. Temporaries of ``path`` left by a killed
    save more than an hour ago are removed first.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent, path.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise save_error(path, err) from err
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def checkpoint_dict(model: AFM | FM, **metadata: Any) -> dict[str, Any]:
    """The plain dict that ``save_model`` writes (tensors copied to the CPU)."""
    _check_plain(metadata, "metadata")
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {name: t.detach().cpu().clone() for name, t in model.state_dict().items()},
        "metadata": metadata,
    }


def save_model(model: AFM | FM, path: str | os.PathLike[str], **metadata: Any) -> Path:
    """Write ``model`` and ``metadata`` (plain types only) to ``path`` atomically; returns the path."""
    payload = checkpoint_dict(model, **metadata)
    return atomic_write(path, lambda f: torch.save(payload, f))


def model_from_checkpoint(payload: Any, source: str = "checkpoint") -> tuple[AFM | FM, dict[str, Any]]:
    """Rebuild a model from an already loaded checkpoint dict; ``ValueError`` naming ``source``."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{source}: not an afm checkpoint (no 'format': '{FORMAT}' entry)")
    if payload.get("version") != VERSION:
        raise ValueError(
            f"{source}: checkpoint version {payload.get('version')!r} is not supported (expected {VERSION})"
        )
    config, state, metadata = payload.get("config"), payload.get("state_dict"), payload.get("metadata", {})
    if not isinstance(config, dict) or not isinstance(state, dict) or not isinstance(metadata, dict):
        raise ValueError(f"{source}: checkpoint is missing its config, state_dict or metadata dict")
    _check_sizes(config, state, source)  # before building: a forged config must not allocate terabytes
    try:
        model = build_model(ModelConfig.from_dict(config))
        model.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{source}: checkpoint does not match its config: {first}") from None
    _check_finite(model, source)
    model.eval()
    return model, metadata


def _check_finite(model: AFM | FM, source: str) -> None:
    """Refuse a model with NaN or infinite weights: every prediction it made would be NaN (or infinite), silently.
    Named by the model's own parameter names (the file's keys matched them already)."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            bad = int(tensor.numel() - torch.isfinite(tensor).sum())
            if bad:
                raise ValueError(
                    f"{source}: parameter {name} holds {bad:,} non-finite values (NaN or infinity): "
                    "this checkpoint cannot predict"
                )


MAX_FIELDS = 10_000  # P = F(F-1)/2 pairs; beyond this a checkpoint is not a plausible AFM


def _check_sizes(config: dict[str, Any], state: dict[str, Any], source: str) -> None:
    """The config's sizes must be plain ints that the stored tensors actually have."""
    given = {name: config.get(name) for name in ("n_features", "n_fields", "embed_dim")}
    sizes = {name: v for name, v in given.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 1}
    if len(sizes) < len(given):
        raise ValueError(f"{source}: checkpoint config sizes must be positive integers, got {given}")
    if sizes["n_fields"] > MAX_FIELDS:
        raise ValueError(f"{source}: n_fields {sizes['n_fields']} is more than {MAX_FIELDS}")
    V = state.get("V")
    if not isinstance(V, torch.Tensor) or tuple(V.shape) != (sizes["n_features"], sizes["embed_dim"]):
        shape = tuple(V.shape) if isinstance(V, torch.Tensor) else None
        raise ValueError(
            f"{source}: checkpoint does not match its config: V has shape {shape}, "
            f"expected ({sizes['n_features']}, {sizes['embed_dim']})"
        )
    if MODEL_KINDS.get(str(config.get("kind"))):  # an attention network: W is t x k
        W, t = state.get("W"), config.get("attention_factor")
        if not isinstance(W, torch.Tensor) or not isinstance(t, int) or tuple(W.shape) != (t, sizes["embed_dim"]):
            raise ValueError(f"{source}: checkpoint does not match its config: W does not have shape (t, k)")


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[AFM | FM, dict[str, Any]]:
    """Load a checkpoint written by ``save_model``: ``(model in eval mode, metadata)``.

    Raises ``ValueError`` naming ``path`` for a file that is missing, not a checkpoint,
    truncated, carrying pickled objects (which are refused, never run), or holding NaN or infinite weights
    (the message names the parameter).
    """
    source = str(path)
    if not Path(path).is_file():
        raise ValueError(f"{source}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to unpickle safely means "not ours"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            reason = "it carries pickled Python objects, which are refused"
        raise ValueError(f"{source}: not a readable afm checkpoint ({reason[:200]})") from None
    return model_from_checkpoint(payload, source)
