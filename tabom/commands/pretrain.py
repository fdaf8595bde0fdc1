"""`tabom pretrain`: re-create the built-in tiny DLM from its seed (see docs/tiny_model.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


OPTIONS = {
    **{f"model_shape.{field}": option for field, option in (
        ("hidden_size", "--hidden-size"), ("num_hidden_layers", "--layers"), ("num_attention_heads", "--heads"),
        ("num_key_value_heads", "--heads"), ("intermediate_size", "--intermediate-size"))},
    **{field: "--" + field.replace("_", "-") for field in (
        "steps", "batch_size", "lr", "n_per_family", "gen_length", "drill", "drill_lines", "drill_only",
        "threads", "save_every", "init", "precision", "seed")},
}
"""`PretrainConfig` error prefix -> the option that sets the field (for `tabom.errors.options_named`)."""


def pretrain(
    out: Path = typer.Option(Path("runs/pretrain"), help="Folder for the checkpoint and the loss log."),
    steps: int = typer.Option(7000, help="Optimizer steps."),
    batch_size: int = typer.Option(48, help="Sequences per step."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (warm-up, then cosine to 10%); 3e-3 collapses the tiny model's attention."),
    n_per_family: int = typer.Option(7000, help="Training problems drawn from each task family."),
    gen_length: int = typer.Option(64, help="Response window in tokens (answer + EOS padding)."),
    seed: int = typer.Option(0, help="Seed of the model init, the data and the masking."),
    drill: int = typer.Option(0, help="Arithmetic drill pairs ('13-6=' -> '7') added to the mixture (docs/tiny_model.md)."),
    drill_lines: int = typer.Option(1, help="Facts per drill pair: 1 = a bare fact; k > 1 = a sheet of k worked facts in the answer window."),
    drill_only: bool = typer.Option(False, "--drill-only", help="Train on the --drill pairs alone (a first curriculum stage; docs/tiny_model.md)."),
    group_numbers: bool = typer.Option(False, "--group-numbers", help="Mask every occurrence of a number in an answer together, so results are computed, not copied (docs/tiny_model.md)."),
    threads: int = typer.Option(2, help="torch CPU threads (0: torch default); the same count reproduces the same weights."),
    save_every: int = typer.Option(0, help="Every k steps save out/step_<k> and the resume state (0: final only)."),
    resume: bool = typer.Option(False, help="Continue from out/resume after a kill (same settings), or extend a finished run with a larger --steps."),
    init: Optional[Path] = typer.Option(None, help="Start from this tiny checkpoint's weights (a second training stage)."),
    tasks: Optional[Path] = typer.Option(None, help="YAML file of task-family knobs (family: {knob: value}); default: the families' defaults."),
    device: str = typer.Option("cpu", help="Where to train: cpu, cuda, cuda:1, ..."),
    precision: str = typer.Option("fp32", help="fp32, bf16 (autocast; weights stay float32) or auto (bf16 on a CUDA device that has it)."),
    hidden_size: Optional[int] = typer.Option(None, help="Model width (default: TinyConfig's, 192)."),
    layers: Optional[int] = typer.Option(None, help="Transformer layers (default: TinyConfig's, 4)."),
    heads: Optional[int] = typer.Option(None, help="Attention heads, also the key/value heads (default 4)."),
    intermediate_size: Optional[int] = typer.Option(None, help="MLP width (default: TinyConfig's, 512)."),
) -> None:
    """Train the tiny DLM from scratch with the masked-diffusion (NELBO) objective."""
    from tabom.errors import options_named
    from tabom.pretraining.pretrain import PretrainConfig, load_task_options, pretrain as run

    shape = {"hidden_size": hidden_size, "num_hidden_layers": layers, "num_attention_heads": heads,
             "num_key_value_heads": heads, "intermediate_size": intermediate_size}
    with options_named(OPTIONS):  # every number is checked here, before any file is read or written
        cfg = PretrainConfig(out=str(out), steps=steps, batch_size=batch_size, lr=lr,
                             n_per_family=n_per_family, gen_length=gen_length, seed=seed, drill=drill,
                             drill_lines=drill_lines, drill_only=drill_only, group_numbers=group_numbers,
                             threads=threads, save_every=save_every, init=str(init) if init else None,
                             device=device, precision=precision,
                             model={k: v for k, v in shape.items() if v is not None})
    if tasks:
        cfg.tasks = load_task_options(tasks)
    with options_named(OPTIONS):  # the checks that need the data (--batch-size against the examples)
        run(cfg, resume=resume)
    typer.echo(f"saved {out}")
