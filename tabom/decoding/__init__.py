"""Decoding of masked diffusion LMs: the unmasking loop, strategies, schedules and caches.

Read :mod:`tabom.decoding.rules` first (what one step decides), then
:mod:`tabom.decoding.engine` (the loop). :mod:`tabom.decoding.strategies` is the registry of
strategies; :mod:`tabom.decoding.kv_cache` the key/value caches of fast decoding. The layer knows
nothing of training; only :mod:`tabom.decoding.text` touches strings.

    >>> from tabom.decoding import DecodeSettings, generate
    >>> res = generate(model, prompts, gen_length=256, steps=256, strategy="entropy")
    >>> res = generate(model, prompts, DecodeSettings(block_length=32, cache="dual", threshold=0.9))
    >>> res.tokens, res.decoding_order, res.steps_run, res.nfe

The names below are imported on first use, so ``tabom.decoding.strategies`` (which the
torch-free trajectory schema reads) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE: dict[str, str] = {
    "decode": "engine",
    "generate": "engine",
    "reference_generate": "reference",
    "DecodeResult": "result",
    "DecodeSettings": "settings",
    "Selection": "rules",
    "select": "rules",
    "select_positions": "rules",
    "threshold_chosen": "rules",
    "REGISTRY": "strategies",
    "STRATEGIES": "strategies",
    "Strategy": "strategies",
    "CACHE_MODES": "kv_cache",
    "BlockCache": "kv_cache",
    "BlockPlan": "schedules",
    "dream_transfer_counts": "schedules",
    "full_decoding_tokens_per_step": "schedules",
    "llada_transfer_counts": "schedules",
    "plan_blocks": "schedules",
    "generate_text": "text",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tabom.decoding' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
