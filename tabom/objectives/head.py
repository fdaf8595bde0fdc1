"""A chunked, recomputing LM head: per-position CE and entropy without storing logits.

The objectives already ask the model for logits only at the positions they need (N rows, not
B * L). For a 152k vocabulary even N rows of float32 logits plus their softmax and gradients
weigh a few hundred MB; :func:`chunked_head_ce_entropy` runs the head on ``chunk`` rows at a
time under activation checkpointing, so the forward keeps only ``(N,)`` results and the
backward recomputes one chunk's logits at a time.

    ce, ent = chunked_head_ce_entropy(hidden_packed, model.head, targets_packed, chunk=64)
    loss_ce, loss_rank = tabom_terms(ce, ent, noised, cfg)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from tabom.objectives.ranking import token_entropy

Head = Callable[[Tensor], Tensor]


def _as_head(weight_or_head: Tensor | Head) -> Head:
    if isinstance(weight_or_head, Tensor):
        weight = weight_or_head  # (V, H)
        return lambda h: h @ weight.t()
    return weight_or_head


def head_ce_entropy(hidden: Tensor, head: Tensor | Head, targets: Tensor) -> tuple[Tensor, Tensor]:
    """CE and entropy for one block of rows.

    Shapes: hidden (n, H), head: weight (V, H) or a callable (n, H) -> (n, V), targets (n,) long
    -> ``(ce (n,) float32, entropy (n,) float32)``; logits are upcast to float32.
    """
    logits = _as_head(head)(hidden).float()  # (n, V)
    ce = F.cross_entropy(logits, targets, reduction="none")  # (n,)
    return ce, token_entropy(logits)


def chunked_head_ce_entropy(
    hidden: Tensor, head: Tensor | Head, targets: Tensor, chunk: int = 64, recompute: bool = True
) -> tuple[Tensor, Tensor]:
    """Per-row CE and entropy of ``head(hidden)`` computed ``chunk`` rows at a time.

    Shapes: hidden (N, H), head: weight (V, H) or callable, targets (N,) long ->
    ``(ce (N,) float32, entropy (N,) float32)``. Gradients flow to ``hidden`` (and to the head's
    parameters if they require grad). With ``recompute`` each chunk's logits are recomputed in
    the backward pass instead of being stored (one extra head matmul, memory of one chunk);
    without it autograd keeps every chunk's float32 logits (faster, N x V memory).
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"chunked_head_ce_entropy: hidden {tuple(hidden.shape)} must be (N, H) and targets "
            f"{tuple(targets.shape)} must be (N,)"
        )
    if chunk < 1:
        raise ValueError(f"chunked_head_ce_entropy: chunk: must be >= 1, got {chunk}")
    ces: list[Tensor] = []
    ents: list[Tensor] = []
    for start in range(0, hidden.shape[0], chunk):
        h = hidden[start : start + chunk]  # (c, H)
        y = targets[start : start + chunk]  # (c,)
        if recompute and torch.is_grad_enabled() and h.requires_grad:
            ce, ent = checkpoint(head_ce_entropy, h, head, y, use_reentrant=False)
        else:
            ce, ent = head_ce_entropy(h, head, y)
        ces.append(ce)
        ents.append(ent)
    if not ces:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty, empty
    return torch.cat(ces), torch.cat(ents)
