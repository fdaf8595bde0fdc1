"""Tests for the T3D baseline: DDO against a hand formula, path consistency, helpers."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from objective_batches import gen, make_batch, random_packed_logits
from tabom.objectives.t3d import (
    T3DConfig,
    attach_reference,
    make_t3d_inputs,
    path_consistency,
    sample_fake_tokens,
    sequence_mean_logprob,
    t3d_loss,
)


def test_sequence_mean_logprob_by_hand():
    """V = 2, logits [0, 0] -> log p = log 0.5 for any target; logits [ln 3, 0] -> p(0) = 3/4.
    Row 0 scores both rows' tokens (targets 0, 0): mean(log .5, log .75). Row 1: nothing -> 0."""
    pos = torch.tensor([[True, True], [False, False]])
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]])
    tgt = torch.zeros(2, 2, dtype=torch.long)
    got = sequence_mean_logprob(logits, pos, tgt, pos)
    assert got[0].item() == pytest.approx((math.log(0.5) + math.log(0.75)) / 2, rel=1e-6)
    assert got[1].item() == 0.0


def test_path_consistency_by_hand():
    """CE [1, 2, 3] at relative steps [0, 1, 2]: prefixes {1}, {1,2}, {1,2,3} ->
    (1 + 1.5 + 2) / 3 = 1.5. With a gap (steps 0 and 2 only, CE 1 and 3): prefixes {1}, {1,3}
    -> (1 + 2) / 2 = 1.5 (step 1 reveals nothing, so it is not a prefix)."""
    ce = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 3.0]])
    steps = torch.tensor([[5, 6, 7], [5, -1, 7]])
    mask = torch.tensor([[True, True, True], [True, False, True]])
    row, used = path_consistency(ce, steps, mask, torch.tensor([5, 5]), window=8)
    assert row.tolist() == pytest.approx([1.5, 1.5])
    assert used.tolist() == [True, True]
    # window 2 keeps relative steps 0 and 1 only: (1 + 1.5) / 2 = 1.25 for row 0
    row, _ = path_consistency(ce, steps, mask, torch.tensor([5, 5]), window=2)
    assert row[0].item() == pytest.approx(1.25)


def test_ddo_against_hand_formula():
    """Delta_real = mean(log p_theta(real)) - ref_real; loss = -logsig(b Dr) - a logsig(-b Df)
    + lambda_path * path (path over steps 0, 1 with CE c0, c1: (c0 + (c0 + c1)/2) / 2)."""
    cfg = T3DConfig(alpha=0.5, beta=0.1, path_lambda=0.2)
    batch = make_batch([[1]], [[0, 1]])
    noised = next(
        n for s in range(50) if int((n := make_t3d_inputs(batch, gen(s), cfg)).cut[0]) == 0
    )
    assert noised.positions.sum().item() == 2
    fake = noised.targets.clone()
    fake[noised.positions] = torch.tensor([3, 4])
    noised = dataclasses.replace(
        noised, fake_tokens=fake, ref_logp_real=torch.tensor([-2.0]), ref_logp_fake=torch.tensor([-1.0])
    )
    logits = random_packed_logits(noised.positions, vocab=16, seed=3)
    out = t3d_loss(logits, noised, cfg)
    logp = F.log_softmax(logits.detach(), -1)
    real = noised.targets[noised.positions]
    lp_real = logp[[0, 1], real].mean()
    lp_fake = logp[[0, 1], torch.tensor([3, 4])].mean()
    dr, df = lp_real + 2.0, lp_fake + 1.0
    ddo = -F.logsigmoid(0.1 * dr) - 0.5 * torch.log(1 - torch.sigmoid(0.1 * df))
    c0, c1 = -logp[0, real[0]], -logp[1, real[1]]
    path = (c0 + (c0 + c1) / 2) / 2
    assert out.metrics["loss_ddo"].item() == pytest.approx(ddo.item(), rel=1e-5)
    assert out.metrics["loss_path"].item() == pytest.approx(path.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx((ddo + 0.2 * path).item(), rel=1e-5)
    assert out.metrics["delta_real"].item() == pytest.approx(dr.item(), rel=1e-5)
    out.loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_scored_positions_are_masked_decoded_tokens():
    batch = make_batch([[1, 2]], [[0, 3, -1, 1, 2]])
    for seed in range(20):
        noised = make_t3d_inputs(batch, gen(seed))
        t = int(noised.cut[0])
        assert 0 <= t <= 3
        st = batch.steps[0]
        assert torch.equal(noised.positions[0], batch.response_mask[0] & (st >= t))


def test_fake_tokens_argmax_and_sampling():
    pos = torch.tensor([[False, True, True]])
    fill = torch.tensor([[7, 8, 9]])
    logits = torch.tensor([[0.0, 5.0, 0.0], [9.0, 0.0, 0.0]])
    assert sample_fake_tokens(logits, pos, fill, None, temperature=0.0).tolist() == [[7, 1, 0]]
    a = sample_fake_tokens(torch.zeros(2, 50), pos, fill, gen(1), temperature=1.0)
    b = sample_fake_tokens(torch.zeros(2, 50), pos, fill, gen(1), temperature=1.0)
    assert torch.equal(a, b) and a[0, 0].item() == 7


def test_attach_reference_and_end_to_end():
    cfg = T3DConfig()
    batch = make_batch([[1], [2, 3]], [[0, 1, 2, 3], [1, 0, 2]])
    noised = make_t3d_inputs(batch, gen(2), cfg)
    with pytest.raises(ValueError, match="attach_reference"):
        t3d_loss(random_packed_logits(noised.positions), noised, cfg)
    ref = random_packed_logits(noised.positions, seed=5).detach()
    noised = attach_reference(noised, ref, gen(3), cfg)
    assert noised.ref_logp_real.shape == (2,) and noised.fake_tokens.shape == batch.input_ids.shape
    # the policy equal to the reference -> Delta = 0 -> DDO = (1 + alpha) log 2
    out = t3d_loss(ref.clone().requires_grad_(True), noised, cfg)
    assert out.metrics["loss_ddo"].item() == pytest.approx(1.5 * math.log(2), rel=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match="beta"):
        T3DConfig(beta=-1.0)
    with pytest.raises(ValueError, match="path_window"):
        T3DConfig(path_window=0)
