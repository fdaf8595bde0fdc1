"""How much of the training windows is content: the share of non-padding tokens the CE and ranking see.

TABOM supervises, per trajectory, the tokens decoded in ``[cut, cut + M)`` (CE) and ranks those
decoded in ``[cut, cut + W)``, with ``cut ~ U{0..s_max - M}`` (``tabom.objectives.trajectory.
sample_cut``). When a response is short for its canvas, the EOS padding after the answer is decoded
too, often first, and the windows fill with padding the model already predicts perfectly. This
module computes, exactly (an expectation over the uniform cut, not a sample), what share of the
window tokens are content (not EOS/pad):

    content_fraction_in_windows(rows, ce_window=16, rank_window=16, padding_ids={eos})
    # -> {"ce": 0.31, "rank": 0.29, "rows": 500, "rows_in_ce": 480}

``rows`` are ``(response_token_ids, decoding_order)`` pairs of equal length. Rows whose largest
decode step is below ``ce_window`` carry no CE window; with ``rank_short_rows`` (tabom's default)
they are ranked over steps ``[0, rank_window)``, as the objective does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _window_counts(steps: Sequence[int], content: Sequence[bool], lo_max: int, width: int) -> tuple[float, float]:
    """Expected (content, total) token counts in ``[cut, cut + width)`` for ``cut ~ U{0..lo_max}``."""
    n_cuts = lo_max + 1
    got_content = got_total = 0.0
    for s, is_content in zip(steps, content):
        if s < 0:
            continue
        # cuts c with c <= s < c + width and 0 <= c <= lo_max
        hits = min(s, lo_max) - max(0, s - width + 1) + 1
        if hits > 0:
            got_total += hits / n_cuts
            got_content += hits / n_cuts if is_content else 0.0
    return got_content, got_total


def content_fraction_in_windows(
    rows: Iterable[tuple[Sequence[int], Sequence[int]]],
    *,
    ce_window: int,
    rank_window: int,
    padding_ids: set[int],
    rank_short_rows: bool = True,
) -> dict[str, Any]:
    """Share of content tokens among the tokens in the CE and ranking windows, over all rows.

    Returns ``{"ce": float | None, "rank": float | None, "rows": n, "rows_in_ce": n_with_a_window}``;
    a share is None when no row has such a window. Token-weighted: each row contributes its expected
    window token counts.
    """
    if ce_window < 1 or rank_window < 1:
        raise ValueError(f"windows must be >= 1, got ce_window={ce_window}, rank_window={rank_window}")
    ce = [0.0, 0.0]
    rank = [0.0, 0.0]
    n = n_ce = 0
    for tokens, steps in rows:
        if len(tokens) != len(steps):
            raise ValueError(f"a row has {len(tokens)} tokens but {len(steps)} decode steps")
        n += 1
        content = [t not in padding_ids for t in tokens]
        s_max = max(steps, default=-1)
        if s_max >= ce_window:
            n_ce += 1
            lo_max = s_max - ce_window
            for acc, width in ((ce, ce_window), (rank, rank_window)):
                c, t = _window_counts(steps, content, lo_max, width)
                acc[0] += c
                acc[1] += t
        elif rank_short_rows and s_max >= 0:
            c, t = _window_counts(steps, content, 0, rank_window)
            rank[0] += c
            rank[1] += t
    return {"ce": ce[0] / ce[1] if ce[1] else None, "rank": rank[0] / rank[1] if rank[1] else None,
            "rows": n, "rows_in_ce": n_ce}
