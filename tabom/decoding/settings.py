"""How responses are decoded: one typed object shared by `tabom eval`, `tabom tds` and `tabom generate`.

    settings = DecodeSettings(tokens_per_step=2).resolved(model)   # the paper's 2-token parallel decoding
    settings.gen_length, settings.steps, settings.strategy         # 64, 64, "entropy" for the tiny model

None fields take the model's defaults in :meth:`DecodeSettings.resolved`: its response length
(`model.default_gen_length`: 64 for the tiny model, 256 for Dream and LLaDA), steps = gen_length
(full diffusion decoding), its strategy (`model.default_strategy`: entropy for Dream-style,
confidence for LLaDA-style), and one token per step when steps == gen_length. `tabom generate`'s
:class:`tabom.trajectories.builder.BuildConfig` extends this with sampling and filtering fields.

Fast decoding (:mod:`tabom.decoding.kv_cache`, threshold in :mod:`tabom.decoding.rules`):

    DecodeSettings(block_length=8, cache="dual", threshold=0.9)    # Fast-dLLM: dual cache + threshold
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .kv_cache import CACHE_MODES, check_cache
from .schedules import check_threshold
from .strategies import REGISTRY

S = TypeVar("S", bound="DecodeSettings")


@dataclass
class DecodeSettings:
    """Decoding knobs; `resolved(model)` fills the None ones with the model's defaults."""

    gen_length: int | None = None
    """Response tokens G; None -> the model's default (64 for tiny, 256 for Dream/LLaDA)."""
    steps: int | None = None
    """Model forwards per response; None -> gen_length (one token per step: full diffusion decoding)."""
    block_length: int | None = None
    """Semi-autoregressive block; None -> the whole response is one block."""
    strategy: str | None = None
    """entropy | confidence | margin | random; None -> `model.default_strategy`."""
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    tokens_per_step: int | None = None
    """k tokens per step (the paper's parallel decoding, Table 4, uses 2); overrides the schedule."""
    threshold: float | None = None
    """tau in (0, 1]: unmask every position whose token probability >= tau (at least one per step)."""
    cache: str = "none"
    """none (exact) | prefix | dual: block-wise key/value cache (dual needs block_length)."""
    batch_size: int = 64
    """Prompts decoded together."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy is not None and self.strategy not in REGISTRY:
            raise ValueError(f"strategy: {self.strategy!r} is not one of {', '.join(REGISTRY)}")
        for name in ("gen_length", "steps", "block_length", "tokens_per_step", "top_k"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        if not 0 <= self.temperature < float("inf"):  # NaN fails every comparison
            raise ValueError(f"temperature: must be a finite number >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.threshold is not None:
            check_threshold(self.threshold)
        if self.cache not in CACHE_MODES:
            raise ValueError(f"cache: {self.cache!r} is not one of {', '.join(CACHE_MODES)}")
        check_cache(self.cache, self.block_length)  # dual needs blocks
        if self.threshold is not None and self.tokens_per_step is not None:
            raise ValueError("threshold: cannot be combined with tokens_per_step (both set the count)")

    def resolved(self: S, model: Any) -> S:
        """A copy (same class) with gen_length, steps, tokens_per_step and strategy filled in.

        Full diffusion decoding (steps == gen_length) runs with `tokens_per_step = 1`: exactly
        one token per step, so a decode order is a permutation of 0..G-1. (Dream's float schedule
        at steps == G unmasks nothing at step 0 and two tokens at the last step; LLaDA's already
        gives one per step, so confidence decodes are unchanged.)

        Raises `ValueError` naming the field when the resolved values cannot decode together
        (block_length not dividing gen_length, steps not a multiple of the blocks, top_p/top_k with
        confidence, threshold with tokens_per_step, a dual cache without block_length), so callers
        fail before they create any output. With a threshold, tokens_per_step stays unset.
        """
        from .engine import SamplerOptions, check_options
        from .schedules import full_decoding_tokens_per_step, plan_blocks

        gen = self.gen_length or model.default_gen_length
        steps = self.steps or gen
        tokens_per_step = self.tokens_per_step
        if self.threshold is None:
            tokens_per_step = full_decoding_tokens_per_step(gen, steps, tokens_per_step)
        out = replace(self, gen_length=gen, steps=steps, tokens_per_step=tokens_per_step,
                      strategy=self.strategy or model.default_strategy)
        plan_blocks(gen, steps, out.block_length, out.tokens_per_step, out.threshold)
        check_cache(out.cache, out.block_length)
        check_options(SamplerOptions(str(out.strategy), out.temperature, out.top_p, out.top_k))
        return out
