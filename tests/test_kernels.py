"""The hand-written backward passes against autograd's own, in float64 (torch.autograd.gradcheck)."""

from __future__ import annotations

import pytest
import torch

from afm import kernels


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
