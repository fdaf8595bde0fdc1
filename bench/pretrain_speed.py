"""Seconds per `tabom pretrain` step of the shipped tiny shape, float32 against bf16 autocast.

Each precision runs the same short second stage from the shipped weights (same data, same masks)
in its own process; the figure is the mean step time after a warm-up, read from the run's
pretrain_log.jsonl. Prints one markdown table row per precision for docs/benchmarks.md.

    python bench/pretrain_speed.py --steps 60 --device cpu
    python bench/pretrain_speed.py --steps 200 --device cuda --batch-size 512
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path


def step_time(precision: str, args: argparse.Namespace, workdir: Path) -> tuple[float, float]:
    """(mean seconds per step after `--warmup` steps, mean loss of the last 10 steps)."""
    out = workdir / precision
    cmd = [sys.executable, "-m", "tabom.cli", "pretrain", "--init", "tiny", "--out", str(out),
           "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", "5e-4",
           "--device", args.device, "--precision", precision, "--threads", str(args.threads)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    log = [json.loads(line) for line in (out / "pretrain_log.jsonl").read_text().splitlines()]
    timed = log[args.warmup:]
    seconds = (timed[-1]["elapsed_s"] - log[args.warmup - 1]["elapsed_s"]) / len(timed)
    return seconds, sum(r["loss"] for r in log[-10:]) / 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.steps <= args.warmup + 10:
        parser.error("--steps must exceed --warmup by more than 10")
    machine = f"{platform.processor() or platform.machine()}, {args.threads} threads, {args.device}"
    print("| machine | precision | batch | s/step | loss, last 10 steps |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            seconds, loss = step_time(precision, args, Path(tmp))
            print(f"| {machine} | {precision} | {args.batch_size} | {seconds:.3f} | {loss:.3f} |", flush=True)


if __name__ == "__main__":
    main()
