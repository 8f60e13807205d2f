"""afm: Attentional Factorization Machines (Xiao et al., IJCAI 2017) in PyTorch.

Public API::

    from afm import AFM, FM, Explanation, paper_parameters, save_model, load_model
"""

from . import attention, checkpoint, config, datasets, explain, faithfulness, metrics, plots, runs, summary, sweeps
from .attention import AttentionEffect, attention_effect
from .checkpoint import load_model, save_model
from .config import ModelConfig, TrainConfig
from .data import Dataset, FieldSpec, Schema, guess_columns, load_libfm, load_table, read_table, split
from .explain import explain_dataset, feature_pair_frame, field_pair_frame, planted_recovery
from .faithfulness import attention_agreement, deletion_curve, seed_stability
from .metrics import TASKS, evaluate, infer_task, label_range, predict, roc_auc
from .model import AFM, FM, Explanation, build_model, paper_parameters
from .summary import Summary, summarize
from .train import History, PretrainedAFM, Progress, fit, fit_afm_from_fm, init_distributed, train_model, train_pair

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
    "load_model",
    "paper_parameters",
    "save_model",
]
__version__ = "0.1.0"
