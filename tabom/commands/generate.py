"""`tabom generate`: self-distilled trajectories from a base model (thin adapter over the builder).

    tabom generate --model tiny --task math_chain --n 500 --out runs/traj.jsonl
    tabom generate --model /ckpt/Dream --prompts data/p.jsonl --out t.jsonl --temperature 0.7 \
        --samples-per-prompt 4 --keep all
    torchrun --nproc_per_node 8 -m tabom.cli generate --model /ckpt/LLaDA --task math_linear ...

Rerunning the same command resumes: ids already written (or rejected) are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def generate(
    out: Path = typer.Option(..., help="Trajectory JSONL to write (appended to; resumable)."),
    model: str = typer.Option("tiny", help="'tiny' or a local checkpoint folder."),
    prompts: Optional[Path] = typer.Option(None, help="Prompt JSONL (prompt/question, id, answer, tests, data_source)."),
    task: Optional[str] = typer.Option(None, help="Built-in task family instead of --prompts."),
    n: int = typer.Option(100, help="Problems drawn from --task."),
    split: str = typer.Option("train", help="Split of --task: train, val or test."),
    strategy: Optional[str] = typer.Option(None, help="entropy|confidence|margin|random (default: the model's)."),
    gen_length: Optional[int] = typer.Option(None, help="Response tokens (default 64 for tiny, 256 otherwise)."),
    steps: Optional[int] = typer.Option(None, help="Decode steps (default gen_length: one token per step)."),
    block_length: Optional[int] = typer.Option(None, help="Semi-autoregressive block length (default: one block)."),
    tokens_per_step: Optional[int] = typer.Option(None, help="Unmask exactly k tokens per step instead of the schedule."),
    threshold: Optional[float] = typer.Option(None, help="Threshold parallel decoding (Fast-dLLM): unmask every "
                                                 "masked position of the block whose token probability is >= tau, "
                                                 "tau in (0, 1], at least one per step."),
    cache: Optional[str] = typer.Option(None, help="Key/value cache of block decoding: none (exact, default), prefix "
                                             "(prompt + finished blocks), dual (also the suffix; needs --block-length)."),
    temperature: float = typer.Option(0.0, help="Sampling temperature (0: greedy)."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus truncation (not with confidence)."),
    top_k: Optional[int] = typer.Option(None, help="Top-k truncation (not with confidence)."),
    samples_per_prompt: int = typer.Option(1, help="Samples per prompt (ids '<id>#k'; needs temperature > 0)."),
    verify: str = typer.Option("auto", help="auto: task verifier / answer / tests; none: correct stays null."),
    keep: str = typer.Option("correct", help="correct: drop rows verified wrong; all: keep every row."),
    batch_size: int = typer.Option(32, help="Prompts decoded together in one forward batch."),
    seed: int = typer.Option(0, help="Seed of task sampling and decoding noise."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Decode prompts with the base model, record each token's decode step, verify, keep."""
    if (prompts is None) == (task is None):
        raise typer.BadParameter("give exactly one of --prompts and --task")

    from tabom.models import load
    from tabom.outputs import check_output_file
    from tabom.trajectories.builder import (
        BuildConfig, build_trajectories, check_out_is_not_input, check_out_is_tabom, expand_samples, file_jobs,
        task_jobs,
    )
    from tabom.trajectories.distributed import DistEnv

    check_output_file(out)  # before anything is loaded or decoded
    if prompts is not None:
        check_out_is_not_input(out, prompts)
    check_out_is_tabom(out)

    cfg = BuildConfig(gen_length=gen_length, steps=steps, block_length=block_length, strategy=strategy,
                      temperature=temperature, top_p=top_p, top_k=top_k, tokens_per_step=tokens_per_step,
                      threshold=threshold, cache=cache or "none", samples_per_prompt=samples_per_prompt, verify=verify, keep=keep,
                      batch_size=batch_size, seed=seed)
    env = DistEnv.from_environ()
    if task is not None:
        jobs = task_jobs(task, split, n, seed=seed)
        source = {"task": task, "split": split, "n": n, "seed": seed}
    else:
        assert prompts is not None
        jobs = file_jobs(prompts)
        source = {"prompts": str(prompts)}
    jobs = expand_samples(jobs, samples_per_prompt)
    lm = load(model, device=env.device())
    try:
        stats = build_trajectories(lm, jobs, out, cfg, env=env, source=source, progress=progress and env.is_main)
    finally:
        env.close()
    if not env.is_main:
        return
    total = stats.meta["total"]
    yield_text = f"{100 * stats.yield_:.1f}%" if stats.yield_ is not None else "n/a"
    typer.echo(f"this run: decoded {stats.generated} on rank 0 in {stats.elapsed_s:.1f}s (world {env.world})")
    typer.echo(f"{out}: kept {total['kept']} / generated {total['generated']} (yield {yield_text}); "
               f"correct {total['correct']}, wrong {total['wrong']}, unverified {total['unverified']}")
    for name, c in stats.meta["counts"].items():
        typer.echo(f"  {name}: kept {c['kept']} / {c['generated']}")
