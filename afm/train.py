"""Training and evaluation: ``fit``, ``evaluate``, ``predict``, FM pre-training, DDP.

Losses as in the paper: squared loss for regression (its setting on ±1 labels), log loss for
binary labels (labels > 0 are positive, so ±1 and 0/1 files both work). L2 (lambda) acts on the
attention network's W only. Everything is seeded: the same seed gives the same numbers on CPU.

Distributed data-parallel training needs no extra call: start the script with ``torchrun`` and
call ``fit`` after ``init_distributed()``; each rank then reads its own shard of every global batch.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .config import TrainConfig, overridden
from .data import Dataset
from .metrics import TASKS, evaluate, infer_task, label_range, predict, resolve_task, roc_auc, task_spec  # noqa: F401 (re-exported)
from .model import AFM, FM, build_model

DEFAULTS = TrainConfig()  # the default settings (fit's, the CLI's and the dashboard's starting point)


@dataclass
class Progress:
    """What a ``fit`` callback receives, every few batches and at every epoch end."""

    epoch: int  # 1-based
    epochs: int
    batch: int  # batches done in this epoch
    batches: int  # batches per epoch
    train_loss: float  # running mean of this epoch's training loss so far
    epoch_end: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics (epoch ends)
    history: History | None = None
    model: AFM | FM | None = None  # the model being trained (e.g. to keep a copy of its best weights)

    @property
    def fraction(self) -> float:
        """Fraction of the whole training done, 0..1 (for a progress bar)."""
        return ((self.epoch - 1) + self.batch / max(self.batches, 1)) / max(self.epochs, 1)


@dataclass
class History:
    """Per epoch: ``{"epoch", "train_loss", "valid_<metric>"..., "seconds"}``; how training ended."""

    task: str
    monitor: str
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None  # 0: no epoch beat the starting weights, which were kept
    start: dict[str, float] | None = None  # validation metrics of the weights before epoch 1
    stopped: str = "completed"  # "completed", "early_stopping", "callback", "diverged" or "fm_stopped"
    message: str = ""
    recipe: str = ""  # an AFM's: "from_fm" or "scratch" (what "auto" kept); "" for FM

    @property
    def best(self) -> dict[str, float] | None:
        """The record of the best epoch (by the validation metric), or the last one."""
        if self.best_epoch == 0:
            return self.start
        if self.best_epoch is not None:
            return self.epochs[self.best_epoch - 1]
        return self.epochs[-1] if self.epochs else None

    def to_frame(self) -> Any:
        """The epochs as a DataFrame; ``attrs`` carry ``recipe``, ``stopped`` and ``message``."""
        import pandas as pd

        frame = pd.DataFrame(self.epochs)
        frame.attrs.update(recipe=self.recipe, stopped=self.stopped, message=self.message)
        return frame

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """A history from ``to_dict``'s dict (a checkpoint's); unknown keys are ignored, missing ones default."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "monitor": self.monitor,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "start": self.start,
            "stopped": self.stopped,
            "message": self.message,
            "recipe": self.recipe,
        }


class TrainingDiverged(RuntimeError):
    """Raised inside ``fit`` when the loss stops being finite (caught; reported in History)."""


# ---------------------------------------------------------------------------- distributed


def init_distributed(device: str = "cpu") -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes (gloo on CPU, NCCL on CUDA).

    Returns ``(rank, world_size)``; ``(0, 1)`` when not started by torchrun.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# ---------------------------------------------------------------------------- fit


def _optimizer(config: TrainConfig, params: Any) -> torch.optim.Optimizer:
    """``config.optimizer`` at ``config.lr``, with ``config.optimizer_options()`` (a subclass's knobs)."""
    options = config.optimizer_options()
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=config.lr, **options)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, **options)
    raise ValueError(f"optimizer must be 'adagrad' or 'adam', got {config.optimizer!r}")


def _training_config(config: TrainConfig | None, overrides: dict[str, Any], caller: str) -> TrainConfig:
    """``config`` (default: ``TrainConfig()``) with ``overrides`` (its field names) set; ``TypeError`` names
    a keyword that is not a field, and the fields."""
    if config is None:
        config = TrainConfig()
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"{caller}(): config must be a TrainConfig, got {type(config).__name__}")
    return overridden(config, overrides, caller)


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: AFM | FM,
    train: Dataset,
    valid: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    callback: Callable[[Progress], bool | None] | None = None,
    device: str | torch.device = "cpu",
    progress_every: int | None = None,
    **overrides: Any,
) -> History:
    """Train ``model`` in place as ``config`` says and return its ``History``.

    ``config``: a ``TrainConfig`` (default: ``TrainConfig()``, the settings the CLI and the dashboard start
    from too); ``overrides``: fields of it to set for this call, ``fit(model, train, valid, epochs=3,
    lr=0.01)`` or ``fit(model, train, valid, config, lr=config.finetune_lr)``; a keyword that is not a field
    raises ``TypeError`` naming the fields. ``fit`` reads the training fields (task, epochs, batch_size, lr,
    optimizer with ``config.optimizer_options()``, l2_attention, seed, patience); the model's own (sizes,
    dropouts) were set when it was built, and the AFM recipe is ``train_pair``'s.

    ``task="auto"`` picks "binary" or "regression" from the training labels (``infer_task``).
    ``l2_attention`` is lambda on the attention network's W (AFM only), as in the paper.
    ``patience``: stop when the validation metric (regression: rmse; binary: logloss) has not
    improved for that many epochs. With ``valid`` given, the starting weights are evaluated too
    (``History.start``) and the model ends with the weights of its best validation epoch, or with
    its starting weights when no epoch beat them (``best_epoch == 0``): a warm start such as
    ``AFM.from_fm`` never ends worse on validation than it began. ``callback(progress)`` is called
    every ``progress_every`` batches (default: about 20 times an epoch) and at every epoch end;
    returning True stops training cleanly. A NaN or inf loss stops training, restores the last good
    weights and says so in ``History.stopped == "diverged"`` and ``History.message``.

    Under ``torchrun`` (after ``init_distributed``), each rank trains on its shard of every
    global batch of ``batch_size`` rows and the gradients are averaged (DDP).
    """
    config = _training_config(config, overrides, "fit")
    epochs, batch_size, lr, seed = config.epochs, config.batch_size, config.lr, config.seed
    l2_attention, patience = config.l2_attention, config.patience
    task = resolve_task(config.task, train)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    if len(train) == 0:
        raise ValueError("the training data is empty")
    train.check_fits(model)
    rank, world = _world()
    # dropout masks from the model's own generator: no global RNG, no cross-talk between trainings
    model.dropout_generator = torch.Generator(device=device).manual_seed(seed + rank)
    device = torch.device(device)
    model.to(device)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = _optimizer(config, model.parameters())
    spec = task_spec(task)
    loss_fn = spec.loss_fn()
    idx, val, y = train.idx.to(device), train.val.to(device), spec.target(train.y).to(device)
    all_ones = train.one_hot()  # one-hot data (libFM files): skip scaling by x_i
    n = len(train)
    batches = math.ceil(n / batch_size)
    every = progress_every or max(1, batches // 20)
    shuffle = torch.Generator().manual_seed(seed)  # the same global order on every rank
    monitor = spec.monitor
    history = History(task, monitor)
    best_value, best_state, last_good, waited = None, None, _snapshot(model), 0
    clip_range = label_range(train, task)
    penalised = model.W if l2_attention > 0 and isinstance(model, AFM) else None  # L2 on the attention's W
    if valid is not None:
        start_metrics = evaluate(model, valid, task, label_range=clip_range, device=device)
        start_metrics.pop("n", None)
        history.start = {"epoch": 0, **{f"valid_{k}": v for k, v in start_metrics.items()}}
        if math.isfinite(start_metrics[monitor]):
            best_value, best_state, history.best_epoch = start_metrics[monitor], last_good, 0

    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            net.train()
            order = torch.randperm(n, generator=shuffle).to(device)
            loss_sum, seen, stop = 0.0, 0, False
            try:
                for b in range(batches):
                    rows = order[b * batch_size : (b + 1) * batch_size]
                    if world > 1:  # this rank's contiguous share of the global batch
                        share = math.ceil(len(rows) / world)
                        rows = rows[rank * share : (rank + 1) * share]
                    pred = net(idx[rows], None if all_ones else val[rows])
                    # a rank whose share of a tiny last batch is empty still joins the gradient sync
                    loss = loss_fn(pred, y[rows]) if len(rows) else pred.sum() * 0.0
                    total = loss + l2_attention * penalised.square().sum() if penalised is not None else loss
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    batch_loss = loss.detach()
                    if world > 1:
                        dist.all_reduce(batch_loss)
                        batch_loss /= world
                    value = float(batch_loss)
                    if not math.isfinite(value):
                        raise TrainingDiverged(f"the training loss became {value} in epoch {epoch}, batch {b + 1}")
                    opt.step()
                    loss_sum += value * len(rows)
                    seen += len(rows)
                    if callback is not None and (b + 1) % every == 0 and b + 1 < batches:
                        progress = Progress(
                            epoch, epochs, b + 1, batches, loss_sum / seen, history=history, model=model
                        )
                        stop = bool(callback(progress))
                        stop = _agree(stop, world)
                        if stop:
                            break
            except TrainingDiverged as err:
                model.load_state_dict(last_good)
                history.stopped = "diverged"
                history.message = f"{err}; stopped and kept the last good weights (try a smaller learning rate)"
                break
            record: dict[str, float] = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1)}
            metrics: dict[str, float] = {}
            if valid is not None:
                metrics = evaluate(model, valid, task, label_range=clip_range, device=device)
                metrics.pop("n", None)
                record.update({f"valid_{k}": v for k, v in metrics.items()})
            record["seconds"] = time.perf_counter() - start
            history.epochs.append(record)
            last_good = _snapshot(model)
            if valid is not None:
                value = metrics[monitor]
                improved = best_value is None or spec.better(monitor, value, best_value)
                if improved:
                    best_value, best_state, waited, history.best_epoch = value, last_good, 0, epoch
                else:
                    waited += 1
            if callback is not None:
                progress = Progress(
                    epoch, epochs, batches, batches, record["train_loss"], True, metrics, history, model
                )
                stop = _agree(bool(callback(progress)) or stop, world)
            if stop:
                history.stopped, history.message = "callback", f"stopped on request after epoch {epoch}"
                break
            if patience is not None and valid is not None and waited >= patience:
                history.stopped = "early_stopping"
                history.message = f"no improvement in {monitor} for {patience} epochs"
                break
    except BaseException:
        # Stop in the dashboard (Streamlit's rerun/stop exceptions), KeyboardInterrupt, any error: the
        # model still ends with its best epoch (or its last complete one), never half an epoch.
        history.stopped, history.message = "interrupted", "interrupted; kept the best weights so far"
        model.load_state_dict(best_state if best_state is not None else last_good)
        model.eval()
        raise
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _agree(stop: bool, world: int) -> bool:
    """Under DDP, stop when any rank asks to (every rank must leave the loop together)."""
    if world <= 1:
        return stop
    flag = torch.tensor([1.0 if stop else 0.0])
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


@dataclass
class PretrainedAFM:
    """What ``fit_afm_from_fm`` returns: both models and both histories."""

    afm: AFM
    fm: FM
    history: History
    fm_history: History


def fit_afm_from_fm(
    train: Dataset,
    valid: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    callback: Callable[[Progress], bool | None] | None = None,
    device: str | torch.device = "cpu",
    fm_epochs: int | None = None,
    **overrides: Any,
) -> PretrainedAFM:
    """The paper's recipe: train an FM, start an AFM exactly at it (``AFM.from_fm``), train that.

    ``train_pair`` with recipe "from_fm" (``config``, default ``TrainConfig()``, with ``overrides``: its field
    names, as ``fit`` takes them), returned as one ``PretrainedAFM``. The FM trains for ``pretrain_epochs``
    (``fm_epochs`` is the older name of that setting) and the AFM at ``finetune_lr``; the AFM's validation loss
    starts at the FM's and ``fit`` keeps the start when no epoch improves on it.
    """
    if fm_epochs is not None:
        overrides["pretrain_epochs"] = fm_epochs
    config = _training_config(config, overrides, "fit_afm_from_fm").replace(recipe="from_fm", pretrain=True)
    pair = train_pair(config, train, valid, callback=callback, device=device)
    (fm, fm_history), (model, history) = pair["fm"], pair["afm"]
    assert isinstance(fm, FM) and isinstance(model, AFM)
    return PretrainedAFM(model, fm, history, fm_history)


def _build(kind: str, config: TrainConfig, train: Dataset) -> AFM | FM:
    return build_model(config.model_config(kind, train))


_Model = TypeVar("_Model", AFM, FM)


def _warm(model: _Model, start: AFM | FM | None) -> _Model:
    """``model`` with ``start``'s weights (same shapes), or as it is when ``start`` is None."""
    if start is not None:
        model.load_state_dict(start.state_dict())
    return model


def train_pair(
    config: TrainConfig,
    train: Dataset,
    valid: Dataset | None = None,
    *,
    callback: Callable[[Progress], bool | None] | None = None,
    device: str | torch.device = "cpu",
    fm: tuple[FM, History] | None = None,
    warm: dict[str, AFM | FM] | None = None,
) -> dict[str, tuple[AFM | FM, History]]:
    """FM and AFM trained as ``config`` says: ``{"fm": (model, history), "afm": (model, history)}``.

    ``fm``: an FM already trained with these settings (and its history): it is reused and only the AFM
    is trained (a change of an AFM-only knob such as t retrains nothing else).

    ``warm``: models to start from instead of fresh weights (the dashboard's live mode: a dropout moved, the
    rest the same), kind -> model with the same parameter shapes as ``config`` gives; a warm AFM replaces
    the recipe's start and trains at ``finetune_lr`` (``scratch_lr`` with recipe scratch). ``fit`` evaluates
    the starting weights, so a warm start never ends worse on validation than where it began.

    The FM is trained first. Then the AFM, by ``config.afm_recipe``: "from_fm" starts exactly at that FM
    (``AFM.from_fm``: so the comparison is AFM against the very FM it started from) and trains at
    ``finetune_lr``; "scratch" starts from fresh weights (p from ``p_init``) at ``scratch_lr``; "auto" trains
    both and keeps the AFM with the better validation loss (``History.recipe`` says which, ``History.message``
    both losses; without ``valid`` it keeps "from_fm"). ``callback`` sees every training (``Progress.model``
    says which). When it asks to stop during the FM, the FM keeps its best epoch so far and the AFM is not
    trained: it starts exactly at that FM (``AFM.from_fm``, predictions equal to the FM's) and its history
    says so (``stopped == "fm_stopped"``), so a Stop never leaves a session without an AFM. Either model keeps
    its best validation epoch however training ends.
    """
    common: dict[str, Any] = {"callback": callback, "device": device}
    warm = warm or {}
    if fm is None:
        fm_model = _warm(FM(config.model_config("fm", train)), warm.get("fm"))
        fm_history = fit(fm_model, train, valid, config, epochs=config.fm_epochs, **common)
    else:
        fm_model, fm_history = fm
    result: dict[str, tuple[AFM | FM, History]] = {"fm": (fm_model, fm_history)}
    recipe = config.afm_recipe
    if fm_history.stopped in ("callback", "interrupted"):
        afm = _from_fm(fm_model, config).eval()
        history = History(fm_history.task, fm_history.monitor, start=fm_history.best, best_epoch=0, recipe="from_fm")
        history.stopped = "fm_stopped"
        best = fm_history.best_epoch
        history.message = (
            "stopped during the FM: the AFM was not trained; it starts exactly at the FM"
            + (f"'s best epoch so far (epoch {best})" if best else "")
            + " and predicts as the FM does"
        )
        result["afm"] = (afm, history)
        return result
    if "afm" in warm:
        afm = _warm(AFM(config.model_config("afm", train)), warm["afm"])
        lr = config.scratch_lr if recipe == "scratch" else config.finetune_lr
        history = fit(afm, train, valid, config, lr=lr if lr is not None else config.lr, **common)
        history.recipe = recipe
        result["afm"] = (afm, history)
        return result
    candidates = ("from_fm", "scratch") if recipe == "auto" else (recipe,)
    trained: dict[str, tuple[AFM, History]] = {}
    for name in candidates:
        if name == "from_fm":
            afm, lr = _from_fm(fm_model, config), config.finetune_lr
        else:
            afm, lr = AFM(config.model_config("afm", train)), config.scratch_lr
        history = fit(afm, train, valid, config, lr=lr if lr is not None else config.lr, **common)
        history.recipe = name
        trained[name] = (afm, history)
        if history.stopped == "callback":  # Stop: no second candidate
            break
    chosen = _better(trained, fm_history.monitor) if valid is not None else next(iter(trained))
    afm, history = trained[chosen]
    if recipe == "auto":
        losses = ", ".join(f"{name} {h.best[f'valid_{h.monitor}']:.4f}" for name, (_, h) in trained.items() if h.best)
        history.message = (history.message + "; " if history.message else "") + (
            f"auto: kept {chosen} (validation {fm_history.monitor}: {losses})"
        )
    result["afm"] = (afm, history)
    return result


def _from_fm(fm_model: FM, config: TrainConfig) -> AFM:
    """The AFM that starts exactly at ``fm_model`` with ``config``'s t and dropouts (``AFM.from_fm``)."""
    return AFM.from_fm(
        copy.deepcopy(fm_model), config.attention_factor, config.dropout, config.attention_dropout, seed=config.seed
    )


def _better(trained: dict[str, tuple[AFM, History]], monitor: str) -> str:
    """The recipe whose AFM has the better best validation ``monitor`` (the first on a tie or a missing one)."""
    spec = task_spec(next(iter(trained.values()))[1].task)
    chosen, best = None, None
    for name, (_, history) in trained.items():
        record = history.best
        value = None if record is None else record.get(f"valid_{monitor}")
        if value is None or not math.isfinite(value):
            continue
        if best is None or spec.better(monitor, value, best):
            chosen, best = name, value
    return chosen or next(iter(trained))


def train_model(
    kind: str,
    config: TrainConfig,
    train: Dataset,
    valid: Dataset | None = None,
    *,
    callback: Callable[[Progress], bool | None] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[AFM | FM, History]:
    """Build and train ``kind`` ("afm" or "fm") as ``config`` says; returns ``(model, history)``.

    An AFM is trained by ``config.afm_recipe`` (``train_pair``: with "from_fm" and "auto" an FM is trained
    first); the returned history is the AFM's.
    """
    if kind == "afm" and config.afm_recipe != "scratch":
        return train_pair(config, train, valid, callback=callback, device=device)["afm"]
    model = _build(kind, config, train)
    lr = config.scratch_lr if kind == "afm" else config.lr
    history = fit(model, train, valid, config, lr=lr, callback=callback, device=device)
    if kind == "afm":
        history.recipe = "scratch"
    return model, history
