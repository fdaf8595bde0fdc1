"""`tabom tds`: Trajectory Discrimination Score of one or several models; CSV, PNG, scalars.

    tabom tds --model tiny --tasks math_chain --n 64 --out runs/tds
    tabom tds --model tiny --tasks mbpp=data/mbpp.jsonl \
        --compare base=tiny sft=runs/sft/final tabom=runs/tabom/final --out runs/tds_mbpp

In ``--compare``, a path holding adapter_config.json is an adapter applied on ``--model``.
The --out folder is checked before any model is loaded; tds.csv and tds.json are rewritten
(atomically) after each model, so a crash keeps the models already done; tds.png comes last.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer


def _prompts(tasks: Optional[str], prompts: Optional[Path], n: int, seed: int) -> tuple[list[str], list[str]]:
    """The prompt texts, and where each came from (FILE:LINE, or the task and problem)."""
    if (tasks is None) == (prompts is None):
        raise typer.BadParameter("give exactly one of --tasks and --prompts")
    if prompts is not None:
        from tabom.trajectories.prompts import read_prompts  # noqa: PLC0415

        records = read_prompts(prompts)[:n]
        return [r.prompt for r in records], [r.where for r in records]
    from tabom.eval.sources import resolve_tasks  # noqa: PLC0415

    assert tasks is not None
    sources = resolve_tasks(tasks)
    per = max(1, -(-n // len(sources)))  # ceil: n prompts shared out over the tasks
    pairs = [(i.prompt, f"task {s.name} problem {i.id}") for s in sources for i in s.load(per, "test", seed)][:n]
    return [p for p, _ in pairs], [w for _, w in pairs]


def _auto_batch(lm: Any, texts: list[str], settings: Any, max_memory: Optional[str], shard: Any) -> Any:
    """``settings`` with ``--batch-size auto``'s batch for ``lm`` (rank 0's figure on every rank), said on rank 0."""
    from tabom.eval.decode_memory import auto_batch_for  # noqa: PLC0415
    from tabom.eval.presets import apply_preset  # noqa: PLC0415

    s = settings.resolved(lm)
    lengths = [len(lm.encode_prompt(t)) for t in texts]
    batch, budget = auto_batch_for(lm, lengths, int(s.gen_length), max_memory, entropy_steps=int(s.steps))
    batch = shard.broadcast(batch)  # every rank cuts the same batches
    if shard.is_main:
        typer.echo(f"batch size auto: {batch} (decoding budget {budget / 1e9:.1f} GB; docs/benchmarks.md)")
    return apply_preset(settings, None, {"batch_size": batch})


def tds(
    ctx: typer.Context,
    model: str = typer.Option("tiny", help="Base model: 'tiny' or a local checkpoint folder."),
    adapter: Optional[str] = typer.Option(None, help="Adapter applied on --model (without --compare)."),
    tasks: Optional[str] = typer.Option(None, help="Task families or benchmarks (name=path) giving prompts."),
    prompts: Optional[Path] = typer.Option(None, help="A prompt JSONL file instead of --tasks."),
    n: int = typer.Option(64, "--n", "--n-prompts", help="Trajectories per model (the paper uses 64); "
                                                          "--n-prompts under torchrun, whose parser takes --n as its own."),
    compare: Optional[list[str]] = typer.Option(
        None, help="label=model_or_adapter; repeat, or list several after one flag."),
    preset: Optional[str] = typer.Option(None, help="Decoding preset (Table 8), e.g. dream-mbpp."),
    gen_length: Optional[int] = typer.Option(None, help="Response tokens (default: 64 for tiny, 256 otherwise)."),
    steps: Optional[int] = typer.Option(None, help="Decoding steps (default gen_length)."),
    block_length: Optional[int] = typer.Option(None, help="Block length."),
    threshold: Optional[float] = typer.Option(None, help="Threshold parallel decoding (Fast-dLLM): unmask every "
                                                 "masked position of the block whose token probability is >= tau, "
                                                 "tau in (0, 1], at least one per step."),
    cache: Optional[str] = typer.Option(None, help="Key/value cache of block decoding: none (exact, default) or "
                                             "prefix (dual skips the suffix's entropies that TDS needs)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (default 0)."),
    batch_size: str = typer.Option("64", help="Prompts decoded together, or 'auto': the largest batch whose "
                                               "decoding (entropies kept for TDS included) fits the device's "
                                               "free memory (or --max-memory), picked per model."),
    max_memory: Optional[str] = typer.Option(None, help="With --batch-size auto: the memory decoding may use "
                                                        "beyond the weights (e.g. 40GB); default 90% of what is free."),
    seed: int = typer.Option(0, help="Seed of prompts and decoding noise."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda ... (default: cuda when available)."),
    dtype: str = typer.Option("auto", help="auto|bfloat16|float16|float32."),
    out: Path = typer.Option(Path("runs/tds"), help="Output folder: tds.csv, tds.png, tds.json."),
) -> None:
    """Decode with each model's default strategy, recording entropies; print TDS and plot the curves."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from tabom.eval.decode_memory import parse_batch_size  # noqa: PLC0415
    from tabom.eval.evaluate import DecodeSettings  # noqa: PLC0415
    from tabom.eval.model_spec import ModelSpec, load_eval_model, parse_compare  # noqa: PLC0415
    from tabom.eval.presets import apply_preset  # noqa: PLC0415
    from tabom.eval.sharding import Shard, check_world_fits  # noqa: PLC0415
    from tabom.eval.tds import plot_curves, run_tds, write_csv  # noqa: PLC0415
    from tabom.outputs import check_output_dir, write_text_atomic  # noqa: PLC0415

    entries = list(compare or []) + list(ctx.args)  # `--compare a=x b=y`: b=y arrives as an extra arg
    specs = parse_compare(entries, model) if entries else [ModelSpec("model", model, adapter)]
    texts, where = _prompts(tasks, prompts, n, seed)
    check_output_dir(out)  # before any model is loaded
    overrides = {"gen_length": gen_length, "steps": steps, "block_length": block_length,
                 "temperature": temperature, "threshold": threshold, "cache": cache,
                 "batch_size": parse_batch_size(batch_size, max_memory), "seed": seed}
    settings = apply_preset(DecodeSettings(), preset, overrides)
    settings.strategy = None  # each model's default strategy, as the paper measures TDS
    check_world_fits({"tds prompts": len(texts)}, f"--n-prompts {n}")  # before any process group: exit 2 on every rank
    shard = Shard.from_env()  # under torchrun / accelerate launch: each rank decodes its share
    device = device or shard.device()
    results = []
    for spec in specs:
        lm = load_eval_model(spec.model, spec.adapter, device=device, dtype=dtype)
        chosen = settings if overrides["batch_size"] is not None else _auto_batch(lm, texts, settings, max_memory, shard)
        results.append(run_tds(lm, texts, chosen, label=spec.label, progress=shard.world == 1, where=where,
                               shard=shard))
        del lm
        if not shard.is_main:  # rank 0 writes
            continue
        out.mkdir(parents=True, exist_ok=True)
        # after each model, so a crash keeps the models done (each file replaced atomically)
        write_csv(results, out / "tds.csv")
        summary = {r.label: {"tds": r.scalar, "model": s.description, "n": r.n, "settings": r.settings}
                   for r, s in zip(results, specs)}
        write_text_atomic(out / "tds.json", json.dumps(summary, indent=1) + "\n")
    if not shard.is_main:
        return
    plot_curves(results, out / "tds.png", title=f"TDS ({len(texts)} trajectories)")
    table = Table(title=f"Trajectory Discrimination Score ({len(texts)} prompts)")
    table.add_column("model")
    table.add_column("TDS", justify="right")
    table.add_column("what")
    for r, s in zip(results, specs):
        table.add_row(r.label, f"{r.scalar:.4g}", s.description)
    Console().print(table)
    for r in results:
        typer.echo(f"TDS {r.label} {r.scalar:.6f}")
    typer.echo(f"wrote {out / 'tds.csv'}, {out / 'tds.png'}, {out / 'tds.json'}")


# What `tabom.cli` should register the command with, so `--compare a=x b=y c=z` works unrepeated.
tds.context_settings = {"allow_extra_args": True}  # type: ignore[attr-defined]
