"""Tests for NELBO masking and the 1/p_mask-weighted loss."""

from __future__ import annotations

import math

import pytest
import torch

from objective_batches import MASK, gen, make_batch
from tabom.objectives.nelbo import NelboConfig, make_nelbo_inputs, mask_uniform, nelbo_loss
from tabom.objectives.types import NoisedBatch


def test_masking_never_touches_prompt_or_padding():
    batch = make_batch([[1, 2, 3], [4]], [[0, 1, 2, 3], [0, 1]], left_pad=True)
    for seed in range(50):
        noised = make_nelbo_inputs(batch, gen(seed))
        changed = noised.input_ids != batch.input_ids
        assert not (changed & ~batch.response_mask).any()
        assert torch.equal(noised.positions, changed)  # every masked token is scored
        assert (noised.input_ids[changed] == MASK).all()
        assert torch.equal(noised.attention_mask, batch.attention_mask)


def test_mask_rate_follows_p_mask_and_eps_floor():
    """One long row: the masked fraction is within 0.05 of p_mask; p_mask in [eps, 1]."""
    ids = (torch.arange(4000) + 100).unsqueeze(0)  # no clean token equals MASK
    maskable = torch.ones_like(ids, dtype=torch.bool)
    for seed in range(5):
        noised, masked, p = mask_uniform(ids, maskable, MASK, gen(seed), eps=0.2)
        assert 0.2 <= p.item() <= 1.0
        assert masked.float().mean().item() == pytest.approx(p.item(), abs=0.05)
        assert torch.equal(noised == MASK, masked)


def test_groups_mask_together_and_keep_the_marginal_rate():
    """Tokens sharing a group id are masked together; each token still masked at rate p_mask; no
    groups means the very same draws as before."""
    length = 3000
    ids = (torch.arange(length) + 100).unsqueeze(0)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    groups = torch.full_like(ids, -1)
    groups[0, : length // 2] = torch.arange(length // 2) // 3  # groups of three neighbours
    for seed in range(5):
        _, masked, p = mask_uniform(ids, maskable, MASK, gen(seed), eps=0.2, groups=groups)
        triples = masked[0, : length // 2].view(-1, 3)
        assert (triples.all(dim=1) | ~triples.any(dim=1)).all()
        assert triples[:, 0].float().mean().item() == pytest.approx(p.item(), abs=0.07)
        assert masked[0, length // 2:].float().mean().item() == pytest.approx(p.item(), abs=0.07)
        _, plain, _ = mask_uniform(ids, maskable, MASK, gen(seed), eps=0.2)
        _, none, _ = mask_uniform(ids, maskable, MASK, gen(seed), eps=0.2, groups=torch.full_like(ids, -1))
        assert torch.equal(plain, none)
    with pytest.raises(ValueError, match="groups: shape"):
        mask_uniform(ids, maskable, MASK, gen(0), groups=groups[:, :5])


def test_masking_is_reproducible_with_the_generator():
    batch = make_batch([[1, 2]], [[0, 1, 2, 3, 4, 5]])
    a = make_nelbo_inputs(batch, gen(7))
    b = make_nelbo_inputs(batch, gen(7))
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.p_mask, b.p_mask)


def _hand_noised() -> NoisedBatch:
    """Row 0: 4 response tokens, 2 masked, p_mask 0.5. Row 1: 2 response tokens, 1 masked, p 0.25."""
    resp = torch.tensor([[True, True, True, True], [False, False, True, True]])
    masked = torch.tensor([[True, False, True, False], [False, False, False, True]])
    ids = torch.tensor([[1, 2, 3, 0], [5, 6, 1, 2]])
    return NoisedBatch(
        input_ids=ids, attention_mask=torch.ones_like(resp), positions=masked, targets=ids,
        response_mask=resp, steps=torch.full_like(ids, -1), ce_mask=masked,
        cut=torch.zeros(2, dtype=torch.long), p_mask=torch.tensor([0.5, 0.25]),
        row_valid=torch.tensor([True, True]),
    )


def test_inverse_t_weighting_by_hand():
    """Zero logits over V=4 -> every CE is log 4.
    Row 0: 2 * log4 / 0.5 / 4 = log4. Row 1: 1 * log4 / 0.25 / 2 = 2 log4. Mean = 1.5 log4.
    Unweighted ('none'): 3 masked tokens each log4 -> log4."""
    noised = _hand_noised()
    logits = torch.zeros(3, 4, requires_grad=True)
    out = nelbo_loss(logits, noised, NelboConfig(weighting="inverse_t"))
    assert out.loss.item() == pytest.approx(1.5 * math.log(4), rel=1e-6)
    assert out.metrics["n_masked"].item() == 3
    assert out.metrics["mask_rate"].item() == pytest.approx(3 / 6)
    out.loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    plain = nelbo_loss(torch.zeros(3, 4), noised, NelboConfig(weighting="none"))
    assert plain.loss.item() == pytest.approx(math.log(4), rel=1e-6)


def test_inverse_t_weights_rows_differently():
    """Row 1's token (p 0.25, 2 response tokens) gets weight 1/(0.25*2)/B = 1; row 0's tokens
    (p 0.5, 4 tokens) get 1/(0.5*4)/B = 0.25 each: the loss gradient per token scales the same."""
    noised = _hand_noised()
    logits = torch.zeros(3, 4, requires_grad=True)
    nelbo_loss(logits, noised).loss.backward()
    g = logits.grad.abs().sum(dim=1)  # packed rows: (0,0), (0,2), (1,3)
    assert g[2].item() == pytest.approx(4 * g[0].item(), rel=1e-5)
    assert g[0].item() == pytest.approx(g[1].item(), rel=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="weighting"):
        NelboConfig(weighting="1/t")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps"):
        NelboConfig(eps=1.0)
