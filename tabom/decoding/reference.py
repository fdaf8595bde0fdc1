"""A deliberately plain decoder, the yardstick for :func:`tabom.decoding.generate`.

One prompt at a time, no padding, no batching, no early stop, no packed logits: every step of the
budget runs a full forward, exactly as LLaDA's and Dream's own loops do, and applies the same
selection rules (:func:`tabom.decoding.rules.select`) and schedules. At temperature 0 its tokens
and decoding order must equal ``generate``'s; a benchmark and the tests check that.

    >>> ref = reference_generate(model, [5, 6, 7], gen_length=32, steps=32, strategy="entropy")
    >>> ref.tokens.shape, ref.nfe
    (torch.Size([1, 32]), 32)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .batch import model_device
from .engine import SamplerOptions, check_options
from .result import DecodeResult
from .rules import select
from .schedules import dream_timesteps, llada_transfer_counts, plan_blocks


def reference_generate(
    model: Any,
    prompt: list[int],
    *,
    gen_length: int,
    steps: int,
    block_length: int | None = None,
    strategy: str,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    tokens_per_step: int | None = None,
    generator: torch.Generator | None = None,
) -> DecodeResult:
    """Decode ``prompt`` alone; arguments as in :func:`tabom.decoding.generate`.

    Returns:
        :class:`DecodeResult` with one row; ``steps_run`` and ``nfe`` are the whole budget.
    """
    check_options(SamplerOptions(strategy, temperature, top_p, top_k, generator))
    plan = plan_blocks(gen_length, steps, block_length, tokens_per_step)
    mask_id = model.mask_token_id
    device = model_device(model)
    x = torch.tensor([list(prompt) + [mask_id] * gen_length], dtype=torch.long, device=device)  # (1, L)
    attention = torch.ones_like(x, dtype=torch.bool)  # (1, L)
    masked = torch.ones((1, gen_length), dtype=torch.bool, device=device)  # (1, G)
    order = torch.full((1, gen_length), -1, dtype=torch.long, device=device)  # (1, G)
    step = 0
    with torch.inference_mode():
        for block in range(plan.num_blocks):
            start, end = block * plan.block_length, (block + 1) * plan.block_length
            in_block = torch.zeros_like(masked)
            in_block[:, start:end] = True
            if plan.tokens_per_step is not None:
                block_steps = math.ceil(plan.block_length / plan.tokens_per_step)
            else:
                assert plan.steps_per_block is not None
                block_steps = plan.steps_per_block
            # LLaDA fixes the whole block's counts when the block starts.
            llada = llada_transfer_counts(int((masked & in_block).sum()), block_steps)
            times = dream_timesteps(block_steps)  # (block_steps + 1,)
            for within in range(block_steps):
                logits = model(x, attention)[:, -gen_length:]  # (1, G, V)
                eligible = masked & in_block  # (1, G)
                remaining = int(eligible.sum())
                if plan.tokens_per_step is not None:
                    count = min(plan.tokens_per_step, remaining)
                elif strategy == "confidence":
                    count = llada[within]
                elif within == block_steps - 1:
                    count = remaining
                else:  # Dream: the fraction 1 - t[i+1]/t[i] of what is still masked, in float32
                    fraction = 1 - times[within + 1] / times[within]
                    count = int(torch.tensor(float(remaining)) * fraction)
                selection = select(
                    strategy,
                    logits,
                    eligible,
                    torch.tensor([count], device=device),
                    generator,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=top_k,
                )
                response = x[:, -gen_length:]
                x[:, -gen_length:] = torch.where(selection.chosen, selection.tokens, response)
                masked &= ~selection.chosen
                order[selection.chosen] = step
                step += 1
    tokens = x[:, -gen_length:].cpu()  # CPU tensors, as generate returns
    return DecodeResult(tokens, order.cpu(), torch.tensor([step]), step, None)
