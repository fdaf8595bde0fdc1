"""Benchmark: `tabom generate`'s batched decoding against the one-prompt-at-a-time reference.

    python bench/generate.py --n 64 --batch-size 64 --ref-n 8    # prints one markdown table row
    python bench/generate.py --device cuda --n 256 --batch-size 256 --ref-n 8    # on a GPU

Both decode the same math_chain train prompts with the tiny model's defaults (gen_length 64,
steps 64, entropy, one token per step, temperature 0). The builder runs end to end
(`build_trajectories` into a temporary file, no verification); the reference is
`tabom.decoding.reference_generate`, one prompt at a time, a full (1, L, V) forward every step,
timed on the first `--ref-n` prompts (it is slow); on those its tokens and decode orders are
asserted identical to the builder's. Figures: sequences per second and model
forward calls per sequence (a batched forward counts once for all rows in it).

Model: `load("tiny")` when `tabom/assets/tiny/model.safetensors` exists; otherwise a freshly
built tiny model of the default shape, its LM head scaled by 50 (random logits are nearly uniform
and float noise would break greedy ties differently in the two decoders); the row says which.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def machine(device: str = "cpu") -> str:
    """CPU model and thread count, or the GPU's name when `device` is one."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def matmul_peak_gflops(size: int = 1024, repeats: int = 5, device: str = "cpu") -> float:
    """The device's practical fp32 ceiling: best GFLOP/s of a (size x size) @ (size x size) matmul."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def forward_flops(model: Any, length: int) -> float:
    """Multiply-add FLOPs of one forward over `length` tokens: 2 x (non-embedding weights) per
    token for the projections and MLP, plus the attention scores and mixing (4 x L^2 x hidden per
    layer). The LM head is left out (the builder computes it only where needed)."""
    cfg = model.backbone.config
    weights = sum(p.numel() for n, p in model.backbone.named_parameters()
                  if p.dim() == 2 and "embed" not in n and "lm_head" not in n)
    return 2.0 * weights * length + 4.0 * cfg.num_hidden_layers * length**2 * cfg.hidden_size


def tiny_model(device: str = "cpu") -> tuple[Any, str]:
    """The shipped tiny checkpoint, else a fresh default-shape tiny model with a sharpened head."""
    from tabom.models import build_tiny, load
    from tabom.models.loading import TINY_DIR

    if (TINY_DIR / "model.safetensors").exists():
        return load("tiny", device=device), "tiny (trained checkpoint)"
    model = build_tiny(seed=0)
    with torch.no_grad():
        model.backbone.get_output_embeddings().weight.mul_(50.0)
    return model.to(device).eval(), "tiny shape, random init (head x50; no checkpoint in tabom/assets/tiny)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="prompts decoded by the builder")
    parser.add_argument("--ref-n", type=int, default=8, help="of those, decoded by the reference")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--task", default="math_chain")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from tabom.decoding import reference_generate
    from tabom.trajectories import read_trajectories
    from tabom.trajectories.builder import BuildConfig, build_trajectories, task_jobs
    from tabom.trajectories.distributed import DistEnv

    model, model_desc = tiny_model(args.device)
    jobs = task_jobs(args.task, "train", args.n, seed=0)
    cfg = BuildConfig(batch_size=args.batch_size, verify="none", keep="all").resolved(model)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t.jsonl"
        start = time.perf_counter()
        stats = build_trajectories(model, jobs, out, cfg, env=DistEnv())
        built_s = time.perf_counter() - start
        rows = {t.id: t for t in read_trajectories(out)}

    start = time.perf_counter()
    ref_nfe = same = same_tokens = 0
    ref_jobs = jobs[: args.ref_n]
    for job in ref_jobs:
        ref = reference_generate(model, model.encode_prompt(job.prompt), gen_length=cfg.gen_length,
                                 steps=cfg.steps, block_length=cfg.block_length, strategy=cfg.strategy,
                                 tokens_per_step=cfg.tokens_per_step)
        ref_nfe += ref.nfe
        row = rows[job.id]
        tokens_match = row.response_token_ids == ref.tokens[0].tolist()
        same_tokens += tokens_match
        same += tokens_match and row.decoding_order == ref.decoding_order[0].tolist()
    ref_s = time.perf_counter() - start

    n, n_ref = len(jobs), len(ref_jobs)
    # On the CPU the two must agree exactly; a GPU's kernels round differently for a batch of one
    # and a padded batch, so near-ties in the entropy can break the other way there.
    if torch.device(args.device).type == "cpu":
        assert same == n_ref, f"{n_ref - same} of {n_ref} rows differ between builder and reference"
    ref_flops = sum(forward_flops(model, len(model.encode_prompt(j.prompt)) + cfg.gen_length)
                    for j in ref_jobs) * (ref_nfe / n_ref)
    ref_gflops, peak = ref_flops / ref_s / 1e9, matmul_peak_gflops(device=args.device)
    ours, theirs = n / built_s, n_ref / ref_s
    command = "python bench/generate.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"model: {model_desc}; {n} {args.task} prompts (reference: first {n_ref}), gen_length "
          f"{cfg.gen_length}, steps {cfg.steps}, {cfg.strategy}, one token per step, batch "
          f"{args.batch_size}; builder {built_s:.1f}s, reference {ref_s:.1f}s; of {n_ref} rows, tokens "
          f"identical in {same_tokens}, tokens and decode order in {same}")
    print("| machine | command | builder seq/s | reference seq/s | speedup | forwards/seq builder "
          "| forwards/seq reference | row-forwards/seq builder |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {machine(args.device)} | `{command.strip()}` | {ours:.2f} | {theirs:.2f} | {ours / theirs:.1f}x "
          f"| {stats.nfe / n:.2f} | {ref_nfe / n_ref:.1f} | {stats.row_forwards / n:.1f} |")
    print(f"ceiling: the reference's forwards run at {ref_gflops:.1f} GFLOP/s; a 1024^3 fp32 matmul at "
          f"{peak:.1f} GFLOP/s on the same threads; with the same forwards per sequence no decoder "
          f"can beat the reference by more than {peak / ref_gflops:.1f}x here")


if __name__ == "__main__":
    main()
