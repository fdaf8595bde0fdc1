"""NELBO masked-diffusion SFT (the SFT-GT / SFT-SD baselines) and the shared masking function.

LLaDA's SFT recipe: per row draw ``t ~ U(0, 1)``, set ``p_mask = (1 - eps) t + eps`` and mask
each response token independently with probability ``p_mask`` (the prompt and padding never).
The loss is the cross-entropy of the masked tokens weighted by ``1 / p_mask``, summed and
divided by the row's number of response tokens, then averaged over rows::

    loss = mean_b [ (1 / n_resp_b) * sum_{r masked in b} CE_r / p_mask_b ]

``weighting="none"`` gives the release's ``diffusion`` schedule: plain CE averaged over all
masked tokens of the batch. :func:`mask_uniform` is reused by pre-training (pass
``maskable = attention_mask`` when there is no prompt).

``groups`` (pre-training only, not the paper's recipe) makes tokens of one group share their
masking draw, so they are masked together; every token keeps the marginal rate ``p_mask``, so the
``1 / p_mask`` weighting stays as it is. Pre-training groups every occurrence of a number in an
answer (``tabom.pretraining.pretrain.number_groups``): a masked result cannot then be copied from
its twin on the next line (docs/tiny_model.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from tabom.objectives.types import (
    BatchLike,
    LossOutput,
    NoisedBatch,
    apply_mask,
    check_batch,
    packed_token_ce,
)


@dataclass
class NelboConfig:
    """Configuration of the NELBO objective."""

    weighting: Literal["inverse_t", "none"] = "inverse_t"
    """``inverse_t``: LLaDA's 1/p_mask-weighted sum per response length; ``none``: plain mean CE."""
    eps: float = 1e-3
    """Floor of the masking probability: ``p_mask = (1 - eps) t + eps``."""

    def __post_init__(self) -> None:
        if self.weighting not in ("inverse_t", "none"):
            raise ValueError(f"NelboConfig: weighting: expected 'inverse_t' or 'none', got {self.weighting!r}")
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"NelboConfig: eps: must lie in [0, 1), got {self.eps}")


def mask_uniform(
    input_ids: Tensor,
    maskable: Tensor,
    mask_token_id: int,
    generator: torch.Generator | None,
    eps: float = 1e-3,
    groups: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Forward process of masked diffusion with a per-row uniform time.

    Args:
        input_ids: (B, L) long clean tokens.
        maskable: (B, L) bool, positions that may be masked (response tokens; never prompt/pad).
        mask_token_id: id written at masked positions.
        generator: explicit RNG (its device is used for the draws).
        eps: floor of the masking probability.
        groups: optional (B, L) long; positions of one row with the same id ``g >= 0`` are masked
            together (one draw per group), ``-1`` draws alone. Without it the draws are exactly
            those of the ungrouped process.
    Returns:
        ``(noised_ids (B, L) long, masked (B, L) bool, p_mask (B,) float32)`` with
        ``masked`` a subset of ``maskable``.
    """
    bsz, length = input_ids.shape
    device = generator.device if generator is not None else input_ids.device
    t = torch.rand(bsz, generator=generator, device=device).to(input_ids.device)  # (B,)
    p_mask = (1.0 - eps) * t + eps  # (B,)
    u = torch.rand(bsz, length, generator=generator, device=device).to(input_ids.device)  # (B, L)
    if groups is not None:
        if groups.shape != input_ids.shape:
            raise ValueError(f"mask_uniform: groups: shape {tuple(groups.shape)} != input_ids {tuple(input_ids.shape)}")
        n_groups = int(groups.max().item()) + 1 if groups.numel() else 0
        if n_groups > 0:
            g = groups.to(input_ids.device)
            u_group = torch.rand(bsz, n_groups, generator=generator, device=device).to(input_ids.device)  # (B, G)
            u = torch.where(g >= 0, u_group.gather(1, g.clamp_min(0)), u)  # (B, L)
    masked = (u < p_mask.unsqueeze(1)) & maskable  # (B, L)
    return apply_mask(input_ids, masked, mask_token_id), masked, p_mask


def make_nelbo_inputs(
    batch: BatchLike, generator: torch.Generator | None, cfg: NelboConfig | None = None,
    groups: Tensor | None = None,
) -> NoisedBatch:
    """Mask response tokens at a uniform per-row rate; the model scores the masked positions.

    ``groups`` (B, L) long: see :func:`mask_uniform` (pre-training's number grouping).
    """
    cfg = cfg or NelboConfig()
    check_batch(batch)
    response = batch.response_mask & batch.attention_mask  # (B, L)
    noised_ids, masked, p_mask = mask_uniform(
        batch.input_ids, response, batch.mask_token_id, generator, cfg.eps, groups=groups
    )
    bsz = batch.input_ids.shape[0]
    return NoisedBatch(
        input_ids=noised_ids,
        attention_mask=batch.attention_mask,
        positions=masked,
        targets=batch.input_ids,
        response_mask=response,
        steps=batch.steps,
        ce_mask=masked,
        cut=torch.zeros(bsz, dtype=torch.long, device=batch.input_ids.device),
        p_mask=p_mask,
        row_valid=response.any(dim=1),
    )


def nelbo_loss(logits: Tensor, noised: NoisedBatch, cfg: NelboConfig | None = None) -> LossOutput:
    """NELBO loss from logits packed at ``noised.positions`` (N, V).

    ``inverse_t``: ``mean_b sum_{r masked} CE_r / p_mask_b / n_resp_b`` (rows without response
    tokens count as 0); ``none``: ``sum_r CE_r / n_masked`` over the batch.
    Metrics: ``loss_ce`` (the loss), ``n_masked`` (masked tokens in the batch), ``mask_rate``
    (masked / response tokens).
    """
    cfg = cfg or NelboConfig()
    ce = packed_token_ce(logits, noised)  # (B, L) float32, 0 off the scored positions
    m = noised.ce_mask.to(ce.dtype)  # (B, L)
    n_masked = m.sum()
    n_resp = noised.response_mask.to(ce.dtype).sum(dim=1)  # (B,)
    if cfg.weighting == "inverse_t":
        row = (ce * m).sum(dim=1) / noised.p_mask.to(ce.dtype) / n_resp.clamp_min(1.0)  # (B,)
        loss = row.mean()
    else:
        loss = (ce * m).sum() / n_masked.clamp_min(1.0)
    metrics = {
        "loss_ce": loss.detach(),
        "n_masked": n_masked.detach(),
        "mask_rate": (n_masked / n_resp.sum().clamp_min(1.0)).detach(),
    }
    return LossOutput(loss=loss, metrics=metrics)
