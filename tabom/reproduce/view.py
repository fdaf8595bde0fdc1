"""What the result readers (`results.py`, `threshold.py`, `comparisons.py`) use of a reproduction.

`tabom.reproduce.pipeline.Reproduction` has all of it. The readers type their argument with this
Protocol instead of importing the pipeline, which imports them to collect its results: that keeps
`tabom.reproduce` free of import circles (`tests/test_import_graph.py`).
"""

from __future__ import annotations

from typing import Any, Protocol

from tabom.reproduce.plan import Method, TrainRun
from tabom.reproduce.store import Store


class Reproduction(Protocol):
    """The parts of `tabom.reproduce.pipeline.Reproduction` that results are read through."""

    plan: Any
    """The plan run (`Plan`, or `RealPlan` for a real checkpoint)."""
    store: Store
    command: str

    def canvas(self, domain: str) -> int:
        """Response tokens of the domain's trajectories and of its families' evaluation."""

    def seeds(self, method: Method, domain: str | None = None) -> list[int | None]:
        """The seeds a method is run with (None: the untrained base model)."""

    def resolve(self, method: Method, domain: str | None = None) -> Method:
        """The method as run in `domain` (shared runs resolved)."""

    def objective_defaults(self, domain: str | None, recipe: str) -> dict[str, Any]:
        """The objective fields the plan sets for `recipe` in `domain`."""

    def train_overrides(self, domain: str, run: TrainRun, seed: int) -> list[str]:
        """The recipe overrides of one training run."""

    def decode_settings(self, decode: str, gen_length: int | None = None) -> Any:
        """The decode settings of a decode mode."""

    def eval_groups(self, domain: str, method: Method, families: list[str], split: str,
                    limit: int | None = None, decode: str = "") -> dict[tuple[int, int], list[str]]:
        """(response tokens, problems per family) -> the families evaluated so."""
