"""Figures of the reproduction report: training-loss curves and TDS curves, as PNG files.

    plot_losses(results["training"]["math"], Path("figures/loss_math.png"), "math")
    plot_tds(results["tds"]["math"], Path("figures/tds_math.png"), "math")

Both read only the numbers in `results` (see :mod:`tabom.reproduce.results`); matplotlib runs
headless (Agg). A figure with nothing to draw is not written and None is returned.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def plot_losses(training: dict[str, dict[str, Any]], path: Path, domain: str) -> Path | None:
    """One line per method (its first seed): training loss against optimizer step.

    The objectives differ (NELBO, trajectory CE + ranking, DDO), so levels are not comparable
    across methods; the curves show each run converging (or not).
    """
    series = []
    for label, seeds in training.items():
        if not seeds:
            continue
        first = seeds[sorted(seeds, key=int)[0]]
        if first["steps"]:
            series.append((label, first["steps"], first["loss"]))
    if not series:
        return None
    from tabom.plotting import line_plot  # noqa: PLC0415

    lines = [(steps, loss, label, {"linewidth": 1.4, "marker": "o" if len(steps) < 20 else None, "markersize": 3})
             for label, steps, loss in series]
    return line_plot(path, lines, xlabel="optimizer step", ylabel="training loss (objective-specific)",
                     title=f"Training loss, {domain}-trained runs (first seed)", dpi=110)


def plot_tds(rows: dict[str, dict[str, Any]], path: Path, domain: str) -> Path | None:
    """The pooled TDS curve of No-SFT, SFT-SD and TABOM (first seed) against decoding step."""
    from tabom.eval.tds import TDSResult, plot_curves  # noqa: PLC0415

    results = []
    for label, row in rows.items():
        curve = row.get("curve")
        if not curve or all(math.isnan(v) for v in curve):
            continue
        defined = [v for v in curve if not math.isnan(v)]
        results.append(TDSResult(label, list(curve), [0] * len(curve), sum(defined) / len(defined), 0, {}))
    if not results:
        return None
    return plot_curves(results, path, title=f"TDS on {domain} test prompts ({domain}-trained models)")
