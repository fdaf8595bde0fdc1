"""Presets of the paper's Table 8 and how explicit flags override them."""

from __future__ import annotations

import pytest

from tabom.eval.evaluate import DecodeSettings
from tabom.eval.presets import PRESETS, apply_preset


def test_table8_values() -> None:
    """Dream MBPP: 1024 tokens and steps, T 0.1, top-p 0.9; LLaDA GSM8K: 512/512, block 8, greedy."""
    dream = apply_preset(DecodeSettings(), "dream-mbpp")
    assert (dream.gen_length, dream.steps, dream.block_length, dream.strategy) == (1024, 1024, None, "entropy")
    assert (dream.temperature, dream.top_p) == (0.1, 0.9)
    llada = apply_preset(DecodeSettings(), "llada-gsm8k")
    assert (llada.gen_length, llada.steps, llada.block_length, llada.strategy) == (512, 512, 8, "confidence")
    assert llada.temperature == 0.0 and llada.top_p is None
    assert apply_preset(DecodeSettings(), "llada-humaneval").block_length == 512
    paper = [n for n in PRESETS if not n.startswith("fast-")]
    assert len(paper) == 20  # 2 models x (4 Table 8 benchmarks + IFEval), and the same from the release scripts


def test_flags_override_preset_and_none_does_not() -> None:
    s = apply_preset(DecodeSettings(), "dream-gsm8k", {"steps": 128, "tokens_per_step": 2, "temperature": None})
    assert (s.gen_length, s.steps, s.tokens_per_step, s.temperature) == (256, 128, 2, 0.1)


def test_unknown_preset_named() -> None:
    with pytest.raises(ValueError, match="preset: unknown 'dream-foo'"):
        apply_preset(DecodeSettings(), "dream-foo")


def test_every_preset_is_a_valid_decode_plan() -> None:
    """Each preset's block length divides its length and the blocks divide the steps (engine rule)."""
    from tabom.decoding.schedules import plan_blocks

    for name in PRESETS:
        s = apply_preset(DecodeSettings(), name)
        plan_blocks(s.gen_length, s.steps, s.block_length, s.tokens_per_step)
