"""A decoding step's work on logits, in chunks of positions: memory bounded whatever the batch.

    work = step_work(lambda lo, hi: model.head(hidden[lo:hi]), n_wanted, eligible_in_wanted,
                     strategy="entropy", temperature=0.1, top_p=0.9, top_k=None, generator=g,
                     need_entropy=True, need_confidence=False)
    work.x0, work.score      # (N_eligible,): the proposal of each eligible position
    work.entropy             # (N_wanted,): Shannon entropy (TDS), or None

The proposal (softmax, top-p/top-k, sampling, confidence/entropy/margin), the recorded entropies
and the threshold rule's confidence are all per position, so they are computed on at most
``rows_per_chunk`` positions at a time and only their ``(N,)`` results are kept: the step's
temporary memory is a fixed buffer of about ``chunk_elements`` logits, not ``N x V`` times a dozen
bytes. The engine passes the LM head applied to a slice of hidden states as ``logits_of``, so the
``(N, V)`` logits never exist at once. Results equal the unchunked computation: every operation
is row-wise, and a generator draws the same numbers for a sequence of row blocks as for all rows
at once (``torch.rand`` and ``torch.multinomial`` on the CPU). The ``random`` strategy draws its
scores after its tokens, so it runs as one chunk. ``TABOM_LOGITS_CHUNK`` sets ``chunk_elements``
(``0``: one chunk, the unchunked step; ``bench/decode_memory.py`` compares both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

CHUNK_ENV = "TABOM_LOGITS_CHUNK"
DEFAULT_CHUNK_ELEMENTS = 1 << 24
"""Logits per chunk (16.8M: 110 positions of Dream's 152,064-entry vocabulary, 67 MB in float32)."""


def rows_per_chunk(vocab: int) -> int | None:
    """Positions per chunk for a vocabulary (None: one chunk), from ``TABOM_LOGITS_CHUNK`` or the default."""
    raw = os.environ.get(CHUNK_ENV, "").strip()
    elements = int(raw) if raw else DEFAULT_CHUNK_ELEMENTS
    if elements <= 0:
        return None
    return max(1, elements // max(1, vocab))


@dataclass(frozen=True)
class StepWork:
    """What a step keeps of its logits: per eligible position ``x0``, ``score`` (and ``confidence``
    for the threshold rule); per wanted position ``entropy`` when recording (TDS)."""

    x0: torch.Tensor
    score: torch.Tensor
    confidence: torch.Tensor | None
    entropy: torch.Tensor | None


def step_work(
    logits_of: Callable[[int, int], torch.Tensor],
    n_wanted: int,
    eligible: torch.Tensor,
    *,
    strategy: str,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    generator: torch.Generator | None,
    need_entropy: bool,
    need_confidence: bool,
    rows: int | None,
) -> StepWork:
    """Run the step's logits work over chunks of the wanted positions.

    Args:
        logits_of: ``(lo, hi) -> (hi - lo, V)`` logits of wanted positions ``lo..hi-1`` (packed order).
        n_wanted: number of wanted positions (``N_w``).
        eligible: ``(N_w,)`` bool, the wanted positions the rule proposes for (all of them unless
            entropies of still-masked positions outside the current block are recorded).
        rows: positions per chunk (None: one chunk).

    Returns:
        :class:`StepWork` with ``x0``/``score``/``confidence`` over the eligible positions (in packed
        order) and ``entropy`` over all wanted positions.
    """
    from .rules import propose, token_probability
    from .sampling import shannon_entropy

    size = n_wanted if rows is None or strategy == "random" else rows
    size = max(1, size)
    xs, scores, confs, ents = [], [], [], []
    for lo in range(0, max(1, n_wanted), size):
        hi = min(n_wanted, lo + size)
        logits = logits_of(lo, hi)  # (n, V)
        if need_entropy:
            ents.append(shannon_entropy(logits))  # (n,)
        pick = eligible[lo:hi]
        part = logits if bool(pick.all()) else logits[pick]  # (n_e, V)
        x0, score = propose(strategy, part, temperature=temperature, top_p=top_p, top_k=top_k, generator=generator)
        xs.append(x0)
        scores.append(score)
        if need_confidence:
            confs.append(token_probability(part, x0))
    return StepWork(torch.cat(xs), torch.cat(scores), torch.cat(confs) if need_confidence else None,
                    torch.cat(ents) if need_entropy else None)


def logits_source(
    model: object, ids: torch.Tensor, attn: torch.Tensor, wanted: torch.Tensor, *, use_positions: bool
) -> tuple[Callable[[int, int], torch.Tensor], int]:
    """``(logits_of, vocab)`` for the wanted response positions of one forward.

    A model with ``hidden``/``head`` (a DiffusionLM) runs its decoder once and its LM head per
    chunk, on ``hidden (N, H)`` of the wanted positions: the ``(N, V)`` logits are never built.
    Other models (test stand-ins returning logits) give their packed logits, sliced.

    Args:
        ids: ``(B, L)`` long; the response is the last ``G`` columns.
        attn: ``(B, L)`` bool.
        wanted: ``(B, G)`` bool.
    """
    from .batch import response_logits

    gen = wanted.shape[1]
    if use_positions and hasattr(model, "hidden") and hasattr(model, "head"):
        hidden = model.hidden(ids, attn)[:, -gen:][wanted]  # type: ignore[attr-defined]  # (N, H)
        head = model.head  # type: ignore[attr-defined]
        return (lambda lo, hi: head(hidden[lo:hi])), int(getattr(model, "vocab_size", 0) or 0)
    packed = response_logits(model, ids, attn, wanted, use_positions=use_positions)  # (N, V)
    return (lambda lo, hi: packed[lo:hi]), int(packed.shape[-1])
