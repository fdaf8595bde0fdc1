"""`tabom export`: write a model (with a LoRA adapter merged in) in its original layout.

    tabom export --model /ckpt/LLaDA-8B-Instruct --adapter runs/llada_prm12k/final --out out/llada_tabom
    tabom export --model runs/dream_full/final --out out/dream_full          # a tabom full fine-tune
    tabom export --model /ckpt/Dream-v0-Instruct-7B --out out/dream_hf --format hf

Thin adapter over `tabom.models.export.export_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def export(
    model: Annotated[str, typer.Option("--model", help="Dream/LLaDA folder (original layout) or a tabom model folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (must be absent or empty unless --overwrite).")],
    adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA adapter folder to merge in (either layout).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="original (Dream / LLaDA layout) or hf (tabom's transformers layout).")] = "original",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out folder.")] = False,
    max_shard_size: Annotated[str, typer.Option("--max-shard-size", help="Shard the weights past this size (5GB, 500MB, bytes).")] = "5GB",
    dtype: Annotated[str, typer.Option("--dtype", help="source (as stored in --model), bfloat16, float16 or float32.")] = "source",
) -> None:
    """Merge an adapter if given and write the model so that its own code (and tools on it) load it."""
    from tabom.models.export import export_model, parse_size

    result = export_model(
        model, out, adapter=adapter, fmt=fmt, overwrite=overwrite,
        max_shard_bytes=parse_size(max_shard_size), dtype=dtype,
    )
    layout = {"dream": "Dream", "llada": "LLaDA"}.get(result.family, result.family) if fmt == "original" else "transformers"
    typer.echo(
        f"wrote {result.out}: {result.tensors} tensors in {len(result.shards)} file(s), "
        f"{result.total_bytes / 1e6:.1f} MB, {layout} layout" + (f", adapter {adapter} merged" if adapter else "")
    )
    for note in result.notes:
        typer.echo(f"note: {note}")
