"""Fast building blocks with hand-written backward passes (the maths stays in ``model.py``).

All are checked against autograd's own gradients, and ``interaction`` against
``model.attention_reference`` (the attention in plain PyTorch), in ``tests/test_kernels.py``; they
exist only because autograd's generic versions spend most of a training step on bookkeeping here:

- ``interaction``: AFM's pair products, attention network, softmax and attention-weighted sum in
  one C pass per sample each way (``_fused.c``: built and checked by ``native``, which never imports
  this module; called through ``_bridge``); nothing of size [B, P, k] is formed. Where the C kernel
  does not apply (float64, CUDA, no C compiler, ``AFM_NATIVE=0``), the two PyTorch kernels below
  compute the same numbers:
- ``pair_products``: the slices-and-cat formulation's backward allocates and adds a full-size
  zero tensor per slice; this one accumulates each field's gradient in place.
- ``attention_pool``: scores, softmax and pooling with one hand-written backward.
- ``embedding``: ``embedding_dense_backward`` sorts the indices every step (for determinism);
  ``index_add_`` gives the same deterministic sum on CPU without the sort.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch
from torch import Tensor

from . import _bridge, native


class _PairProducts(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, e: Tensor) -> Tensor:  # (B, F, k) -> (B, P, k)
        batch, n_fields, k = e.shape
        u = e.new_empty(batch, n_fields * (n_fields - 1) // 2, k)
        offset = 0
        for i in range(n_fields - 1):  # row i of the triangle: pairs (i, i+1..F-1), contiguous
            n = n_fields - 1 - i
            torch.mul(e[:, i : i + 1], e[:, i + 1 :], out=u[:, offset : offset + n])
            offset += n
        ctx.save_for_backward(e)
        return u

    @staticmethod
    def backward(ctx: Any, grad_u: Tensor) -> Tensor:
        (e,) = ctx.saved_tensors
        n_fields = e.shape[1]
        grad_e = torch.zeros_like(e)
        offset = 0
        for i in range(n_fields - 1):
            n = n_fields - 1 - i
            block = grad_u[:, offset : offset + n]  # d u_ij for j > i: (B, n, k)
            grad_e[:, i] += (block * e[:, i + 1 :]).sum(1)  # d e_i = sum_j d u_ij * e_j
            grad_e[:, i + 1 :].addcmul_(block, e[:, i : i + 1])  # d e_j += d u_ij * e_i
            offset += n
        return grad_e


def pair_products(e: Tensor) -> Tensor:
    """All products e_i * e_j, i < j, in ``torch.triu_indices`` order: [B, F, k] -> [B, P, k]."""
    if e.shape[1] < 2:
        return e.new_zeros(e.shape[0], 0, e.shape[2])
    return _PairProducts.apply(e)


class _Embedding(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, idx: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(idx)
        ctx.weight_shape = weight.shape
        return _rows(idx, weight)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        (idx,) = ctx.saved_tensors
        rows = grad.reshape(-1, *ctx.weight_shape[1:])
        return None, grad.new_zeros(ctx.weight_shape).index_add_(0, idx.reshape(-1), rows)


def _rows(idx: Tensor, weight: Tensor) -> Tensor:
    """weight[idx] by a flat ``index_select``: [*idx.shape, *weight.shape[1:]]. For a vector weight
    (the linear terms w_i) 4x faster here than an embedding of width 1; as fast for V."""
    return weight.index_select(0, idx.reshape(-1)).view(*idx.shape, *weight.shape[1:])


def embedding(idx: Tensor, weight: Tensor) -> Tensor:
    """``weight[idx]`` (weight [n] or [n, k]) whose backward is an ``index_add_`` (deterministic on
    CPU, no sort)."""
    if not (torch.is_grad_enabled() and weight.requires_grad):  # prediction: no autograd node to build
        return _rows(idx, weight)
    return _Embedding.apply(idx, weight)


class _AttentionPool(torch.autograd.Function):
    """scores, attention and the attention-weighted sum of the pair vectors, in one pass each way."""

    @staticmethod
    def forward(ctx: Any, u: Tensor, W: Tensor, b: Tensor, h: Tensor, keep: Tensor | None) -> tuple[Tensor, ...]:
        batch, n_pairs, k = u.shape
        flat = u.reshape(-1, k)  # (B*P, k)
        r = torch.addmm(b, flat, W.t()).relu_()  # (B*P, t): ReLU(W u + b), in place
        score = (r @ h).view(batch, n_pairs)  # (B, P): a'_ij
        attention = torch.softmax(score, dim=1)  # (B, P)
        weights = attention if keep is None else attention * keep  # attention dropout (keep: 0 or 1/(1-p))
        pooled = torch.bmm(weights.unsqueeze(1), u).squeeze(1)  # (B, k)
        ctx.save_for_backward(u, W, h, r, attention, weights, keep)
        return pooled, score, attention

    @staticmethod
    def backward(ctx: Any, grad_pooled: Tensor, grad_score: Tensor, grad_attention: Tensor) -> tuple[Any, ...]:
        u, W, h, r, attention, weights, keep = ctx.saved_tensors
        batch, n_pairs, k = u.shape
        # pooled = sum_p weights_p u_p
        grad_u = weights.unsqueeze(2) * grad_pooled.unsqueeze(1)  # (B, P, k)
        grad_weights = torch.bmm(u, grad_pooled.unsqueeze(2)).squeeze(2)  # (B, P)
        grad_a = grad_weights if keep is None else grad_weights * keep
        if grad_attention is not None:
            grad_a = grad_a + grad_attention
        # softmax backward, then the score's own gradient
        grad_s = attention * (grad_a - (attention * grad_a).sum(1, keepdim=True))
        if grad_score is not None:
            grad_s = grad_s + grad_score
        grad_s = grad_s.reshape(-1)  # (B*P,)
        grad_h = r.t() @ grad_s  # (t,)
        grad_z = torch.ops.aten.threshold_backward(torch.outer(grad_s, h), r, 0.0)  # (B*P, t): through ReLU
        grad_W = grad_z.t() @ u.reshape(-1, k)  # (t, k)
        grad_b = grad_z.sum(0)
        grad_u.view(-1, k).addmm_(grad_z, W)  # + W^T dz per pair
        return grad_u, grad_W, grad_b, grad_h, None


def attention_pool(
    u: Tensor, W: Tensor, b: Tensor, h: Tensor, keep: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(pooled [B, k], score a'_ij [B, P], attention a_ij [B, P])`` for pair vectors ``u`` [B, P, k].

    score = h^T ReLU(W u + b); attention = softmax over the P pairs of each row;
    pooled = sum_ij keep_ij a_ij u_ij, where ``keep`` is the attention-dropout mask (already
    scaled by 1/(1-p)) or None.
    """
    return _AttentionPool.apply(u, W, b, h, keep)


def check_interaction(e: Tensor, W: Tensor, b: Tensor, h: Tensor, keep: Tensor | None = None,
                      p: Tensor | None = None) -> None:  # fmt: skip
    """Raise ``ValueError`` unless e [B, F, k], W [t, k], b [t], h [t], p [k] and the mask (broadcastable
    to [B, P]) fit together: the same check, and the same error, whichever kernel then runs."""
    if e.dim() != 3:
        raise ValueError(f"e must have shape [B, F, k], got {list(e.shape)}")
    batch, n_fields, k = e.shape
    if W.dim() != 2 or W.shape[1] != k:
        raise ValueError(f"W must have shape [t, {k}] (k from e {list(e.shape)}), got {list(W.shape)}")
    t = W.shape[0]
    for name, x, size in (("b", b, t), ("h", h, t), ("p", p, k)):
        if x is not None and tuple(x.shape) != (size,):
            raise ValueError(f"{name} must have shape [{size}], got {list(x.shape)}")
    tensors = [x for x in (e, W, b, h, p) if x is not None]
    if len({x.dtype for x in tensors}) > 1 or len({x.device for x in tensors}) > 1:
        raise ValueError("e, W, b, h (and p) must share one dtype and device, got " +
                         ", ".join(f"{x.dtype} on {x.device}" for x in tensors))  # fmt: skip
    n_pairs = n_fields * (n_fields - 1) // 2
    if keep is not None and not _broadcasts(tuple(keep.shape), (batch, n_pairs)):
        raise ValueError(f"the attention mask must broadcast to [{batch}, {n_pairs}], got {list(keep.shape)}")


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, n) for s, n in zip(shape[::-1], target[::-1], strict=False))


def _threads() -> int:
    return torch.get_num_threads()


def _contiguous(*tensors: Tensor) -> list[Tensor]:
    return [x.detach().contiguous() for x in tensors]


def _library() -> ctypes.CDLL:
    """The fused kernel's library, where ``fused_applies`` said there is one."""
    lib = native.library()
    if lib is None:
        raise RuntimeError("afm's fused C kernel is not available (afm.native.info() says why)")
    return lib


def _mask(keep: Tensor | None, e: Tensor) -> Tensor | None:
    """The attention-dropout mask as the C kernel reads it: float32 [B, P], contiguous."""
    if keep is None:
        return None
    batch, n_fields = e.shape[:2]
    return keep.detach().to(torch.float32).expand(batch, n_fields * (n_fields - 1) // 2).contiguous()


class _FusedInteraction(torch.autograd.Function):
    """pair_products and attention_pool in one C pass per sample each way (``_fused.c``)."""

    @staticmethod
    def forward(ctx: Any, e: Tensor, W: Tensor, b: Tensor, h: Tensor, keep: Tensor | None) -> tuple[Tensor, ...]:
        e, W, b, h = _contiguous(e, W, b, h)
        keep = _mask(keep, e)
        pooled, score, attention, _ = _bridge.forward(_library(), e, W, b, h, keep, threads=_threads())
        ctx.save_for_backward(e, W, b, h, keep, attention)
        return pooled, score, attention

    @staticmethod
    def backward(
        ctx: Any, grad_pooled: Tensor | None, grad_score: Tensor | None, grad_attention: Tensor | None
    ) -> tuple[Any, ...]:
        e, W, b, h, keep, attention = ctx.saved_tensors
        # named, so that the contiguous copies (of an expanded gradient, say) outlive the C call
        grad_score = None if grad_score is None else grad_score.detach().contiguous()
        grad_attention = None if grad_attention is None else grad_attention.detach().contiguous()
        if grad_pooled is None:  # only score or attention were used
            grad_pooled = e.new_zeros(e.shape[0], e.shape[2])
        grad_pooled = grad_pooled.detach().contiguous()
        grads = _bridge.backward(_library(), e, W, b, h, keep, attention, grad_pooled, grad_score,
                                 grad_attention, threads=_threads())  # fmt: skip
        return *grads, None


def fused_applies(n_fields: int, *tensors: Tensor) -> bool:
    """Whether the fused C kernel serves a model with ``n_fields`` fields and these parameters
    (float32 on the CPU, at least one pair, the kernel built)."""
    return (
        n_fields >= 2
        and all(x.device.type == "cpu" and x.dtype == torch.float32 for x in tensors)
        and native.library() is not None
    )


def fused_available(e: Tensor, *params: Tensor) -> bool:
    """Whether ``interaction`` runs the fused C kernel for these tensors."""
    return e.dim() == 3 and fused_applies(e.shape[1], e, *params)


def interaction(
    e: Tensor, W: Tensor, b: Tensor, h: Tensor, keep: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(pooled [B, k], score [B, P], attention [B, P])``: ``model.attention_reference``'s numbers
    (to float rounding), i.e. ``attention_pool(pair_products(e), W, b, h, keep)``.

    The fused C kernel where it applies, which never materialises the [B, P, k] pair vectors;
    float64, CUDA, or no C kernel: the PyTorch kernels above. Mismatched shapes raise ``ValueError``
    either way (``check_interaction``).
    """
    check_interaction(e, W, b, h, keep)
    if fused_available(e, W, b, h):
        if torch.is_grad_enabled() and any(x.requires_grad for x in (e, W, b, h)):
            return _FusedInteraction.apply(e, W, b, h, keep)
        e, W, b, h = _contiguous(e, W, b, h)  # prediction: no autograd node
        pooled, score, attention, _ = _bridge.forward(_library(), e, W, b, h, _mask(keep, e), threads=_threads())
        return pooled, score, attention
    return attention_pool(pair_products(e), W, b, h, keep)


@torch.no_grad()
def interaction_terms(
    e: Tensor, W: Tensor, b: Tensor, h: Tensor, p: Tensor, keep: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """What an explanation needs, without gradients: ``(pooled, score, attention, interaction)``,
    where interaction [B, P] = p . u_ij. Fused where it applies (no [B, P, k] tensor is formed)."""
    check_interaction(e, W, b, h, keep, p)
    if fused_available(e, W, b, h, p):
        e, W, b, h, p = _contiguous(e, W, b, h, p)
        pooled, score, attention, interaction = _bridge.forward(
            _library(), e, W, b, h, _mask(keep, e), p, threads=_threads()
        )
        assert interaction is not None  # p was given
        return pooled, score, attention, interaction
    u = pair_products(e)
    pooled, score, attention = attention_pool(u, W, b, h, keep)
    return pooled, score, attention, u @ p


# ---------------------------------------------------------------------------- memory, for callers that batch


def bytes_per_row(n_fields: int, k: int, *params: Tensor) -> int:
    """Working memory per sample of an explanation's pass (``interaction_terms``), float32: the [B, P]
    results and the embeddings, plus the [B, P, k] pair vectors and one product of their size unless
    the fused kernel serves ``params`` (AFM's V, W, b, h; none given, as for FM: the pair vectors are formed)."""
    n_pairs = _pairs(n_fields)
    per_row = 4 * (6 * n_pairs + 2 * n_fields * (k + 1))
    if not (params and fused_applies(n_fields, *params)):
        per_row += 4 * 2 * n_pairs * k
    return per_row


def _pairs(n_fields: int) -> int:
    return n_fields * (n_fields - 1) // 2
