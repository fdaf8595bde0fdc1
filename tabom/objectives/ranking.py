"""Entropy ranking: the TABOM signal beyond masked cross-entropy (paper Eq. 8).

A token decoded earlier in the self-distilled trajectory is "easier" and should get a lower
predictive entropy than a token decoded later inside the same local window. For every pair
``(i, j)`` with ``step_i < step_j`` the hinge ``relu(H_i - H_j + margin)`` penalises an
earlier token whose entropy is not at least ``margin`` below the later one.

    H = token_entropy(logits)                      # (N,) float32, stable for extreme logits
    loss = entropy_rank_loss(H_bl, steps, supervised, cut, window=32, margin=0.2)

Everything is vectorised over the batch with masks and sums: no per-row Python loop and no
host sync. Pairs decoded in the same step are not ranked (the release ranks them in arbitrary
order after its argsort; ties carry no easy-to-hard information).

Worked example (one row, window covers everything, margin 0.5)::

    steps   = [0,   1,   2]
    entropy = [1.0, 0.8, 2.0]
    pairs (i earlier, j later): (0,1): relu(1.0-0.8+0.5)=0.7
                                (0,2): relu(1.0-2.0+0.5)=0.0
                                (1,2): relu(0.8-2.0+0.5)=0.0
    row term = (0.7 + 0 + 0) / 3 = 0.2333...
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# log-probabilities below this contribute exactly 0 to the entropy (exp(-1000) == 0 in float32);
# clamping keeps 0 * log(0) from turning into NaN in the forward or the backward pass.
_LOGP_FLOOR = -1000.0


def token_entropy(logits: Tensor) -> Tensor:
    """Shannon entropy (nats) of ``softmax(logits)`` over the last dim, in float32.

    Shapes: logits (..., V) any float dtype -> (...) float32. Stable for ``-inf`` entries and
    very large logits (``log_softmax`` is shift-invariant; ``0 * log 0`` is taken as 0).
    """
    logp = F.log_softmax(logits.float(), dim=-1)  # (..., V)
    p = logp.exp()  # (..., V)
    return -(p * logp.clamp_min(_LOGP_FLOOR)).sum(dim=-1)  # (...)


def rank_window_mask(
    steps: Tensor, supervised: Tensor, cut: Tensor, window: int | None
) -> Tensor:
    """Positions that take part in ranking: ``supervised & cut <= step < cut + window``.

    Shapes: steps (B, T) long, supervised (B, T) bool, cut (B,) long -> (B, T) bool.
    ``window=None`` means unbounded above (the "global timestep window"). Steps < 0 never rank.
    """
    lo = cut.unsqueeze(1)  # (B, 1)
    in_win = (steps >= lo) & (steps >= 0)  # (B, T)
    if window is not None:
        in_win = in_win & (steps < lo + window)
    return supervised & in_win


def entropy_rank_pairs(
    entropy: Tensor, steps: Tensor, in_window: Tensor, margin: float
) -> tuple[Tensor, Tensor]:
    """Per-row hinge sums and pair counts over all ordered pairs in the window.

    Shapes: entropy (B, T) float, steps (B, T) long, in_window (B, T) bool ->
    ``(hinge_sum (B,) float32, n_pairs (B,) float32)``. Builds a (B, T, T) tensor; T is the
    response length (256 in the paper), so this is at most a few MB.
    """
    h = entropy.float()  # (B, T)
    # 1. pair (i, j) counts when both are in the window and i was decoded strictly before j
    earlier = steps.unsqueeze(2) < steps.unsqueeze(1)  # (B, T, T): step_i < step_j
    both = in_window.unsqueeze(2) & in_window.unsqueeze(1)  # (B, T, T)
    pair = earlier & both  # (B, T, T)
    # 2. hinge relu(H_i - H_j + margin), zeroed outside valid pairs
    hinge = F.relu(h.unsqueeze(2) - h.unsqueeze(1) + margin)  # (B, T, T)
    pair_f = pair.to(hinge.dtype)
    hinge_sum = (hinge * pair_f).sum(dim=(1, 2))  # (B,)
    n_pairs = pair_f.sum(dim=(1, 2))  # (B,)
    return hinge_sum, n_pairs


def entropy_rank_loss(
    entropy: Tensor,
    steps: Tensor,
    supervised: Tensor,
    cut: Tensor,
    window: int | None,
    margin: float,
) -> Tensor:
    """TABOM's pairwise entropy ranking loss (paper Eq. 8, averaged over rows).

    Args:
        entropy: (B, T) float, predictive entropy per position (values outside the window are
            ignored; use 0 there).
        steps: (B, T) long, decode step per position (-1 never decoded).
        supervised: (B, T) bool, positions eligible for ranking (masked response positions).
        cut: (B,) long, first decode step of each row's window.
        window: number of decode steps in the window (``cut <= step < cut + window``), or None
            for no upper bound.
        margin: the hinge margin gamma.
    Returns:
        Scalar: the mean over rows with at least one pair of (mean over the row's pairs of
        ``relu(H_i - H_j + margin)`` for ``step_i < step_j``). An exact 0 connected to
        ``entropy`` (so ``backward`` works and gives zero grads) when no row has a pair.
    """
    if entropy.shape != steps.shape or supervised.shape != steps.shape:
        raise ValueError(
            f"entropy_rank_loss: entropy {tuple(entropy.shape)}, steps {tuple(steps.shape)} and "
            f"supervised {tuple(supervised.shape)} must have the same (B, T) shape"
        )
    if cut.shape != steps.shape[:1]:
        raise ValueError(f"entropy_rank_loss: cut: expected shape ({steps.shape[0]},), got {tuple(cut.shape)}")
    if window is not None and window < 1:
        raise ValueError(f"entropy_rank_loss: window: must be >= 1 or None, got {window}")
    in_window = rank_window_mask(steps, supervised, cut, window)  # (B, T)
    hinge_sum, n_pairs = entropy_rank_pairs(entropy, steps, in_window, margin)  # (B,), (B,)
    has_pair = (n_pairs > 0).to(hinge_sum.dtype)  # (B,)
    row_term = hinge_sum / n_pairs.clamp_min(1.0)  # (B,)
    return (row_term * has_pair).sum() / has_pair.sum().clamp_min(1.0)


def count_rank_pairs(steps: Tensor, supervised: Tensor, cut: Tensor, window: int | None) -> Tensor:
    """Number of ranked pairs in the batch (a metric) -> scalar float32, no grad."""
    in_window = rank_window_mask(steps, supervised, cut, window)  # (B, T)
    earlier = steps.unsqueeze(2) < steps.unsqueeze(1)  # (B, T, T)
    both = in_window.unsqueeze(2) & in_window.unsqueeze(1)  # (B, T, T)
    return (earlier & both).sum().to(torch.float32)
