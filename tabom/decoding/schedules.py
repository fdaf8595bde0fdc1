"""Transfer schedules: how many masked tokens each decoding step unmasks, and the block plan.

Three schedules, all per row and per block:

* **LLaDA** (``confidence`` strategy): the ``n`` masked tokens of a block, counted when the block
  starts, are spread evenly over its ``s`` steps: ``n // s`` each, the first ``n % s`` steps one
  more. ``n=10, s=4 -> [3, 3, 2, 2]``.
* **Dream** (``entropy``, ``margin``, ``random``): float32 timesteps
  ``t = linspace(1, 1e-3, s + 1)``; step ``i`` unmasks ``int(m * (1 - t[i+1] / t[i]))`` of
  the ``m`` tokens still masked at that step, and the last step unmasks all that remain.
  Early steps may unmask nothing. ``n=10, s=4 -> [2, 2, 2, 4]``.
* **Fixed** (``tokens_per_step=k``): ``min(k, m)`` per step; as many steps as needed.
* **Threshold** (``threshold=tau``): as many as have confidence >= tau, at least one
  (:func:`tabom.decoding.rules.threshold_chosen`); as many steps as needed, at most one per token.

Which of the first two a strategy uses is its registry entry's ``schedule``
(:mod:`tabom.decoding.strategies`).

:func:`plan_blocks` validates ``gen_length / block_length / steps`` and returns a
:class:`BlockPlan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Dream's final timestep (its ``eps``): the schedule runs from t=1 down to this value.
DREAM_EPS = 1e-3


@dataclass(frozen=True)
class BlockPlan:
    """How the response is cut into semi-autoregressive blocks.

    Attributes:
        gen_length: response length G.
        block_length: tokens per block; G when decoding is not blocked.
        num_blocks: ``G // block_length``.
        steps_per_block: steps spent in each block under a step-budget schedule; ``None`` with
            ``tokens_per_step`` (then a block lasts until it is fully unmasked).
        tokens_per_step: fixed tokens per step, or ``None`` for a step-budget schedule.
        threshold: the confidence threshold tau of threshold decoding, or ``None``.
    """

    gen_length: int
    block_length: int
    num_blocks: int
    steps_per_block: int | None
    tokens_per_step: int | None
    threshold: float | None = None

    @property
    def budgeted(self) -> bool:
        """Whether a step budget fixes each block's steps (False: blocks last until unmasked)."""
        return self.steps_per_block is not None

    @property
    def max_steps(self) -> int:
        """Upper bound on the steps (forwards) one row can take: the budget, or the fixed-k need."""
        if self.steps_per_block is not None:
            return self.num_blocks * self.steps_per_block
        if self.threshold is not None:
            return self.gen_length  # at least one token per step
        assert self.tokens_per_step is not None
        return self.num_blocks * math.ceil(self.block_length / self.tokens_per_step)


def full_decoding_tokens_per_step(gen_length: int, steps: int, tokens_per_step: int | None) -> int | None:
    """`tokens_per_step` to use when none was asked for: 1 for full diffusion decoding.

    With steps == gen_length the paper decodes exactly one token per step; Dream's float
    schedule would unmask nothing at step 0 and two tokens at the last step, so full decoding
    pins one per step (LLaDA's schedule already gives one per step). Otherwise the strategy's
    own schedule runs (None).
    """
    if tokens_per_step is not None:
        return tokens_per_step
    return 1 if steps == gen_length else None


def plan_blocks(
    gen_length: int,
    steps: int,
    block_length: int | None,
    tokens_per_step: int | None,
    threshold: float | None = None,
) -> BlockPlan:
    """Validate the length/step arguments and cut the response into blocks.

    Raises:
        ValueError: naming the field, when ``gen_length < 1``, ``block_length`` does not divide
            ``gen_length``, ``steps`` is not a positive multiple of the number of blocks (only
            checked without ``tokens_per_step`` and ``threshold``), ``tokens_per_step < 1``,
            ``threshold`` is outside (0, 1] or is given with ``tokens_per_step``.
    """
    if gen_length < 1:
        raise ValueError(f"gen_length: must be >= 1, got {gen_length}")
    block = gen_length if block_length is None else block_length
    if block < 1:
        raise ValueError(f"block_length: must be >= 1, got {block}")
    if gen_length % block != 0:
        raise ValueError(
            f"block_length: gen_length {gen_length} is not a multiple of block_length {block}"
        )
    num_blocks = gen_length // block
    if threshold is not None:
        check_threshold(threshold)
        if tokens_per_step is not None:
            raise ValueError("threshold: cannot be combined with tokens_per_step (both set the count)")
        return BlockPlan(gen_length, block, num_blocks, None, None, float(threshold))
    if tokens_per_step is not None:
        if tokens_per_step < 1:
            raise ValueError(f"tokens_per_step: must be >= 1, got {tokens_per_step}")
        return BlockPlan(gen_length, block, num_blocks, None, tokens_per_step)
    if steps < 1:
        raise ValueError(f"steps: must be >= 1, got {steps}")
    if steps % num_blocks != 0:
        raise ValueError(
            f"steps: {steps} is not a multiple of the number of blocks {num_blocks} "
            f"(gen_length {gen_length} / block_length {block})"
        )
    return BlockPlan(gen_length, block, num_blocks, steps // num_blocks, None)


def check_threshold(threshold: float) -> None:
    """Raise ``ValueError`` naming ``threshold`` unless it is a number in (0, 1]."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"threshold: must be in (0, 1], got {threshold!r}")


# --- LLaDA -------------------------------------------------------------------------------------


def llada_counts_at(num_masked: torch.Tensor, step: int, steps: int) -> torch.Tensor:
    """LLaDA's count at ``step`` of ``steps`` for blocks holding ``num_masked`` tokens at start.

    Args:
        num_masked: ``(B,)`` long, masked tokens in each row's block when the block started.

    Returns:
        ``(B,)`` long: ``n // steps + (step < n % steps)``.
    """
    return num_masked // steps + (step < num_masked % steps).long()


def llada_transfer_counts(num_masked: int, steps: int) -> list[int]:
    """The whole LLaDA schedule for one block, e.g. ``(10, 4) -> [3, 3, 2, 2]``."""
    n = torch.tensor([num_masked])
    return [int(llada_counts_at(n, i, steps)) for i in range(steps)]


# --- Dream -------------------------------------------------------------------------------------


def dream_timesteps(steps: int, eps: float = DREAM_EPS) -> torch.Tensor:
    """``linspace(1, eps, steps + 1)`` in float32, Dream's continuous times, ``(steps + 1,)``."""
    return torch.linspace(1.0, eps, steps + 1, dtype=torch.float32)


def dream_counts_at(
    num_masked: torch.Tensor, step: int, steps: int, eps: float = DREAM_EPS
) -> torch.Tensor:
    """Dream's count at ``step`` of ``steps`` given the tokens still masked now.

    The product is computed in float32 as Dream does and truncated toward zero.

    Args:
        num_masked: ``(B,)`` long, tokens still masked (in the current block) at this step.

    Returns:
        ``(B,)`` long.
    """
    if step >= steps - 1:
        return num_masked.clone()
    times = dream_timesteps(steps, eps)  # (steps + 1,)
    fraction = 1 - times[step + 1] / times[step]  # () float32
    return (num_masked.to(torch.float32) * fraction.to(num_masked.device)).long()


def dream_transfer_counts(num_masked: int, steps: int, eps: float = DREAM_EPS) -> list[int]:
    """The whole Dream schedule for one block when each step unmasks exactly its count.

    ``(10, 4) -> [2, 2, 2, 4]``; ``(3, 4) -> [0, 0, 1, 2]`` (zero-token steps).
    """
    remaining = torch.tensor([num_masked])
    counts = []
    for i in range(steps):
        count = dream_counts_at(remaining, i, steps, eps)
        counts.append(int(count))
        remaining = remaining - count
    return counts


# --- fixed tokens per step ---------------------------------------------------------------------


def fixed_counts(num_masked: torch.Tensor, tokens_per_step: int) -> torch.Tensor:
    """``min(k, m)`` per row, ``(B,)`` long: the paper's k-token parallel decoding."""
    return num_masked.clamp(max=tokens_per_step)
