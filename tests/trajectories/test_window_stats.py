"""The content share of the windows equals a brute-force average over every cut."""

from __future__ import annotations

import random

import pytest

from tabom.trajectories.window_stats import content_fraction_in_windows

EOS = 0


def _brute(rows, ce_window, rank_window, rank_short_rows=True):
    tot = {"ce": [0.0, 0.0], "rank": [0.0, 0.0]}
    for tokens, steps in rows:
        s_max = max(steps)
        if s_max >= ce_window:
            cuts = range(0, s_max - ce_window + 1)
            spans = [("ce", ce_window), ("rank", rank_window)]
        elif rank_short_rows:
            cuts, spans = [0], [("rank", rank_window)]
        else:
            continue
        for key, width in spans:
            for c in cuts:
                inside = [t for t, s in zip(tokens, steps) if s >= 0 and c <= s < c + width]
                tot[key][0] += sum(t != EOS for t in inside) / len(cuts)
                tot[key][1] += len(inside) / len(cuts)
    return {k: (v[0] / v[1] if v[1] else None) for k, v in tot.items()}


def test_a_hand_example() -> None:
    """Content at steps 2 and 3, padding decoded at steps 0, 1, 4, 5; M = W = 2, s_max 5:
    cut in {0..3}: windows {0,1}: 0/2, {1,2}: 1/2, {2,3}: 2/2, {3,4}: 1/2 -> 4 of 8 = 0.5."""
    tokens = [7, 8, EOS, EOS, EOS, EOS]
    steps = [2, 3, 0, 1, 4, 5]
    out = content_fraction_in_windows([(tokens, steps)], ce_window=2, rank_window=2, padding_ids={EOS})
    assert out == {"ce": 0.5, "rank": 0.5, "rows": 1, "rows_in_ce": 1}


@pytest.mark.parametrize("short", [True, False])
def test_matches_brute_force_on_random_trajectories(short: bool) -> None:
    rng = random.Random(0)
    rows = []
    for _ in range(40):
        g = rng.randint(3, 24)
        n_content = rng.randint(1, g)
        tokens = [rng.randint(1, 9) for _ in range(n_content)] + [EOS] * (g - n_content)
        steps = list(range(g))
        rng.shuffle(steps)
        if rng.random() < 0.2:
            steps[rng.randrange(g)] = -1
        rows.append((tokens, steps))
    out = content_fraction_in_windows(rows, ce_window=6, rank_window=4, padding_ids={EOS}, rank_short_rows=short)
    ref = _brute(rows, 6, 4, rank_short_rows=short)
    assert out["ce"] == pytest.approx(ref["ce"]) and out["rank"] == pytest.approx(ref["rank"])
    assert out["rows"] == 40 and 0 < out["rows_in_ce"] < 40


def test_no_window_gives_none_and_bad_rows_raise() -> None:
    out = content_fraction_in_windows([([1, EOS], [0, 1])], ce_window=4, rank_window=4, padding_ids={EOS},
                                      rank_short_rows=False)
    assert out["ce"] is None and out["rank"] is None
    with pytest.raises(ValueError, match="2 tokens but 1 decode steps"):
        content_fraction_in_windows([([1, 2], [0])], ce_window=1, rank_window=1, padding_ids={EOS})
