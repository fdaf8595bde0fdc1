"""`tabom train`: post-train a diffusion LM from a YAML recipe (LoRA or full, accelerate, resume).

    tabom train --recipe tiny_tabom
    tabom train --recipe dream_prm12k model=/ckpt/Dream-v0-Instruct-7B data.path=d.jsonl
    tabom train --recipe tiny_tabom optim.lr=1e-3 objective.margin=0.2 --dry-run
    tabom train --recipe tiny_tabom out=runs/t --resume
    accelerate launch --num_processes 8 -m tabom.cli train --recipe dream_prm12k ...
"""

from __future__ import annotations

import os
from pathlib import Path

import typer


def train(
    recipe: str = typer.Option(..., "--recipe", "-r", help="Recipe YAML file, or the name of a built-in recipe (tiny_tabom)."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides with dotted keys, e.g. optim.lr=1e-4 data.path=t.jsonl."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved recipe and exit."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint in `out`."),
) -> None:
    """Train with the objective, data, LoRA and optimizer settings of a recipe."""
    from tabom.config import ConfigError, load_recipe, to_yaml

    try:
        cfg = load_recipe(recipe, list(overrides or []))
    except (ConfigError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if dry_run:
        typer.echo(to_yaml(cfg), nl=False)
        raise typer.Exit(0)
    from tabom.training.trainer import train as run

    run_dir: Path = run(cfg, resume=resume)
    if os.environ.get("RANK", "0") == "0":  # one line, not one per process
        typer.echo(f"run folder: {run_dir}")
