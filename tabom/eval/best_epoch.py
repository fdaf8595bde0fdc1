"""Best of epochs: evaluate every checkpoint of a training run on validation, test the best one.

    checkpoints = run_checkpoints(Path("runs/dream_math"))   # [("epoch_1", ...), ..., ("final", ...)]
    result = best_of_epochs(load, checkpoints, val_sources, test_sources, settings)
    result.chosen, result.val["epoch_3"], result.test.metrics()

The paper reports each method at the best of its 5 epochs. Here the choice is made on a
validation split (the mean accuracy over the validation tasks; a tie goes to the earlier
checkpoint) and test is evaluated once, at the chosen checkpoint, so the reported number is not
itself the maximum over test runs. ``tabom eval --run RUN_DIR`` drives this; the validation tasks
are the test families' ``val`` split, or the files given with ``--val-tasks``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_EPOCH = re.compile(r"epoch_(\d+)")


def run_checkpoints(run_dir: Path) -> list[tuple[str, Path]]:
    """``(name, folder)`` of every ``epoch_k/`` (by k) and then ``final/`` of a training run.

    A checkpoint is a folder holding ``adapter_config.json`` (a LoRA adapter) or ``config.json``
    (a full model). No such folder is a ValueError naming the run folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")

    def usable(folder: Path) -> bool:
        return folder.is_dir() and any((folder / f).is_file() for f in ("adapter_config.json", "config.json"))

    epochs = sorted(((int(m.group(1)), f) for f in run_dir.iterdir()
                     if (m := _EPOCH.fullmatch(f.name)) and usable(f)), key=lambda t: t[0])
    found = [(f.name, f) for _, f in epochs]
    if usable(run_dir / "final"):
        found.append(("final", run_dir / "final"))
    if not found:
        raise ValueError(f"{run_dir}: no checkpoints (no epoch_k/ or final/ folder with adapter_config.json "
                         "or config.json)")
    return found


def mean_accuracy(report: Any) -> float:
    """The mean over tasks of a report's accuracy (the selection criterion)."""
    acc = report.accuracy()
    return sum(acc.values()) / max(1, len(acc))


@dataclass
class BestOfEpochs:
    """The validation metrics of every checkpoint, the chosen one, and test at it."""

    chosen: str
    val: dict[str, dict[str, float]]
    test: Any
    criterion: str = "mean validation accuracy over the validation tasks; ties: the earlier checkpoint"
    val_reports: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The selection (per checkpoint validation accuracy, chosen, criterion) and the test report."""
        return {"selection": {"chosen": self.chosen, "criterion": self.criterion, "val": self.val},
                **self.test.to_json()}


def best_of_epochs(
    load: Callable[[Path], Any],
    checkpoints: Sequence[tuple[str, Path]],
    evaluate_fn: Callable[[Any, str], Any],
    *,
    echo: Callable[[str], None] = lambda _line: None,
) -> BestOfEpochs:
    """Evaluate every checkpoint with ``evaluate_fn(model, "val")``, then the best with ``(model, "test")``.

    Args:
        load: checkpoint folder -> model (base + adapter, or the full model).
        checkpoints: ``(name, folder)`` pairs, oldest first (:func:`run_checkpoints`).
        evaluate_fn: ``(model, split) -> EvalReport`` for split ``"val"`` or ``"test"``.
        echo: where a line per checkpoint goes.
    """
    val: dict[str, dict[str, float]] = {}
    reports: dict[str, Any] = {}
    best_name, best_score = "", float("-inf")
    for name, folder in checkpoints:
        report = evaluate_fn(load(folder), "val")
        reports[name] = report
        score = mean_accuracy(report)
        val[name] = dict(report.accuracy()) | {"mean": score}
        echo(f"val {name}: mean accuracy {100 * score:.1f}%")
        if score > best_score:
            best_name, best_score = name, score
    echo(f"chosen: {best_name} (val {100 * best_score:.1f}%); evaluating test")
    folder = dict(checkpoints)[best_name]
    test = evaluate_fn(load(folder), "test")
    test.settings["checkpoint"] = str(folder)
    return BestOfEpochs(chosen=best_name, val=val, test=test, val_reports=reports)
