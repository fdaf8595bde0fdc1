"""Tests for token_entropy and entropy_rank_loss (hand-computed hinge sums)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tabom.objectives.ranking import count_rank_pairs, entropy_rank_loss, token_entropy


def _row(entropy, steps, supervised=None, cut=0):
    h = torch.tensor([entropy], dtype=torch.float32, requires_grad=True)
    s = torch.tensor([steps], dtype=torch.long)
    sup = torch.ones_like(s, dtype=torch.bool) if supervised is None else torch.tensor([supervised])
    return h, s, sup, torch.tensor([cut])


def naive_rank_loss(entropy, steps, supervised, cut, window, margin):
    """Reference: per-row double loop, as written in the paper's Eq. 8."""
    terms = []
    for b in range(entropy.shape[0]):
        idx = [
            i
            for i in range(entropy.shape[1])
            if supervised[b, i]
            and steps[b, i] >= 0
            and steps[b, i] >= cut[b]
            and (window is None or steps[b, i] < cut[b] + window)
        ]
        pairs = [(i, j) for i in idx for j in idx if steps[b, i] < steps[b, j]]
        if pairs:
            terms.append(sum(F.relu(entropy[b, i] - entropy[b, j] + margin) for i, j in pairs) / len(pairs))
    return torch.stack(terms).mean() if terms else torch.tensor(0.0)


def test_three_tokens_by_hand():
    """steps [0,1,2], H [1.0, 0.8, 2.0], margin 0.5:
    (0,1): relu(1.0-0.8+0.5)=0.7; (0,2): relu(1.0-2.0+0.5)=0; (1,2): relu(0.8-2.0+0.5)=0.
    loss = 0.7/3. Gradient: only pair (0,1) is active -> dH0 = +1/3, dH1 = -1/3, dH2 = 0."""
    h, s, sup, cut = _row([1.0, 0.8, 2.0], [0, 1, 2])
    loss = entropy_rank_loss(h, s, sup, cut, window=32, margin=0.5)
    assert loss.item() == pytest.approx(0.7 / 3, abs=1e-6)
    loss.backward()
    assert torch.allclose(h.grad, torch.tensor([[1 / 3, -1 / 3, 0.0]]), atol=1e-6)


def test_window_and_cut_restrict_pairs():
    """steps [0,1,2,3], cut 1, window 2 -> only steps 1 and 2 rank; H [9, 3, 1, 0], margin 0.
    The single pair (step1, step2): relu(3-1)=2. Tokens at steps 0 and 3 are outside."""
    h, s, sup, cut = _row([9.0, 3.0, 1.0, 0.0], [0, 1, 2, 3], cut=1)
    assert entropy_rank_loss(h, s, sup, cut, window=2, margin=0.0).item() == pytest.approx(2.0)
    # global window (None): steps 1,2,3 -> pairs (1,2)=2, (1,3)=3, (2,3)=1 -> mean 2
    assert entropy_rank_loss(h, s, sup, cut, window=None, margin=0.0).item() == pytest.approx(2.0)
    assert count_rank_pairs(s, sup, cut, None).item() == 3


def test_same_step_pairs_are_not_ranked():
    """steps [0,0,1], H [5,0,1], margin 0: pairs (0,2): relu(5-1)=4, (1,2): relu(0-1)=0 -> 2.0.
    The same-step pair (0,1) would add relu(5-0)=5 in either order it were ranked."""
    h, s, sup, cut = _row([5.0, 0.0, 1.0], [0, 0, 1])
    assert entropy_rank_loss(h, s, sup, cut, window=8, margin=0.0).item() == pytest.approx(2.0)
    assert count_rank_pairs(s, sup, cut, 8).item() == 2


def test_unsupervised_and_undecoded_positions_are_ignored():
    """steps [0,-1,1,2], supervised [T,T,T,F], H [2,100,1,-100], margin 0:
    only steps 0 and 1 rank: relu(2-1)=1."""
    h, s, sup, cut = _row([2.0, 100.0, 1.0, -100.0], [0, -1, 1, 2], [True, True, True, False])
    assert entropy_rank_loss(h, s, sup, cut, window=8, margin=0.0).item() == pytest.approx(1.0)


def test_rows_without_pairs_are_excluded_from_the_mean():
    """Row 0 as in the 3-token example (0.7/3); row 1 has a single ranked token -> no pair.
    Mean over rows with a pair = 0.7/3, not 0.7/6."""
    h = torch.tensor([[1.0, 0.8, 2.0], [4.0, 0.0, 0.0]], requires_grad=True)
    s = torch.tensor([[0, 1, 2], [3, -1, -1]])
    sup = torch.ones(2, 3, dtype=torch.bool)
    loss = entropy_rank_loss(h, s, sup, torch.tensor([0, 0]), window=32, margin=0.5)
    assert loss.item() == pytest.approx(0.7 / 3, abs=1e-6)


def test_no_pair_gives_zero_that_backprops():
    h, s, sup, cut = _row([1.0, 2.0], [0, -1])
    loss = entropy_rank_loss(h, s, sup, cut, window=32, margin=0.2)
    assert loss.item() == 0.0
    loss.backward()
    assert h.grad is not None and torch.equal(h.grad, torch.zeros_like(h))


def test_matches_naive_double_loop_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        B, T = 4, 12
        h = torch.randn(B, T, generator=g) * 2
        steps = torch.randint(-1, 8, (B, T), generator=g)
        sup = torch.rand(B, T, generator=g) < 0.8
        cut = torch.randint(0, 4, (B,), generator=g)
        window = [3, 5, None, 1, 8][trial]
        got = entropy_rank_loss(h, steps, sup, cut, window=window, margin=0.3)
        want = naive_rank_loss(h, steps, sup, cut, window, 0.3)
        assert got.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-6)


def test_shape_errors_name_the_field():
    with pytest.raises(ValueError, match="cut"):
        entropy_rank_loss(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long),
                          torch.ones(2, 3, dtype=torch.bool), torch.zeros(3, dtype=torch.long), 4, 0.1)
    with pytest.raises(ValueError, match="window"):
        entropy_rank_loss(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.long),
                          torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, dtype=torch.long), 0, 0.1)


def test_token_entropy_uniform_and_onehot():
    """Uniform over 4 -> log 4; a single finite logit among -inf -> exactly 0."""
    h = token_entropy(torch.zeros(2, 4))
    assert torch.allclose(h, torch.full((2,), math.log(4)))
    z = torch.tensor([[0.0, -math.inf, -math.inf]])
    assert token_entropy(z).item() == 0.0


def test_token_entropy_stable_at_extreme_logits():
    """-inf and 1e4 logits: finite values and finite gradients. [1e4, 1e4, -1e4] -> log 2."""
    z = torch.tensor([[1e4, 1e4, -1e4], [0.0, -math.inf, 1.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    h = token_entropy(z)
    assert torch.isfinite(h).all()
    assert h[0].item() == pytest.approx(math.log(2), abs=1e-6)
    assert h[2].item() == pytest.approx(math.log(3), abs=1e-5)
    h.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_token_entropy_upcasts_to_float32():
    z = torch.randn(3, 7, dtype=torch.bfloat16)
    h = token_entropy(z)
    assert h.dtype == torch.float32
    p = torch.softmax(z.float(), -1)
    assert torch.allclose(h, -(p * p.log()).sum(-1), atol=1e-5)
