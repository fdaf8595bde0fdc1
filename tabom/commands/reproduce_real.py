"""`tabom reproduce --model DIR --plan PLAN.yaml`: the paper's grid on a real checkpoint.

    tabom reproduce --model /ckpt/Dream-v0-Instruct-7B --plan plan.yaml --dry-run     # steps and GPU-hours
    tabom reproduce --model /ckpt/Dream-v0-Instruct-7B --plan plan.yaml --out runs/dream_paper
    torchrun --nproc_per_node 8 -m tabom.cli reproduce --model ... --plan plan.yaml --out runs/dream_paper
    CUDA_VISIBLE_DEVICES=3 tabom reproduce ... --methods t3d     # one method per GPU, then a plain run

Under torchrun every step is split over the processes (rank 0 writes the files and the report); a
plan with fewer problems in a benchmark file than processes is refused before any process group.

Every step is cached in --out; rerunning the same command resumes (docs/real_checkpoints.md).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import typer


def reproduce_real(plan_file: Path, model: str, out: Path | None, *, dry_run: bool, threads: int,
                   methods: str | None = None) -> None:
    """Check the plan (every file, every benchmark's columns), then list the steps or run them."""
    from tabom.eval.sharding import Shard, check_world_fits, launched_world  # noqa: PLC0415
    from tabom.reproduce.real_pipeline import RealReproduction  # noqa: PLC0415
    from tabom.reproduce.real_plan import load_real_plan  # noqa: PLC0415

    if model == "tiny":
        raise ValueError("--plan: give the checkpoint folder with --model (the built-in tiny model uses the "
                         "families' plan, without --plan)")
    if not Path(model).is_dir():
        raise FileNotFoundError(f"--model: {model}: no such checkpoint folder")
    plan = load_real_plan(plan_file, model=model)
    out = out or Path("runs") / f"reproduce_{Path(model).resolve().name}"
    command = "tabom reproduce " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else ""
    if dry_run:
        if int(os.environ.get("RANK", "0")) == 0:  # under a launcher, rank 0 lists the steps
            for line in RealReproduction(plan, out).dry_run():
                typer.echo(line)
        return
    shard = Shard()
    if launched_world() > 1:  # more processes than problems: exit 2 on every rank, before any process group
        check_world_fits(RealReproduction(plan, out).problem_counts(), f"--plan {plan_file}")
        shard = Shard.from_env()
    repro = RealReproduction(plan, out, echo=typer.echo, command=command, shard=shard)
    if threads:
        import torch  # noqa: PLC0415

        torch.set_num_threads(threads)
    if methods is not None:
        keys = {m.strip() for m in methods.split(",") if m.strip()}
        repro.run_methods(keys)
        if repro.shard.is_main:
            typer.echo(f"{', '.join(sorted(keys))}: done; run without --methods for the report")
        return
    repro.run()
    if repro.shard.is_main:
        typer.echo(f"{out / 'report.md'}: written ({len(repro.store.ran())} steps ran, "
                   f"{len(repro.store.log) - len(repro.store.ran())} cached)")
