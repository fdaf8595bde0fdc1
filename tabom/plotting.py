"""One line chart saved as a PNG, headless: the figures of `tabom tds` and of the reproduction report.

    line_plot(path, [(steps, values, "TABOM", {"linewidth": 1.6})],
              xlabel="decoding step", ylabel="TDS", title="Trajectory Discrimination Score")

matplotlib is imported on first use with the Agg backend (no display needed); the parent folder
is created; the figure is closed after saving.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

Line = tuple[Sequence[float], Sequence[float], str, dict[str, Any]]
"""x values, y values, legend label, extra `Axes.plot` keyword arguments."""


def line_plot(path: str | Path, lines: Sequence[Line], *, xlabel: str, ylabel: str, title: str,
              dpi: int = 120) -> Path:
    """Draw every line on one 7 x 4 inch axes with a grid and a legend; save to `path`."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=dpi)
    for xs, ys, label, style in lines:
        ax.plot(xs, ys, label=label, **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
