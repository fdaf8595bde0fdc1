"""Trajectory-aware reconstruction (the release's ``--mask_schedule td``; first term of Eq. 9).

A self-distilled trajectory records the decode step of every response token. Per row:

1. ``s_max`` = the largest decode step. If ``s_max < M`` (window ``M``) the row is too short:
   its whole response is masked (``cut = 0``) and it carries no CE loss.
2. Otherwise ``cut ~ U{0, ..., s_max - M}``: the state just before step ``cut``.
3. The input shows response tokens with ``0 <= step < cut`` and masks the rest (tokens with
   step -1 were never decoded and are always masked).
4. CE on the tokens decoded in ``[cut, cut + M)``: averaged over the row's supervised tokens,
   then over rows that have any.

``global_window=True`` (paper Table 5, "global timestep window") samples
``cut ~ U{0, ..., s_max}`` (rows need ``s_max >= 0``) and supervises every token with
``step >= cut``.

Example: steps = [0, 1, 2, 3, 4], M = 2, cut = 2 -> visible [x, x, M, M, M] (x = token),
CE on the tokens at steps 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tabom.objectives.types import (
    BatchLike,
    LossOutput,
    NoisedBatch,
    apply_mask,
    check_batch,
    masked_row_mean,
    packed_token_ce,
    trajectory_batch,
    uniform_int,
)


@dataclass
class TrajectoryConfig:
    """Configuration of trajectory-aware reconstruction."""

    ce_window: int = 32
    """M: number of decode steps supervised after the cut (release ``--td_supervision_window``);
    the same name as TABOM's ``ce_window``."""
    global_window: bool = False
    """Supervise every token decoded at or after the cut (Table 5's global timestep window)."""

    def __post_init__(self) -> None:
        if self.ce_window < 1:
            raise ValueError(f"TrajectoryConfig: ce_window: must be >= 1, got {self.ce_window}")


def max_step(steps: Tensor, response: Tensor) -> Tensor:
    """Largest decode step of each row's response -> (B,) long (-1 when nothing was decoded)."""
    return torch.where(response, steps, torch.full_like(steps, -1)).amax(dim=1)


def sample_cut(
    steps: Tensor,
    response: Tensor,
    window: int,
    global_window: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Sample the trajectory state per row.

    Shapes: steps (B, L) long, response (B, L) bool -> ``(cut (B,) long, valid (B,) bool)``.
    Local: valid iff ``s_max >= window``, ``cut ~ U{0..s_max - window}``. Global: valid iff
    ``s_max >= 0``, ``cut ~ U{0..s_max}``. Invalid rows get ``cut = 0``.
    """
    s_max = max_step(steps, response)  # (B,)
    high = s_max if global_window else s_max - window  # (B,)
    valid = high >= 0  # (B,)
    cut = uniform_int(torch.zeros_like(high), high.clamp_min(0), generator)  # (B,)
    return torch.where(valid, cut, torch.zeros_like(cut)), valid


def trajectory_state(
    input_ids: Tensor, response: Tensor, steps: Tensor, cut: Tensor, mask_token_id: int
) -> tuple[Tensor, Tensor]:
    """The decoding state just before step ``cut``.

    Shapes: input_ids, steps (B, L) long, response (B, L) bool, cut (B,) long ->
    ``(noised_ids (B, L) long, masked (B, L) bool)``: response tokens with ``0 <= step < cut``
    stay visible, every other response token is masked; the prompt and padding are untouched.
    """
    visible = response & (steps >= 0) & (steps < cut.unsqueeze(1))  # (B, L)
    masked = response & ~visible  # (B, L)
    return apply_mask(input_ids, masked, mask_token_id), masked


def step_window(steps: Tensor, lo: Tensor, hi: Tensor | None) -> Tensor:
    """``lo <= step < hi`` per row (``hi=None``: no upper bound) -> (B, L) bool; lo, hi (B,)."""
    inside = steps >= lo.unsqueeze(1)  # (B, L)
    if hi is not None:
        inside = inside & (steps < hi.unsqueeze(1))
    return inside & (steps >= 0)


def make_trajectory_inputs(
    batch: BatchLike, generator: torch.Generator | None, cfg: TrajectoryConfig | None = None
) -> NoisedBatch:
    """Cut each trajectory, mask the future, supervise the next ``M`` decode steps."""
    cfg = cfg or TrajectoryConfig()
    check_batch(batch)
    response = batch.response_mask & batch.attention_mask  # (B, L)
    cut, valid = sample_cut(batch.steps, response, cfg.ce_window, cfg.global_window, generator)
    noised_ids, _ = trajectory_state(batch.input_ids, response, batch.steps, cut, batch.mask_token_id)
    hi = None if cfg.global_window else cut + cfg.ce_window
    ce_mask = response & valid.unsqueeze(1) & step_window(batch.steps, cut, hi)  # (B, L)
    return trajectory_batch(batch, response, noised_ids, ce_mask, cut, valid)


def trajectory_ce(logits: Tensor, noised: NoisedBatch) -> tuple[Tensor, Tensor]:
    """Per-row-mean CE over ``noised.ce_mask`` from packed logits -> (loss, rows_used (B,))."""
    ce = packed_token_ce(logits, noised)  # (B, L) float32
    return masked_row_mean(ce, noised.ce_mask)


def trajectory_loss(
    logits: Tensor, noised: NoisedBatch, cfg: TrajectoryConfig | None = None
) -> LossOutput:
    """Trajectory-aware reconstruction loss from logits packed at ``noised.positions``.

    Metrics: ``loss_ce``, ``n_supervised`` (supervised tokens), ``n_rows`` (rows with CE).
    """
    loss, used = trajectory_ce(logits, noised)
    metrics = {
        "loss_ce": loss.detach(),
        "n_supervised": noised.ce_mask.sum().to(torch.float32),
        "n_rows": used.sum().to(torch.float32),
    }
    return LossOutput(loss=loss, metrics=metrics)
