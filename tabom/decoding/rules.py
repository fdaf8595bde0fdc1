"""Selection rules: which masked positions a decoding step unmasks, and with which tokens.

A rule has two halves, both pure functions of tensors and an explicit generator:

1. a **proposal** over packed candidate rows ``logits (N, V) -> (x0 (N,), score (N,))``: the token
   each candidate position would take and how eager the rule is to unmask it (higher first);
2. :func:`select_positions` over ``score (B, G)``, ``eligible (B, G)`` and ``counts (B,)``: the
   ``counts[b]`` highest-scoring eligible positions of each row, ties to the lowest position.

The strategies and their proposals live in the registry, :mod:`tabom.decoding.strategies`
(confidence, entropy, margin, random). With a threshold tau, :func:`threshold_chosen` replaces the
count: every eligible position whose proposed token has probability >= tau is unmasked (at least
one per row, the best-scoring one).

:func:`select` glues both halves for a ``(B, G, V)`` logits tensor; the engine calls the halves
itself so that it only ever materialises logits of the candidate positions.

    >>> sel = select("entropy", logits, still_masked, torch.tensor([2]))
    >>> sel.chosen   # (B, G) bool, two True per row
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .strategies import (
    REGISTRY,
    STRATEGIES,
    check_strategy_options,
    propose_confidence,
    propose_entropy,
    propose_margin,
    propose_random,
)

__all__ = [
    "REGISTRY",
    "STRATEGIES",
    "Selection",
    "propose",
    "propose_confidence",
    "propose_entropy",
    "propose_margin",
    "propose_random",
    "select",
    "select_positions",
    "threshold_chosen",
    "token_probability",
]


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


def propose(
    strategy: str,
    logits: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The proposal of ``strategy`` (looked up in :data:`REGISTRY`):
    ``logits (N, V) -> (x0 (N,), score (N,))``."""
    entry = check_strategy_options(strategy, top_p, top_k)
    return entry.propose(logits, temperature=temperature, top_p=top_p, top_k=top_k, generator=generator)


def token_probability(logits: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """``softmax(raw logits)[x0]`` per row, ``(N, V), (N,) -> (N,)`` float32: the confidence the
    threshold rule compares with tau (whatever the strategy's own score is)."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (N, V)
    return logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1).exp()


def threshold_chosen(
    confidence: torch.Tensor, score: torch.Tensor, eligible: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Fast-dLLM's threshold rule: every eligible position whose confidence is at least
    ``threshold``; a row with eligible positions but none above it takes its best-scoring one.

    Args:
        confidence: ``(B, G)`` float, the proposed token's probability (any value off ``eligible``).
        score: ``(B, G)`` float, the strategy's score (ranks the fallback position).
        eligible: ``(B, G)`` bool.
        threshold: tau in (0, 1].

    Returns:
        ``(B, G)`` bool, at least one True in every row with an eligible position.
    """
    chosen = eligible & (confidence >= threshold)  # (B, G)
    fallback = select_positions(score, eligible, torch.ones_like(eligible[:, 0], dtype=torch.long))
    return torch.where(chosen.any(dim=1, keepdim=True), chosen, fallback)


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
