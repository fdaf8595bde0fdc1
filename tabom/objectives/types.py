"""Shared types and packing helpers for the objectives.

Every objective is a pair of pure functions:

    noised = make_inputs(batch, generator, cfg)        # -> NoisedBatch
    logits = model(noised.input_ids, noised.attention_mask, positions=noised.positions)  # (N, V)
    out = loss(logits, noised, cfg)                    # -> LossOutput(loss, metrics)

``batch`` is anything with the attributes of :class:`ObjectiveBatch` (the trainer's collated
batch). The model returns logits *packed*: one row per True entry of ``positions (B, L)``, in
row-major order, so the full ``(B, L, V)`` tensor never exists. :func:`packed_index` recovers,
without a host sync, the flat index of every packed row, which lets the losses gather
per-position targets and scatter per-position values back to ``(B, L)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class BatchLike(Protocol):
    """What an input builder reads from the trainer's batch (all tensors on one device)."""

    input_ids: Tensor  # (B, L) long: prompt + response, left- or right-padded
    attention_mask: Tensor  # (B, L) bool: False on padding
    response_mask: Tensor  # (B, L) bool: True on response tokens (never padding)
    steps: Tensor  # (B, L) long: decode step of each response token, -1 never decoded / not response
    mask_token_id: int


@dataclass(frozen=True)
class ObjectiveBatch:
    """A concrete :class:`BatchLike` (tests and benchmarks build these)."""

    input_ids: Tensor  # (B, L) long
    attention_mask: Tensor  # (B, L) bool
    response_mask: Tensor  # (B, L) bool
    steps: Tensor  # (B, L) long
    mask_token_id: int


@dataclass(frozen=True)
class NoisedBatch:
    """The model input built by an objective, plus what its loss needs.

    Attributes:
        input_ids: (B, L) long, the noised sequence (masked positions hold ``mask_token_id``).
        attention_mask: (B, L) bool, unchanged from the batch.
        positions: (B, L) bool, where the model must return logits (packed row-major).
        targets: (B, L) long, the clean tokens (the batch's ``input_ids``).
        response_mask: (B, L) bool, the batch's response positions.
        steps: (B, L) long, the batch's decode steps.
        ce_mask: (B, L) bool, positions supervised by cross-entropy.
        cut: (B,) long, the sampled trajectory state (decode step) per row; 0 where unused.
        p_mask: (B,) float, the per-row masking probability (NELBO); 1 where unused.
        row_valid: (B,) bool, rows that carry a CE loss.
        rank_mask: (B, L) bool, positions that take part in entropy ranking (TABOM), else None.
        window_end: (B,) long, exclusive upper decode step of the CE window (dInfer's t'),
            else None.
        fake_tokens: (B, L) long, the reference model's sample on the same state (T3D), else None.
        ref_logp_real: (B,) float, reference per-sequence mean log-prob of the real tokens (T3D).
        ref_logp_fake: (B,) float, reference per-sequence mean log-prob of the fake tokens (T3D).
    """

    input_ids: Tensor
    attention_mask: Tensor
    positions: Tensor
    targets: Tensor
    response_mask: Tensor
    steps: Tensor
    ce_mask: Tensor
    cut: Tensor
    p_mask: Tensor
    row_valid: Tensor
    rank_mask: Tensor | None = None
    window_end: Tensor | None = None
    fake_tokens: Tensor | None = None
    ref_logp_real: Tensor | None = None
    ref_logp_fake: Tensor | None = None


def trajectory_batch(
    batch: BatchLike,
    response: Tensor,
    noised_ids: Tensor,
    ce_mask: Tensor,
    cut: Tensor,
    valid: Tensor,
    *,
    positions: Tensor | None = None,
    rank_mask: Tensor | None = None,
    window_end: Tensor | None = None,
) -> NoisedBatch:
    """The NoisedBatch of a trajectory objective (trajectory, tabom, dinfer, t3d): the state at
    decode step ``cut`` (B,), cross-entropy on ``ce_mask`` (B, L), logits at ``positions``
    (default ``ce_mask``), ``p_mask`` 1 (no NELBO weighting). ``response`` (B, L) is the batch's
    response mask without padding; ``valid`` (B,) the rows that carry a loss."""
    return NoisedBatch(
        input_ids=noised_ids,
        attention_mask=batch.attention_mask,
        positions=ce_mask if positions is None else positions,
        targets=batch.input_ids,
        response_mask=response,
        steps=batch.steps,
        ce_mask=ce_mask,
        cut=cut,
        p_mask=torch.ones(cut.shape, dtype=torch.float32, device=cut.device),
        row_valid=valid,
        rank_mask=rank_mask,
        window_end=window_end,
    )


@dataclass
class LossOutput:
    """A scalar loss (with grad) and detached scalar metrics, averaged by the trainer at log time."""

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


def check_batch(batch: BatchLike) -> None:
    """Raise ``ValueError`` naming the field when the batch tensors are malformed."""
    ids = batch.input_ids
    if ids.dim() != 2:
        raise ValueError(f"batch: input_ids: expected (B, L), got shape {tuple(ids.shape)}")
    for name in ("attention_mask", "response_mask", "steps"):
        t = getattr(batch, name)
        if t.shape != ids.shape:
            raise ValueError(f"batch: {name}: shape {tuple(t.shape)} != input_ids {tuple(ids.shape)}")
    for name in ("attention_mask", "response_mask"):
        if getattr(batch, name).dtype != torch.bool:
            raise ValueError(f"batch: {name}: expected bool, got {getattr(batch, name).dtype}")
    if batch.steps.dtype != torch.long:
        raise ValueError(f"batch: steps: expected long, got {batch.steps.dtype}")


def uniform_int(low: Tensor, high: Tensor, generator: torch.Generator | None) -> Tensor:
    """Sample one integer per row uniformly from ``{low, ..., high}`` (inclusive).

    Shapes: low, high (B,) long with ``high >= low`` wherever the result is used -> (B,) long.
    Rows with ``high < low`` get ``low``. Uses one ``torch.rand`` draw on the generator's device.
    """
    device = generator.device if generator is not None else low.device
    u = torch.rand(low.shape, generator=generator, device=device).to(low.device)  # (B,)
    span = (high - low + 1).clamp_min(1).to(torch.float32)  # (B,)
    draw = torch.floor(u * span).to(torch.long).clamp_max((high - low).clamp_min(0))
    return low + draw


def apply_mask(input_ids: Tensor, masked: Tensor, mask_token_id: int) -> Tensor:
    """Replace the True entries of ``masked (B, L)`` by ``mask_token_id`` -> (B, L) long."""
    return torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids)


def packed_index(positions: Tensor, n: int) -> Tensor:
    """Flat indices into ``(B * L)`` of the True entries of ``positions``, row-major -> (n,) long.

    ``n`` is the packed length (``logits.shape[0]``), known on the host, so no device sync is
    needed: a stable sort puts the True entries first, in order.
    """
    flat = positions.reshape(-1)  # (B*L,)
    order = torch.sort((~flat).to(torch.uint8), stable=True).indices  # (B*L,)
    return order[:n]


def check_packed(logits: Tensor, positions: Tensor) -> None:
    """On CPU tensors, check that ``logits`` has one row per True entry of ``positions``.

    Skipped on accelerators, where counting would force a host sync.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits: expected packed (N, V), got shape {tuple(logits.shape)}")
    if logits.device.type == "cpu":
        n_true = int(positions.sum())
        if n_true != logits.shape[0]:
            raise ValueError(
                f"logits: {logits.shape[0]} packed rows but positions has {n_true} True entries"
            )


def gather_packed(values: Tensor, index: Tensor) -> Tensor:
    """Pick the packed entries of a ``(B, L)`` tensor: ``values.flatten()[index]`` -> (N,)."""
    return values.reshape(-1)[index]


def unpack(packed: Tensor, index: Tensor, shape: torch.Size) -> Tensor:
    """Scatter packed ``(N,)`` values back to ``shape (B, L)``; other entries are 0 (grad flows)."""
    out = packed.new_zeros(shape.numel())  # (B*L,)
    out = out.index_put((index,), packed)
    return out.reshape(shape)


def packed_token_ce(logits: Tensor, noised: NoisedBatch, targets: Tensor | None = None) -> Tensor:
    """Per-position cross-entropy of the packed logits, scattered to ``(B, L)`` float32.

    Args:
        logits: (N, V) packed at ``noised.positions``.
        noised: gives ``positions`` and (by default) ``targets (B, L)``.
        targets: optional (B, L) long to score instead of ``noised.targets``.
    Returns:
        (B, L) float32 with ``-log p(target)`` at packed positions and 0 elsewhere.
    """
    check_packed(logits, noised.positions)
    tgt = noised.targets if targets is None else targets
    index = packed_index(noised.positions, logits.shape[0])  # (N,)
    tgt_packed = gather_packed(tgt, index)  # (N,)
    ce = F.cross_entropy(logits.float(), tgt_packed, reduction="none")  # (N,)
    return unpack(ce, index, noised.positions.shape)  # (B, L)


def masked_row_mean(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``values (B, L)`` over ``mask (B, L)`` per row, then over rows with any entry.

    Returns ``(loss scalar, rows_used (B,) bool)``; the loss is an exact 0 that still backprops
    when no row has an entry.
    """
    m = mask.to(values.dtype)  # (B, L)
    count = m.sum(dim=1)  # (B,)
    row_sum = (values * m).sum(dim=1)  # (B,)
    used = count > 0  # (B,)
    row_mean = row_sum / count.clamp_min(1.0)  # (B,)
    n_rows = used.to(values.dtype).sum()
    loss = (row_mean * used.to(values.dtype)).sum() / n_rows.clamp_min(1.0)
    return loss, used
