"""Selection rules: which masked positions a decoding step unmasks, and with which tokens.

A rule has two halves, both pure functions of tensors and an explicit generator:

1. a **proposal** over packed candidate rows ``logits (N, V) -> (x0 (N,), score (N,))``: the token
   each candidate position would take and how eager the rule is to unmask it (higher first);
2. :func:`select_positions` over ``score (B, G)``, ``eligible (B, G)`` and ``counts (B,)``: the
   ``counts[b]`` highest-scoring eligible positions of each row, ties to the lowest position.

Strategies:

============  ==================================================  =============================
strategy      x0                                                  score
============  ==================================================  =============================
confidence    argmax of Gumbel-noised raw logits (LLaDA)          softmax(raw logits)[x0]
entropy       draw from tempered, top-p/top-k truncated softmax   its negative entropy (Dream)
margin        same draw                                           its top-1 minus top-2 prob
random        same draw                                           ``U(0, 1)`` from the generator
============  ==================================================  =============================

:func:`select` glues both halves for a ``(B, G, V)`` logits tensor; the engine calls the halves
itself so that it only ever materialises logits of the candidate positions.

    >>> sel = select("entropy", logits, still_masked, torch.tensor([2]))
    >>> sel.chosen   # (B, G) bool, two True per row
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .sampling import (
    draw_tokens,
    gumbel_argmax,
    neg_entropy,
    shaped_probs,
    top2_margin,
)

STRATEGIES: tuple[str, ...] = ("confidence", "entropy", "margin", "random")


@dataclass(frozen=True)
class Selection:
    """One step's decision for a batch.

    Attributes:
        tokens: ``(B, G)`` long, the proposed token at each eligible position, -1 elsewhere.
        chosen: ``(B, G)`` bool, the positions to unmask now.
        score: ``(B, G)`` float, the rule's score at eligible positions, ``-inf`` elsewhere.
    """

    tokens: torch.Tensor
    chosen: torch.Tensor
    score: torch.Tensor


def propose_confidence(
    logits: torch.Tensor, *, temperature: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """LLaDA's low-confidence remasking proposal.

    Args:
        logits: ``(N, V)`` raw logits of the candidate positions.

    Returns:
        ``x0 (N,)`` long (Gumbel-max at ``temperature > 0``) and ``score (N,)`` float32, the
        probability of ``x0`` under ``softmax`` of the *raw* logits.
    """
    x0 = gumbel_argmax(logits, temperature, generator)  # (N,)
    probs = torch.softmax(logits.float(), dim=-1)  # (N, V)
    return x0, probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1)


def propose_entropy(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dream's ``alg="entropy"`` proposal: ``x0`` drawn from the tempered, truncated softmax;
    score = that distribution's negative entropy. ``logits (N, V)`` -> ``(N,)``, ``(N,)``."""
    probs = shaped_probs(logits, temperature, top_p, top_k)  # (N, V)
    return draw_tokens(probs, temperature, generator), neg_entropy(probs)


def propose_margin(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dream's ``alg="topk_margin"`` proposal: same draw; score = top-1 minus top-2 probability
    of the tempered, truncated distribution. ``logits (N, V)`` -> ``(N,)``, ``(N,)``."""
    probs = shaped_probs(logits, temperature, top_p, top_k)  # (N, V)
    return draw_tokens(probs, temperature, generator), top2_margin(probs)


def propose_random(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random-order proposal: same draw; score ``U(0, 1)`` from ``generator`` (drawn after the
    tokens). ``logits (N, V)`` -> ``(N,)``, ``(N,)``."""
    probs = shaped_probs(logits, temperature, top_p, top_k)  # (N, V)
    x0 = draw_tokens(probs, temperature, generator)  # (N,)
    score = torch.rand(x0.shape, device=logits.device, generator=generator)  # (N,)
    return x0, score


def propose(
    strategy: str,
    logits: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch to the proposal of ``strategy``: ``logits (N, V) -> (x0 (N,), score (N,))``."""
    if strategy == "confidence":
        if top_p is not None or top_k is not None:
            raise ValueError(
                "top_p/top_k: not used by the confidence strategy (LLaDA); leave unset"
            )
        return propose_confidence(logits, temperature=temperature, generator=generator)
    if strategy == "entropy":
        proposer = propose_entropy
    elif strategy == "margin":
        proposer = propose_margin
    elif strategy == "random":
        proposer = propose_random
    else:
        raise ValueError(f"strategy: unknown {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return proposer(logits, temperature=temperature, top_p=top_p, top_k=top_k, generator=generator)


def select_positions(
    score: torch.Tensor, eligible: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """The ``counts[b]`` best eligible positions of each row; ties go to the lowest position.

    Non-eligible positions are never chosen; a count above the number of eligible positions
    chooses them all. Non-finite scores of eligible positions rank below every finite one.

    Args:
        score: ``(B, G)`` float, higher = unmask sooner.
        eligible: ``(B, G)`` bool.
        counts: ``(B,)`` long.

    Returns:
        ``(B, G)`` bool.
    """
    low = torch.finfo(torch.float32).min
    key = score.float().nan_to_num(nan=low, posinf=torch.finfo(torch.float32).max, neginf=low)
    key = torch.where(eligible, key, torch.full_like(key, float("-inf")))  # (B, G)
    # A stable descending sort keeps equal keys in position order: the lowest position wins.
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices  # (B, G)
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order))
    return (ranks < counts.unsqueeze(-1)) & eligible


def select(
    strategy: str,
    logits: torch.Tensor,
    still_masked: torch.Tensor,
    counts: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
) -> Selection:
    """One step of ``strategy`` on a full logits tensor.

    Args:
        logits: ``(B, G, V)`` logits of the response positions.
        still_masked: ``(B, G)`` bool, the positions this step may unmask (masked and, when
            blocked, inside the current block).
        counts: ``(B,)`` long, how many to unmask in each row.

    Returns:
        :class:`Selection` with ``(B, G)`` tokens, chosen and score.
    """
    x0, score = propose(
        strategy,
        logits[still_masked],  # (N, V), row-major over the True entries
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        generator=generator,
    )
    full_score = torch.full(still_masked.shape, float("-inf"), device=logits.device)  # (B, G)
    full_score[still_masked] = score.float()
    tokens = torch.full(still_masked.shape, -1, dtype=torch.long, device=logits.device)  # (B, G)
    tokens[still_masked] = x0
    chosen = select_positions(full_score, still_masked, counts)  # (B, G)
    return Selection(tokens=tokens, chosen=chosen, score=full_score)
