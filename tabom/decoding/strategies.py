"""The strategy registry: every decoding strategy, its proposal, schedule and truncation, in one table.

A strategy says two things about a decoding step (see :mod:`tabom.decoding.rules`): which token
each candidate position would take and how eager the rule is to unmask it (its *proposal*), and
how many positions a step of a step budget unmasks (its *schedule*: ``"llada"`` spreads a block's
masked tokens evenly over its steps, ``"dream"`` follows Dream's float timesteps; see
:mod:`tabom.decoding.schedules`). ``truncation`` says whether ``top_p``/``top_k`` apply.

============  ==========  ==========  ====================================================
strategy      schedule    truncation  proposal
============  ==========  ==========  ====================================================
entropy       dream       yes         draw from the shaped softmax; score = -entropy
confidence    llada       no          argmax of Gumbel-noised raw logits; score = its prob
margin        dream       yes         same draw; score = top-1 minus top-2 probability
random        dream       yes         same draw; score = U(0, 1) from the generator
============  ==========  ==========  ====================================================

Two count rules override any strategy's schedule (they are decoding settings, not strategies):
``tokens_per_step=k`` (the paper's k-token parallel decoding) and ``threshold=tau`` (Fast-dLLM's
confidence-threshold parallel decoding: every eligible position whose token probability is at
least tau, at least one per step). The strategy's score still ranks the positions.

**Adding a strategy** touches this file only (plus its test): write a proposal
``logits (N, V) -> (x0 (N,), score (N,))`` here and add a :class:`Strategy` to ``REGISTRY``.
Everything else (the engine's schedule, the option checks, the CLI's choices, the trajectory
schema's ``METHODS``) reads the registry.

This module imports nothing heavy at import time (the trajectory schema reads ``STRATEGIES``
without torch); the proposals import :mod:`tabom.decoding.sampling` when first called.

    >>> REGISTRY["confidence"].schedule
    'llada'
    >>> STRATEGIES
    ('entropy', 'confidence', 'margin', 'random')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

SCHEDULES: tuple[str, ...] = ("llada", "dream")
"""Step-budget schedules a strategy may name (:mod:`tabom.decoding.schedules`)."""


@dataclass(frozen=True)
class Strategy:
    """One registry entry.

    Attributes:
        name: what ``--strategy`` and a trajectory's ``method`` say.
        schedule: ``"llada"`` or ``"dream"``: the per-step count under a step budget.
        truncation: whether ``top_p``/``top_k`` shape the distribution (refused otherwise).
        propose: ``(logits (N, V), *, temperature, top_p, top_k, generator) -> (x0 (N,) long,
            score (N,) float)``; a higher score unmasks sooner.
        summary: one line for help texts.
    """

    name: str
    schedule: str
    truncation: bool
    propose: Callable[..., tuple[Any, Any]]
    summary: str


def propose_confidence(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_p: float | None = None,
    top_k: int | None = None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LLaDA's low-confidence remasking proposal.

    Args:
        logits: ``(N, V)`` raw logits of the candidate positions.
        top_p, top_k: unused (the registry refuses them for this strategy).

    Returns:
        ``x0 (N,)`` long (Gumbel-max at ``temperature > 0``) and ``score (N,)`` float32, the
        probability of ``x0`` under ``softmax`` of the *raw* logits.
    """
    import torch

    from .sampling import gumbel_argmax

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
    from .sampling import draw_tokens, neg_entropy, shaped_probs

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
    from .sampling import draw_tokens, shaped_probs, top2_margin

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
    import torch

    from .sampling import draw_tokens, shaped_probs

    probs = shaped_probs(logits, temperature, top_p, top_k)  # (N, V)
    x0 = draw_tokens(probs, temperature, generator)  # (N,)
    score = torch.rand(x0.shape, device=logits.device, generator=generator)  # (N,)
    return x0, score


REGISTRY: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("entropy", "dream", True, propose_entropy, "Dream: lowest-entropy position first"),
        Strategy("confidence", "llada", False, propose_confidence,
                 "LLaDA: most probable token first (raw-logit probability)"),
        Strategy("margin", "dream", True, propose_margin, "Dream's topk_margin: largest top-1 minus top-2"),
        Strategy("random", "dream", True, propose_random, "uniformly random order"),
    )
}
"""Every strategy by name (entropy is the default of Dream-style and tiny models, confidence of LLaDA)."""

STRATEGIES: tuple[str, ...] = tuple(REGISTRY)
"""The strategy names, in registry order."""


def get_strategy(name: str) -> Strategy:
    """The registry entry of ``name``; ``ValueError`` naming ``strategy`` when unknown."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"strategy: unknown {name!r}; choose one of {', '.join(REGISTRY)}") from None


def check_strategy_options(name: str, top_p: float | None, top_k: int | None) -> Strategy:
    """The entry of ``name``, after refusing ``top_p``/``top_k`` for a strategy without truncation."""
    strategy = get_strategy(name)
    if not strategy.truncation and (top_p is not None or top_k is not None):
        raise ValueError(f"top_p/top_k: not used by the {name} strategy (LLaDA); leave unset")
    return strategy
