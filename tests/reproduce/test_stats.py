"""Paired bootstrap intervals: exact in the degenerate cases, the analytic width on a large sample,
narrow when the pairing says the two methods differ on few problems, family-averaged like in_avg."""

from __future__ import annotations

import numpy as np
import pytest

from tabom.reproduce.stats import paired_bootstrap


def _scores(values: np.ndarray, ids: list[str]) -> dict[str, float]:
    return {p: float(v) for p, v in zip(ids, values)}


def test_identical_methods_give_zero_and_an_interval_of_zero() -> None:
    ids = [f"p{i}" for i in range(50)]
    vals = np.random.default_rng(1).integers(0, 2, 50)
    a = {"0": _scores(vals, ids)}
    out = paired_bootstrap(a, a, {p: "f" for p in ids})
    assert (out.diff, out.ci_low, out.ci_high, out.n_problems) == (0.0, 0.0, 0.0, 50)
    assert not out.significant


def test_all_right_against_all_wrong_is_100_points_and_significant() -> None:
    ids = [f"p{i}" for i in range(10)]
    out = paired_bootstrap({"0": dict.fromkeys(ids, 1.0)}, {"base": dict.fromkeys(ids, 0.0)}, dict.fromkeys(ids, "f"))
    assert (out.diff, out.ci_low, out.ci_high) == (100.0, 100.0, 100.0)
    assert out.significant


def test_interval_width_matches_the_normal_approximation() -> None:
    """Independent Bernoulli(0.6) and (0.5) on 2000 problems: sd of the mean difference is
    sqrt((0.24 + 0.25) / 2000) = 1.565 points, so the 95% half-width is about 3.07."""
    rng = np.random.default_rng(7)
    ids = [f"p{i}" for i in range(2000)]
    a, b = rng.random(2000) < 0.6, rng.random(2000) < 0.5
    out = paired_bootstrap({"0": _scores(a, ids)}, {"base": _scores(b, ids)}, dict.fromkeys(ids, "f"), resamples=4000)
    assert out.diff == pytest.approx(100 * (a.mean() - b.mean()))
    half = (out.ci_high - out.ci_low) / 2
    assert half == pytest.approx(1.96 * 100 * np.sqrt(0.49 / 2000), rel=0.12)
    assert out.ci_low < out.diff < out.ci_high


def test_pairing_makes_a_few_flips_significant() -> None:
    """b is a with 8 of 400 right answers turned wrong: +2 points, and every replicate is >= 0."""
    rng = np.random.default_rng(3)
    ids = [f"p{i}" for i in range(400)]
    a = (rng.random(400) < 0.5).astype(float)
    b = a.copy()
    b[np.flatnonzero(a)[:8]] = 0.0
    out = paired_bootstrap({"0": _scores(a, ids)}, {"base": _scores(b, ids)}, dict.fromkeys(ids, "f"))
    assert out.diff == pytest.approx(2.0)
    assert 0.0 < out.ci_low and out.ci_high < 4.0  # an unpaired interval would be about +-7
    assert out.significant


def test_families_are_averaged_like_in_avg_and_seeds_are_averaged() -> None:
    fam = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "b3": "B", "b4": "B"}
    method = {"0": {"a1": 1, "a2": 1, "b1": 0, "b2": 0, "b3": 0, "b4": 0},
              "1": {"a1": 1, "a2": 0, "b1": 1, "b2": 0, "b3": 0, "b4": 0}}
    base = {"base": dict.fromkeys(fam, 0.0)}
    out = paired_bootstrap(method, base, fam)
    # family A: (2 + 1) / 4 = 75%; family B: 1 / 8 = 12.5%; in_avg = 43.75
    assert out.diff == pytest.approx(43.75)
    assert out.n_problems == 6


def test_only_problems_scored_everywhere_take_part_and_none_is_an_error() -> None:
    fam = {"p1": "f", "p2": "f", "p3": "f"}
    out = paired_bootstrap({"0": {"p1": 1, "p2": 1}, "1": {"p1": 1, "p2": 0, "p3": 1}}, {"base": dict.fromkeys(fam, 0)}, fam)
    assert out.n_problems == 2
    with pytest.raises(ValueError, match="share no scored problem"):
        paired_bootstrap({"0": {"p1": 1}}, {"base": {"p2": 0}}, fam)
    with pytest.raises(ValueError, match="at least one seed"):
        paired_bootstrap({}, {"base": {"p1": 0}}, fam)


def test_same_seed_same_interval() -> None:
    ids = [f"p{i}" for i in range(60)]
    rng = np.random.default_rng(0)
    a, b = {"0": _scores(rng.integers(0, 2, 60), ids)}, {"base": _scores(rng.integers(0, 2, 60), ids)}
    fam = dict.fromkeys(ids, "f")
    assert paired_bootstrap(a, b, fam, seed=5) == paired_bootstrap(a, b, fam, seed=5)
