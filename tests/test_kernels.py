"""The kernels against the maths: the hand-written backward passes against autograd's own (float64
gradcheck), and the fused C kernel and the PyTorch kernels against ``model.attention_reference``.
Shape checks: every entry point raises ``ValueError`` on mismatched tensors, never reads past a buffer.

The fused-kernel tests skip, with the reason, where no kernel can be built here, unless
``AFM_REQUIRE_NATIVE=1`` (as ``.ci/run`` sets), which makes them fail instead. The build, the cache
and the checks on a loaded library are tested in ``tests/test_native.py``.
"""

from __future__ import annotations

import os

import pytest
import torch

from afm import _bridge, kernels, native
from afm.model import AFM, attention_reference


def reference_pairs(e: torch.Tensor) -> torch.Tensor:
    i, j = torch.triu_indices(e.shape[1], e.shape[1], 1)
    return e[:, i] * e[:, j]


@pytest.mark.parametrize("n_fields", [1, 2, 3, 6])
def test_pair_products_forward_and_gradient(n_fields: int) -> None:
    e = torch.randn(4, n_fields, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(kernels.pair_products(e), reference_pairs(e))
    if n_fields > 1:
        assert torch.autograd.gradcheck(kernels.pair_products, (e,))


def test_embedding_gradient_sums_repeated_ids() -> None:
    weight = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([[0, 3, 3], [6, 0, 3]])
    torch.testing.assert_close(kernels.embedding(idx, weight), weight[idx])
    assert torch.autograd.gradcheck(lambda w: kernels.embedding(idx, w), (weight,))


def test_embedding_of_a_vector_and_its_gradient() -> None:
    weight = torch.randn(7, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([[0, 3, 3], [6, 0, 3]])
    torch.testing.assert_close(kernels.embedding(idx, weight), weight[idx])
    assert torch.autograd.gradcheck(lambda w: kernels.embedding(idx, w), (weight,))
    with torch.no_grad():
        torch.testing.assert_close(kernels.embedding(idx, weight), weight[idx])


@pytest.mark.parametrize("with_mask", [False, True])
def test_attention_pool_matches_autograd(with_mask: bool) -> None:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(3, 6, 4, dtype=torch.float64, generator=g, requires_grad=True)
    W = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True)
    h = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True)
    mask = (torch.rand(3, 6, generator=g) > 0.3).double() / 0.7 if with_mask else None

    def reference(u, W, b, h):  # noqa: ANN001, ANN202
        score = torch.relu(u @ W.T + b) @ h
        attention = torch.softmax(score, 1)
        weights = attention if mask is None else attention * mask
        return (weights.unsqueeze(2) * u).sum(1), score, attention

    for ours, ref in zip(kernels.attention_pool(u, W, b, h, mask), reference(u, W, b, h), strict=True):
        torch.testing.assert_close(ours, ref)
    # the gradient of every output (pooled, score and attention) against autograd's
    assert torch.autograd.gradcheck(lambda *a: kernels.attention_pool(*a, mask), (u, W, b, h))


# ---------------------------------------------------------------------------- the fused C kernel


_reference_interaction = attention_reference  # pooled, score and attention by plain autograd (any dtype)


def _needs_native() -> None:
    """Skip (or, with AFM_REQUIRE_NATIVE=1, fail) where the fused kernel is unavailable, saying why."""
    if native.library() is None:
        reason = native.unavailable_reason()
        if native.enabled() and native.required():
            pytest.fail(f"AFM_REQUIRE_NATIVE=1, but the fused C kernel is unavailable: {reason}")
        pytest.skip(f"the fused C kernel is unavailable here: {reason}")


@pytest.mark.parametrize("with_mask", [False, True])
def test_pytorch_kernels_match_the_reference(with_mask: bool) -> None:
    """The fallback (pair_products + attention_pool, hand-written backwards) against model.attention_reference."""
    g = torch.Generator().manual_seed(7)
    e = torch.randn(6, 7, 5, dtype=torch.float64, generator=g, requires_grad=True)
    params = [torch.randn(*s, dtype=torch.float64, generator=g, requires_grad=True) for s in ((4, 5), (4,), (4,))]
    keep = (torch.rand(6, 21, generator=g) > 0.3).double() / 0.7 if with_mask else None
    ours = kernels.attention_pool(kernels.pair_products(e), *params, keep)
    ref = attention_reference(e, *params, keep)
    upstream = [torch.randn(o.shape, dtype=torch.float64, generator=g) for o in ref]
    grads = [torch.autograd.grad(sum((o * u).sum() for o, u in zip(out, upstream, strict=True)), [e, *params])
             for out in (ours, ref)]  # fmt: skip
    for a, b in zip([*ours, *grads[0]], [*ref, *grads[1]], strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("batch", "n_fields", "k", "t", "masked"),
    [(37, 10, 16, 16, False), (64, 5, 7, 3, True), (9, 2, 1, 1, True), (33, 39, 33, 20, True), (5, 12, 64, 16, False)],
)
def test_fused_interaction_matches_float64_reference(batch: int, n_fields: int, k: int, t: int, masked: bool) -> None:
    """Outputs and all four gradients (with a gradient on every output) against float64 autograd."""
    _needs_native()
    g = torch.Generator().manual_seed(batch)
    e = torch.randn(batch, n_fields, k, generator=g) * 0.7
    W, b, h = torch.randn(t, k, generator=g), torch.randn(t, generator=g), torch.randn(t, generator=g)
    n_pairs = n_fields * (n_fields - 1) // 2
    keep = (torch.rand(batch, n_pairs, generator=g) > 0.3).float() / 0.7 if masked else None
    upstream = [torch.randn(batch, k, generator=g), torch.randn(batch, n_pairs, generator=g)]
    upstream.append(torch.randn(batch, n_pairs, generator=g))
    results = []
    for dtype in (torch.float32, torch.float64):  # float32: the C kernel; float64: the reference
        leaves = [x.to(dtype).requires_grad_() for x in (e, W, b, h)]
        mask = None if keep is None else keep.to(dtype)
        assert kernels.fused_available(*leaves) == (dtype == torch.float32)
        outputs = (kernels.interaction if dtype == torch.float32 else _reference_interaction)(*leaves, mask)
        total = sum((o * u.to(dtype)).sum() for o, u in zip(outputs, upstream, strict=True))
        grads = torch.autograd.grad(total, leaves)
        results.append([o.detach().double() for o in outputs] + [x.double() for x in grads])
    names = ["pooled", "score", "attention", "grad e", "grad W", "grad b", "grad h"]
    for name, ours, ref in zip(names, *results, strict=True):
        scale = ref.abs().max().item() + 1e-12
        assert (ours - ref).abs().max().item() <= 2e-5 * scale, name


def test_fused_softmax_handles_wide_score_ranges() -> None:
    """Scores thousands apart: attention still sums to 1 and matches torch.softmax."""
    _needs_native()
    g = torch.Generator().manual_seed(1)
    e = torch.randn(64, 39, 16, generator=g)
    W, b, h = torch.randn(16, 16, generator=g) * 3, torch.randn(16, generator=g), torch.randn(16, generator=g) * 5
    with torch.no_grad():
        _, score, attention = kernels.interaction(e, W, b, h)
    assert (score.max(1).values - score.min(1).values).max() > 1000
    torch.testing.assert_close(attention.sum(1), torch.ones(64))
    torch.testing.assert_close(attention, torch.softmax(score, 1), rtol=1e-5, atol=1e-7)


def test_fused_gradients_same_bits_per_thread_count_and_close_across_counts() -> None:
    _needs_native()
    g = torch.Generator().manual_seed(2)
    e = torch.randn(301, 8, 16, generator=g)
    params = [torch.randn(16, 16, generator=g), torch.randn(16, generator=g), torch.randn(16, generator=g)]
    threads = torch.get_num_threads()

    def grads(n: int) -> list[torch.Tensor]:
        torch.set_num_threads(n)
        leaves = [x.clone().requires_grad_() for x in (e, *params)]
        pooled, _, _ = kernels.interaction(*leaves)
        return list(torch.autograd.grad(pooled.square().sum(), leaves))

    try:
        one, two, two_again = grads(1), grads(2), grads(2)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(two, two_again, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(one, two, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_without_the_fused_kernel_the_model_computes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """No compiler (or AFM_NATIVE=0): one warning, then the PyTorch kernels, with the same numbers."""
    _needs_native()
    model = AFM(50, 6, 8, 4, seed=3)
    idx = torch.randint(0, 50, (40, 6))
    fused = model(idx)
    fused_grads = torch.autograd.grad(fused.square().sum(), list(model.parameters()))
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setattr(native, "_compiler", lambda: None)
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        assert native.library() is None
    plain = model(idx)
    plain_grads = torch.autograd.grad(plain.square().sum(), list(model.parameters()))
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    monkeypatch.setenv("AFM_NATIVE", "0")
    monkeypatch.setattr(native, "_state", {})
    assert native.library() is None  # switched off: no build attempted, no warning


def test_fused_kernel_propagates_nan_like_torch() -> None:
    """A NaN weight must not come out as finite attention (the trainer's divergence check relies on it)."""
    _needs_native()
    g = torch.Generator().manual_seed(4)
    e = torch.randn(40, 6, 16, generator=g)
    W, b, h = torch.randn(16, 16, generator=g), torch.randn(16, generator=g), torch.randn(16, generator=g)
    W[3, 5] = float("nan")
    with torch.no_grad():
        pooled, score, attention = kernels.interaction(e, W, b, h)
        reference = _reference_interaction(e, W, b, h, None)
    for ours, ref in zip((pooled, score, attention), reference, strict=True):
        assert torch.equal(ours.isnan(), ref.isnan())
    assert attention.isnan().all()


def test_fused_backward_with_expanded_and_broadcast_inputs() -> None:
    """``pooled.sum().backward()`` hands the kernel an expanded (stride 0) gradient; masks may be
    bool or broadcast [B, 1]: all must give the reference's numbers."""
    _needs_native()
    g = torch.Generator().manual_seed(5)
    e = torch.randn(4, 9, 16, generator=g)
    W, b, h = torch.randn(16, 16, generator=g), torch.randn(16, generator=g), torch.randn(16, generator=g)
    n_pairs = 36
    for keep in (None, torch.rand(4, n_pairs, generator=g) > 0.3, torch.tensor([[1.0], [0.0], [2.0], [1.0]])):
        grads = []
        for fn in (kernels.interaction, _reference_interaction):
            leaves = [x.double().requires_grad_() if fn is _reference_interaction else x.clone().requires_grad_()
                      for x in (e, W, b, h)]  # fmt: skip
            mask = None if keep is None else (keep.double() if fn is _reference_interaction else keep)
            pooled, _, _ = fn(*leaves, mask)
            pooled.sum().backward()
            grads.append([x.grad.double() for x in leaves] + [pooled.detach().double()])
        for ours, ref in zip(*grads, strict=True):
            torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_explanation_terms_match_the_reference() -> None:
    """interaction_terms (what explanations read): the reference's pooled, score and attention, and p . u_ij."""
    g = torch.Generator().manual_seed(6)
    e = torch.randn(33, 7, 16, generator=g)
    W, b, h, p = (torch.randn(*s, generator=g) for s in ((16, 16), (16,), (16,), (16,)))
    pooled, score, attention, interaction = kernels.interaction_terms(e, W, b, h, p)
    ref = attention_reference(e.double(), W.double(), b.double(), h.double())
    i, j = torch.triu_indices(7, 7, 1)
    for ours, expected in zip((pooled, score, attention, interaction),
                              (*ref, (e[:, i] * e[:, j]).double() @ p.double()), strict=True):  # fmt: skip
        torch.testing.assert_close(ours.double(), expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- shapes: an error, never a crash

_T, _K = 6, 8


def _bad_inputs() -> dict[str, tuple]:
    """(e, W, b, h, keep) with one thing wrong each; e is [5, 4, 8], so P = 6, t = 6."""
    g = torch.Generator().manual_seed(8)
    e, W, b, h = torch.randn(5, 4, _K, generator=g), torch.randn(_T, _K), torch.randn(_T), torch.randn(_T)
    return {
        "W has the wrong k": (e, torch.randn(_T, _K + 1), b, h, None),
        "b is too long": (e, W, torch.randn(_T + 1), h, None),
        "h is too short": (e, W, b, torch.randn(_T - 1), None),
        "h is a matrix": (e, W, b, torch.randn(_T, 1), None),
        "W [4096, 1] with k = 4096": (
            torch.randn(2, 3, 4096),
            torch.randn(4096, 1),
            torch.randn(4096),
            torch.randn(4096),
            None,
        ),  # fmt: skip
        "e is 2-D": (torch.randn(5, _K), W, b, h, None),
        "W is float64": (e, W.double(), b, h, None),
        "the mask is [5, 7]": (e, W, b, h, torch.ones(5, 7)),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
@pytest.mark.parametrize("kernel", ["fused", "pytorch"])
def test_mismatched_tensors_raise_value_error_on_both_paths(case: str, kernel: str, monkeypatch) -> None:  # noqa: ANN001
    """The PyTorch path and the fused one raise the same ValueError; before this check, the C kernel
    read past its buffers (W [4096, 1] with k = 4096 crashed the process)."""
    if kernel == "fused":
        _needs_native()
    else:
        monkeypatch.setattr(native, "library", lambda: None)
    e, W, b, h, keep = _bad_inputs()[case]
    for grad in (False, True):
        leaves = [x.clone().requires_grad_(grad) for x in (e, W, b, h)]
        with pytest.raises(ValueError):
            kernels.interaction(*leaves, keep)
    with pytest.raises(ValueError):
        kernels.interaction_terms(e, W, b, h, torch.randn(e.shape[-1]), keep)
    if case == "b is too long":
        with pytest.raises(ValueError, match="p must have shape"):
            kernels.interaction_terms(e, W, b[:_T], h, torch.randn(3))


def test_the_bridge_checks_every_tensor_it_hands_to_c() -> None:
    """_bridge.forward and backward, called directly: wrong shape, dtype, device or layout -> ValueError."""
    _needs_native()
    lib = native.library()
    g = torch.Generator().manual_seed(9)
    e, W, b, h = torch.randn(5, 4, _K, generator=g), torch.randn(_T, _K), torch.randn(_T), torch.randn(_T)
    good = dict(e=e, W=W, b=b, h=h)
    pooled, score, attention, _ = _bridge.forward(lib, **good)
    for name, bad in [("W", torch.randn(_T, _K + 1)), ("b", torch.randn(_T + 1)), ("h", torch.randn(_T - 1)),
                      ("e", e.double()), ("W", torch.randn(_K, _T).t()), ("e", torch.randn(5, 1, _K)),
                      ("e", torch.randn(5, 4, _K)[:, :, :4])]:  # fmt: skip
        with pytest.raises(ValueError):
            _bridge.forward(lib, **{**good, name: bad})
    with pytest.raises(ValueError, match="keep"):
        _bridge.forward(lib, **good, keep=torch.ones(5, 5))
    with pytest.raises(ValueError, match="p must"):
        _bridge.forward(lib, **good, p=torch.ones(_K + 1))
    grad_pooled = torch.randn(5, _K)
    _bridge.backward(lib, e, W, b, h, None, attention, grad_pooled)
    with pytest.raises(ValueError, match="grad_pooled"):
        _bridge.backward(lib, e, W, b, h, None, attention, torch.randn(5, _K + 1))
    with pytest.raises(ValueError, match="attention"):
        _bridge.backward(lib, e, W, b, h, None, attention[:4], grad_pooled)
    with pytest.raises(ValueError, match="grad_score"):
        _bridge.backward(lib, e, W, b, h, None, attention, grad_pooled, torch.randn(5, 5))


# ---------------------------------------------------------------------------- the kernel layer's other answers


def test_bytes_per_row_is_smaller_where_the_fused_kernel_serves() -> None:
    """explain.auto_batch_size asks the kernel layer; without a C kernel the [B, P, k] pair vectors count."""
    model = AFM(100, 10, 16, 16)
    params = (model.V, model.W, model.b, model.h)
    without = kernels.bytes_per_row(10, 16)  # FM's explanation: pair vectors formed
    assert without == 4 * (6 * 45 + 2 * 10 * 17) + 4 * 2 * 45 * 16
    expected = without - 4 * 2 * 45 * 16 if kernels.fused_applies(10, *params) else without
    assert kernels.bytes_per_row(10, 16, *params) == expected
    assert kernels.bytes_per_row(10, 16, *(x.double() for x in params)) == without  # float64: PyTorch kernels


def test_the_loaded_kernel_says_what_it_was_built_with() -> None:
    _needs_native()
    info = native.info()
    assert info["vector_width"] in (4, 8, 16) and info["pair_block"] in (4, 8)
    assert "-fPIC" in info["flags"] and info["cpu"]
    flags = " ".join(info["flags"])
    if "avx512f" in info["cpu"] and "-march=native" in flags:
        assert info["vector_width"] == 16
    custom = os.environ.get("AFM_CFLAGS", "").split()  # .ci/run's baseline build: these flags, no others
    assert flags.split()[len(native.TUNING) : len(native.TUNING) + len(custom)] == custom
    if custom and not any(f.startswith(("-march", "-mcpu")) for f in custom):
        assert not any(f.startswith(("-march", "-mcpu")) for f in info["flags"])
    if os.environ.get("AFM_OPENMP", "1") == "0":  # .ci/run's build without OpenMP: plain threads
        assert not info["openmp"]
