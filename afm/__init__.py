"""afm: Attentional Factorization Machines (Xiao et al., IJCAI 2017) in PyTorch.

Public API::

    from afm import AFM, FM, Explanation, paper_parameters, save_model, load_model
"""

from . import checkpoint, datasets, explain, plots, runs, sweeps
from .checkpoint import load_model, save_model
from .data import Dataset, FieldSpec, Schema, load_libfm, load_table, split
from .explain import explain_dataset, feature_pair_frame, field_pair_frame, planted_recovery
from .model import AFM, FM, Explanation, ModelConfig, build_model, paper_parameters
from .train import (
    History,
    PretrainedAFM,
    Progress,
    evaluate,
    fit,
    fit_afm_from_fm,
    init_distributed,
    label_range,
    predict,
)

__all__ = [
    "AFM",
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
    "plots",
    "sweeps",
    "evaluate",
    "explain_dataset",
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
    "split",
    "ModelConfig",
    "build_model",
    "load_model",
    "paper_parameters",
    "save_model",
]
__version__ = "0.1.0"
