"""What a task means, in one table: loss, metrics, the monitored metric, probabilities, labels.

``TASKS["regression"]``: squared loss; RMSE and MAE with predictions clipped to the training labels'
range (the paper's evaluation); early stopping watches RMSE.
``TASKS["binary"]``: log loss on logits; AUC, log loss and accuracy; labels > 0 are positive (so ±1
and 0/1 files both work); early stopping watches log loss.

``evaluate``, ``predict`` and ``roc_auc`` live here; the trainer, the CLI, the reproduction and the
dashboard's pages ask this module instead of writing a sigmoid, a metric name or a label rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .data import Dataset

# how each metric is written for people, and whether smaller is better
METRIC_LABELS = {"rmse": "RMSE", "mae": "MAE", "auc": "AUC", "logloss": "log loss", "accuracy": "accuracy"}
LOWER_IS_BETTER = {"rmse": True, "mae": True, "logloss": True, "auc": False, "accuracy": False}


@dataclass(frozen=True)
class Task:
    """One row of the task table."""

    name: str
    loss: str  # what training minimises, in words
    metrics: tuple[str, ...]  # what ``evaluate`` returns (besides ``n``), headline first
    monitor: str  # the validation metric early stopping and model selection watch

    @property
    def headline(self) -> str:
        """The metric shown first (RMSE, AUC)."""
        return self.metrics[0]

    @property
    def binary(self) -> bool:
        return self.name == "binary"

    def loss_fn(self) -> nn.Module:
        return nn.BCEWithLogitsLoss() if self.binary else nn.MSELoss()

    def target(self, y: Tensor) -> Tensor:
        """The training target: 0/1 for binary (labels > 0 are positive), the label itself otherwise."""
        return (y > 0).float() if self.binary else y

    def positive(self, y: np.ndarray | Tensor | float) -> np.ndarray | Tensor | bool:
        """The positive-label rule (binary): labels > 0."""
        return y > 0

    def probability(self, prediction: np.ndarray | Tensor | float) -> np.ndarray | Tensor | float:
        """sigmoid(prediction) for binary (a logit becomes a probability); regression values pass through."""
        if not self.binary:
            return prediction
        if isinstance(prediction, Tensor):
            return torch.sigmoid(prediction)
        if isinstance(prediction, np.ndarray):
            return 1.0 / (1.0 + np.exp(-np.clip(prediction, -50, 50)))
        return 1.0 / (1.0 + math.exp(-min(max(float(prediction), -50.0), 50.0)))

    def sample_loss(self, prediction: float, label: float) -> float:
        """One row's loss: squared error, or the log loss of the probability of its label."""
        if not self.binary:
            return (prediction - label) ** 2
        p = float(self.probability(prediction))
        return -math.log(max(p if self.positive(label) else 1.0 - p, 1e-12))

    def label(self, metric: str) -> str:
        return METRIC_LABELS.get(metric, metric)

    def better(self, metric: str, a: float, b: float) -> bool:
        """True when ``a`` is better than ``b`` for ``metric``."""
        return a < b if LOWER_IS_BETTER[metric] else a > b


TASKS: dict[str, Task] = {
    "regression": Task("regression", "squared loss", ("rmse", "mae"), "rmse"),
    "binary": Task("binary", "log loss", ("auc", "logloss", "accuracy"), "logloss"),
}


def task_spec(task: str) -> Task:
    """``TASKS[task]``, or a ValueError naming the tasks there are."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    return TASKS[task]


def infer_task(data: Dataset) -> str:
    """ "binary" when the labels take at most two values among -1, 0 and 1 (Frappe's ±1, 0/1 clicks),
    else "regression"."""
    values = set(torch.unique(data.y).tolist()) if len(data) else set()
    return "binary" if values and len(values) <= 2 and values <= {-1.0, 0.0, 1.0} else "regression"


def resolve_task(task: str, data: Dataset) -> str:
    """``task`` itself, or ``infer_task(data)`` for "auto"; raises on anything else."""
    if task == "auto":
        return infer_task(data)
    return task_spec(task).name


def label_range(data: Dataset, task: str = "regression") -> tuple[float, float] | None:
    """The range regression predictions are clipped to (the training labels'), None for binary."""
    return None if task_spec(task).binary else (float(data.y.min()), float(data.y.max()))


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``; tied scores count half); NaN with one
    class only or a NaN score, where it is undefined."""
    from sklearn.metrics import roc_auc_score  # on first use: `import afm` stays light

    positive = np.asarray(positive).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if positive.all() or not positive.any() or np.isnan(scores).any():
        return float("nan")
    # ±inf logits (a model that blew up) still rank: the AUC reads only the order, which clipping keeps
    finite = np.finfo(np.float64).max
    return float(roc_auc_score(positive, np.clip(scores, -finite, finite)))


@torch.inference_mode()
def predict(model: nn.Module, data: Dataset, batch_size: int = 2048, device: str | torch.device = "cpu") -> Tensor:
    """Raw predictions [N] (regression values or logits) in eval mode, on the CPU.

    With AFM's fused C kernel the batch size hardly matters from 2,048 rows up (1.7M rows/s on
    Frappe here, 2 threads). Without it (PyTorch kernels), 2,048 rows keep each batch's [B, P, k]
    pair tensor in the CPU's cache: 2.4x faster than batches of 30,000.
    """
    was_training = model.training
    model.eval()
    all_ones = data.one_hot()  # one-hot data: skip scaling by x_i
    out = [
        model(
            data.idx[s : s + batch_size].to(device),
            None if all_ones else data.val[s : s + batch_size].to(device),
        )
        .float()
        .cpu()
        for s in range(0, len(data), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def metrics_of(pred: np.ndarray, y: np.ndarray, task: str, label_range: tuple[float, float] | None = None) -> dict:
    """The task's metrics of raw predictions ``pred`` against labels ``y`` (both [N]); also ``n``."""
    spec = task_spec(task)
    if not spec.binary:
        lo, hi = label_range if label_range is not None else (float(y.min()), float(y.max()))
        err = np.clip(pred, lo, hi) - y
        return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "n": float(len(y))}
    positive = np.asarray(spec.positive(y), dtype=bool)
    p = np.clip(spec.probability(pred), 1e-7, 1 - 1e-7)
    logloss = -np.mean(np.where(positive, np.log(p), np.log(1 - p)))
    return {
        "auc": roc_auc(pred, positive),
        "logloss": float(logloss),
        "accuracy": float(np.mean((pred > 0) == positive)),
        "n": float(len(y)),
    }


def evaluate(
    model: nn.Module,
    data: Dataset,
    task: str = "regression",
    *,
    label_range: tuple[float, float] | None = None,
    batch_size: int = 2048,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Metrics of ``model`` on ``data`` (``TASKS[task].metrics``, plus ``n``, the number of rows).

    regression: ``rmse`` and ``mae``, with predictions clipped to the label range first, as the
    paper's evaluation does (``label_range``, default: the range of ``data.y``);
    binary: ``auc``, ``logloss`` and ``accuracy`` (labels > 0 are positive; logits > 0 predict
    positive).
    """
    task_spec(task)
    if len(data) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    pred = predict(model, data, batch_size, device).double().numpy()
    return metrics_of(pred, data.y.double().numpy(), task, label_range)
