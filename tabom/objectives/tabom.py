"""The TABOM objective (paper Eq. 9; release ``--mask_schedule td --entropy_rank_reg``).

    loss = loss_ce + rank_lambda * loss_rank

``loss_ce`` is trajectory-aware reconstruction (see :mod:`tabom.objectives.trajectory`): cut the
trajectory at a sampled step, mask the future, CE on the tokens decoded in ``[cut, cut + M)``.
``loss_rank`` is :func:`tabom.objectives.ranking.entropy_rank_loss` over the masked positions
decoded in ``[cut, cut + W)``: earlier-decoded tokens must have lower predictive entropy.

The model scores the union of CE and ranking positions; entropies come from the same logits.
Rows too short for a CE window (``s_max < M``) keep ``cut = 0`` with the response fully masked;
they carry no CE but are still ranked over steps ``[0, W)`` unless ``rank_short_rows=False``.
This departs from the release, which ranks only positions inside its CE mask and so never ranks
such rows (``rank_short_rows=False`` is the release's behaviour; docs/deviations.md).

Usage::

    cfg = TabomConfig(margin=0.2, rank_lambda=1.0)
    noised = make_tabom_inputs(batch, generator, cfg)
    logits = model(noised.input_ids, noised.attention_mask, positions=noised.positions)
    out = tabom_loss(logits, noised, cfg)      # out.loss, out.metrics["loss_rank"], ...
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tabom.objectives.ranking import (
    count_rank_pairs,
    entropy_rank_loss,
    rank_window_mask,
    token_entropy,
)
from tabom.objectives.trajectory import sample_cut, step_window, trajectory_state
from tabom.objectives.types import (
    BatchLike,
    LossOutput,
    NoisedBatch,
    check_batch,
    check_packed,
    gather_packed,
    masked_row_mean,
    packed_index,
    trajectory_batch,
    unpack,
)


@dataclass
class TabomConfig:
    """Configuration of TABOM (defaults: the paper's W = M = 32, margin 0.2, lambda 1)."""

    ce_window: int = 32
    """M: decode steps supervised by CE after the cut (release ``--td_supervision_window``)."""
    rank_window: int = 32
    """W: decode steps ranked after the cut (release ``--entropy_rank_window``)."""
    margin: float = 0.2
    """gamma: hinge margin (release ``--entropy_rank_margin``)."""
    rank_lambda: float = 1.0
    """lambda: weight of the ranking term (release ``--entropy_rank_lambda``)."""
    global_window: bool = False
    """Table 5's global timestep window: CE on every step >= cut, ranking over all of them."""
    rank_short_rows: bool = True
    """Rank rows with ``s_max < M`` (no CE) over steps [0, W) of their fully masked response."""

    def __post_init__(self) -> None:
        if self.ce_window < 1:
            raise ValueError(f"TabomConfig: ce_window: must be >= 1, got {self.ce_window}")
        if self.rank_window < 2:
            raise ValueError(f"TabomConfig: rank_window: must be >= 2 to form a pair, got {self.rank_window}")
        if self.margin < 0:
            raise ValueError(f"TabomConfig: margin: must be >= 0, got {self.margin}")
        if self.rank_lambda < 0:
            raise ValueError(f"TabomConfig: rank_lambda: must be >= 0, got {self.rank_lambda}")


def _rank_window(cfg: TabomConfig) -> int | None:
    return None if cfg.global_window else cfg.rank_window


def make_tabom_inputs(
    batch: BatchLike, generator: torch.Generator | None, cfg: TabomConfig | None = None
) -> NoisedBatch:
    """Trajectory cut + masking; marks CE positions and ranking positions (their union is scored)."""
    cfg = cfg or TabomConfig()
    check_batch(batch)
    response = batch.response_mask & batch.attention_mask  # (B, L)
    # 1. one cut per row, shared by CE and ranking (release: td_cuts_for_entropy[b])
    cut, valid = sample_cut(batch.steps, response, cfg.ce_window, cfg.global_window, generator)
    noised_ids, masked = trajectory_state(
        batch.input_ids, response, batch.steps, cut, batch.mask_token_id
    )
    # 2. CE window [cut, cut + M) on rows long enough
    hi = None if cfg.global_window else cut + cfg.ce_window
    ce_mask = response & valid.unsqueeze(1) & step_window(batch.steps, cut, hi)  # (B, L)
    # 3. ranking window [cut, cut + W) over masked, decoded positions
    rank_rows = valid if not cfg.rank_short_rows else torch.ones_like(valid)
    rank_mask = rank_window_mask(batch.steps, masked & rank_rows.unsqueeze(1), cut, _rank_window(cfg))
    return trajectory_batch(batch, response, noised_ids, ce_mask, cut, valid, positions=ce_mask | rank_mask,
                            rank_mask=rank_mask)


def tabom_terms(
    ce_packed: Tensor, entropy_packed: Tensor, noised: NoisedBatch, cfg: TabomConfig
) -> tuple[Tensor, Tensor]:
    """Combine packed per-position CE and entropy into ``(loss_ce, loss_rank)`` scalars.

    Shapes: ce_packed, entropy_packed (N,) float32, packed at ``noised.positions``. Split out so
    a chunked LM head (:mod:`tabom.objectives.head`) can feed it without materialising logits.
    """
    if noised.rank_mask is None:
        raise ValueError("tabom_loss: noised: rank_mask is missing (build inputs with make_tabom_inputs)")
    index = packed_index(noised.positions, ce_packed.shape[0])  # (N,)
    shape = noised.positions.shape
    ce = unpack(ce_packed, index, shape)  # (B, L)
    entropy = unpack(entropy_packed, index, shape)  # (B, L)
    loss_ce, _ = masked_row_mean(ce, noised.ce_mask)
    loss_rank = entropy_rank_loss(
        entropy, noised.steps, noised.rank_mask, noised.cut, _rank_window(cfg), cfg.margin
    )
    return loss_ce, loss_rank


def tabom_loss(logits: Tensor, noised: NoisedBatch, cfg: TabomConfig | None = None) -> LossOutput:
    """TABOM loss from logits (N, V) packed at ``noised.positions``.

    Metrics: ``loss_ce``, ``loss_rank``, ``n_supervised`` (CE tokens), ``n_pairs`` (ranked pairs).
    """
    cfg = cfg or TabomConfig()
    check_packed(logits, noised.positions)
    index = packed_index(noised.positions, logits.shape[0])  # (N,)
    tgt = gather_packed(noised.targets, index)  # (N,)
    logits32 = logits.float()  # (N, V)
    ce_packed = F.cross_entropy(logits32, tgt, reduction="none")  # (N,)
    entropy_packed = token_entropy(logits32)  # (N,)
    loss_ce, loss_rank = tabom_terms(ce_packed, entropy_packed, noised, cfg)
    loss = loss_ce + cfg.rank_lambda * loss_rank
    rank_mask = noised.rank_mask if noised.rank_mask is not None else noised.ce_mask
    metrics = {
        "loss_ce": loss_ce.detach(),
        "loss_rank": loss_rank.detach(),
        "n_supervised": noised.ce_mask.sum().to(torch.float32),
        "n_pairs": count_rank_pairs(noised.steps, rank_mask, noised.cut, _rank_window(cfg)),
    }
    return LossOutput(loss=loss, metrics=metrics)
