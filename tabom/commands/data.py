"""`tabom data ...`: commands on trajectory files.

    tabom data inspect runs/t.jsonl            # summary + every bad line, exit 2 if any
    tabom data inspect runs/t.jsonl --strict   # stop at the first bad line
    tabom data inspect runs/t.jsonl --model tiny   # token ids checked against the model's vocabulary
    tabom data inspect runs/t.jsonl --ce-window 4 --rank-window 4   # content share of those windows

Without `--model`/`--vocab-size`, token ids are checked against a row's `settings.vocab_size` when
it records one (else only for range). `tabom train` validates its data with the same checker and
its model's vocabulary, so a file inspect passes with `--model M` trains on M.

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
    model: Annotated[str | None, typer.Option(
        help="Check token ids against this model's vocabulary (tiny or a model folder; only its config.json is read)."
    )] = None,
    vocab_size: Annotated[int | None, typer.Option(min=1, help="Check token ids against [0, VOCAB_SIZE).")] = None,
    ce_window: Annotated[int | None, typer.Option(min=1, help=(
        "CE window M of the content share (default: the paper's 32 scaled to the response length, "
        "round(32 * G / 256), as tabom reproduce sets it)."))] = None,
    rank_window: Annotated[int | None, typer.Option(min=1, help="Ranking window W of the content share "
                                                    "(default: the CE window).")] = None,
) -> None:
    """Print counts, lengths, yield, decode statistics and the content share of the training windows;
    list bad lines; exit 2 if any."""
    if model is not None and vocab_size is not None:
        raise typer.BadParameter("give --model or --vocab-size, not both")
    if model is not None:
        vocab_size = model_vocab_size(model)
    report = inspect_file(path, strict=strict, vocab_size=vocab_size, ce_window=ce_window, rank_window=rank_window)
    Console().print(render_report(report))
    for error in report.errors:
        typer.echo(str(error), err=True)
    if not report.ok:
        raise typer.Exit(code=2)


def model_vocab_size(name: str) -> int:
    """`vocab_size` of a model's `config.json` (`tiny` or a folder) without loading its weights."""
    import json

    from tabom.models.loading import model_dir

    config = model_dir(name) / "config.json"
    if not config.is_file():
        raise ValueError(f"--model: {config}: no such file (expected `tiny` or a model folder)")
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("vocab_size")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ValueError(f"--model: {config}: unreadable ({exc})") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--model: {config}: vocab_size: expected an int >= 1, got {value!r}")
    return value


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
