"""AFM and FM in the paper's symbols (Xiao et al., IJCAI 2017, eq. 1-6).

Pure maths: no files, no pandas, no Streamlit. Shapes in comments use
B = batch, F = fields, P = F(F-1)/2 pairs, k = embedding size, t = attention factor.

For a sample with feature values x_1..x_F and embeddings v_i, pairs (i<j):

    u_ij  = (v_i * v_j) x_i x_j                 pair vector            (k)
    a'_ij = h^T ReLU(W u_ij + b)                attention score
    a_ij  = softmax over the pairs of one sample of a'_ij
    s_ij  = p^T u_ij                            interaction
    y     = w0 + sum_i w_i x_i + p^T dropout(sum_ij a_ij u_ij)         (eq. 6)

FM is the same model with the attention removed, p = 1 and b = 0.
Pairs are always in ``torch.triu_indices(F, F, 1)`` order (row-major, i<j).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from . import kernels
from .config import MODEL_KINDS, P_INITS, ModelConfig


@dataclass
class Explanation:
    """All terms of eq. 6 for a batch; ``bias + linear.sum(1) + contribution.sum(1) == prediction``.

    prediction   [B]     the model's raw output (regression value or logit), as ``forward`` gives it
    bias         []      w0
    linear       [B, F]  w_i x_i
    score        [B, P]  a'_ij = h^T ReLU(W u_ij + b), before the softmax (FM: zeros)
    attention    [B, P]  a_ij, non-negative, summing to 1 per sample (FM: ones)
    interaction  [B, P]  s_ij = p^T (v_i * v_j) x_i x_j
    contribution [B, P]  c_ij = a_ij s_ij
    pairs        [P, 2]  field indices (i, j), i < j, in ``torch.triu_indices`` order
    uniform_weight []    the weight of a pair under uniform attention: 1/P for AFM, 1 for FM

    What attention moves, per pair (properties, [B, P]): the **uniform part** ``s_ij · uniform_weight``
    (what the same model predicts with its attention replaced by uniform weights) and the **attention
    part** ``(a_ij − uniform_weight) s_ij`` (what the attention changes; exactly 0 for FM). With the exact
    FM start (p = P·1) a_ij that differs from 1/P in the fifth decimal can still move a prediction by a
    large share of the pair term, so judge attention by its attention part, never by a_ij on a 0..1 scale.
    ``bias + linear.sum(1) + uniform_part.sum(1) + attention_part.sum(1) == prediction`` to rounding.
    """

    prediction: Tensor
    bias: Tensor
    linear: Tensor
    score: Tensor
    attention: Tensor
    interaction: Tensor
    contribution: Tensor
    pairs: Tensor
    uniform_weight: Tensor = field(default_factory=lambda: torch.tensor(1.0))

    def total(self) -> Tensor:
        """bias + linear terms + pair contributions, per sample [B] (equals ``prediction``)."""
        return self.bias + self.linear.sum(1) + self.contribution.sum(1)

    @property
    def uniform_part(self) -> Tensor:
        """Per pair [B, P]: s_ij / P (FM: s_ij), the contribution under uniform attention."""
        return self.interaction * self.uniform_weight

    @property
    def attention_part(self) -> Tensor:
        """Per pair [B, P]: (a_ij − 1/P) s_ij, what the attention moves (FM: zeros)."""
        return (self.attention - self.uniform_weight) * self.interaction

    @property
    def relative_attention(self) -> Tensor:
        """Per pair [B, P]: P · a_ij, 1 = uniform (FM: ones). A scale-free way to read a_ij."""
        return self.attention / self.uniform_weight

    def rows(self, index: slice | Tensor) -> Explanation:
        """The explanation of the rows ``index`` (a slice gives views, no copies); bias and pairs are shared."""
        return replace(self, **{name: getattr(self, name)[index] for name in ROW_FIELDS})


# Explanation's per-row tensors ([B] or [B, ...]); the others (bias, pairs, uniform_weight) hold for every row
SHARED_FIELDS = ("bias", "pairs", "uniform_weight")
ROW_FIELDS = tuple(f.name for f in fields(Explanation) if f.name not in SHARED_FIELDS)


def _check_inputs(idx: Tensor, val: Tensor | None, n_fields: int) -> Tensor | None:
    """Validate shapes; ``val`` None stays None (all x_i = 1, so nothing is scaled)."""
    if idx.dim() != 2 or idx.shape[1] != n_fields:
        raise ValueError(f"idx must have shape [B, {n_fields}], got {list(idx.shape)}")
    if idx.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"idx must be an integer tensor, got {idx.dtype}")
    if val is None:
        return None
    if val.shape != idx.shape:
        raise ValueError(f"val must have the shape of idx {list(idx.shape)}, got {list(val.shape)}")
    return val


def _row_sums(x: Tensor) -> Tensor:
    """``x.sum(1)`` for [B, F] as a matrix-vector product: 2-3x faster for small F on the CPU."""
    return torch.mv(x, x.new_ones(x.shape[1]))


def pair_vectors(e: Tensor) -> Tensor:
    """All element-wise products e_i * e_j, i < j, in triu order: [B, F, k] -> [B, P, k].

    Formed row by row of the triangle (no gather), with a hand-written backward (``kernels``).
    """
    return kernels.pair_products(e)


def _resolve_config(
    kind: str, config: ModelConfig | int | None, attention: bool = True, /, **settings: Any
) -> ModelConfig:
    """The ``ModelConfig`` that ``AFM(...)`` / ``FM(...)`` was given, or the one its settings build.

    ``config`` is a ``ModelConfig`` (then no other setting may be given: which would win?), or the number of
    features (the positional form ``AFM(100, 4)``), or None (``n_features=`` by keyword). Settings left as
    None take the dataclass's defaults.
    """
    given = {name: value for name, value in settings.items() if value is not None}
    name = kind.upper()
    if isinstance(config, ModelConfig):
        if given:
            raise TypeError(
                f"{name}(config) takes no other settings, got {', '.join(sorted(given))} too: "
                "use dataclasses.replace(config, ...) to change a config"
            )
        return config
    if config is not None:  # AFM(100, 4, ...): the first positional argument is the number of features
        if "n_features" in given:
            raise TypeError(f"{name}() got n_features twice: as the first argument ({config}) and by keyword")
        given["n_features"] = config
    missing = [size for size in ("n_features", "n_fields") if size not in given]
    if missing:
        raise TypeError(
            f"{name}() needs a ModelConfig or both n_features and n_fields "
            f"(e.g. {name}(n_features=100, n_fields=4)); missing {' and '.join(missing)}"
        )
    if not attention:
        given["attention_factor"] = 0  # FM's family has no attention network
    return ModelConfig(kind, **given)


class _FactorizationMachine(nn.Module):
    """Shared parts: w0, w, V, the embedded inputs and the linear terms."""

    config: ModelConfig
    pairs: Tensor  # [P, 2] a buffer: the field indices (i, j) of each pair, in triu order

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.n_features < 1 or config.n_fields < 1 or config.embed_dim < 1:
            raise ValueError(
                "n_features, n_fields and embed_dim must be >= 1, got "
                f"{config.n_features}, {config.n_fields}, {config.embed_dim}"
            )
        for name in ("dropout", "attention_dropout"):
            value = getattr(config, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.config = config
        generator = torch.Generator().manual_seed(config.seed)
        n, k = config.n_features, config.embed_dim
        # Initialisation as the authors' code: V ~ N(0, 0.01), w = w0 = 0.
        self.w0 = nn.Parameter(torch.zeros(()))
        self.w = nn.Parameter(torch.zeros(n))
        self.V = nn.Parameter(torch.randn(n, k, generator=generator) * 0.01)
        # Dropout masks come from this generator when set (``fit`` seeds one per training), so
        # two trainings in one process (two dashboard sessions) never share a random stream.
        self.dropout_generator: torch.Generator | None = None
        self._generator = generator  # subclasses continue the same seeded stream
        self.register_buffer(
            "pairs", torch.triu_indices(config.n_fields, config.n_fields, 1).T.contiguous(), persistent=False
        )

    def _dropout(self, x: Tensor, p: float) -> Tensor:
        """Inverted dropout in training (zeros with probability p, the rest scaled by 1/(1-p))."""
        if not self.training or p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=self.dropout_generator)
        return x * keep.div_(1.0 - p)

    @property
    def n_pairs(self) -> int:
        return self.pairs.shape[0]

    def _embed(self, idx: Tensor, val: Tensor | None) -> tuple[Tensor, Tensor]:
        """Linear terms w_i x_i [B, F] and scaled embeddings v_i x_i [B, F, k]."""
        # kernels.embedding, not self.V[idx]: its backward is deterministic on CPU with several threads
        # (index_put_'s accumulate is not), so the same seed gives the same numbers.
        linear = kernels.embedding(idx, self.w)  # (B, F)
        e = kernels.embedding(idx, self.V)  # (B, F, k)
        if val is None:  # all x_i = 1 (one-hot data): nothing to scale
            return linear, e
        return linear * val, e * val.unsqueeze(-1)

    def _predict(self, idx: Tensor, val: Tensor | None, keep: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """The prediction [B] and, with ``keep``, the intermediate terms that ``explain`` reads."""
        raise NotImplementedError

    def forward(self, idx: Tensor, val: Tensor | None = None) -> Tensor:
        """Raw prediction [B]: a regression value, or a logit for binary labels."""
        prediction, _ = self._predict(idx, val)
        return prediction

    @torch.no_grad()
    def explain(self, idx: Tensor, val: Tensor | None = None) -> Explanation:
        """Every term of eq. 6 for each sample, from the same computation as ``forward``."""
        prediction, parts = self._predict(idx, val, keep=True)
        interaction = parts["interaction"]  # (B, P): s_ij = p . u_ij
        attention = parts["attention"]
        return Explanation(
            prediction=prediction,
            bias=self.w0.detach().clone(),
            linear=parts["linear"],
            score=parts["score"],
            attention=attention,
            interaction=interaction,
            contribution=attention * interaction,
            pairs=self.pairs.clone(),
            uniform_weight=torch.tensor(self._uniform_weight, dtype=interaction.dtype),
        )

    @property
    def _uniform_weight(self) -> float:
        """A pair's weight under uniform attention (see ``Explanation.uniform_weight``)."""
        return 1.0


def attention_reference(
    e: Tensor, W: Tensor, b: Tensor, h: Tensor, keep: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """AFM's attention-based pooling (eq. 3-5) in plain PyTorch: ``(pooled [B, k], score [B, P],
    attention [B, P])`` for scaled embeddings ``e`` [B, F, k] (v_i x_i).

    The definition that ``AFM._predict``'s kernels (``kernels.interaction``) must match, and do to
    float rounding; autograd gives its gradients. ``keep`` is the attention-dropout mask on a_ij
    (0 or 1/(1-p), broadcastable to [B, P]) or None. It forms u [B, P, k], which is what the kernels
    avoid; use it to read, test or change the maths.
    """
    i, j = torch.triu_indices(e.shape[1], e.shape[1], 1, device=e.device)
    u = e[:, i] * e[:, j]  # (B, P, k): u_ij = (v_i x_i) * (v_j x_j)
    score = torch.relu(u @ W.T + b) @ h  # (B, P): a'_ij = h^T ReLU(W u_ij + b)
    attention = torch.softmax(score, dim=1)  # (B, P): a_ij, over the pairs of each sample
    weights = attention if keep is None else attention * keep  # attention dropout, in training
    pooled = (weights.unsqueeze(2) * u).sum(1)  # (B, k): sum_ij a_ij u_ij
    return pooled, score, attention


class AFM(_FactorizationMachine):
    """Attentional Factorization Machine (eq. 6), attention over the pairs of each sample.

    Parameters, under the paper's names: ``w0`` (), ``w`` (n,), ``V`` (n, k), ``W`` (t, k),
    ``b`` (t,), ``h`` (t,), ``p`` (k,). ``dropout`` acts on the pooled pairwise-interaction
    vector, ``attention_dropout`` on the attention weights; L2 on ``W`` is the trainer's job.

    Initialisation as the authors' code: V ~ N(0, 0.01), W and b Glorot-scaled normals, h ~ N(0, 1),
    p = ones (so that AFM with uniform attention is FM scaled by 1/P). ``p_init="normal"`` draws p
    from N(0, 2/(k+1)) instead, as deepctr-torch does (Glorot normal): on Frappe with Adam that
    reaches a higher AUC in the first epochs (0.928 against 0.921 after 3, ``benchmarks/speed.py``).
    """

    kind: ClassVar[str] = "afm"  # ModelConfig.kind of this class (afm.model.register_model)

    def __init__(
        self,
        config: ModelConfig | int | None = None,
        n_fields: int | None = None,
        embed_dim: int | None = None,
        attention_factor: int | None = None,
        dropout: float | None = None,
        attention_dropout: float | None = None,
        *,
        n_features: int | None = None,
        seed: int | None = None,
        p_init: str | None = None,
    ) -> None:
        """``AFM(config)`` with a ``ModelConfig`` of kind "afm", or the sizes and settings that build one:
        ``AFM(n_features=100, n_fields=4, embed_dim=8, attention_factor=4)``, or positionally
        ``AFM(100, 4, 8, 4)``. A setting left out takes ``ModelConfig``'s default (k = t = 16, no dropout,
        seed 0, p = ones). A config and sizes together, or neither, raise ``TypeError``."""
        sizes = {"n_features": n_features, "n_fields": n_fields, "embed_dim": embed_dim}
        settings = {"attention_factor": attention_factor, "dropout": dropout, "attention_dropout": attention_dropout}
        config = _resolve_config(self.kind, config, **sizes, **settings, seed=seed, p_init=p_init)
        if config.kind != self.kind:
            raise ValueError(f"{type(self).__name__} needs a config of kind {self.kind!r}, got {config.kind!r}")
        if config.attention_factor < 1:
            raise ValueError(f"attention_factor must be >= 1, got {config.attention_factor}")
        if config.p_init not in P_INITS:
            raise ValueError(f"p_init must be one of {P_INITS}, got {config.p_init!r}")
        super().__init__(config)
        k, t, g = config.embed_dim, config.attention_factor, self._generator
        glorot = math.sqrt(2.0 / (t + k))  # the authors' Glorot-scaled normal for W and b
        self.W = nn.Parameter(torch.randn(t, k, generator=g) * glorot)
        self.b = nn.Parameter(torch.randn(t, generator=g) * glorot)
        self.h = nn.Parameter(torch.randn(t, generator=g))
        self.p = nn.Parameter(torch.ones(k))
        if config.p_init == "normal":  # drawn last, so that "ones" models keep the same stream as before
            with torch.no_grad():
                self.p.copy_(torch.randn(k, generator=g) * math.sqrt(2.0 / (k + 1)))

    @classmethod
    def from_fm(
        cls,
        fm: FM,
        attention_factor: int = 16,
        dropout: float | None = None,
        attention_dropout: float = 0.0,
        *,
        seed: int = 0,
    ) -> AFM:
        """A new AFM that predicts exactly as the trained ``fm`` (the paper's pre-training, made exact).

        w0, w and V are copies of the FM's. The attention network starts neutral: h = 0, so every
        score a'_ij is 0 and the softmax gives each of the P pairs a_ij = 1/P; p = P * 1 then undoes
        that 1/P, so p^T sum_ij a_ij u_ij = sum_ij <v_i, v_j> x_i x_j, which is FM's interaction term.
        Before any training the AFM's predictions equal the FM's to float rounding, on any data.

        W and b are Glorot-scaled normals from ``seed``: with h = 0 their gradients are zero at
        first, but h's gradient, ReLU(W u_ij + b) times the loss's pull on a'_ij, is not, so the
        attention learns from the first step. (The authors' code started at FM only because its
        softmax ran over a size-1 axis, which made every a_ij = 1; a correct softmax with p = 1
        would start at 1/P of FM's interaction term.) ``dropout`` defaults to the FM's. ``p_init``
        is moot here: p is set to P * 1.
        """
        c = fm.config
        dropout = c.dropout if dropout is None else dropout
        model = cls(replace(c, kind="afm", attention_factor=attention_factor, dropout=dropout,
                            attention_dropout=attention_dropout, seed=seed))  # fmt: skip
        with torch.no_grad():
            model.w0.copy_(fm.w0)
            model.w.copy_(fm.w)
            model.V.copy_(fm.V)
            model.h.zero_()  # a'_ij = 0 for every pair: uniform attention 1/P
            model.p.fill_(float(max(model.n_pairs, 1)))  # P * (1/P) * sum u_ij = FM's sum
        return model.to(fm.V.device)

    @property
    def _uniform_weight(self) -> float:
        return 1.0 / max(self.n_pairs, 1)

    def _predict(self, idx: Tensor, val: Tensor | None, keep: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        val = _check_inputs(idx, val, self.config.n_fields)
        linear, e = self._embed(idx, val)  # (B, F), (B, F, k)
        mask = None  # attention dropout: a mask of 0 and 1/(1-p) on a_ij, in training only
        if self.training and self.config.attention_dropout > 0:
            ones = torch.ones(e.shape[0], self.n_pairs, dtype=e.dtype, device=e.device)
            mask = self._dropout(ones, self.config.attention_dropout)
        # The attention (eq. 3-5) is attention_reference(e, W, b, h, mask), spelled out in plain PyTorch
        # above the class. The kernels compute the same numbers without forming u [B, P, k]: the fused C
        # kernel where it applies (float32 on the CPU, a C compiler), else PyTorch kernels with
        # hand-written backward passes (tests/test_kernels.py holds both to the reference).
        parts: dict[str, Tensor] = {}
        if keep:  # explanations (no gradient): also s_ij = p . u_ij, from the same pass
            pooled, score, attention, interaction = kernels.interaction_terms(e, self.W, self.b, self.h, self.p, mask)
            parts = {"linear": linear, "score": score, "attention": attention, "interaction": interaction}
        else:
            pooled, score, attention = kernels.interaction(e, self.W, self.b, self.h, mask)  # (B,k), (B,P), (B,P)
        prediction = self.w0 + _row_sums(linear) + self._dropout(pooled, self.config.dropout) @ self.p  # (B,)
        return prediction, parts


class FM(_FactorizationMachine):
    """Plain factorisation machine: AFM with p = 1, b = 0 and no attention.

    ``forward`` uses the O(F k) closed form 0.5 sum_f [(sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2];
    ``explain`` takes the same value apart into its F(F-1)/2 pair terms.
    """

    kind: ClassVar[str] = "fm"

    def __init__(
        self,
        config: ModelConfig | int | None = None,
        n_fields: int | None = None,
        embed_dim: int | None = None,
        dropout: float | None = None,
        *,
        n_features: int | None = None,
        seed: int | None = None,
    ) -> None:
        """``FM(config)`` with a ``ModelConfig`` of kind "fm", or the sizes that build one:
        ``FM(n_features=100, n_fields=4, embed_dim=8)`` or ``FM(100, 4, 8)`` (defaults as ``AFM``'s)."""
        config = _resolve_config(
            self.kind,
            config,
            False,  # no attention network
            n_features=n_features,
            n_fields=n_fields,
            embed_dim=embed_dim,
            dropout=dropout,
            seed=seed,
        )
        if config.kind != self.kind:
            raise ValueError(f"{type(self).__name__} needs a config of kind {self.kind!r}, got {config.kind!r}")
        super().__init__(config)

    def _predict(self, idx: Tensor, val: Tensor | None, keep: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        val = _check_inputs(idx, val, self.config.n_fields)
        linear, e = self._embed(idx, val)  # (B, F), (B, F, k)
        pooled = 0.5 * (e.sum(1).square() - e.square().sum(1))  # (B, k): sum_ij u_ij
        prediction = self.w0 + _row_sums(linear) + self._dropout(pooled, self.config.dropout).sum(1)  # p = 1
        parts: dict[str, Tensor] = {}
        if keep:
            i, j = self.pairs.T
            interaction = torch.bmm(e, e.transpose(1, 2))[:, i, j]  # s_ij = 1 . u_ij = <e_i, e_j>, triu order
            ones = torch.ones_like(interaction)
            parts = {"linear": linear, "score": torch.zeros_like(ones), "attention": ones, "interaction": interaction}
        return prediction, parts


MODELS: dict[str, type[AFM] | type[FM]] = {}  # kind -> class: register_model fills it


def register_model(cls: type[AFM] | type[FM]) -> type[AFM] | type[FM]:
    """Make ``cls`` (a subclass of ``AFM`` or ``FM`` with its own ``kind``) a model kind: ``build_model`` and
    ``load_model`` build it from a config of that kind, ``TrainConfig.model_config(kind, data)`` gives it the
    settings of its family (an AFM subclass gets the attention settings), the CLI offers it as ``--model``.
    Usable as a class decorator; returns ``cls``."""
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind or not issubclass(cls, (AFM, FM)):
        raise TypeError(f"{cls.__name__}: a model kind is a subclass of AFM or FM with a class attribute kind = '...'")
    if kind in MODELS and MODELS[kind] is not cls:
        raise ValueError(f"model kind {kind!r} is already {MODELS[kind].__name__}")
    MODELS[kind] = cls
    MODEL_KINDS[kind] = issubclass(cls, AFM)
    return cls


def build_model(config: ModelConfig | dict[str, Any]) -> AFM | FM:
    """Rebuild an (untrained) AFM or FM from its configuration: the class is ``MODELS[config.kind]``."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if config.kind not in MODELS:
        raise ValueError(f"unknown model kind {config.kind!r}; expected one of {sorted(MODELS)}")
    return MODELS[config.kind](config)


register_model(AFM)
register_model(FM)


def paper_parameters(model: AFM | FM) -> dict[str, np.ndarray]:
    """The parameters under the paper's names, as NumPy arrays.

    Both: ``w0`` (), ``w`` (n,), ``V`` (n, k), ``p`` (k,) (FM: ones).
    AFM also: ``W`` (t, k), ``b`` (t,), ``h`` (t,).
    """
    names = ("w0", "w", "V", "W", "b", "h", "p") if isinstance(model, AFM) else ("w0", "w", "V")
    out = {name: getattr(model, name).detach().cpu().numpy().copy() for name in names}
    if isinstance(model, FM):
        out["p"] = np.ones(model.config.embed_dim, dtype=np.float32)
    return out
