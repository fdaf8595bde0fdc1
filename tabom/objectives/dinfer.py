"""dInfer-style compressed transition learning (baseline "dInfer" of the paper).

Instead of the single-step transition, the model learns to jump between two states of its own
trajectory. Per row with ``s_max >= 0``:

1. ``t ~ U{0, ..., s_max}`` and ``t' ~ U{t + 1, ..., min(t + max_span, s_max + 1)}``.
2. The input is the state at ``t``: response tokens with ``0 <= step < t`` visible, the rest
   masked (step -1 always masked).
3. CE on every token decoded in ``[t, t')``: averaged over the row's tokens, then over rows.

Example: steps = [0, 1, 2, 3], t = 1, t' = 3 -> visible [x, M, M, M], CE at steps 1 and 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tabom.objectives.trajectory import max_step, step_window, trajectory_state
from tabom.objectives.types import (
    BatchLike,
    LossOutput,
    NoisedBatch,
    check_batch,
    masked_row_mean,
    packed_token_ce,
    trajectory_batch,
    uniform_int,
)


@dataclass
class DinferConfig:
    """Configuration of compressed transition learning."""

    max_span: int = 32
    """Largest number of decode steps ``t' - t`` jumped in one transition."""

    def __post_init__(self) -> None:
        if self.max_span < 1:
            raise ValueError(f"DinferConfig: max_span: must be >= 1, got {self.max_span}")


def sample_transition(
    steps: Tensor, response: Tensor, max_span: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Sample ``t < t'`` per row -> ``(t (B,) long, t_next (B,) long, valid (B,) bool)``.

    Invalid rows (nothing decoded) get ``t = t_next = 0`` and hence an empty CE window.
    """
    s_max = max_step(steps, response)  # (B,)
    valid = s_max >= 0  # (B,)
    zero = torch.zeros_like(s_max)
    t = uniform_int(zero, s_max.clamp_min(0), generator)  # (B,)
    hi = torch.minimum(t + max_span, s_max + 1)  # (B,)
    t_next = uniform_int(t + 1, hi.clamp_min(1), generator)  # (B,)
    return torch.where(valid, t, zero), torch.where(valid, t_next, zero), valid


def make_dinfer_inputs(
    batch: BatchLike, generator: torch.Generator | None, cfg: DinferConfig | None = None
) -> NoisedBatch:
    """State at ``t`` as input; CE positions are the tokens decoded in ``[t, t')``."""
    cfg = cfg or DinferConfig()
    check_batch(batch)
    response = batch.response_mask & batch.attention_mask  # (B, L)
    t, t_next, valid = sample_transition(batch.steps, response, cfg.max_span, generator)
    noised_ids, _ = trajectory_state(batch.input_ids, response, batch.steps, t, batch.mask_token_id)
    ce_mask = response & step_window(batch.steps, t, t_next)  # (B, L)
    return trajectory_batch(batch, response, noised_ids, ce_mask, t, valid, window_end=t_next)


def dinfer_loss(logits: Tensor, noised: NoisedBatch, cfg: DinferConfig | None = None) -> LossOutput:
    """Per-row-mean CE over the transition's tokens, then mean over rows with any.

    Metrics: ``loss_ce``, ``n_supervised``, ``mean_span`` (mean ``t' - t`` over valid rows).
    """
    ce = packed_token_ce(logits, noised)  # (B, L) float32
    loss, _ = masked_row_mean(ce, noised.ce_mask)
    valid_f = noised.row_valid.to(torch.float32)  # (B,)
    span = (noised.window_end - noised.cut).to(torch.float32) if noised.window_end is not None else valid_f
    metrics = {
        "loss_ce": loss.detach(),
        "n_supervised": noised.ce_mask.sum().to(torch.float32),
        "mean_span": (span * valid_f).sum() / valid_f.sum().clamp_min(1.0),
    }
    return LossOutput(loss=loss, metrics=metrics)
