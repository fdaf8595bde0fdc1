"""Tests for dInfer compressed transition learning."""

from __future__ import annotations

import pytest
import torch

from objective_batches import MASK, gen, make_batch, random_packed_logits
from tabom.objectives.dinfer import DinferConfig, dinfer_loss, make_dinfer_inputs


def test_transition_window_and_state():
    """s_max 7, max_span 3: 0 <= t < t' <= min(t + 3, 8); input visible iff step < t;
    CE exactly on steps in [t, t')."""
    batch = make_batch([[1]], [[5, 0, 7, 1, 2, 6, 3, 4]])
    st = batch.steps[0]
    resp = batch.response_mask[0]
    spans = set()
    for seed in range(200):
        noised = make_dinfer_inputs(batch, gen(seed), DinferConfig(max_span=3))
        t, t2 = int(noised.cut[0]), int(noised.window_end[0])
        assert 0 <= t < t2 <= min(t + 3, 8)
        spans.add(t2 - t)
        assert torch.equal(resp & (noised.input_ids[0] != MASK), resp & (st < t))
        assert torch.equal(noised.ce_mask[0], resp & (st >= t) & (st < t2))
    assert spans == {1, 2, 3}


def test_loss_row_mean_and_empty_rows():
    """Row 1 never decoded anything: no CE, excluded. Zero logits over V = 32 -> loss = log 32."""
    batch = make_batch([[1], [1]], [[0, 1, 2], [-1, -1]], left_pad=False)
    noised = make_dinfer_inputs(batch, gen(0))
    assert noised.row_valid.tolist() == [True, False]
    assert not noised.ce_mask[1].any()
    logits = torch.zeros(int(noised.positions.sum()), 32, requires_grad=True)
    out = dinfer_loss(logits, noised)
    assert out.loss.item() == pytest.approx(torch.log(torch.tensor(32.0)).item(), rel=1e-6)
    out.loss.backward()
    assert logits.grad.abs().sum() > 0
    assert out.metrics["mean_span"].item() >= 1


def test_gradient_with_random_logits():
    batch = make_batch([[1, 2]], [[0, 1, 1, 2, 3]])
    noised = make_dinfer_inputs(batch, gen(4))
    logits = random_packed_logits(noised.positions)
    dinfer_loss(logits, noised).loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_config_validation():
    with pytest.raises(ValueError, match="max_span"):
        DinferConfig(max_span=0)
