"""`tabom eval --run RUN_DIR`: every checkpoint of a training run on validation, test at the best.

    tabom eval --model /ckpt/Dream --run runs/dream_math --tasks gsm8k=test.jsonl --val-tasks gsm8k=val.jsonl \
        --preset release-dream-gsm8k --out runs/eval/dream_math

Writes ``OUT/results.json`` (the selection: each checkpoint's validation accuracy, the chosen one,
the criterion; then the test report at the chosen checkpoint with every sample) and
``OUT/val/<checkpoint>.json`` (each validation report). See :mod:`tabom.eval.best_epoch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def eval_best_of_run(
    run: Path,
    model: str,
    sources: list[Any],
    val_tasks: str | None,
    settings: Any,
    *,
    resolve_kwargs: dict[str, Any],
    limit: int | None,
    out: Path | None,
    progress: bool,
    extra_settings: dict[str, Any],
    load_kwargs: dict[str, Any],
    shard: Any = None,
) -> Any:
    """Choose the best checkpoint of ``run`` on validation and evaluate test there; writes OUT; returns it.

    Under torchrun (``shard``) every rank evaluates its share of each checkpoint's problems and
    every rank sees the same gathered reports, so all choose the same checkpoint; rank 0 writes."""
    from tabom.commands.eval_table import print_report  # noqa: PLC0415
    from tabom.eval.best_epoch import best_of_epochs, run_checkpoints  # noqa: PLC0415
    from tabom.eval.evaluate import evaluate  # noqa: PLC0415
    from tabom.eval.model_spec import is_adapter_dir, load_eval_model  # noqa: PLC0415
    from tabom.eval.sources import BenchmarkSource, resolve_tasks  # noqa: PLC0415
    from tabom.reproduce.store import write_json  # noqa: PLC0415

    checkpoints = run_checkpoints(run)
    if val_tasks is not None:
        val_sources = resolve_tasks(val_tasks, **resolve_kwargs)
    elif any(isinstance(s, BenchmarkSource) for s in sources):
        raise ValueError("--run: benchmark files have no validation split; give --val-tasks (e.g. "
                         "gsm8k=val.jsonl) for the selection")
    else:
        val_sources = sources  # the families' val split

    def load(folder: Path) -> Any:
        if is_adapter_dir(folder):
            return load_eval_model(model, str(folder), **load_kwargs)
        return load_eval_model(str(folder), None, **load_kwargs)

    def evaluate_fn(lm: Any, split: str) -> Any:
        chosen_sources = val_sources if split == "val" else sources
        return evaluate(lm, chosen_sources, settings, limit=limit, split=split, progress=progress,
                        extra_settings=extra_settings | {"run": str(run)}, shard=shard)

    main = shard is None or shard.is_main
    result = best_of_epochs(load, checkpoints, evaluate_fn, echo=typer.echo if main else (lambda _line: None))
    if not main:  # every rank took part in every evaluation; rank 0 writes
        return result
    folder = out or Path("runs/eval") / Path(run).resolve().name
    for name, report in result.val_reports.items():
        write_json(folder / "val" / f"{name}.json", report.to_json())
    print_report(result.test)
    path = write_json(folder / "results.json", result.to_json())
    typer.echo(f"chosen {result.chosen}; wrote {path}")
    return result
