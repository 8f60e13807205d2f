"""The two configurations: ``ModelConfig`` (what a model is) and ``TrainConfig`` (how it is trained).

``TrainConfig`` is the one place a training knob is declared. Each field carries its own description
(``knob(...)`` metadata: label, help, kind, choices or bounds, its symbol and words, whether live mode
retrains on it), and everything else is derived from it:

- what ``fit(model, train, valid, config, **overrides)`` trains with (``afm.train``),
- ``python -m afm train``'s flags and their validation (``afm.cli`` calls ``knobs()`` and ``Knob.check``),
- the dashboard's widgets, its link parameters and their validation (``app/knobs.py`` calls ``knobs()``),
- the words that name a knob: ``Knob.short`` and ``describe`` (settings lines), ``Knob.words`` (figures and
  tables: ``afm.plots.words``), ``Knob.description`` (a long description, as the Sweeps page shows),
- checkpoints and run folders (``TrainConfig.to_dict``).

A field without knob metadata makes ``knobs()`` raise, so a new setting cannot silently miss its flag
or widget. To add a knob: add a field here with ``knob(...)``; read it in ``afm/train.py`` (or, from a
subclass, through a hook such as ``TrainConfig.optimizer_options``).
"""

from __future__ import annotations

import functools
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .data import Dataset

P_INITS = ("ones", "normal")
# How an AFM is trained (``TrainConfig.recipe``): "from_fm" starts exactly at the trained FM (AFM.from_fm) and
# fine-tunes it at ``finetune_lr``; "scratch" trains a fresh AFM (p from ``p_init``) at ``scratch_lr``; "auto"
# trains both from the one FM and keeps the one with the better validation loss.
RECIPES = ("from_fm", "scratch", "auto")
RECIPE_WORDS = {"from_fm": "from FM (exact start)", "scratch": "from scratch", "auto": "auto (better on validation)"}
OPTIMIZERS = ("adam", "adagrad")
# model kind -> whether it has an attention network (AFM's family); afm.model.register_model fills it
MODEL_KINDS: dict[str, bool] = {}
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
    symbol: str | None = None,
    words: str | None = None,
    description: str | None = None,
) -> Any:
    """A ``TrainConfig`` field with the metadata that its CLI flag, its dashboard widget and every word
    naming it are built from.

    ``label``: the widget's label; ``help``: the flag's and the widget's help; ``kind``: one of
    ``KNOB_KINDS``; ``choices``: the allowed values (a choice knob) or the values a slider offers;
    ``bounds``: (min, max) for a number (the CLI, the widgets and links all refuse a value outside them,
    through ``Knob.check``); ``live``: live mode retrains when it changes (t and the dropouts); ``flags``:
    extra short flags (``-k``); ``widget``: False for a setting the dashboard sets itself (the task, from the
    data section); ``afm_only``: FM ignores it, so changing it retrains the AFM only.

    The words: ``symbol``: the paper's symbol or a short name ("t"), which names the knob in settings lines
    (``Knob.short``, ``describe``) and titles (``Knob.brief``); ``words``: how a figure's axis or a table's
    column names it ("attention factor t"; default: the label, its first letter in lower case);
    ``description``: a sentence describing it, as the Sweeps page offers it (default: the help, capitalised).
    """
    if kind not in KNOB_KINDS:
        raise ValueError(f"knob kind must be one of {KNOB_KINDS}, got {kind!r}")
    if words is None:
        words = label[0].lower() + label[1:] if label[1:2].islower() else label
    if description is None:
        description = help[0].upper() + help[1:]
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
        "symbol": symbol,
        "words": words,
        "description": description,
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
        symbol="k",
        words="embedding size k",
        description="Embedding size k, the length of every feature's vector v_i (AFM and FM)",
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
        symbol="t",
        words="attention factor t",
        description="Attention factor t, the attention network's hidden size (AFM)",
    )
    dropout: float = knob(
        0.2,
        "Dropout on the interaction layer",
        "dropout on the pooled interaction vector",
        "fraction",
        bounds=(0.0, 0.9),
        live=True,
        words="dropout",
        description="Dropout on the pairwise-interaction layer (AFM and FM)",
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
        words="attention dropout",
        description="Dropout on the attention weights (AFM)",
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
        symbol="λ",
        words="λ (L2 on W)",
        description="λ, the L2 penalty on the attention network's W (AFM)",
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
        256,
        "Batch size",
        "global batch size",
        "positive_int",
        choices=(64, 128, 256, 512, 1024, 2048, 4096),
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
        words="FM pre-training",
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

    @property
    def fm_epochs(self) -> int:
        """The FM's epoch cap in ``train_pair``: ``pretrain_epochs`` when the AFM starts from that FM (recipes
        from_fm and auto) and it is set, else ``epochs``."""
        return self.pretrain_epochs if self.afm_recipe != "scratch" and self.pretrain_epochs else self.epochs

    def optimizer_options(self) -> dict[str, Any]:
        """Keyword arguments for the optimiser besides its learning rate (``fit`` builds ``optimizer`` at ``lr``
        with them): none here. The hook for a knob of the optimiser's: a subclass that adds, say, a
        ``weight_decay`` knob returns ``{**super().optimizer_options(), "weight_decay": self.weight_decay}``."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict: what checkpoints and run folders store (``from_dict`` reads it back)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls: type[_Config], data: dict[str, Any]) -> _Config:
        """A config from a plain dict (a checkpoint's); unknown keys are ignored, missing ones default."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self: _Config, **changes: Any) -> _Config:
        """This configuration with ``changes`` (field names) set; ``TypeError`` names a keyword that is not a
        field, and the fields (``overridden``)."""
        return overridden(self, changes)

    def model_config(self, kind: str, data: Dataset) -> ModelConfig:
        """The ``ModelConfig`` of a ``kind`` model ("afm", "fm" or a kind added by ``afm.model.register_model``)
        for ``data`` under these settings (sizes come from the data, so a training configuration exists before the
        data does). A kind of AFM's family gets the attention settings; FM's family gets none."""
        if kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {', '.join(sorted(MODEL_KINDS))}, got {kind!r}")
        is_afm = MODEL_KINDS[kind]
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


def _quoted(value: Any, limit: int = 24) -> str:
    """A value for a message: its repr, cut to ``limit`` characters (a link's 10,000-digit number is not echoed)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}…' ({len(str(value)):,} characters)"


_Config = TypeVar("_Config", bound=TrainConfig)


def overridden(config: _Config, changes: dict[str, Any], caller: str | None = None) -> _Config:
    """``config`` with ``changes`` set (``dataclasses.replace``; ``config`` itself when there are none).

    A key that is not a field of ``config``'s class raises ``TypeError`` naming it and every valid name;
    ``caller`` ("fit") is the function the keywords were given to, for the message.
    """
    names = [f.name for f in fields(config)]
    unknown = [key for key in changes if key not in names]
    if unknown:
        who = f"{caller}()" if caller else type(config).__name__
        raise TypeError(
            f"{who} got unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
            f"a setting is a field of {type(config).__name__}: {', '.join(names)}"
        )
    return replace(config, **changes) if changes else config


@dataclass(frozen=True)
class Knob:
    """One training setting as a flag, a widget and a link read it (from ``TrainConfig``'s field metadata)."""

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
    symbol: str | None  # the paper's symbol or a short name: "t", "k", "λ"
    words: str  # how a figure or a table names it: "attention factor t"
    description: str  # a sentence: "Attention factor t, the attention network's hidden size (AFM)"

    @property
    def flag(self) -> str:
        """Its command-line flag: ``--attention-factor``."""
        return "--" + self.name.replace("_", "-")

    @property
    def short(self) -> str:
        """Its name in a line of settings (``describe``): the symbol, else the label up to a colon, in lower
        case ("t", "dropout on the interaction layer")."""
        return self.symbol or self.label.split(":")[0].lower()

    @property
    def brief(self) -> str:
        """Its name where room is short (a title, "before: t = 16"): the symbol, else ``words`` ("dropout")."""
        return self.symbol or self.words

    def check(self, value: Any) -> Any:
        """``value`` (a Python value, or text from a flag, a widget or a link) converted to this knob's type.

        The one validator of a setting's value: the CLI's flags, the dashboard's widgets and its links all call
        it, so they accept and refuse the same values with the same message. Raises ``ValueError`` naming the
        knob when the value is not of its type or outside its choices or bounds. An optional knob takes None,
        or the text "none" (any case).
        """
        if self.optional and (value is None or (isinstance(value, str) and value.strip().lower() == "none")):
            return None
        if self.type is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"{self.name} must be true or false, got {_quoted(value)}")
                return value.lower() in ("true", "1")
            return bool(value)
        try:
            converted = self.type(value)
        except (TypeError, ValueError):
            what = {int: "a whole number", float: "a number"}.get(self.type, self.type.__name__)
            raise ValueError(f"{self.name} must be {what}, got {_quoted(value)}") from None
        if self.type is int and isinstance(value, float) and value != converted:
            raise ValueError(f"{self.name} must be a whole number, got {_quoted(value)}")
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ValueError(f"{self.name} must be a finite number, got {_quoted(value)}")
        if self.kind == "choice" and converted not in (self.choices or ()):
            raise ValueError(f"{self.name} must be one of {self.choices}, got {_quoted(value)}")
        if self.kind in ("positive_int", "positive_float") and not converted > 0:
            raise ValueError(f"{self.name} must be > 0, got {_quoted(value)}")
        if self.kind == "fraction" and not 0.0 <= converted < 1.0:
            raise ValueError(f"{self.name} must be in [0, 1), got {_quoted(value)}")
        if self.bounds is not None and not self.bounds[0] <= converted <= self.bounds[1]:
            raise ValueError(f"{self.name} must be in [{self.bounds[0]}, {self.bounds[1]}], got {_quoted(value)}")
        return converted


def knobs(config_class: type = TrainConfig) -> list[Knob]:
    """Every field of ``config_class`` as a ``Knob``, in declaration order.

    Raises ``TypeError`` naming a field that has no ``knob(...)`` metadata or an unsupported type:
    a setting is never silently missing from the CLI or the dashboard.
    """
    return list(_knobs(config_class))


@functools.cache
def _knobs(config_class: type) -> tuple[Knob, ...]:
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
    return tuple(out)


def _base_type(hint: Any) -> tuple[type, bool]:
    """(int, True) for ``int | None``; (float, False) for ``float``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def knob_of(name: str, config_class: type = TrainConfig) -> Knob:
    """The ``Knob`` of field ``name`` of ``config_class``; ``KeyError`` naming the knobs when there is none."""
    found = {k.name: k for k in knobs(config_class)}
    if name not in found:
        raise KeyError(f"{config_class.__name__} has no knob {name!r}; its knobs: {', '.join(found)}")
    return found[name]


def describe(config: TrainConfig, names: Iterable[str] | None = None, *, brief: bool = False) -> str:
    """Settings in words: "t = 8, dropout on the interaction layer = 0.1" (each knob's ``short`` name).

    ``names``: the fields to show, in that order (none or empty: every knob with a widget); ``brief``: each
    knob's ``brief`` name instead ("t = 8, dropout = 0.1"), for titles.
    """
    by_name = {k.name: k for k in knobs(type(config))}
    shown = list(names or ()) or [k.name for k in by_name.values() if k.widget]
    return ", ".join(f"{by_name[n].brief if brief else by_name[n].short} = {getattr(config, n)}" for n in shown)


def differences(a: TrainConfig, b: TrainConfig, *, widget_only: bool = True) -> list[str]:
    """The names of the knobs whose values differ between ``a`` and ``b``, in declaration order (only the
    knobs with a widget, unless ``widget_only`` is False)."""
    return [
        k.name
        for k in knobs(type(a))
        if (k.widget or not widget_only) and getattr(a, k.name) != getattr(b, k.name, k.default)
    ]
