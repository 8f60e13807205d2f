"""The two configurations: ``ModelConfig`` (what a model is) and ``TrainConfig`` (how it is trained).

``TrainConfig`` is the one place a training knob is declared. Each field carries its own description
(``knob(...)`` metadata: label, help, kind, choices or bounds, whether live mode retrains on it), and
everything else is derived from it:

- ``fit()``'s keyword defaults (``afm.train``),
- ``python -m afm train``'s flags (``afm.cli`` calls ``knobs()``),
- the dashboard's widgets (``app/knobs.py`` calls ``knobs()``),
- checkpoints and run folders (``TrainConfig.to_dict``).

A field without knob metadata makes ``knobs()`` raise, so a new setting cannot silently miss its flag
or widget. To add a knob: add a field here with ``knob(...)``; use it in ``afm/train.py``.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import Dataset

P_INITS = ("ones", "normal")
# How an AFM is trained (``TrainConfig.recipe``): "from_fm" starts exactly at the trained FM (AFM.from_fm) and
# fine-tunes it at ``finetune_lr``; "scratch" trains a fresh AFM (p from ``p_init``) at ``scratch_lr``; "auto"
# trains both from the one FM and keeps the one with the better validation loss.
RECIPES = ("from_fm", "scratch", "auto")
RECIPE_WORDS = {"from_fm": "from FM (exact start)", "scratch": "from scratch", "auto": "auto (better on validation)"}
OPTIMIZERS = ("adam", "adagrad")
KNOB_KINDS = ("int", "positive_int", "float", "positive_float", "fraction", "bool", "choice")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model; checkpoints store it as a plain dict.

    ``AFM(config)`` / ``FM(config)`` take it; ``afm.build_model(config)`` picks the class by ``kind``.
    """

    kind: str  # "afm" or "fm"
    n_features: int
    n_fields: int
    embed_dim: int = 16
    attention_factor: int = 16  # ignored by FM
    dropout: float = 0.0
    attention_dropout: float = 0.0  # ignored by FM
    seed: int = 0
    p_init: str = "ones"  # AFM's p at the start: "ones" (the authors' code) or "normal" (see AFM)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


def knob(
    default: Any,
    label: str,
    help: str,  # noqa: A002 - the argparse/streamlit word
    kind: str,
    *,
    choices: tuple[Any, ...] | None = None,
    bounds: tuple[float, float] | None = None,
    live: bool = False,
    flags: tuple[str, ...] = (),
    widget: bool = True,
    afm_only: bool = False,
) -> Any:
    """A ``TrainConfig`` field with the metadata that its CLI flag and dashboard widget are built from.

    ``kind``: one of ``KNOB_KINDS``; ``choices``: the allowed values (a choice knob) or the values a
    slider offers; ``bounds``: (min, max) for a number; ``live``: live mode retrains when it changes
    (t and the dropouts); ``flags``: extra short flags (``-k``); ``widget``: False for a setting the
    dashboard sets itself (the task, from the data section); ``afm_only``: FM ignores it, so changing
    it retrains the AFM only.
    """
    if kind not in KNOB_KINDS:
        raise ValueError(f"knob kind must be one of {KNOB_KINDS}, got {kind!r}")
    meta = {
        "label": label,
        "help": help,
        "kind": kind,
        "choices": choices,
        "bounds": bounds,
        "live": live,
        "flags": flags,
        "widget": widget,
        "afm_only": afm_only,
    }
    return field(default=default, metadata={"knob": meta})


@dataclass
class TrainConfig:
    """Every knob of one training; the single source of the default settings.

    The defaults were chosen on validation data (Frappe's and the bundled sample's) by
    ``benchmarks/afm_vs_fm.py`` and the runs docs/defaults.md describes. The default AFM
    recipe is the paper's: train an FM (``lr``, ``dropout``, ``batch_size``), start an AFM exactly at
    it (``AFM.from_fm``) and train that with ``finetune_lr``; ``fit`` keeps the FM start when no epoch
    improves the validation loss, so the default AFM is never worse than its FM on validation.
    """

    task: str = knob(
        "auto",
        "Task",
        "loss and metrics; auto: binary when the labels are two of -1/0/1, else regression",
        "choice",
        choices=("auto", "regression", "binary"),
        widget=False,
    )
    embed_dim: int = knob(
        16,
        "Embedding size k",
        "embedding size k",
        "positive_int",
        choices=(2, 4, 8, 16, 32, 64, 128, 256),
        flags=("-k",),
    )
    attention_factor: int = knob(
        16,
        "Attention factor t",
        "attention factor t: the attention network's hidden size",
        "positive_int",
        choices=(1, 2, 4, 8, 16, 32, 64),
        live=True,
        flags=("-t",),
        afm_only=True,
    )
    dropout: float = knob(
        0.2,
        "Dropout on the interaction layer",
        "dropout on the pooled interaction vector",
        "fraction",
        bounds=(0.0, 0.9),
        live=True,
    )
    # 0.1 stopped every FM-started AFM on the sample from improving on its FM (docs/defaults.md)
    attention_dropout: float = knob(
        0.0,
        "Dropout on the attention weights",
        "dropout on the attention weights a_ij",
        "fraction",
        bounds=(0.0, 0.9),
        live=True,
        afm_only=True,
    )
    p_init: str = knob(
        "normal",
        "p at a fresh start",
        "AFM's projection p without pre-training: ones (the authors' "
        "code) or a Glorot normal (deepctr-torch); moot with pre-training, which sets p = P",
        "choice",
        choices=P_INITS,
        afm_only=True,
    )
    l2_attention: float = knob(
        0.0,
        "λ: L2 on the attention network's W",
        "lambda: L2 on the attention network's W",
        "float",
        bounds=(0.0, 100.0),
        afm_only=True,
    )
    lr: float = knob(
        0.01,
        "Learning rate",
        "learning rate (FM, and AFM without pre-training)",
        "positive_float",
        choices=(0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2),
    )
    optimizer: str = knob("adam", "Optimiser", "optimiser", "choice", choices=OPTIMIZERS)
    epochs: int = knob(
        100,
        "Epochs",
        "epoch cap: early stopping (patience) usually ends training first",
        "positive_int",
        bounds=(1, 200),
    )
    batch_size: int = knob(
        256, "Batch size", "global batch size", "positive_int", choices=(64, 128, 256, 512, 1024, 2048, 4096)
    )
    patience: int | None = knob(
        3,
        "Patience (epochs)",
        "early stopping: epochs without a better validation loss",
        "positive_int",
        bounds=(1, 20),
    )
    seed: int = knob(0, "Seed", "seed for weights, split, order and dropout", "int", bounds=(0, 10_000))
    recipe: str = knob(
        "from_fm",
        "AFM recipe",
        "how the AFM is trained: from_fm (start exactly at the trained FM, fine-tune at finetune_lr), "
        "scratch (fresh weights, scratch_lr, p_init) or auto (both; keep the better on validation loss)",
        "choice",
        choices=RECIPES,
        afm_only=True,
    )
    pretrain: bool = knob(
        True,
        "FM pre-training (AFM starts exactly at a trained FM)",
        "AFM: pre-train an FM and start exactly at it (AFM.from_fm; p_init is then moot); "
        "false is the same as recipe scratch",
        "bool",
    )
    pretrain_epochs: int | None = knob(
        None,
        "FM pre-training epochs (at most)",
        "epoch cap of the FM pre-training (default: epochs)",
        "positive_int",
        bounds=(1, 200),
    )
    finetune_lr: float | None = knob(
        0.001,
        "AFM learning rate after pre-training",
        "AFM's learning rate after FM pre-training (default: lr)",
        "positive_float",
        choices=(0.0001, 0.0003, 0.001, 0.003, 0.01),
        afm_only=True,
    )
    scratch_lr: float = knob(
        0.03,
        "AFM learning rate from scratch",
        "the AFM's learning rate with recipe scratch (and auto's scratch half)",
        "positive_float",
        choices=(0.001, 0.003, 0.01, 0.03, 0.1),
        afm_only=True,
    )

    @property
    def afm_recipe(self) -> str:
        """The recipe the AFM is trained with: ``recipe``, or "scratch" when ``pretrain`` is False (the older
        spelling of the same choice)."""
        return self.recipe if self.pretrain else "scratch"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from a plain dict (a checkpoint's); unknown keys are ignored, missing ones default."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def model_config(self, kind: str, data: Dataset) -> ModelConfig:
        """The ``ModelConfig`` of a ``kind`` ("afm" or "fm") model for ``data`` under these settings
        (sizes come from the data, so a training configuration exists before the data does)."""
        if kind not in ("afm", "fm"):
            raise ValueError(f"model kind must be 'afm' or 'fm', got {kind!r}")
        is_afm = kind == "afm"
        return ModelConfig(
            kind,
            data.n_features,
            data.n_fields,
            self.embed_dim,
            self.attention_factor if is_afm else 0,
            self.dropout,
            self.attention_dropout if is_afm else 0.0,
            self.seed,
            self.p_init if is_afm else "ones",
        )


@dataclass(frozen=True)
class Knob:
    """One training setting as a flag and a widget read it (from ``TrainConfig``'s field metadata)."""

    name: str  # the field name; flag --name-with-dashes
    type: type  # int, float, bool or str
    optional: bool  # None is allowed (patience, pretrain_epochs, finetune_lr)
    default: Any
    label: str
    help: str
    kind: str
    choices: tuple[Any, ...] | None
    bounds: tuple[float, float] | None
    live: bool
    flags: tuple[str, ...]
    widget: bool
    afm_only: bool

    def check(self, value: Any) -> Any:
        """``value`` converted to this knob's type; raises ValueError when it is outside the knob's range."""
        if value is None and self.optional:
            return None
        if self.type is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"{self.name} must be true or false, got {value!r}")
                return value.lower() in ("true", "1")
            return bool(value)
        converted = self.type(value)
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ValueError(f"{self.name} must be a finite number, got {value!r}")
        if self.kind == "choice" and converted not in (self.choices or ()):
            raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")
        if self.kind in ("positive_int", "positive_float") and not converted > 0:
            raise ValueError(f"{self.name} must be > 0, got {value!r}")
        if self.kind == "fraction" and not 0.0 <= converted < 1.0:
            raise ValueError(f"{self.name} must be in [0, 1), got {value!r}")
        if self.bounds is not None and not self.bounds[0] <= converted <= self.bounds[1]:
            raise ValueError(f"{self.name} must be in [{self.bounds[0]}, {self.bounds[1]}], got {value!r}")
        return converted


def knobs(config_class: type = TrainConfig) -> list[Knob]:
    """Every field of ``config_class`` as a ``Knob``, in declaration order.

    Raises ``TypeError`` naming a field that has no ``knob(...)`` metadata or an unsupported type:
    a setting is never silently missing from the CLI or the dashboard.
    """
    hints = typing.get_type_hints(config_class)
    out = []
    for f in fields(config_class):
        meta = f.metadata.get("knob")
        if meta is None:
            raise TypeError(
                f"{config_class.__name__}.{f.name} has no knob(...) metadata: declare its label, help and kind "
                "so the CLI and the dashboard can offer it"
            )
        base, optional = _base_type(hints[f.name])
        if base not in (int, float, bool, str):
            raise TypeError(f"{config_class.__name__}.{f.name}: unsupported knob type {hints[f.name]}")
        default = None if f.default is MISSING else f.default
        out.append(Knob(f.name, base, optional, default, **meta))
    return out


def _base_type(hint: Any) -> tuple[type, bool]:
    """(int, True) for ``int | None``; (float, False) for ``float``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False
