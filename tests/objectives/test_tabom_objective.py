"""Tests for the TABOM objective: CE window + entropy ranking window on the same cut."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from objective_batches import gen, make_batch, random_packed_logits
from tabom.objectives.ranking import entropy_rank_loss, token_entropy
from tabom.objectives.tabom import TabomConfig, make_tabom_inputs, tabom_loss


def test_ce_and_rank_windows_share_the_cut():
    """s_max 7, M = 2, W = 4: CE on [cut, cut+2), ranking on masked [cut, cut+4);
    positions = their union = the rank window here."""
    batch = make_batch([[1, 2]], [[0, 1, 2, 3, 4, 5, 6, 7]])
    cfg = TabomConfig(ce_window=2, rank_window=4)
    st = batch.steps[0]
    for seed in range(30):
        noised = make_tabom_inputs(batch, gen(seed), cfg)
        cut = int(noised.cut[0])
        assert 0 <= cut <= 5
        assert torch.equal(noised.ce_mask[0], (st >= cut) & (st < cut + 2))
        assert torch.equal(noised.rank_mask[0], (st >= cut) & (st < cut + 4))
        assert torch.equal(noised.positions, noised.ce_mask | noised.rank_mask)


def test_loss_is_ce_plus_lambda_rank_and_metrics():
    batch = make_batch([[1], [3, 4]], [[2, 0, 1, 3, 4, 5], [0, 0, 1, 1, 2, 3]])
    cfg = TabomConfig(ce_window=2, rank_window=3, margin=0.2, rank_lambda=2.0)
    noised = make_tabom_inputs(batch, gen(1), cfg)
    logits = random_packed_logits(noised.positions, vocab=50)
    out = tabom_loss(logits, noised, cfg)
    # reference: scatter CE / entropy by boolean indexing and call the public pieces
    ce = torch.zeros(noised.positions.shape)
    ce[noised.positions] = F.cross_entropy(logits, noised.targets[noised.positions], reduction="none")
    ent = torch.zeros(noised.positions.shape)
    ent[noised.positions] = token_entropy(logits)
    m = noised.ce_mask.float()
    used = m.sum(1) > 0
    want_ce = ((ce * m).sum(1) / m.sum(1).clamp_min(1))[used].mean()
    want_rank = entropy_rank_loss(ent, noised.steps, noised.rank_mask, noised.cut, 3, 0.2)
    assert out.metrics["loss_ce"].item() == pytest.approx(want_ce.item(), rel=1e-6)
    assert out.metrics["loss_rank"].item() == pytest.approx(want_rank.item(), rel=1e-6)
    assert out.loss.item() == pytest.approx(want_ce.item() + 2.0 * want_rank.item(), rel=1e-6)
    assert out.metrics["n_supervised"].item() == noised.ce_mask.sum().item()
    out.loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_pair_count_by_hand():
    """One row, steps 0..3 each once, s_max 3, M = 1 -> cut in {0,1,2}; with W = 2 the rank
    window always holds two steps -> exactly 1 pair. Same-step tokens: steps [0,0,1] with
    M=1 (s_max 1 -> cut 0), W=2 -> pairs (0a,1), (0b,1) = 2."""
    batch = make_batch([[1]], [[0, 1, 2, 3]])
    noised = make_tabom_inputs(batch, gen(3), TabomConfig(ce_window=1, rank_window=2))
    out = tabom_loss(random_packed_logits(noised.positions), noised, TabomConfig(ce_window=1, rank_window=2))
    assert out.metrics["n_pairs"].item() == 1
    batch = make_batch([[1]], [[0, 0, 1]])
    cfg = TabomConfig(ce_window=1, rank_window=2)
    noised = make_tabom_inputs(batch, gen(0), cfg)
    assert int(noised.cut[0]) == 0
    out = tabom_loss(random_packed_logits(noised.positions), noised, cfg)
    assert out.metrics["n_pairs"].item() == 2


def test_short_rows_ranked_only_when_asked():
    """s_max 2 < M = 4: no CE; rank window [0, W) over the fully masked response if enabled."""
    batch = make_batch([[1]], [[0, 1, 2]])
    on = make_tabom_inputs(batch, gen(0), TabomConfig(ce_window=4, rank_window=4))
    assert not on.ce_mask.any() and on.rank_mask.sum().item() == 3
    off = make_tabom_inputs(batch, gen(0), TabomConfig(ce_window=4, rank_window=4, rank_short_rows=False))
    assert not off.positions.any()
    out = tabom_loss(random_packed_logits(on.positions), on, TabomConfig(ce_window=4, rank_window=4))
    assert out.metrics["loss_ce"].item() == 0.0 and out.metrics["n_pairs"].item() == 3


def test_rank_term_moves_entropy_in_the_easy_to_hard_direction():
    """Identical logits at steps 0 and 1 (equal entropy), margin 0.5: the hinge
    relu(H0 - H1 + 0.5) = 0.5 is active, and a gradient step on the rank term alone makes the
    earlier token's entropy lower than the later one's."""
    batch = make_batch([[1]], [[0, 1]])
    cfg = TabomConfig(ce_window=1, rank_window=2, margin=0.5, rank_lambda=1.0, global_window=True)
    # the global window samples cut in {0, 1}; take the first seed that gives cut 0
    noised = next(
        n for s in range(50) if int((n := make_tabom_inputs(batch, gen(s), cfg)).cut[0]) == 0
    )
    row = torch.linspace(2.0, -2.0, 16)
    logits = torch.stack([row, row]).requires_grad_(True)  # (2, 16): steps 0 and 1
    out = tabom_loss(logits, noised, cfg)
    assert out.metrics["loss_rank"].item() == pytest.approx(0.5, abs=1e-6)
    (g,) = torch.autograd.grad(out.loss - out.metrics["loss_ce"], logits)
    h = token_entropy(logits.detach() - 0.1 * g)
    assert h[0] < h[1]


def test_config_validation():
    with pytest.raises(ValueError, match="rank_window"):
        TabomConfig(rank_window=1)
    with pytest.raises(ValueError, match="margin"):
        TabomConfig(margin=-0.1)
