"""Key/value caching (tabom.decoding.kv_cache): the cached window forward against the exact forward,
on the tiny model, Dream (shifted logits) and LLaDA layouts, with LoRA merged or not, left-padded."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tabom.decoding import DecodeSettings, generate
from tabom.decoding.batch import left_pad
from tabom.decoding.kv_cache import BlockCache, supports_cache
from tabom.models.adapters import load_adapter, merge_adapter
from tabom.models.dream import load_dream
from tabom.models.llada import load_llada
from tabom.models.tiny import build_tiny
from .mocks import FixedLogitsModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from checkpoint_builders import (  # noqa: E402
    build_dream_adapter,
    build_dream_checkpoint,
    build_llada_adapter,
    build_llada_checkpoint,
)

PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cache_models")
    dream = build_dream_checkpoint(root / "dream")
    llada = build_llada_checkpoint(root / "llada")
    return {
        "dream": dream,
        "llada": llada,
        "dream_lora": build_dream_adapter(root / "dream_lora", dream),
        "llada_lora": build_llada_adapter(root / "llada_lora", llada),
    }


def _model(kind: str, folders: dict[str, Path]):
    if kind == "tiny":
        return build_tiny(seed=0, hidden_size=32, num_hidden_layers=2, intermediate_size=64).eval()
    family, _, lora = kind.partition("+")
    model = (load_dream if family == "dream" else load_llada)(folders[family])
    if lora:
        load_adapter(model, folders[f"{family}_lora"])
        if lora == "merged":
            merge_adapter(model)
    return model.eval()


def _batch(model, gen: int) -> tuple[torch.Tensor, torch.Tensor]:
    vocab = min(model.vocab_size, 60)
    prompts = [[t % vocab for t in p] for p in PROMPTS]
    ids, attn = left_pad(prompts, gen, pad_token_id=model.pad_token_id, mask_token_id=model.mask_token_id)
    ids[0, -gen:-gen + 5] = torch.tensor([20, 21, 22, 23, 24]) % vocab  # a partly decoded first block
    return ids, attn


KINDS = ["tiny", "dream", "llada", "dream+lora", "dream+merged", "llada+lora"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_window_on_unchanged_tokens_equals_the_exact_forward(kind, mode, folders):
    """Right after a refresh nothing has changed, so the window's logits (block, and suffix under
    prefix) must equal the full forward's: position ids, the bidirectional mask over the kept
    keys, padding and Dream's shift (the block's first logit from the position before) all line
    up. A wrong position offset, a masked-out key or a missing shift fails by far more than 1e-4."""
    model = _model(kind, folders)
    gen, block = 16, 8
    ids, attn = _batch(model, gen)
    width = ids.shape[1]
    with torch.inference_mode():
        exact = model(ids, attn)  # (B, L, V)
        cache = BlockCache(model, mode)
        wanted = torch.zeros_like(attn)
        wanted[:, -gen:] = True
        refreshed = cache.refresh(ids, attn, wanted, block=1)
        start = width - gen + block  # block 1
        end = width if mode == "prefix" else start + block
        in_window = torch.zeros_like(attn)
        in_window[:, start:end] = True
        windowed = cache.window(ids, attn, in_window, start=start, end=start + block)
    assert torch.allclose(refreshed, exact[wanted], atol=1e-4)
    assert torch.allclose(windowed, exact[in_window], atol=1e-4), (windowed - exact[in_window]).abs().max()


@pytest.mark.parametrize("kind", ["tiny", "dream", "llada+lora"])
def test_window_sees_the_block_change_but_not_the_kept_keys_change(kind, folders):
    """After tokens of the block change, the window's logits follow the new block tokens (its own
    keys are recomputed) yet differ from the exact forward only through the stale kept keys:
    under prefix with the change in the block, every kept key is upstream of nothing changed
    except through attention, so the error is small but nonzero for a random model."""
    model = _model(kind, folders)
    gen, block = 16, 8
    ids, attn = _batch(model, gen)
    width = ids.shape[1]
    with torch.inference_mode():
        cache = BlockCache(model, "dual")
        wanted = torch.zeros_like(attn)
        wanted[:, -gen:] = True
        cache.refresh(ids, attn, wanted, block=0)
        start = width - gen
        changed = ids.clone()
        changed[:, start + 1] = 3  # one block token decoded
        in_block = torch.zeros_like(attn)
        in_block[:, start + 2:start + block] = True
        before = cache.window(ids, attn, in_block, start=start, end=start + block)
        after = cache.window(changed, attn, in_block, start=start, end=start + block)
        exact_after = model(changed, attn)[in_block]
    assert not torch.allclose(before, after, atol=1e-4)  # the window reads its own new tokens
    assert (after - exact_after).abs().max() < (before - exact_after).abs().max()


def test_supports_cache_only_for_models_with_a_backbone():
    assert supports_cache(build_tiny(seed=0, hidden_size=32, num_hidden_layers=1, intermediate_size=64))
    mock = FixedLogitsModel(torch.zeros(4, 6), mask_token_id=5)
    assert not supports_cache(mock)
    with pytest.raises(ValueError, match="cache: dual needs a transformers-backed DiffusionLM"):
        generate(mock, [[1, 2]], DecodeSettings(gen_length=4, steps=4, strategy="entropy", block_length=2,
                                                 cache="dual"))


@pytest.mark.parametrize("kind", ["tiny", "dream", "llada+lora"])
def test_cached_decoding_at_block_one_step_is_exact(kind, folders):
    """With one step per block every step is a refresh, a full forward: prefix and dual decoding
    must then reproduce exact block decoding token for token, in a left-padded batch."""
    model = _model(kind, folders)
    vocab = min(model.vocab_size, 60)
    prompts = [[t % vocab for t in p] for p in PROMPTS]
    base = DecodeSettings(gen_length=16, steps=16, block_length=1, strategy="confidence", tokens_per_step=1)
    exact = generate(model, prompts, base)
    for mode in ("prefix", "dual"):
        cached = generate(model, prompts, replace(base, cache=mode))
        assert torch.equal(cached.tokens, exact.tokens), mode
        assert torch.equal(cached.decoding_order, exact.decoding_order), mode
