"""afm: Attentional Factorization Machines (Xiao et al., IJCAI 2017) in PyTorch.

Public API::

    from afm import AFM, FM, Explanation, paper_parameters, save_model, load_model
"""

from . import datasets
from .checkpoint import load_model, save_model
from .data import Dataset, FieldSpec, Schema, load_libfm, load_table, split
from .model import AFM, FM, Explanation, ModelConfig, build_model, paper_parameters

__all__ = [
    "AFM",
    "FM",
    "Dataset",
    "Explanation",
    "FieldSpec",
    "Schema",
    "datasets",
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
