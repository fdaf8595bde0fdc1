"""`tabom eval`: decode and score a model on task families; prints a table, writes JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def eval_command(
    model: str = typer.Option("tiny", help="'tiny' or a local checkpoint folder."),
    tasks: str = typer.Option("all", help="Comma-separated task families, or 'all', 'math', 'code', 'ood'."),
    strategy: Optional[str] = typer.Option(None, help="entropy|confidence|margin|random (default: the model's)."),
    gen_length: int = typer.Option(64, help="Response tokens."),
    steps: Optional[int] = typer.Option(None, help="Decoding steps (default gen_length: one token per step)."),
    block_length: Optional[int] = typer.Option(None, help="Semi-autoregressive block length."),
    tokens_per_step: Optional[int] = typer.Option(None, help="Unmask exactly k tokens per step (2: parallel decoding)."),
    temperature: float = typer.Option(0.0, help="Sampling temperature (0: greedy)."),
    limit: int = typer.Option(200, help="Problems per task."),
    split: str = typer.Option("test", help="Split of the built-in families: test or val."),
    batch_size: int = typer.Option(64, help="Prompts decoded together."),
    seed: int = typer.Option(0, help="Seed of problem sampling and decoding noise."),
    out: Optional[Path] = typer.Option(None, help="Write per-sample JSON here (default runs/eval/<model>.json)."),
) -> None:
    """Evaluate a model: per-task accuracy table and a JSON file with every sample."""
    from rich.console import Console
    from rich.table import Table

    from tabom.eval.evaluate import DecodeSettings, evaluate, resolve_task_names
    from tabom.models import load

    names = resolve_task_names(tasks)
    lm = load(model)
    settings = DecodeSettings(gen_length=gen_length, steps=steps, block_length=block_length, strategy=strategy,
                              temperature=temperature, tokens_per_step=tokens_per_step,
                              batch_size=batch_size, seed=seed)
    report = evaluate(lm, names, settings, limit=limit, split=split)
    table = Table(title=f"{lm.name}  ({report.settings['strategy']}, steps={report.settings['steps']}, "
                        f"tokens/step={tokens_per_step or 'schedule'})")
    table.add_column("task")
    table.add_column("accuracy", justify="right")
    table.add_column("n", justify="right")
    counts = report.counts()
    for task, acc in report.accuracy().items():
        table.add_row(task, f"{100 * acc:.1f}%", str(counts[task]))
    Console().print(table)
    path = out or Path("runs/eval") / f"{Path(lm.name).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    typer.echo(f"wrote {path}")
