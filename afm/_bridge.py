"""The ctypes bridge to the fused C kernel (``_fused.c``): each C function's signature beside the
Python function that calls it, and every argument passed by name in one struct (``Args``).

This is the only module that hands raw pointers to C, so it checks everything the C code relies on
before each call: float32, on the CPU, contiguous, and exactly the shapes implied by ``e`` [B, F, k]
and ``W`` [t, k]. A mismatch raises ``ValueError`` (as the PyTorch path does, see
``kernels.check_interaction``) instead of letting C read past a buffer. Outputs are allocated here.

``native.library()`` decides whether there is a library at all; ``kernels`` decides when to use it.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch
from torch import Tensor

_f32 = ctypes.POINTER(ctypes.c_float)
_i64 = ctypes.c_int64

ABI = 2  # _fused.c's AFM_ABI: the struct below and the signatures in this file


class Args(ctypes.Structure):
    """``struct afm_args`` in ``_fused.c``, field for field (the C side documents each one)."""

    _fields_ = [
        *((name, _i64) for name in ("batch", "fields", "k", "t", "threads")),
        *((name, _f32) for name in ("e", "W", "bias", "h", "keep", "proj", "attention")),
        *((name, _f32) for name in ("grad_pooled", "grad_score", "grad_attention")),
        *((name, _f32) for name in ("pooled", "score", "attention_out", "interaction")),
        *((name, _f32) for name in ("grad_e", "grad_W", "grad_b", "grad_h")),
    ]


# Each entry: (C name, return type, argument types), declared on a library by ``declare``.
SIGNATURES: list[tuple[str, Any, list[Any]]] = []


def _signature(name: str, restype: Any, *argtypes: Any) -> None:
    SIGNATURES.append((name, restype, list(argtypes)))


def _pointer(x: Tensor | None) -> Any:
    return None if x is None else ctypes.cast(x.data_ptr(), _f32)


def _require(name: str, x: Any, shape: tuple[int, ...], optional: bool = False) -> None:
    """``x`` must be a contiguous float32 CPU tensor of exactly ``shape`` (or None if optional)."""
    if x is None and optional:
        return
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.dtype != torch.float32 or x.device.type != "cpu":
        raise ValueError(f"{name} must be float32 on the CPU for the fused kernel, got {x.dtype} on {x.device}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(x.shape)}")
    if not x.is_contiguous():
        raise ValueError(f"{name} must be contiguous for the fused kernel")


def _sizes(e: Any, W: Any) -> tuple[int, int, int, int, int]:
    """(B, F, k, t, P) from e [B, F, k] and W [t, k], with the checks every call needs."""
    if not isinstance(e, Tensor) or e.dim() != 3:
        raise ValueError(f"e must be a [B, F, k] tensor, got {getattr(e, 'shape', type(e).__name__)}")
    batch, n_fields, k = e.shape
    if n_fields < 2 or k < 1:
        raise ValueError(f"the fused kernel needs at least 2 fields and k >= 1, got e of shape {list(e.shape)}")
    if not isinstance(W, Tensor) or W.dim() != 2 or W.shape[1] != k or W.shape[0] < 1:
        raise ValueError(f"W must have shape [t, {k}] (k from e), got {list(getattr(W, 'shape', []))}")
    return batch, n_fields, k, W.shape[0], n_fields * (n_fields - 1) // 2


def _call(function: Any, args: Args) -> None:
    if function(ctypes.byref(args)):
        raise MemoryError("the fused AFM kernel ran out of memory")


# int afm_forward(const afm_args *a);  0, or 1 when out of memory
_signature("afm_forward", ctypes.c_int, ctypes.POINTER(Args))


def forward(
    lib: ctypes.CDLL,
    e: Tensor,
    W: Tensor,
    b: Tensor,
    h: Tensor,
    keep: Tensor | None = None,
    p: Tensor | None = None,
    threads: int = 1,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """``(pooled [B, k], score [B, P], attention [B, P], interaction [B, P] or None)``; interaction
    (p . u_ij) only when ``p`` [k] is given. ``keep``: the attention-dropout mask [B, P] or None."""
    batch, n_fields, k, t, n_pairs = _sizes(e, W)
    for name, x, shape, optional in (
        ("e", e, (batch, n_fields, k), False), ("W", W, (t, k), False), ("b", b, (t,), False),
        ("h", h, (t,), False), ("keep", keep, (batch, n_pairs), True), ("p", p, (k,), True),
    ):  # fmt: skip
        _require(name, x, shape, optional)
    pooled = e.new_empty(batch, k)
    score, attention = e.new_empty(batch, n_pairs), e.new_empty(batch, n_pairs)
    interaction = None if p is None else e.new_empty(batch, n_pairs)
    args = Args(batch=batch, fields=n_fields, k=k, t=t, threads=max(int(threads), 1))
    for name, x in (("e", e), ("W", W), ("bias", b), ("h", h), ("keep", keep), ("proj", p), ("pooled", pooled),
                    ("score", score), ("attention_out", attention), ("interaction", interaction)):  # fmt: skip
        setattr(args, name, _pointer(x))
    _call(lib.afm_forward, args)
    return pooled, score, attention, interaction


# int afm_backward(const afm_args *a);  0, or 1 when out of memory
_signature("afm_backward", ctypes.c_int, ctypes.POINTER(Args))


def backward(
    lib: ctypes.CDLL,
    e: Tensor,
    W: Tensor,
    b: Tensor,
    h: Tensor,
    keep: Tensor | None,
    attention: Tensor,
    grad_pooled: Tensor,
    grad_score: Tensor | None = None,
    grad_attention: Tensor | None = None,
    threads: int = 1,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(grad_e, grad_W, grad_b, grad_h)`` given the forward's inputs and attention and the
    gradients of its outputs (``grad_score`` and ``grad_attention`` may be None: zero)."""
    batch, n_fields, k, t, n_pairs = _sizes(e, W)
    for name, x, shape, optional in (
        ("e", e, (batch, n_fields, k), False), ("W", W, (t, k), False), ("b", b, (t,), False),
        ("h", h, (t,), False), ("keep", keep, (batch, n_pairs), True),
        ("attention", attention, (batch, n_pairs), False), ("grad_pooled", grad_pooled, (batch, k), False),
        ("grad_score", grad_score, (batch, n_pairs), True),
        ("grad_attention", grad_attention, (batch, n_pairs), True),
    ):  # fmt: skip
        _require(name, x, shape, optional)
    grad_e, grad_W = torch.empty_like(e), torch.empty_like(W)
    grad_b, grad_h = torch.empty_like(b), torch.empty_like(h)
    args = Args(batch=batch, fields=n_fields, k=k, t=t, threads=max(int(threads), 1))
    for name, x in (("e", e), ("W", W), ("bias", b), ("h", h), ("keep", keep), ("attention", attention),
                    ("grad_pooled", grad_pooled), ("grad_score", grad_score), ("grad_attention", grad_attention),
                    ("grad_e", grad_e), ("grad_W", grad_W), ("grad_b", grad_b), ("grad_h", grad_h)):  # fmt: skip
        setattr(args, name, _pointer(x))
    _call(lib.afm_backward, args)
    return grad_e, grad_W, grad_b, grad_h


# The library's description of itself: int afm_abi(void); int64_t afm_args_size(void);
# const char *afm_source_id(void); int afm_vector_width(void), afm_pair_block(void), afm_vectors_across(void),
# afm_openmp(void);
# int afm_probe(void) (a small forward and backward; 0 when it passes)
_signature("afm_abi", ctypes.c_int)
_signature("afm_args_size", ctypes.c_int64)
_signature("afm_source_id", ctypes.c_char_p)
_signature("afm_vector_width", ctypes.c_int)
_signature("afm_pair_block", ctypes.c_int)
_signature("afm_vectors_across", ctypes.c_int)
_signature("afm_openmp", ctypes.c_int)
_signature("afm_probe", ctypes.c_int)


def declare(lib: ctypes.CDLL, source_id: str | None = None) -> ctypes.CDLL:
    """Set every signature above on ``lib``, then check that it speaks this interface and, given
    ``source_id``, that it was built from that source. Raises ``ValueError`` where it does not
    (a missing function raises ``AttributeError``)."""
    for name, restype, argtypes in SIGNATURES:
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    if lib.afm_abi() != ABI or lib.afm_args_size() != ctypes.sizeof(Args):
        raise ValueError(
            f"interface {lib.afm_abi()} with a {lib.afm_args_size()}-byte struct, "
            f"expected {ABI} with {ctypes.sizeof(Args)} bytes"
        )
    built_from = lib.afm_source_id().decode()
    if source_id is not None and built_from != source_id:
        raise ValueError(f"built from another version of _fused.c ({built_from}, expected {source_id})")
    return lib


def describe(lib: ctypes.CDLL) -> dict[str, Any]:
    """Vector width (floats), register block (pairs by vectors) and whether OpenMP threads are used,
    from the library itself."""
    return {
        "vector_width": lib.afm_vector_width(),
        "pair_block": lib.afm_pair_block(),
        "vectors_across": lib.afm_vectors_across(),
        "openmp": bool(lib.afm_openmp()),
    }
