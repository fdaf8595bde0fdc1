"""`tabom data ...`: commands on trajectory files.

    tabom data inspect runs/t.jsonl            # summary + every bad line, exit 2 if any
    tabom data inspect runs/t.jsonl --strict   # stop at the first bad line

Thin adapter over `tabom.trajectories.inspect`; `tabom.cli` mounts `data_app` as `data`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tabom.trajectories.inspect import inspect_file, render_report

data_app = typer.Typer(help="Inspect and validate trajectory files.", no_args_is_help=True)


@data_app.callback()
def _data() -> None:
    """Inspect and validate trajectory files."""


@data_app.command()
def inspect(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Trajectory JSONL.")],
    strict: Annotated[bool, typer.Option(help="Stop at the first bad line.")] = False,
) -> None:
    """Print counts, lengths, yield and decode statistics; list bad lines; exit 2 if any."""
    report = inspect_file(path, strict=strict)
    Console().print(render_report(report))
    for error in report.errors:
        typer.echo(str(error), err=True)
    if not report.ok:
        raise typer.Exit(code=2)


@data_app.command()
def prepare(
    name: Annotated[str, typer.Argument(help="Published set: prm12k (MixChain-Z-PRM12K) or ling_coder (Ling-Coder-SFT).")],
    path: Annotated[Path, typer.Argument(help="Its .parquet / .json / .jsonl file, parquet folder or datasets save folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for prompts.jsonl and sft_gt.jsonl.")],
    split: Annotated[str | None, typer.Option(help="Split of a saved DatasetDict (default: train).")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N rows.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing prompts.jsonl / sft_gt.jsonl.")] = False,
) -> None:
    """Write tabom's prompt file (with references) and SFT-GT pairs from a published training set."""
    from tabom.tasks.published import prepare as run

    result = run(name, path, out, split=split, limit=limit, overwrite=overwrite)
    typer.echo(f"wrote {result.n} prompts to {result.prompts} and {result.n} ground-truth pairs to {result.sft_gt}")
