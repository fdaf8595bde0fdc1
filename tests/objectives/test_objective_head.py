"""Tests for the chunked, recomputing LM head (values and gradients match the plain head)."""

from __future__ import annotations

import pytest
import torch

from tabom.objectives.head import chunked_head_ce_entropy, head_ce_entropy


def test_chunked_matches_unchunked_values_and_grads():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(10, 8, generator=g, requires_grad=True)
    weight = torch.randn(30, 8, generator=g)
    targets = torch.randint(0, 30, (10,), generator=g)
    ce_full, ent_full = head_ce_entropy(hidden, weight, targets)
    (ce_full.sum() + 0.3 * ent_full.sum()).backward()
    grad_full = hidden.grad.clone()
    hidden.grad = None
    for chunk in (1, 3, 64):
        ce, ent = chunked_head_ce_entropy(hidden, weight, targets, chunk=chunk)
        assert torch.allclose(ce, ce_full, atol=1e-6) and torch.allclose(ent, ent_full, atol=1e-6)
        (ce.sum() + 0.3 * ent.sum()).backward()
        assert torch.allclose(hidden.grad, grad_full, atol=1e-5)
        hidden.grad = None


def test_callable_head_and_errors():
    lin = torch.nn.Linear(4, 6, bias=True)
    h = torch.randn(5, 4, requires_grad=True)
    t = torch.zeros(5, dtype=torch.long)
    ce, _ = chunked_head_ce_entropy(h, lin, t, chunk=2)
    ce.sum().backward()
    assert lin.weight.grad is not None and h.grad is not None
    with pytest.raises(ValueError, match="chunk"):
        chunked_head_ce_entropy(h, lin, t, chunk=0)
    with pytest.raises(ValueError, match="targets"):
        chunked_head_ce_entropy(h, lin, t[:3])
