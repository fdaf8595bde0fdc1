"""Logit shaping and token sampling: the pure maths under the selection rules.

Two families of samplers meet here:

* Dream's: temperature divides the logits, then top-p, then top-k truncate them (in that order),
  and a token is drawn from the softmax of the result (its argmax at temperature 0).
* LLaDA's: at temperature ``T > 0`` the token is the argmax of ``exp(logits) / (-log u) ** T`` with
  ``u ~ U(0, 1)`` computed in float64 (Gumbel-max sampling; float64 because low-precision Gumbel
  noise is known to hurt masked-diffusion generation), and the raw argmax at temperature 0.

Every function works on packed rows ``(N, V)`` (one row per candidate position) or any leading
shape ``(..., V)`` and takes an explicit ``torch.Generator`` where it draws random numbers.

    >>> probs = shaped_probs(logits, temperature=0.2, top_p=0.95, top_k=None)  # (N, V)
    >>> x0 = draw_tokens(probs, temperature=0.2, generator=g)                   # (N,)
"""

from __future__ import annotations

import torch

#: Dream adds this inside the log when it turns probabilities into a negative entropy.
NEG_ENTROPY_EPS = 1e-10


def check_sampling_args(temperature: float, top_p: float | None, top_k: int | None) -> None:
    """Raise ``ValueError`` naming the field when a sampling argument is out of range."""
    if not temperature >= 0.0:
        raise ValueError(f"temperature: must be >= 0, got {temperature}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p: must lie in (0, 1], got {top_p}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k: must be >= 1, got {top_k}")


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus truncation: keep the smallest set of most likely tokens whose mass reaches ``top_p``.

    A token is dropped when the cumulative probability of the tokens strictly more likely than it
    (in descending order) already exceeds ``top_p``; the most likely token is always kept. Dropped
    logits become the dtype's most negative finite value (so softmax gives them exactly 0).

    Args:
        logits: ``(..., V)``.
        top_p: in (0, 1]; 1 keeps everything.

    Returns:
        ``(..., V)`` logits, same dtype.
    """
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)  # (..., V)
    drop_sorted = torch.zeros_like(cumulative, dtype=torch.bool)  # (..., V)
    # The i-th sorted token goes when the mass up to the (i-1)-th already passes top_p.
    drop_sorted[..., 1:] = cumulative[..., :-1] > top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # (..., V)
    return logits.masked_fill(drop, torch.finfo(logits.dtype).min)


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` largest logits (and any tied with the k-th); the rest go to dtype min.

    Args:
        logits: ``(..., V)``.
        top_k: >= 1; values above V keep everything.

    Returns:
        ``(..., V)`` logits, same dtype.
    """
    k = min(top_k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def shaped_logits(
    logits: torch.Tensor, temperature: float, top_p: float | None, top_k: int | None
) -> torch.Tensor:
    """Dream's logit shaping: divide by temperature (when > 0), then top-p, then top-k.

    Args:
        logits: ``(..., V)``, any float dtype (computed in float32).

    Returns:
        ``(..., V)`` float32 logits.
    """
    shaped = logits.float()  # (..., V)
    if temperature > 0:
        shaped = shaped / temperature
    if top_p is not None and top_p < 1.0:
        shaped = top_p_filter(shaped, top_p)
    if top_k is not None:
        shaped = top_k_filter(shaped, top_k)
    return shaped


def shaped_probs(
    logits: torch.Tensor, temperature: float, top_p: float | None, top_k: int | None
) -> torch.Tensor:
    """Softmax of :func:`shaped_logits`: the tempered, truncated distribution, ``(..., V)``."""
    return torch.softmax(shaped_logits(logits, temperature, top_p, top_k), dim=-1)


def draw_tokens(
    probs: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row: a categorical draw when ``temperature > 0``, else the argmax.

    The argmax returns the lowest index among equal maxima, so temperature-0 decoding is
    deterministic.

    Args:
        probs: ``(N, V)`` rows summing to 1.

    Returns:
        ``(N,)`` long.
    """
    if temperature > 0 and probs.shape[0] > 0:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (N,)
    return probs.argmax(dim=-1)  # (N,)


def gumbel_argmax(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """LLaDA's token choice: argmax of the Gumbel-noised logits (the raw argmax at temperature 0).

    The noised score is ``exp(logits) / (-log u) ** temperature`` in float64 with ``u ~ U(0, 1)``
    drawn from ``generator``. Each row is shifted by its maximum before ``exp`` (this leaves the
    argmax unchanged and keeps ``exp`` from overflowing or underflowing to all zeros).

    Args:
        logits: ``(N, V)``.

    Returns:
        ``(N,)`` long.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)  # (N,)
    wide = logits.to(torch.float64)  # (N, V)
    wide = wide - wide.max(dim=-1, keepdim=True).values
    uniform = torch.rand(wide.shape, dtype=torch.float64, device=wide.device, generator=generator)
    noised = wide.exp() / (-torch.log(uniform)) ** temperature  # (N, V)
    return noised.argmax(dim=-1)  # (N,)


def neg_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Dream's confidence: ``sum_v p_v * log(p_v + 1e-10)`` (the negative entropy), ``(...,)``."""
    return (probs * torch.log(probs + NEG_ENTROPY_EPS)).sum(dim=-1)


def shannon_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of ``softmax(logits)`` in float32; zero-probability terms count 0.

    Args:
        logits: ``(..., V)`` raw logits.

    Returns:
        ``(...,)`` float32.
    """
    probs = torch.softmax(logits.float(), dim=-1)  # (..., V)
    return torch.special.entr(probs).sum(dim=-1)


def top2_margin(probs: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 probability per row, ``(...,)``; needs ``V >= 2``."""
    top2 = torch.topk(probs, 2, dim=-1).values  # (..., 2)
    return top2[..., 0] - top2[..., 1]
