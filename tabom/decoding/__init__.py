"""Decoding of masked diffusion LMs: the unmasking loop, selection rules and schedules.

Read :mod:`tabom.decoding.rules` first (what one step decides), then
:mod:`tabom.decoding.engine` (the loop). The layer knows nothing of training; only
:mod:`tabom.decoding.text` touches strings.

    >>> from tabom.decoding import generate
    >>> res = generate(model, prompts, gen_length=256, steps=256, strategy="entropy")
    >>> res.tokens, res.decoding_order, res.steps_run, res.nfe
"""

from .engine import decode, generate
from .reference import reference_generate
from .result import DecodeResult
from .rules import STRATEGIES, Selection, select, select_positions
from .schedules import (
    BlockPlan,
    dream_transfer_counts,
    full_decoding_tokens_per_step,
    llada_transfer_counts,
    plan_blocks,
)
from .text import generate_text

__all__ = [
    "STRATEGIES",
    "BlockPlan",
    "DecodeResult",
    "Selection",
    "decode",
    "dream_transfer_counts",
    "full_decoding_tokens_per_step",
    "generate",
    "generate_text",
    "llada_transfer_counts",
    "plan_blocks",
    "reference_generate",
    "select",
    "select_positions",
]
