"""`tabom eval`: decode and score a model on task families and benchmark files; table + JSON.

    tabom eval --model tiny --tasks math,code --limit 100
    tabom eval --model /ckpt/Dream-v0-Instruct-7B --adapter runs/x/final \
        --tasks gsm8k=data/gsm8k/test.jsonl --preset dream-gsm8k --tokens-per-step 2 --out runs/eval/x

Outputs in the --out folder, checked before the model is loaded: every scored batch is appended
to samples.partial.jsonl as it comes (a crash keeps them); at the end results.json is written
atomically and the partial file becomes samples.jsonl. A rerun starts samples.partial.jsonl anew.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from tabom.commands.eval_table import print_report


def eval_command(
    model: str = typer.Option("tiny", help="'tiny' or a local checkpoint folder."),
    adapter: Optional[str] = typer.Option(None, help="A LoRA adapter folder (adapter_config.json) to apply."),
    tasks: str = typer.Option("all", help="Families, 'all'/'math'/'code'/'ood', or benchmarks as name=path "
                                          "(gsm8k, math500, humaneval, mbpp, ifeval), comma-separated."),
    preset: Optional[str] = typer.Option(None, help="Paper inference setting, e.g. dream-gsm8k, llada-mbpp "
                                                    "(Table 8), or the release's scripts, e.g. release-dream-gsm8k; "
                                                    "explicit flags override it."),
    protocol: Optional[str] = typer.Option(None, help="Prompts and scoring of benchmark files: 'tabom' (tabom's "
                                                      "zero-shot prompts) or 'release' (the release's lm-eval tasks: "
                                                      "gsm8k_cot, minerva_math500, humaneval_instruct, mbpp_instruct, "
                                                      "ifeval). Default: release with a release-* preset, else tabom."),
    strategy: Optional[str] = typer.Option(None, help="entropy|confidence|margin|random (default: the model's)."),
    gen_length: Optional[int] = typer.Option(None, help="Response tokens (default: 64 for tiny, 256 otherwise)."),
    steps: Optional[int] = typer.Option(None, help="Decoding steps (default gen_length: one token per step)."),
    block_length: Optional[int] = typer.Option(None, help="Semi-autoregressive block length."),
    tokens_per_step: Optional[int] = typer.Option(None, help="Unmask exactly k tokens per step (2: Table 4)."),
    threshold: Optional[float] = typer.Option(None, help="Threshold parallel decoding (Fast-dLLM): unmask every "
                                                 "masked position of the block whose token probability is >= tau, "
                                                 "tau in (0, 1], at least one per step."),
    cache: Optional[str] = typer.Option(None, help="Key/value cache of block decoding: none (exact, default), prefix "
                                             "(prompt + finished blocks), dual (also the suffix; needs --block-length)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (default 0: greedy)."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus truncation (not for confidence)."),
    top_k: Optional[int] = typer.Option(None, help="Top-k truncation (not for confidence)."),
    limit: Optional[int] = typer.Option(None, help="Problems per task (default: 200 per family, whole files)."),
    split: str = typer.Option("test", help="Split of the built-in families: test or val."),
    batch_size: str = typer.Option("64", help="Prompts decoded together, or 'auto': the largest batch whose "
                                               "decoding fits the device's free memory (or --max-memory)."),
    max_memory: Optional[str] = typer.Option(None, help="With --batch-size auto: the memory decoding may use "
                                                        "beyond the weights (e.g. 40GB); default 90% of what is free."),
    seed: int = typer.Option(0, help="Seed of problem sampling and decoding noise."),
    sandbox_timeout: float = typer.Option(10.0, help="Seconds per HumanEval/MBPP program."),
    sandbox_memory_mb: int = typer.Option(1024, help="Memory limit per program."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
    dtype: str = typer.Option("auto", help="auto|bfloat16|float16|float32."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default runs/eval/<model>)."),
    run: Optional[Path] = typer.Option(None, help="A training run folder: evaluate every epoch_k/ and final/ on "
                                                  "validation, report test at the best (the paper's best of epochs)."),
    val_tasks: Optional[str] = typer.Option(None, help="With --run: the validation tasks (default: the --tasks "
                                                       "families' val split; benchmark files need val files)."),
    progress: bool = typer.Option(True, help="Show a progress bar with running accuracy."),
) -> None:
    """Evaluate a model: per-task accuracy table, and results.json with every sample and the settings."""
    from tabom.eval.decode_memory import auto_batch_for, parse_batch_size  # noqa: PLC0415
    from tabom.eval.evaluate import DecodeSettings, evaluate  # noqa: PLC0415
    from tabom.eval.model_spec import load_eval_model  # noqa: PLC0415
    from tabom.eval.presets import apply_preset  # noqa: PLC0415
    from tabom.eval.protocol import protocol_for  # noqa: PLC0415
    from tabom.eval.sharding import Shard, check_world_fits, launched_world  # noqa: PLC0415
    from tabom.eval.sources import resolve_tasks  # noqa: PLC0415
    from tabom.outputs import JsonlLog, check_output_dir, write_text_atomic  # noqa: PLC0415

    overrides = {"gen_length": gen_length, "steps": steps, "block_length": block_length, "strategy": strategy,
                 "temperature": temperature, "top_p": top_p, "top_k": top_k, "tokens_per_step": tokens_per_step,
                 "threshold": threshold, "cache": cache, "batch_size": parse_batch_size(batch_size, max_memory),
                 "seed": seed}
    settings = apply_preset(DecodeSettings(), preset, overrides)
    chosen = protocol_for(preset, protocol)
    sources = resolve_tasks(tasks, timeout_s=sandbox_timeout, memory_mb=sandbox_memory_mb, protocol=chosen)
    if out is not None:
        check_output_dir(out)  # before any model is loaded
    if launched_world() > 1:  # more processes than problems: exit 2 on every rank, before any process group
        check_world_fits({f"task {s.name}": len(s.load(limit, split, seed)) for s in sources},
                         f"--limit {limit}" if limit is not None else "--tasks")
    shard = Shard.from_env()  # under torchrun / accelerate launch: this process's share of the problems
    device = device or shard.device()
    if run is not None:
        from tabom.commands.eval_run import eval_best_of_run  # noqa: PLC0415

        if overrides["batch_size"] is None:
            raise ValueError("--batch-size auto: not with --run yet; give a number")

        eval_best_of_run(run, model, sources, val_tasks, settings, limit=limit, out=out, progress=progress,
                         resolve_kwargs={"timeout_s": sandbox_timeout, "memory_mb": sandbox_memory_mb,
                                         "protocol": chosen},
                         extra_settings={"preset": preset, "base_model": model, "protocol": chosen},
                         load_kwargs={"device": device, "dtype": dtype}, shard=shard)
        return
    lm = load_eval_model(model, adapter, device=device, dtype=dtype)
    if overrides["batch_size"] is None:  # --batch-size auto: from the model's shape and the free memory
        from tabom.eval.protocol import encode_eval_prompt  # noqa: PLC0415

        lengths = [len(encode_eval_prompt(lm, i.prompt)) for s in sources for i in s.load(limit, split, seed)]
        batch, budget = auto_batch_for(lm, lengths, int(settings.resolved(lm).gen_length), max_memory)
        batch = shard.broadcast(batch)  # every rank cuts the same batches (rank 0's figure)
        settings = apply_preset(settings, None, {"batch_size": batch})
        typer.echo(f"batch size auto: {batch} (decoding budget {budget / 1e9:.1f} GB; docs/benchmarks.md)")
    folder = out or Path("runs/eval") / Path(lm.name.split("+")[0]).name
    check_output_dir(folder)
    extra = {"preset": preset, "adapter": adapter, "base_model": model, "protocol": chosen}
    if not shard.is_main:  # ranks > 0 decode their share; rank 0 gathers and writes
        evaluate(lm, sources, settings, limit=limit, split=split, progress=False, extra_settings=extra, shard=shard)
        return
    partial = folder / "samples.partial.jsonl"  # every scored batch lands here at once
    with JsonlLog(partial) as log:
        report = evaluate(lm, sources, settings, limit=limit, split=split, progress=progress,
                          extra_settings=extra, on_batch=lambda batch: log.write(asdict(s) for s in batch),
                          shard=shard)
        log.write([])  # an evaluation of no problems still leaves an (empty) samples file
    print_report(report)
    path = write_text_atomic(folder / "results.json", json.dumps(report.to_json(), indent=1) + "\n")
    os.replace(partial, folder / "samples.jsonl")
    typer.echo(f"wrote {path} and {folder / 'samples.jsonl'}")
