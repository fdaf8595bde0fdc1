"""`tabom reproduce --model DIR --plan PLAN.yaml`: the paper's grid on a real checkpoint.

    tabom reproduce --model /ckpt/Dream-v0-Instruct-7B --plan plan.yaml --dry-run     # steps and GPU-hours
    tabom reproduce --model /ckpt/Dream-v0-Instruct-7B --plan plan.yaml --out runs/dream_paper
    CUDA_VISIBLE_DEVICES=3 tabom reproduce ... --methods t3d     # one method per GPU, then a plain run

Every step is cached in --out; rerunning the same command resumes (docs/real_checkpoints.md).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def reproduce_real(plan_file: Path, model: str, out: Path | None, *, dry_run: bool, threads: int,
                   methods: str | None = None) -> None:
    """Check the plan (every file, every benchmark's columns), then list the steps or run them."""
    from tabom.reproduce.real_pipeline import RealReproduction  # noqa: PLC0415
    from tabom.reproduce.real_plan import load_real_plan  # noqa: PLC0415

    import os  # noqa: PLC0415

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("--plan: not sharded under torchrun / accelerate launch (every rank would repeat every "
                         "step); run one process per GPU with --methods (docs/real_checkpoints.md)")
    if model == "tiny":
        raise ValueError("--plan: give the checkpoint folder with --model (the built-in tiny model uses the "
                         "families' plan, without --plan)")
    if not Path(model).is_dir():
        raise FileNotFoundError(f"--model: {model}: no such checkpoint folder")
    plan = load_real_plan(plan_file, model=model)
    out = out or Path("runs") / f"reproduce_{Path(model).resolve().name}"
    command = "tabom reproduce " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else ""
    repro = RealReproduction(plan, out, echo=typer.echo, command=command)  # type: ignore[arg-type]
    if dry_run:
        for line in repro.dry_run():
            typer.echo(line)
        return
    if threads:
        import torch  # noqa: PLC0415

        torch.set_num_threads(threads)
    if methods is not None:
        keys = {m.strip() for m in methods.split(",") if m.strip()}
        repro.run_methods(keys)
        typer.echo(f"{', '.join(sorted(keys))}: done; run without --methods for the report")
        return
    repro.run()
    typer.echo(f"{out / 'report.md'}: written ({len(repro.store.ran())} steps ran, "
               f"{len(repro.store.log) - len(repro.store.ran())} cached)")
