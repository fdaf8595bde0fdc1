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
