"""Paired bootstrap confidence intervals for the difference between two methods' accuracies.

A comparison pairs two methods on the same test problems. Each method has a 0/1 score per
(seed, problem); No-SFT has one "seed". The statistic is the difference of the two methods'
accuracies in points, where an accuracy is the mean over families (strata) of the per-family
accuracy averaged over seeds, the same number as the report's ``in_avg`` / ``ood_avg`` column.

One bootstrap replicate resamples, with replacement, the problems within each family (the same
draw for both methods: that is the pairing) and each method's seeds, and recomputes the
difference. The 95% interval is the 2.5th and 97.5th percentiles of the replicates.

    scores_a = {"0": {"p1": 1.0, "p2": 0.0}, "1": {"p1": 1.0, "p2": 1.0}}   # seed -> problem -> score
    scores_b = {"base": {"p1": 0.0, "p2": 0.0}}
    paired_bootstrap(scores_a, scores_b, {"p1": "fam", "p2": "fam"})
    # -> Comparison(diff=75.0, ci_low=..., ci_high=..., n_problems=2)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Scores = dict[str, dict[str, float]]  # seed -> problem id -> score in [0, 1]


@dataclass(frozen=True)
class Comparison:
    """A method minus a baseline, in accuracy points, with its 95% paired-bootstrap interval."""

    diff: float
    ci_low: float
    ci_high: float
    n_problems: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def to_json(self) -> dict[str, Any]:
        """The four numbers as a dict."""
        return asdict(self)


def _matrix(scores: Scores, problems: list[str]) -> np.ndarray:
    """(seeds, problems) array of scores in the order of ``problems``."""
    return np.array([[float(per[p]) for p in problems] for per in scores.values()], dtype=np.float64)


def _accuracy(matrix: np.ndarray, strata: list[np.ndarray]) -> float:
    """Mean over strata of the stratum's mean score (seeds and problems), in points."""
    return 100.0 * float(np.mean([matrix[:, idx].mean() for idx in strata]))


def paired_bootstrap(
    method: Scores,
    baseline: Scores,
    family_of: dict[str, str],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Comparison:
    """Difference ``method - baseline`` in points with a paired, family-stratified bootstrap interval.

    Only problems scored in every seed of both methods and listed in ``family_of`` take part.
    Raises ValueError when there are none, or when either side has no seed.
    """
    if not method or not baseline:
        raise ValueError("paired_bootstrap: both methods need at least one seed of scores")
    if not 0 < level < 1:
        raise ValueError(f"paired_bootstrap: level must be in (0, 1), got {level}")
    common = set(family_of)
    for per in [*method.values(), *baseline.values()]:
        common &= set(per)
    problems = sorted(common)
    if not problems:
        raise ValueError("paired_bootstrap: the two methods share no scored problem")
    a, b = _matrix(method, problems), _matrix(baseline, problems)  # (Sa, N), (Sb, N)
    families = sorted({family_of[p] for p in problems})
    strata = [np.array([i for i, p in enumerate(problems) if family_of[p] == f]) for f in families]
    diff = _accuracy(a, strata) - _accuracy(b, strata)

    rng = np.random.default_rng(seed)
    # Seed resampling as weights: w[r, s] = how often seed s was drawn in replicate r, / S.
    wa = np.stack([np.bincount(rng.integers(0, len(a), len(a)), minlength=len(a)) for _ in range(resamples)]) / len(a)
    wb = np.stack([np.bincount(rng.integers(0, len(b), len(b)), minlength=len(b)) for _ in range(resamples)]) / len(b)
    per_a, per_b = wa @ a, wb @ b  # (R, N): each replicate's seed-averaged score per problem
    reps = np.zeros(resamples)
    for idx in strata:
        draw = idx[rng.integers(0, len(idx), size=(resamples, len(idx)))]  # (R, n_f) problem indices
        reps += np.take_along_axis(per_a, draw, 1).mean(1) - np.take_along_axis(per_b, draw, 1).mean(1)
    reps *= 100.0 / len(strata)
    tail = 100.0 * (1 - level) / 2
    low, high = np.percentile(reps, [tail, 100.0 - tail])
    return Comparison(diff=round(diff, 4), ci_low=round(float(low), 4), ci_high=round(float(high), 4),
                      n_problems=len(problems))
