"""``generate`` against the plain ``reference_generate``, and the text helper."""

from __future__ import annotations

import pytest
import torch

from tabom.decoding import generate, generate_text, reference_generate

from .mocks import ContentModel, FixedLogitsModel, TextModel

PROMPTS = [[2, 3], [4, 5, 6, 7, 8], [9]]


@pytest.mark.parametrize("strategy", ["confidence", "entropy", "margin", "random"])
@pytest.mark.parametrize(
    ("steps", "block_length", "tokens_per_step"),
    [(8, None, None), (4, 4, None), (8, 2, None), (3, None, None), (1, 4, 2)],
)
def test_generate_equals_reference_at_temperature_zero(
    strategy: str, steps: int, block_length: int | None, tokens_per_step: int | None
) -> None:
    """Batched, padded, early-stopping decoding reproduces the one-prompt full-budget loop token
    for token and step for step (the random strategy with equally seeded generators)."""
    model = ContentModel()
    kwargs = dict(gen_length=8, steps=steps, block_length=block_length, strategy=strategy,
                  tokens_per_step=tokens_per_step)
    if strategy == "random":
        for prompt in PROMPTS:
            got = generate(model, [prompt], generator=torch.Generator().manual_seed(5), **kwargs)
            seeded = torch.Generator().manual_seed(5)
            ref = reference_generate(model, prompt, generator=seeded, **kwargs)
            assert torch.equal(got.tokens, ref.tokens)
            assert torch.equal(got.decoding_order, ref.decoding_order)
        return
    batched = generate(model, PROMPTS, **kwargs)
    for row, prompt in enumerate(PROMPTS):
        ref = reference_generate(model, prompt, **kwargs)
        assert torch.equal(batched.tokens[row], ref.tokens[0])
        assert torch.equal(batched.decoding_order[row], ref.decoding_order[0])
        assert batched.steps_run[row] <= ref.steps_run[0]


def test_reference_spends_the_whole_budget() -> None:
    """gen 3, 6 steps, confidence: LLaDA counts [1, 1, 1, 0, 0, 0]. The reference runs all six
    forwards, generate stops after three; both give the same tokens and order."""
    logits = torch.tensor([[0.0, 1.0, -9.0], [3.0, 0.0, -9.0], [0.0, 2.0, -9.0]])
    model = FixedLogitsModel(logits, 2)
    ref = reference_generate(model, [1], gen_length=3, steps=6, strategy="confidence")
    got = generate(model, [[1]], gen_length=3, steps=6, strategy="confidence")
    assert ref.nfe == 6 and ref.steps_run.tolist() == [6]
    assert got.nfe == 3
    assert torch.equal(ref.tokens, got.tokens) and ref.decoding_order.tolist() == [[2, 0, 1]]


def test_generate_text_round_trip() -> None:
    """encode_prompt -> generate -> decode: each string is the decoded response, cut at EOS."""
    model = TextModel()
    texts = ["abc", "j"]
    out = generate_text(model, texts, gen_length=6, steps=6, strategy="entropy")
    tokens = generate(model, [model.encode_prompt(t) for t in texts], gen_length=6, steps=6,
                      strategy="entropy").tokens
    assert out == [model.decode(row.tolist()) for row in tokens]
    assert all(isinstance(text, str) for text in out)
