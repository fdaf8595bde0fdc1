"""The unmasking loop on fixed logits: decode orders, counts per step, blocks, entropy records."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from tabom.decoding import generate

from .mocks import ContentModel, FixedLogitsModel

MASK = 9  # V = 10 in the fixed-logit mocks; the mask column is never the peak


def peaked(heights: list[float], tokens: list[int] | None = None, vocab: int = 10) -> torch.Tensor:
    """Response logits (G, V): position i has logit heights[i] on tokens[i] (default i % 5), 0
    elsewhere, -30 on the mask id. A higher peak means both higher top probability and lower
    entropy, so confidence, entropy and margin all rank positions by height."""
    tokens = tokens if tokens is not None else [i % 5 for i in range(len(heights))]
    logits = torch.zeros(len(heights), vocab)
    for i, (h, t) in enumerate(zip(heights, tokens)):
        logits[i, t] = h
    logits[:, MASK] = -30.0
    return logits


def test_confidence_one_token_per_step_follows_confidence() -> None:
    """Heights [1, 4, 2, 3], 4 steps, LLaDA counts [1, 1, 1, 1]: positions are unmasked in the
    order 1, 3, 2, 0, so decoding_order = [3, 0, 2, 1]; tokens are the peaks [0, 1, 2, 3]."""
    model = FixedLogitsModel(peaked([1, 4, 2, 3]), MASK)
    res = generate(model, [[5, 6]], gen_length=4, steps=4, strategy="confidence")
    assert res.decoding_order.tolist() == [[3, 0, 2, 1]]
    assert res.tokens.tolist() == [[0, 1, 2, 3]]
    assert res.steps_run.tolist() == [4] and res.nfe == 4 and len(model.calls) == 4


@pytest.mark.parametrize("strategy", ["confidence", "entropy", "margin"])
def test_one_token_per_step_gives_a_permutation(strategy: str) -> None:
    """tokens_per_step = 1: decoding_order is a permutation of 0..G-1, ranked by peak height."""
    model = FixedLogitsModel(peaked([1, 4, 2, 3, 0.5, 6]), MASK)
    res = generate(model, [[5]], gen_length=6, steps=1, strategy=strategy, tokens_per_step=1)
    assert sorted(res.decoding_order[0].tolist()) == list(range(6))
    assert res.decoding_order.tolist() == [[4, 1, 3, 2, 5, 0]]
    assert res.nfe == 6


def test_random_one_token_per_step_is_a_seeded_permutation() -> None:
    model = FixedLogitsModel(peaked([1, 4, 2, 3, 0.5, 6]), MASK)
    kwargs = dict(gen_length=6, steps=6, strategy="random", tokens_per_step=1)
    a = generate(model, [[5]], generator=torch.Generator().manual_seed(0), **kwargs)
    b = generate(model, [[5]], generator=torch.Generator().manual_seed(0), **kwargs)
    assert sorted(a.decoding_order[0].tolist()) == list(range(6))
    assert torch.equal(a.decoding_order, b.decoding_order)


def test_block_constraint_confidence() -> None:
    """gen 8, blocks of 4, 4 steps (2 per block, LLaDA [2, 2]). Positions 4-7 are the most
    confident (heights 9, 8, 7, 6) but wait for block 1. Block 0 heights [1, 4, 2, 3]: step 0
    takes positions 1, 3, step 1 takes 2, 0. Block 1: step 2 takes 4, 5, step 3 takes 6, 7."""
    model = FixedLogitsModel(peaked([1, 4, 2, 3, 9, 8, 7, 6]), MASK)
    res = generate(model, [[5]], gen_length=8, steps=4, block_length=4, strategy="confidence")
    assert res.decoding_order.tolist() == [[1, 0, 1, 0, 2, 2, 3, 3]]


def test_block_constraint_entropy_with_dream_counts() -> None:
    """Same logits, entropy. Dream's counts for 4 masked over 2 steps: int(4 * (1 - .5005)) =
    int(1.998) = 1, then 3. Block 0: step 0 takes position 1, step 1 the rest; block 1: step 2
    takes position 4, step 3 the rest."""
    model = FixedLogitsModel(peaked([1, 4, 2, 3, 9, 8, 7, 6]), MASK)
    res = generate(model, [[5]], gen_length=8, steps=4, block_length=4, strategy="entropy")
    assert res.decoding_order.tolist() == [[1, 0, 1, 1, 2, 3, 3, 3]]


def test_tokens_per_step_two() -> None:
    """k = 2 over gen 6: 3 steps of 2 tokens, whatever `steps` says."""
    model = FixedLogitsModel(peaked([1, 4, 2, 3, 0.5, 6]), MASK)
    res = generate(model, [[5]], gen_length=6, steps=100, strategy="entropy", tokens_per_step=2)
    assert Counter(res.decoding_order[0].tolist()) == {0: 2, 1: 2, 2: 2}
    assert res.decoding_order.tolist() == [[2, 0, 1, 1, 2, 0]]
    assert res.nfe == 3 and res.steps_run.tolist() == [3]


def test_tokens_per_step_with_blocks() -> None:
    """k = 3, blocks of 4 over gen 8: per block 3 then 1 -> steps of sizes [3, 1, 3, 1]."""
    model = FixedLogitsModel(peaked([1, 4, 2, 3, 9, 8, 7, 6]), MASK)
    res = generate(
        model,
        [[5]],
        gen_length=8,
        steps=8,
        block_length=4,
        strategy="confidence",
        tokens_per_step=3,
    )
    assert Counter(res.decoding_order[0].tolist()) == {0: 3, 1: 1, 2: 3, 3: 1}
    assert res.decoding_order[0, :4].max() <= 1 and res.decoding_order[0, 4:].min() >= 2
    assert res.nfe == 4


def test_dream_zero_token_steps_still_cost_a_forward() -> None:
    """gen 3, 4 steps: Dream counts [0, 0, 1, 2]. Heights [1, 4, 2]: step 2 takes position 1,
    step 3 positions 0 and 2; four forwards in all."""
    model = FixedLogitsModel(peaked([1, 4, 2]), MASK)
    res = generate(model, [[5]], gen_length=3, steps=4, strategy="entropy")
    assert res.decoding_order.tolist() == [[3, 2, 3]]
    assert res.nfe == 4 and res.steps_run.tolist() == [4]


def test_early_stop_when_fully_unmasked() -> None:
    """gen 3 with a budget of 6: LLaDA counts [1, 1, 1, 0, 0, 0]; the row is done after 3
    forwards and the three empty steps are never run."""
    model = FixedLogitsModel(peaked([1, 4, 2]), MASK)
    res = generate(model, [[5]], gen_length=3, steps=6, strategy="confidence")
    assert res.decoding_order.tolist() == [[2, 0, 1]]
    assert res.nfe == 3 and res.steps_run.tolist() == [3] and len(model.calls) == 3


def test_record_entropy_by_hand() -> None:
    """Position 0 logits [0, 0, 0, -1e9...] -> H = ln 3 = 1.09861, top prob 1/3.
    Position 1 logits [0, ln 3, -1e9...] -> p = [.25, .75], H = .56233, top prob .75.
    Step 0 (before any update): both masked -> [1.09861, .56233]; confidence unmasks position 1.
    Step 1: only position 0 masked -> [1.09861, NaN]."""
    logits = torch.full((2, 10), -1e9)
    logits[0, :3] = 0.0
    logits[1, 0], logits[1, 1] = 0.0, math.log(3.0)
    model = FixedLogitsModel(logits, MASK)
    res = generate(model, [[5]], gen_length=2, steps=2, strategy="confidence", record_entropy=True)
    assert res.entropy is not None and res.entropy.shape == (1, 2, 2)
    assert res.entropy.dtype == torch.float32
    assert torch.allclose(res.entropy[0, 0], torch.tensor([1.09861, 0.56233]), atol=1e-5)
    assert res.entropy[0, 1, 0].item() == pytest.approx(1.09861, abs=1e-5)
    assert math.isnan(res.entropy[0, 1, 1].item())
    assert res.decoding_order.tolist() == [[1, 0]]


def test_record_entropy_nan_pattern_matches_masks() -> None:
    """Entry (s, p) is a number exactly when position p was still masked at step s, i.e. when
    decoding_order[p] >= s."""
    model = ContentModel()
    res = generate(
        model, [[2, 3], [4]], gen_length=8, steps=4, strategy="entropy", record_entropy=True
    )
    assert res.entropy is not None and res.entropy.shape == (2, 4, 8)
    step = torch.arange(4).view(1, 4, 1)
    still_masked = res.decoding_order.unsqueeze(1) >= step  # (B, S, G)
    assert torch.equal(~torch.isnan(res.entropy), still_masked)
    assert (res.entropy[still_masked] > 0).all()


def test_record_entropy_leaves_tokens_unchanged() -> None:
    model = ContentModel()
    kwargs = dict(gen_length=8, steps=8, block_length=4, strategy="confidence")
    plain = generate(model, [[2, 3]], **kwargs)
    recorded = generate(model, [[2, 3]], record_entropy=True, **kwargs)
    assert torch.equal(plain.tokens, recorded.tokens)
    assert torch.equal(plain.decoding_order, recorded.decoding_order)


@pytest.mark.parametrize("strategy", ["confidence", "entropy"])
def test_sampling_reproducible_with_seeded_generator(strategy: str) -> None:
    """temperature 1: the same seed gives the same decode, another seed a different one."""
    model = ContentModel()
    kwargs = dict(gen_length=8, steps=8, strategy=strategy, temperature=1.0)
    a = generate(model, [[2, 3], [4]], generator=torch.Generator().manual_seed(0), **kwargs)
    b = generate(model, [[2, 3], [4]], generator=torch.Generator().manual_seed(0), **kwargs)
    c = generate(model, [[2, 3], [4]], generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.decoding_order, b.decoding_order)
    assert not torch.equal(a.tokens, c.tokens)


def test_outputs_are_ordinary_tensors() -> None:
    """Results leave inference mode: callers may edit them in place."""
    res = generate(ContentModel(), [[2]], gen_length=4, steps=4, strategy="entropy")
    res.tokens[0, 0] = 3
    assert not res.tokens.is_inference()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gen_length": 10, "steps": 10, "block_length": 4, "strategy": "confidence"},
         "block_length"),
        ({"gen_length": 8, "steps": 6, "block_length": 2, "strategy": "confidence"}, "steps"),
        ({"gen_length": 8, "steps": 8, "strategy": "greedy"}, "strategy"),
        ({"gen_length": 8, "steps": 8, "strategy": "confidence", "top_p": 0.9}, "top_p/top_k"),
        ({"gen_length": 8, "steps": 8, "strategy": "entropy", "temperature": -1.0}, "temperature"),
        ({"gen_length": 8, "steps": 8, "strategy": "entropy", "batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        generate(ContentModel(), [[2]], **kwargs)


def test_bad_prompts_raise() -> None:
    with pytest.raises(ValueError, match=r"^prompts:"):
        generate(ContentModel(), [], gen_length=4, steps=4, strategy="entropy")
    with pytest.raises(ValueError, match=r"^prompts\[1\]:"):
        bad: list = [[2], ["a"]]
        generate(ContentModel(), bad, gen_length=4, steps=4, strategy="entropy")
