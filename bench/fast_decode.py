"""Benchmark: fast decoding (KV cache, threshold parallel decoding) against exact full decoding.

    python bench/fast_decode.py                       # 50 problems x 4 in-domain families, ~10 min quiet
    python bench/fast_decode.py --n 8 --dream-n 8     # a quick look

One run, side by side, on the same prompts and threads:

* **tiny model** (the shipped checkpoint), the test problems of the four in-domain families
  (math_chain, math_linear, code_trace, code_func; ``--n`` each), temperature 0, the model's
  strategy (entropy): exact full decoding (gen_length 64, one token per step, one block, the
  reference row), exact block decoding (``--block-length``, one token per step), the same with
  ``--cache prefix`` and ``--cache dual``, threshold decoding (``--threshold``) without a cache
  and with the dual cache, and threshold decoding over one block (the whole response) without a
  cache and with the prefix cache (the prompt's keys/values).
* **Dream-layout model with the real vocabulary** (151,936 rows, Qwen2 blocks with q/k/v bias,
  shifted logits), random weights at a small width, random prompts: the same settings, for
  throughput only (its tokens mean nothing; agreement is still reported).

Columns: sequences/s, model forwards per batch, mean tokens unmasked per step (per row: response
positions / its steps), accuracy (tiny only: each family's verifier) and agreement, the share of
rows whose tokens equal those of exact decoding with the same block length (the cache's
approximation alone) and of exact full decoding. ``uptime``'s load is printed with the figures:
other processes on the machine slow every row alike, but not exactly alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import machine, tiny_model  # noqa: E402

FAMILIES = ("math_chain", "math_linear", "code_trace", "code_func")
DREAM_VOCAB = 151936  # Dream-v0-Instruct-7B's embedding rows
DREAM_MASK, DREAM_EOS = 151666, 151643


@dataclass
class Row:
    """One configuration's figures."""

    name: str
    seconds: float
    sequences: int
    forwards_per_batch: float
    tokens_per_step: float
    accuracy: float | None
    agree_block: float
    agree_full: float
    result: Any


def configs(block: int, threshold: float) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, the exact row it is compared with, DecodeSettings overrides)."""
    b, t = {"block_length": block}, {"block_length": block, "threshold": threshold, "tokens_per_step": None}
    return [
        ("exact full", "exact full", {}),
        (f"exact, blocks of {block}", f"exact, blocks of {block}", b),
        (f"prefix cache, blocks of {block}", f"exact, blocks of {block}", {**b, "cache": "prefix"}),
        (f"dual cache, blocks of {block}", f"exact, blocks of {block}", {**b, "cache": "dual"}),
        (f"threshold {threshold}, blocks of {block}", f"threshold {threshold}, blocks of {block}", t),
        (f"threshold {threshold} + dual cache", f"threshold {threshold}, blocks of {block}", {**t, "cache": "dual"}),
        (f"threshold {threshold}, one block", f"threshold {threshold}, one block",
         {"threshold": threshold, "tokens_per_step": None}),
        (f"threshold {threshold}, one block + prefix cache", f"threshold {threshold}, one block",
         {"threshold": threshold, "tokens_per_step": None, "cache": "prefix"}),
    ]


def mean_tokens_per_step(result: Any) -> float:
    """Mean over rows of (unmasked response positions / the row's steps)."""
    unmasked = (result.decoding_order >= 0).sum(dim=1).float()  # (B,)
    return float((unmasked / result.steps_run.clamp(min=1).float()).mean())


def run_rows(model: Any, prompts: list[list[int]], base: Any, block: int, threshold: float,
             batch_size: int, score: Any) -> list[Row]:
    """Decode ``prompts`` under every configuration; accuracy through ``score(tokens)`` if given."""
    from tabom.decoding import generate

    rows: dict[str, Row] = {}
    for name, reference, overrides in configs(block, threshold):
        settings = replace(base, **overrides)
        start = time.perf_counter()
        result = generate(model, prompts, settings, batch_size=batch_size)
        seconds = time.perf_counter() - start
        chunks = -(-len(prompts) // batch_size)

        def agree(other: str, result: Any = result) -> float:
            target = rows[other].result.tokens if other in rows else result.tokens
            return float((target == result.tokens).all(dim=1).float().mean())

        rows[name] = Row(name, seconds, len(prompts), result.nfe / chunks, mean_tokens_per_step(result),
                         None if score is None else score(result.tokens), agree(reference),
                         agree("exact full"), result)
        print(f"  {name}: {seconds:.1f}s", file=sys.stderr, flush=True)
    return list(rows.values())


def table(title: str, rows: list[Row]) -> str:
    """A markdown table; speedups relative to the first row (exact full decoding)."""
    base = rows[0].sequences / rows[0].seconds
    lines = [f"**{title}**", "",
             "| decoding | seq/s | speedup | forwards/batch | tokens/step | accuracy | agree (same blocks) "
             "| agree (exact full) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = r.sequences / r.seconds
        acc = "-" if r.accuracy is None else f"{100 * r.accuracy:.1f}"
        lines.append(f"| {r.name} | {rate:.2f} | {rate / base:.1f}x | {r.forwards_per_batch:.1f} | "
                     f"{r.tokens_per_step:.2f} | {acc} | {100 * r.agree_block:.0f}% | {100 * r.agree_full:.0f}% |")
    return "\n".join(lines)


def tiny_rows(args: argparse.Namespace) -> tuple[str, list[Row]]:
    """The tiny model on the in-domain test problems."""
    from tabom.decoding import DecodeSettings
    from tabom.tasks import get_family

    model, desc = tiny_model()
    problems = [p for name in args.families for p in get_family(name).problems("test", args.n, 0)]
    prompts = [model.encode_prompt(p.prompt) for p in problems]

    def score(tokens: torch.Tensor) -> float:
        right = 0
        for name in args.families:
            family = get_family(name)
            picked = [(p, row) for p, row in zip(problems, tokens) if p.family == name]
            outputs = [model.decode(row.tolist()) for _, row in picked]
            right += sum(family.verify_many([p for p, _ in picked], outputs))
        return right / len(problems)

    base = DecodeSettings().resolved(model)
    rows = run_rows(model, prompts, base, args.block_length, args.threshold, args.batch_size, score)
    title = (f"{desc}: {len(problems)} test problems ({', '.join(args.families)}; {args.n} each), gen_length "
             f"{base.gen_length}, {base.strategy}, temperature 0, batch {args.batch_size}")
    return title, rows


def dream_layout_model(hidden: int, layers: int, seed: int = 0) -> Any:
    """A random Dream-layout DiffusionLM: Qwen2 blocks (q/k/v bias, GQA), the real vocabulary size,
    shifted logits, Dream's mask and EOS ids; a character tokenizer stands in (prompts are ids)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tabom.models.char_tokenizer import CharTokenizer
    from tabom.models.diffusion_lm import DiffusionLM

    config = Qwen2Config(vocab_size=DREAM_VOCAB, hidden_size=hidden, intermediate_size=int(hidden * 2.75),
                         num_hidden_layers=layers, num_attention_heads=max(hidden // 64, 2),
                         num_key_value_heads=max(hidden // 128, 1), max_position_embeddings=1024,
                         use_sliding_window=False, use_cache=False, tie_word_embeddings=False,
                         attn_implementation="sdpa")
    config.is_causal = False
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        backbone = Qwen2ForCausalLM(config).eval()
        with torch.no_grad():
            backbone.get_output_embeddings().weight.mul_(30.0)  # peaked, like a trained model's
    return DiffusionLM(backbone, CharTokenizer(), mask_token_id=DREAM_MASK, eos_token_id=DREAM_EOS,
                       pad_token_id=DREAM_EOS, logits_shift=True, family="dream", name="dream-layout-random")


def dream_rows(args: argparse.Namespace) -> tuple[str, list[Row]]:
    """The Dream-layout model on random prompts of a fixed length."""
    from tabom.decoding import DecodeSettings

    model = dream_layout_model(args.dream_hidden, args.dream_layers)
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 150000, (args.dream_prompt,), generator=gen).tolist() for _ in range(args.dream_n)]
    base = DecodeSettings(gen_length=args.dream_gen, steps=args.dream_gen, tokens_per_step=1, strategy="entropy")
    rows = run_rows(model, prompts, base, args.dream_block, args.threshold, args.dream_batch, None)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    title = (f"Dream layout, random weights ({params:.0f}M parameters: vocabulary {DREAM_VOCAB}, hidden "
             f"{args.dream_hidden}, {args.dream_layers} layers): {args.dream_n} random prompts of "
             f"{args.dream_prompt} tokens, gen_length {args.dream_gen}, entropy, batch {args.dream_batch}")
    return title, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="test problems per in-domain family")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dream-n", type=int, default=8, help="random prompts for the Dream-layout model (0: skip)")
    parser.add_argument("--dream-batch", type=int, default=8)
    parser.add_argument("--dream-prompt", type=int, default=64)
    parser.add_argument("--dream-gen", type=int, default=64)
    parser.add_argument("--dream-block", type=int, default=16)
    parser.add_argument("--dream-hidden", type=int, default=256)
    parser.add_argument("--dream-layers", type=int, default=4)
    args = parser.parse_args(argv)
    args.families = [f for f in args.families.split(",") if f]
    torch.set_num_threads(args.threads)

    command = "python bench/fast_decode.py " + " ".join(sys.argv[1:] if argv is None else argv)
    load_before = os.getloadavg()
    start = time.perf_counter()
    sections = [tiny_rows(args)]
    if args.dream_n > 0:
        sections.append(dream_rows(args))
    load_after = os.getloadavg()
    print(f"machine: {machine()}; command: `{command.strip()}`; {time.perf_counter() - start:.0f} s; "
          f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)")
    for title, rows in sections:
        print()
        print(table(title, rows))


if __name__ == "__main__":
    main()
