"""``DecodeResult``: what one call of the decoding engine returns.

Every tensor is on the CPU, one row per prompt, in the order the prompts were given.

    >>> res = generate(model, prompts, gen_length=64, steps=64, strategy="entropy")
    >>> res.tokens[0]           # (G,) the response of the first prompt
    >>> res.decoding_order[0]   # (G,) the 0-based step at which each position was unmasked
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DecodeResult:
    """Responses, the step at which each token was unmasked, and what decoding cost.

    Attributes:
        tokens: ``(B, G)`` long, the decoded responses (G = ``gen_length``); a position that was
            never unmasked holds the model's mask token id.
        decoding_order: ``(B, G)`` long, the 0-based step (forward) of the row at which each
            position was unmasked; -1 where never unmasked or given (infilling).
        steps_run: ``(B,)`` long, forwards spent on each row.
        nfe: total number of model forward calls (each call covers a whole active batch).
        entropy: with ``record_entropy``, ``(B, S, G)`` float32 with S = ``max(steps_run)``: the
            Shannon entropy of softmax(raw logits) of every position still masked at step s,
            measured before that step's update; NaN where the position was not masked (or the
            row had already finished). ``None`` otherwise.
    """

    tokens: torch.Tensor
    decoding_order: torch.Tensor
    steps_run: torch.Tensor
    nfe: int
    entropy: torch.Tensor | None = None

    def __len__(self) -> int:
        """Number of rows (prompts)."""
        return int(self.tokens.shape[0])


def to_cpu_result(result: DecodeResult) -> DecodeResult:
    """Ordinary (non-inference) CPU tensors, safe to modify in place later."""
    entropy = None if result.entropy is None else result.entropy.cpu().clone()
    return DecodeResult(
        result.tokens.cpu().clone(),
        result.decoding_order.cpu().clone(),
        result.steps_run.cpu().clone(),
        result.nfe,
        entropy,
    )


def merge_results(results: list[DecodeResult], chunks: list[list[int]], total: int) -> DecodeResult:
    """Put the rows of every chunk back at their prompts' indices; pad entropy to a common S."""
    first = results[0]
    gen = first.tokens.shape[1]
    device = first.tokens.device
    tokens = torch.empty((total, gen), dtype=torch.long, device=device)
    order = torch.empty((total, gen), dtype=torch.long, device=device)
    steps_run = torch.empty(total, dtype=torch.long, device=device)
    for result, chunk in zip(results, chunks):
        index = torch.tensor(chunk, device=device)
        tokens[index], order[index], steps_run[index] = (
            result.tokens,
            result.decoding_order,
            result.steps_run,
        )
    entropy = None
    if first.entropy is not None:
        span = int(steps_run.max())
        entropy = torch.full((total, span, gen), float("nan"), device=device)
        for result, chunk in zip(results, chunks):
            assert result.entropy is not None
            part = result.entropy[:, :span]
            entropy[torch.tensor(chunk, device=device), : part.shape[1]] = part
    nfe = sum(result.nfe for result in results)
    return DecodeResult(tokens, order, steps_run, nfe, entropy)
