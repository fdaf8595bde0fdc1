"""Transfer schedules (LLaDA, Dream, fixed k) and the block plan, checked against hand counts."""

from __future__ import annotations

import pytest
import torch

from tabom.decoding.schedules import (
    dream_counts_at,
    dream_timesteps,
    dream_transfer_counts,
    fixed_counts,
    llada_counts_at,
    llada_transfer_counts,
    plan_blocks,
)


@pytest.mark.parametrize(
    ("n", "steps", "expected"),
    [
        (10, 4, [3, 3, 2, 2]),
        (3, 4, [1, 1, 1, 0]),
        (8, 4, [2, 2, 2, 2]),
        (7, 3, [3, 2, 2]),
        (5, 1, [5]),
    ],
)
def test_llada_counts_by_hand(n: int, steps: int, expected: list[int]) -> None:
    """n // s each, the first n % s steps one more.

    10/4: base 2, remainder 2 -> [3, 3, 2, 2]. 3/4: base 0, remainder 3 -> [1, 1, 1, 0].
    8/4: [2, 2, 2, 2]. 7/3: base 2, remainder 1 -> [3, 2, 2]. 5/1: [5].
    """
    assert llada_transfer_counts(n, steps) == expected
    assert sum(expected) == n


def test_llada_counts_vectorised_per_row() -> None:
    """Rows with n = 10 and n = 3 at step 3 of 4: 10 -> 2 (step 3 >= remainder 2), 3 -> 0."""
    counts = llada_counts_at(torch.tensor([10, 3]), 3, 4)
    assert counts.tolist() == [2, 0]


def test_dream_timesteps() -> None:
    """linspace(1, 1e-3, 5) = [1, 0.75025, 0.5005, 0.25075, 0.001] (step (1 - 0.001) / 4)."""
    times = dream_timesteps(4)
    assert times.dtype == torch.float32
    assert torch.allclose(times, torch.tensor([1.0, 0.75025, 0.5005, 0.25075, 0.001]))


@pytest.mark.parametrize(
    ("n", "steps", "expected"),
    [
        (10, 4, [2, 2, 2, 4]),
        (3, 4, [0, 0, 1, 2]),
        (8, 2, [3, 5]),
        (4, 1, [4]),
    ],
)
def test_dream_counts_by_hand(n: int, steps: int, expected: list[int]) -> None:
    """int(m * (1 - t[i+1] / t[i])) of the m still masked, the last step takes all.

    With t = [1, 0.75025, 0.5005, 0.25075, 0.001] (4 steps):
      10: int(10 * 0.24975) = 2 -> m 8; 1 - 0.5005/0.75025 = 0.33289, int(8 * 0.33289) = 2 -> m 6;
          1 - 0.25075/0.5005 = 0.49900, int(6 * 0.499) = 2 -> m 4; last: 4.   => [2, 2, 2, 4]
      3:  int(0.749) = 0; int(3 * 0.33289 = 0.9987) = 0; int(3 * 0.499 = 1.497) = 1; last 2
          => [0, 0, 1, 2]: two steps unmask nothing.
    With t = [1, 0.5005, 0.001] (2 steps), 8: int(8 * 0.4995 = 3.996) = 3, then 5.
    """
    assert dream_transfer_counts(n, steps) == expected
    assert sum(expected) == n


def test_dream_counts_use_current_masked_count() -> None:
    """Step 1 of 4 multiplies the count *now*: 8 -> int(8 * 0.33289) = 2, 3 -> int(0.9987) = 0."""
    assert dream_counts_at(torch.tensor([8, 3]), 1, 4).tolist() == [2, 0]
    assert dream_counts_at(torch.tensor([8, 3]), 3, 4).tolist() == [8, 3]


def test_fixed_counts_cap_at_remaining() -> None:
    """k = 2: min(2, m) for m = 5, 2, 1, 0."""
    assert fixed_counts(torch.tensor([5, 2, 1, 0]), 2).tolist() == [2, 2, 1, 0]


def test_plan_blocks_defaults_to_one_block() -> None:
    plan = plan_blocks(gen_length=8, steps=4, block_length=None, tokens_per_step=None)
    got = (plan.block_length, plan.num_blocks, plan.steps_per_block, plan.max_steps)
    assert got == (8, 1, 4, 4)


def test_plan_blocks_fixed_k_step_need() -> None:
    """gen 8, blocks of 4, k = 3: ceil(4 / 3) = 2 steps per block, 4 in all; steps is ignored."""
    plan = plan_blocks(gen_length=8, steps=7, block_length=4, tokens_per_step=3)
    assert plan.steps_per_block is None
    assert plan.max_steps == 4


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gen_length": 10, "steps": 10, "block_length": 4}, "block_length"),
        ({"gen_length": 8, "steps": 6, "block_length": 2}, "steps"),
        ({"gen_length": 8, "steps": 0, "block_length": None}, "steps"),
        ({"gen_length": 8, "steps": 8, "block_length": 0}, "block_length"),
        ({"gen_length": 0, "steps": 8, "block_length": None}, "gen_length"),
    ],
)
def test_plan_blocks_rejects_bad_lengths(kwargs: dict, field: str) -> None:
    """10 % 4 != 0; 6 steps over 4 blocks; 0 steps; block 0; gen 0 -> ValueError, field named."""
    with pytest.raises(ValueError, match=f"^{field}:"):
        plan_blocks(tokens_per_step=None, **kwargs)


def test_plan_blocks_rejects_zero_tokens_per_step() -> None:
    with pytest.raises(ValueError, match="^tokens_per_step:"):
        plan_blocks(gen_length=8, steps=8, block_length=None, tokens_per_step=0)
