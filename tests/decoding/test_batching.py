"""Batching: left padding, batch compaction with early finishers, chunks, packed-logit models."""

from __future__ import annotations

import pytest
import torch

from tabom.decoding import decode, generate
from tabom.decoding.batch import left_pad, trim_left_padding

from .mocks import ContentModel, PositionsContentModel


def test_left_pad_layout() -> None:
    """Prompts [2, 3] and [4, 5, 6], gen 2, pad 10, mask 11 -> width 5:
    [10, 2, 3, 11, 11] / [4, 5, 6, 11, 11]; attention False only on the one pad."""
    ids, attn = left_pad([[2, 3], [4, 5, 6]], 2, pad_token_id=10, mask_token_id=11)
    assert ids.tolist() == [[10, 2, 3, 11, 11], [4, 5, 6, 11, 11]]
    assert attn.tolist() == [[False, True, True, True, True], [True] * 5]


def test_trim_left_padding_drops_only_unattended_columns() -> None:
    ids = torch.tensor([[10, 10, 2, 11], [10, 4, 5, 11]])
    attn = ids != 10
    trimmed, trimmed_attn = trim_left_padding(ids[:1], attn[:1])
    assert trimmed.tolist() == [[2, 11]] and trimmed_attn.all()
    same, _ = trim_left_padding(ids, attn)
    assert same.shape == (2, 3) and same.tolist() == [[10, 2, 11], [4, 5, 11]]


@pytest.mark.parametrize(
    ("strategy", "block_length", "tokens_per_step"),
    [("confidence", 4, None), ("entropy", None, None), ("margin", 2, None), ("entropy", None, 2)],
)
def test_left_padding_matches_decoding_alone(
    strategy: str, block_length: int | None, tokens_per_step: int | None
) -> None:
    """A short and a long prompt decoded together give exactly what each gives alone. The mock's
    logits would move if a pad were attended (pad id 10 enters the sum S and shifts positions)."""
    model = ContentModel()
    prompts = [[2, 3], [4, 5, 6, 7, 8]]
    kwargs = dict(gen_length=8, steps=8, block_length=block_length, strategy=strategy,
                  tokens_per_step=tokens_per_step)
    together = generate(model, prompts, **kwargs)
    first_mask = model.masks_seen[0]
    assert first_mask[0, :3].tolist() == [False, False, False] and first_mask[0, 3:].all()
    for row, prompt in enumerate(prompts):
        alone = generate(model, [prompt], **kwargs)
        assert torch.equal(together.tokens[row], alone.tokens[0])
        assert torch.equal(together.decoding_order[row], alone.decoding_order[0])


def test_rows_finishing_early_leave_the_batch() -> None:
    """Infilling via `decode`: row 0 (prompt of 4) has response positions 0 and 2 given, row 1
    (prompt of 1) is fully masked. Confidence over 4 steps: row 0's block starts with 2 masked
    -> LLaDA counts [1, 1, 0, 0], so it is done after 2 forwards; row 1 needs 4.
    Model inputs: (2, 8) twice, then row 1 alone, trimmed of the 3 pad columns only row 0
    needed: (1, 5) twice. Given positions keep their tokens and order -1."""
    model = ContentModel()
    ids, attn = left_pad([[2, 3, 4, 5], [6]], 4, pad_token_id=10, mask_token_id=11)
    ids[0, 4], ids[0, 6] = 5, 7
    res = decode(
        model, ids, attn, gen_length=4, steps=4, strategy="confidence", record_entropy=True
    )
    assert model.calls == [(2, 8), (2, 8), (1, 5), (1, 5)]
    assert res.steps_run.tolist() == [2, 4] and res.nfe == 4
    assert res.tokens[0, 0].item() == 5 and res.tokens[0, 2].item() == 7
    assert res.decoding_order[0, 0].item() == -1 and res.decoding_order[0, 2].item() == -1
    assert sorted(res.decoding_order[0, [1, 3]].tolist()) == [0, 1]
    # The compacted row 1 is decoded exactly as on its own.
    alone = generate(model, [[6]], gen_length=4, steps=4, strategy="confidence")
    assert torch.equal(res.tokens[1], alone.tokens[0])
    assert torch.equal(res.decoding_order[1], alone.decoding_order[0])
    # Entropy: S = 4; row 0 is all NaN once finished (steps 2, 3) and at its given positions.
    assert res.entropy is not None and res.entropy.shape == (2, 4, 4)
    assert torch.isnan(res.entropy[0, 2:]).all() and torch.isnan(res.entropy[0, :, [0, 2]]).all()
    assert not torch.isnan(res.entropy[1, 3, res.decoding_order[1] == 3]).any()


def test_decode_with_nothing_masked_costs_nothing() -> None:
    model = ContentModel()
    ids, attn = left_pad([[2]], 2, pad_token_id=10, mask_token_id=11)
    ids[0, -2:] = torch.tensor([3, 4])
    res = decode(model, ids, attn, gen_length=2, steps=2, strategy="entropy")
    assert res.nfe == 0 and res.steps_run.tolist() == [0] and res.tokens.tolist() == [[3, 4]]


def test_chunks_keep_input_order() -> None:
    """5 prompts, batch_size 2 -> 3 chunks (grouped by length), each 4 forwards (Dream's last
    step ends every row at step 4): nfe 12. Row i equals prompt i decoded alone."""
    model = ContentModel()
    prompts = [[2, 3, 4, 5, 6], [7], [8, 9], [2, 2, 2], [3]]
    kwargs = dict(gen_length=4, steps=4, strategy="entropy")
    chunked = generate(model, prompts, batch_size=2, **kwargs)
    whole = generate(model, prompts, **kwargs)
    assert chunked.nfe == 12 and whole.nfe == 4
    assert [shape[0] for shape in model.calls[:12]] == [2] * 8 + [1] * 4
    assert torch.equal(chunked.tokens, whole.tokens)
    for row, prompt in enumerate(prompts):
        assert torch.equal(chunked.tokens[row], generate(model, [prompt], **kwargs).tokens[0])


def test_chunks_merge_entropy() -> None:
    model = ContentModel()
    prompts = [[2, 3, 4], [7], [8, 9]]
    res = generate(model, prompts, gen_length=4, steps=4, strategy="entropy", batch_size=2,
                   record_entropy=True)
    whole = generate(model, prompts, gen_length=4, steps=4, strategy="entropy", record_entropy=True)
    assert res.entropy is not None and whole.entropy is not None
    assert res.entropy.shape == (3, 4, 4)
    assert torch.allclose(res.entropy, whole.entropy, equal_nan=True)


@pytest.mark.parametrize("record_entropy", [False, True])
def test_positions_model_gets_packed_requests(record_entropy: bool) -> None:
    """A model whose forward takes `positions` is asked only for the needed logits, and the
    result equals the full-logit path."""
    packed_model, full_model = PositionsContentModel(), ContentModel()
    kwargs = dict(gen_length=8, steps=8, block_length=4, strategy="entropy",
                  record_entropy=record_entropy)
    packed = generate(packed_model, [[2, 3], [4]], **kwargs)
    full = generate(full_model, [[2, 3], [4]], **kwargs)
    assert packed_model.position_calls == packed.nfe == full.nfe
    assert torch.equal(packed.tokens, full.tokens)
    assert torch.equal(packed.decoding_order, full.decoding_order)
    if record_entropy:
        assert torch.allclose(packed.entropy, full.entropy, equal_nan=True)


def test_progress_bar_changes_nothing() -> None:
    model = ContentModel()
    kwargs = dict(gen_length=4, steps=4, strategy="entropy", batch_size=1)
    quiet = generate(model, [[2], [3, 4]], **kwargs)
    shown = generate(model, [[2], [3, 4]], progress=True, **kwargs)
    assert torch.equal(quiet.tokens, shown.tokens) and shown.nfe == 8


def test_empty_prompt_is_allowed() -> None:
    """An empty prompt is only the masked response; the other row's padding covers its width."""
    model = ContentModel()
    res = generate(model, [[], [2, 3]], gen_length=4, steps=4, strategy="confidence")
    alone = generate(model, [[]], gen_length=4, steps=4, strategy="confidence")
    assert model.calls[-1] == (1, 4)
    assert (res.decoding_order >= 0).all() and torch.equal(res.tokens[0], alone.tokens[0])
