"""Threshold parallel decoding, the strategy registry, and one DecodeSettings from caller to engine."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tabom.decoding import DecodeSettings, generate
from tabom.decoding.strategies import REGISTRY, SCHEDULES, STRATEGIES, Strategy
from tabom.models.tiny import build_tiny
from tabom.trajectories.schema import METHODS

from .mocks import ContentModel, FixedLogitsModel
from .test_engine import MASK, peaked

# Peak heights and their token probabilities with V = 10 (8 other tokens at 0, mask at -30):
# 1 -> 0.25, 2 -> 0.48, 4 -> 0.87, 6 -> 0.98.
HEIGHTS = [1, 4, 2, 6]


@pytest.mark.parametrize("strategy", ["confidence", "entropy", "margin"])
def test_threshold_unmasks_every_position_above_tau_and_at_least_one(strategy):
    """tau 0.8: step 0 takes positions 1 and 3 together (0.87, 0.98); no other position ever
    passes, so each later step takes the best-ranked one (height 2, then 1)."""
    model = FixedLogitsModel(peaked(HEIGHTS), MASK)
    res = generate(model, [[5, 6], [7]], gen_length=4, strategy=strategy, threshold=0.8)
    assert res.decoding_order.tolist() == [[2, 0, 1, 0]] * 2
    assert res.tokens.tolist() == [[0, 1, 2, 3]] * 2
    assert res.steps_run.tolist() == [3, 3] and res.nfe == 3


def test_threshold_one_is_one_token_per_step_and_low_tau_one_step():
    model = FixedLogitsModel(peaked(HEIGHTS), MASK)
    one = generate(model, [[5]], gen_length=4, strategy="confidence", threshold=1.0)
    assert one.decoding_order.tolist() == [[3, 1, 2, 0]] and one.nfe == 4
    all_at_once = generate(model, [[5]], gen_length=4, strategy="confidence", threshold=0.2)
    assert all_at_once.decoding_order.tolist() == [[0, 0, 0, 0]] and all_at_once.nfe == 1


def test_threshold_stays_inside_the_block():
    """Blocks of 2: position 3 (0.98) waits for block 0 to finish, then goes before position 2."""
    model = FixedLogitsModel(peaked(HEIGHTS), MASK)
    res = generate(model, [[5]], gen_length=4, block_length=2, strategy="confidence", threshold=0.8)
    assert res.decoding_order.tolist() == [[1, 0, 3, 2]]


def test_threshold_with_dual_cache_counts_each_row_its_own_steps():
    """With a cache, rows share the current block; a row done with it waits without counting a
    step, so every row's decode order still runs 0, 1, ..., steps_run - 1 with no gap, and each of
    its steps unmasks at least one position."""
    model = build_tiny(seed=3, hidden_size=32, num_hidden_layers=2, intermediate_size=64).eval()
    with torch.no_grad():
        model.head_weight.mul_(40)  # peaked predictions: some positions pass tau, some do not
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
    res = generate(model, prompts, DecodeSettings(gen_length=16, block_length=4, strategy="entropy",
                                                  threshold=0.5, cache="dual"))
    for order, steps in zip(res.decoding_order.tolist(), res.steps_run.tolist()):
        assert min(order) == 0 and sorted(set(order)) == list(range(steps))
    shared = [max(row.count(s) for s in set(row)) for row in res.decoding_order.tolist()]
    assert max(shared) > 1  # several positions in one step somewhere
    assert len(set(res.steps_run.tolist())) > 1  # rows paced differently, so some waited


def test_registry_is_the_one_list_of_strategies():
    assert METHODS == STRATEGIES == tuple(REGISTRY)
    assert all(s.schedule in SCHEDULES for s in REGISTRY.values())
    assert [s.name for s in REGISTRY.values() if not s.truncation] == ["confidence"]


def test_a_new_strategy_needs_only_a_registry_entry(monkeypatch):
    """A strategy that unmasks left to right, added to the registry alone, decodes."""

    def leftmost(logits, *, temperature, top_p, top_k, generator):
        return logits.argmax(dim=-1), -torch.arange(logits.shape[0], dtype=torch.float32)

    monkeypatch.setitem(REGISTRY, "leftmost", Strategy("leftmost", "dream", True, leftmost, "left to right"))
    model = FixedLogitsModel(peaked(HEIGHTS), MASK)
    res = generate(model, [[5]], DecodeSettings(gen_length=4, steps=4, tokens_per_step=1, strategy="leftmost"))
    assert res.decoding_order.tolist() == [[0, 1, 2, 3]]


def test_settings_object_and_keywords_decode_the_same():
    model = ContentModel()
    prompts = [[1, 2, 3], [4]]
    settings = DecodeSettings(gen_length=8, steps=4, block_length=4, strategy="margin", batch_size=1)
    by_object = generate(model, prompts, settings)
    by_keywords = generate(model, prompts, gen_length=8, steps=4, block_length=4, strategy="margin", batch_size=1)
    assert torch.equal(by_object.tokens, by_keywords.tokens)
    assert torch.equal(by_object.decoding_order, by_keywords.decoding_order)
    with pytest.raises(ValueError, match="generate: steps given both in settings and as keywords"):
        generate(model, prompts, settings, steps=8)


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 0.0}, r"threshold: must be in \(0, 1\]"),
    ({"threshold": 1.5}, r"threshold: must be in \(0, 1\]"),
    ({"threshold": float("nan")}, r"threshold: must be in \(0, 1\]"),
    ({"cache": "full"}, "cache: 'full' is not one of none, prefix, dual"),
    ({"cache": "dual"}, "cache: dual needs a block length"),
    ({"threshold": 0.9, "tokens_per_step": 2}, "threshold: cannot be combined with tokens_per_step"),
])
def test_bad_fast_settings_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodeSettings(**kwargs)


TINY = build_tiny(seed=0, hidden_size=32, num_hidden_layers=1, intermediate_size=64)


@pytest.mark.parametrize("kwargs, message", [
    ({"cache": "dual"}, "cache: dual needs a block length"),
    ({"threshold": 0.9, "tokens_per_step": 2}, "threshold: cannot be combined with tokens_per_step"),
])
def test_keyword_knobs_that_cannot_decode_together_fail(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(TINY, [[5, 6]], gen_length=8, steps=8, strategy="entropy", **kwargs)


def test_threshold_keeps_tokens_per_step_unset_when_resolved():
    s = DecodeSettings(threshold=0.9, block_length=8).resolved(TINY)
    assert s.tokens_per_step is None and s.threshold == 0.9 and s.steps == s.gen_length


def test_dual_cache_refuses_to_record_entropy():
    settings = DecodeSettings(gen_length=8, steps=8, block_length=4, strategy="entropy", cache="dual")
    with pytest.raises(ValueError, match="cache: dual does not recompute"):
        generate(TINY, [[5, 6]], settings, record_entropy=True)
    prefix = generate(TINY, [[5, 6]], replace(settings, cache="prefix"), record_entropy=True)
    assert prefix.entropy is not None and prefix.entropy.shape == (1, 8, 8)


def test_fast_presets_are_the_papers_with_fast_decoding():
    from tabom.eval.presets import FAST, PRESETS, apply_preset

    fast = [n for n in PRESETS if n.startswith("fast-")]
    assert "fast-tiny" in fast and "fast-dream-gsm8k" in fast and "fast-llada-mbpp" in fast
    for name in fast:
        if name == "fast-tiny":
            continue
        assert PRESETS[name] == {**PRESETS[name.removeprefix("fast-")], **FAST}
        settings = apply_preset(DecodeSettings(), name)
        assert settings.gen_length % settings.block_length == 0  # blocks of 32 fit every Table 8 length
    tiny = apply_preset(DecodeSettings(), "fast-tiny").resolved(TINY)
    assert (tiny.cache, tiny.threshold, tiny.block_length, tiny.tokens_per_step) == ("dual", 0.9, 32, None)
    res = generate(TINY, [[5, 6, 7]], tiny)
    assert res.tokens.shape == (1, 64) and int(res.steps_run[0]) <= 64


def test_lm_eval_model_hands_threshold_and_cache_to_the_engine():
    pytest.importorskip("lm_eval")
    from tabom.eval.lm_eval_model import TabomLM

    lm = TabomLM(model="tiny", device="cpu", block_length=32, threshold="0.9", cache="dual", batch_size=4)
    settings = lm._settings({"max_gen_toks": 64})
    assert (settings.threshold, settings.cache, settings.block_length, settings.tokens_per_step) == (0.9, "dual", 32, None)
    with pytest.raises(ValueError, match=r"threshold: must be in \(0, 1\]"):
        TabomLM(model="tiny", device="cpu", threshold=2)
    with pytest.raises(ValueError, match="cache: dual needs a block length"):
        TabomLM(model="tiny", device="cpu", cache="dual")
