"""The hand-written backward passes against autograd's own, in float64 (torch.autograd.gradcheck)."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

from afm import kernels, native


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


def _reference_interaction(e, W, b, h, keep):  # noqa: ANN001, ANN202
    """pooled, score and attention from eq. 6's definitions, by plain autograd (any dtype)."""
    score = torch.relu(reference_pairs(e) @ W.T + b) @ h
    attention = torch.softmax(score, 1)
    weights = attention if keep is None else attention * keep
    return (weights.unsqueeze(2) * reference_pairs(e)).sum(1), score, attention


def _needs_native() -> None:
    if native.library() is None:
        if native._compiler() is not None and native.enabled():
            pytest.fail("a C compiler is here but the fused kernel did not build")
        pytest.skip("no C compiler here (or AFM_NATIVE=0): the fused kernel is unavailable")


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
    from afm import AFM

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


def test_kernel_build_is_cached_per_source(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    _needs_native()
    monkeypatch.setenv("AFM_CACHE", str(tmp_path))
    compiler = native._compiler()
    first = native._build(compiler)
    stamp = first.stat().st_mtime_ns
    assert native._build(compiler) == first and first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == [".writable", first.name]  # no build leftovers


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


def test_kernel_build_goes_to_a_private_temp_folder_when_the_cache_is_read_only(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    _needs_native()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AFM_CACHE", str(blocker / "afm"))  # cannot be created
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    built = native._build(native._compiler())
    assert built.parent == tmp_path / "tmp" / f"afm-{os.getuid()}"
    assert built.parent.stat().st_mode & 0o777 == 0o700
    assert native._build(native._compiler()) == built  # reused
    built.parent.chmod(0o777)  # a folder others can write: its library is not trusted
    with pytest.raises(RuntimeError, match="not private to this user"):
        native._build(native._compiler())
