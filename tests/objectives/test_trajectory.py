"""Tests for trajectory-aware reconstruction: cut range, visibility, CE window, short rows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from objective_batches import MASK, gen, make_batch, random_packed_logits
from tabom.objectives.trajectory import (
    TrajectoryConfig,
    make_trajectory_inputs,
    trajectory_loss,
)


def test_cut_range_visibility_and_ce_window():
    """10 steps (s_max 9), M = 3 -> cut in {0..6}, all reached over 200 draws.
    Visible: 0 <= step < cut; CE: cut <= step < cut + 3 (always exactly 3 tokens here)."""
    steps = [3, 0, 9, 1, 8, 2, 7, 4, 6, 5]
    batch = make_batch([[1, 2]], [steps])
    cfg = TrajectoryConfig(ce_window=3)
    seen = set()
    st = batch.steps[0]
    for seed in range(200):
        noised = make_trajectory_inputs(batch, gen(seed), cfg)
        cut = int(noised.cut[0])
        seen.add(cut)
        resp = batch.response_mask[0]
        visible = resp & (noised.input_ids[0] != MASK)
        assert torch.equal(visible, resp & (st >= 0) & (st < cut))
        assert torch.equal(noised.ce_mask[0], resp & (st >= cut) & (st < cut + 3))
        assert torch.equal(noised.positions, noised.ce_mask)
        assert torch.equal(noised.input_ids[0, :2], batch.input_ids[0, :2])  # prompt untouched
    assert seen == set(range(7))


def test_short_rows_are_fully_masked_and_carry_no_ce():
    """Row 1 has s_max = 2 < M = 3: whole response masked, no CE, not in the loss mean."""
    batch = make_batch([[1], [1]], [[0, 1, 2, 3, 4], [0, 1, 2]], left_pad=False)
    noised = make_trajectory_inputs(batch, gen(0), TrajectoryConfig(ce_window=3))
    assert noised.row_valid.tolist() == [True, False]
    assert not noised.ce_mask[1].any()
    assert (noised.input_ids[1][batch.response_mask[1]] == MASK).all()
    logits = random_packed_logits(noised.positions)
    out = trajectory_loss(logits, noised)
    assert out.metrics["n_rows"].item() == 1


def test_undecoded_tokens_always_masked_never_supervised():
    batch = make_batch([[1]], [[0, -1, 1, 2, -1, 3]])
    for seed in range(20):
        noised = make_trajectory_inputs(batch, gen(seed), TrajectoryConfig(ce_window=1))
        undecoded = batch.steps == -1
        undecoded &= batch.response_mask
        assert (noised.input_ids[undecoded] == MASK).all()
        assert not (noised.ce_mask & undecoded).any()


def test_global_window_supervises_every_later_step():
    """Global: cut in {0..s_max} = {0..4}; CE on every token with step >= cut."""
    batch = make_batch([[1]], [[4, 0, 3, 1, 2]])
    seen = set()
    for seed in range(100):
        noised = make_trajectory_inputs(batch, gen(seed), TrajectoryConfig(ce_window=3, global_window=True))
        cut = int(noised.cut[0])
        seen.add(cut)
        assert torch.equal(noised.ce_mask[0], batch.response_mask[0] & (batch.steps[0] >= cut))
    assert seen == set(range(5))


def test_loss_is_row_mean_then_batch_mean():
    """Two rows with 3 and 1 supervised tokens: loss = (mean(ce_row0) + ce_row1) / 2,
    not the token mean over 4 tokens."""
    batch = make_batch([[1], [1]], [[0, 1, 2, 3], [0, 1]], left_pad=False)
    noised = make_trajectory_inputs(batch, gen(0), TrajectoryConfig(ce_window=1, global_window=True))
    logits = random_packed_logits(noised.positions, vocab=64)
    out = trajectory_loss(logits, noised)
    tgt = noised.targets[noised.positions]
    ce = F.cross_entropy(logits, tgt, reduction="none")
    rows = torch.nonzero(noised.positions)[:, 0]
    want = torch.stack([ce[rows == b].mean() for b in rows.unique()]).mean()
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-6)
    out.loss.backward()
    assert logits.grad.abs().sum() > 0


def test_config_validation():
    with pytest.raises(ValueError, match="ce_window"):
        TrajectoryConfig(ce_window=0)
