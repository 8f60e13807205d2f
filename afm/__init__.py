"""afm: Attentional Factorization Machines (Xiao et al., IJCAI 2017) in PyTorch.

Public API::

    from afm import AFM, FM, Explanation, paper_parameters, save_model, load_model

Every name and submodule here loads on first use (PEP 562 ``__getattr__``): ``import afm`` itself imports
neither torch nor pandas, plotly or streamlit, so the command line starts quickly and a script pays only for
what it uses (``afm.AFM`` loads torch; ``afm.plots`` loads plotly and pandas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Where each public name is defined; __all__ (a literal, for linters) and the TYPE_CHECKING imports at the end
# (for type checkers) say the same, and tests/test_standalone.py holds the three equal.
_HOMES: dict[str, tuple[str, ...]] = {
    "attention": ("AttentionEffect", "attention_effect"),
    "checkpoint": ("load_model", "save_model"),
    "config": ("ModelConfig", "TrainConfig"),
    "data": ("Dataset", "FieldSpec", "Schema", "guess_columns", "load_libfm", "load_table", "read_table", "split"),
    "explain": ("explain_dataset", "feature_pair_frame", "field_pair_frame", "planted_recovery"),
    "faithfulness": ("attention_agreement", "deletion_curve", "seed_stability"),
    "metrics": ("TASKS", "evaluate", "infer_task", "label_range", "predict", "roc_auc"),
    "model": ("AFM", "FM", "Explanation", "build_model", "paper_parameters", "register_model"),
    "summary": ("Summary", "summarize"),
    "train": (
        "History",
        "PretrainedAFM",
        "Progress",
        "fit",
        "fit_afm_from_fm",
        "init_distributed",
        "train_model",
        "train_pair",
    ),
}
_NAMES = {name: module for module, names in _HOMES.items() for name in names}
# afm.<module> works for every module of the package: the public ones (in __all__) and the others
_PUBLIC_MODULES = (
    *("attention", "checkpoint", "config", "datasets", "explain", "faithfulness", "metrics", "plots", "runs"),
    *("summary", "sweeps"),
)
_SUBMODULES = (*_PUBLIC_MODULES, "cli", "data", "kernels", "model", "native", "reproduce", "settings", "train")

__all__ = [
    "AFM",
    "AttentionEffect",
    "attention",
    "attention_effect",
    "FM",
    "Dataset",
    "Explanation",
    "FieldSpec",
    "Schema",
    "History",
    "PretrainedAFM",
    "Progress",
    "checkpoint",
    "datasets",
    "explain",
    "faithfulness",
    "summary",
    "attention_agreement",
    "deletion_curve",
    "seed_stability",
    "plots",
    "sweeps",
    "evaluate",
    "explain_dataset",
    "summarize",
    "Summary",
    "feature_pair_frame",
    "field_pair_frame",
    "fit",
    "fit_afm_from_fm",
    "init_distributed",
    "label_range",
    "planted_recovery",
    "predict",
    "runs",
    "load_libfm",
    "load_table",
    "read_table",
    "guess_columns",
    "split",
    "ModelConfig",
    "TrainConfig",
    "TASKS",
    "config",
    "metrics",
    "infer_task",
    "roc_auc",
    "train_model",
    "train_pair",
    "build_model",
    "register_model",
    "load_model",
    "paper_parameters",
    "save_model",
]


def __getattr__(name: str) -> Any:
    """``afm.<name>``: the submodule, or the name from its home module, imported now (then cached)."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)  # the import also sets afm.<name>
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
        globals()[name] = value  # later look-ups do not come back here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *_NAMES})


if TYPE_CHECKING:
    from . import attention, checkpoint, config, datasets, explain, faithfulness, metrics, plots, runs, summary, sweeps
    from .attention import AttentionEffect, attention_effect
    from .checkpoint import load_model, save_model
    from .config import ModelConfig, TrainConfig
    from .data import Dataset, FieldSpec, Schema, guess_columns, load_libfm, load_table, read_table, split
    from .explain import explain_dataset, feature_pair_frame, field_pair_frame, planted_recovery
    from .faithfulness import attention_agreement, deletion_curve, seed_stability
    from .metrics import TASKS, evaluate, infer_task, label_range, predict, roc_auc
    from .model import AFM, FM, Explanation, build_model, paper_parameters, register_model
    from .summary import Summary, summarize
    from .train import (
        History,
        PretrainedAFM,
        Progress,
        fit,
        fit_afm_from_fm,
        init_distributed,
        train_model,
        train_pair,
    )
