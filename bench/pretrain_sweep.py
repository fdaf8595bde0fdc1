"""Pretraining sweep for the built-in tiny DLM: several shapes/recipes side by side, each trained
for a fixed wall-clock budget, then scored on the validation split (used to choose) and the test
split (reported).

Meant for a GPU (every config runs as its own `tabom pretrain` process on the same device), but
runs anywhere; `--smoke` swaps in test-sized shapes and a few seconds of budget to check the
script itself on a CPU.

    python bench/pretrain_sweep.py --device cuda --budget-s 300 --out runs/sweep --export $OUT

Without `--only` it runs DEFAULT_RUN (a no-drill, no-grouping control beside number grouping with
and without the drill). The 2026-11-29 sweep (docs/benchmarks.md, docs/tiny_model.md)
was `--only base_b128,w256_l6,w256_l8,w256_l6_lr5e4_b256 --budget-s 300` on one H200.

Each config first times 60 steps of its own recipe (a throwaway run), sets `--steps` to what fits
the budget (rounded down to 500), then runs the exact `tabom pretrain` command, which is written
to `OUT/<name>/command.txt` so the winner can be re-created and documented. `OUT/summary.json`
holds every config's command, steps, final loss, and per-family val/test accuracy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

W256 = ["--hidden-size", "256", "--intermediate-size", "768"]
CONFIGS: dict[str, list[str]] = {
    # The shipped shape (1.8M parameters), larger batches than on the CPU. (Data stay at 7,000
    # problems per family: code_func has only about 7,500 distinct training problems.)
    "base_b128": ["--batch-size", "128"],
    # Wider and deeper (about 5M parameters).
    "w256_l6": ["--batch-size", "128", *W256, "--layers", "6"],
    # Deeper still (about 6.8M parameters, 27 MB in float32: the largest that ships under 30 MB).
    "w256_l8": ["--batch-size", "128", *W256, "--layers", "8"],
    # The 5M shape with a lower peak learning rate and larger batches.
    "w256_l6_lr5e4_b256": ["--batch-size", "256", *W256, "--layers", "6", "--lr", "5e-4"],
    # Next: the arithmetic drill (tabom.tasks.drill) with the large batches a GPU makes free.
    "base_b512_drill": ["--batch-size", "512", "--drill", "60000"],
    "base_b512": ["--batch-size", "512"],
    "w256_l6_b512_drill": ["--batch-size", "512", "--drill", "60000", *W256, "--layers", "6", "--lr", "5e-4"],
    # Next: number grouping (`--group-numbers`: every occurrence of a value masked together, so a
    # masked result must be computed). On the CPU (2026-11-30, 1,500 steps from the shipped weights)
    # it doubled math_chain's "results computed" but not yet the accuracy (docs/tiny_model.md).
    "base_b512_groups": ["--batch-size", "512", "--group-numbers"],
    "base_b512_drill_groups": ["--batch-size", "512", "--drill", "60000", "--group-numbers"],
    "w256_l6_b512_drill_groups": ["--batch-size", "512", "--drill", "60000", "--group-numbers", *W256,
                                  "--layers", "6", "--lr", "5e-4"],
}
DEFAULT_RUN = ("base_b512", "base_b512_groups", "base_b512_drill_groups", "w256_l6_b512_drill_groups")
SMOKE_SHAPE = ["--hidden-size", "32", "--layers", "2", "--heads", "2", "--intermediate-size", "64",
               "--n-per-family", "40", "--batch-size", "8"]


def tabom(*args: str) -> list[str]:
    return [sys.executable, "-m", "tabom.cli", *args]


def seconds_per_step(log: Path, skip: int = 20) -> float:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return (rows[-1]["elapsed_s"] - rows[skip]["elapsed_s"]) / (len(rows) - 1 - skip)


def plan_configs(configs: dict[str, list[str]], args: argparse.Namespace) -> list[dict]:
    """Time 60 steps of every config, all at once (the contention of the real runs)."""
    procs = {}
    for name, extra in configs.items():
        base = ["pretrain", "--device", args.device, "--precision", args.precision, "--threads", "2", *extra]
        procs[name] = (base, subprocess.Popen(
            tabom(*base, "--out", str(args.out / name / "calibration"), "--steps", "60"),
            stdout=subprocess.DEVNULL))
    plans = []
    for name, (base, proc) in procs.items():
        if proc.wait() == 0:
            plans.append(plan(name, base, args))
        else:
            print(f"{name}: calibration failed (exit {proc.returncode})", flush=True)
    return plans


def plan(name: str, base: list[str], args: argparse.Namespace) -> dict:
    out = args.out / name
    sps = seconds_per_step(out / "calibration" / "pretrain_log.jsonl")
    steps = int(args.budget_s / sps) // args.round * args.round
    steps = max(steps, args.round)
    cmd = [*base, "--out", str(out / "model"), "--steps", str(steps), "--save-every", str(steps // 4)]
    (out / "command.txt").write_text("tabom " + " ".join(cmd) + "\n")
    return {"name": name, "seconds_per_step": round(sps, 4), "steps": steps, "command": cmd}


def start_eval(model: Path, split: str, limit: int, device: str) -> subprocess.Popen:
    return subprocess.Popen(tabom("eval", "--model", str(model), "--tasks", "all", "--split", split,
                                  "--limit", str(limit), "--device", device, "--dtype", "float32",
                                  "--out", str(model.parent / f"eval_{split}"), "--no-progress"),
                            stdout=subprocess.DEVNULL)


def read_eval(model: Path, split: str) -> dict[str, float]:
    data = json.loads((model.parent / f"eval_{split}" / "results.json").read_text())
    return {fam: round(v["accuracy"], 4) for fam, v in data["metrics"].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/sweep"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"),
                    help="tabom pretrain --precision (auto: bf16 on a GPU that has it; the 2026-11-29 "
                         "sweep predates the option and ran in float32)")
    ap.add_argument("--budget-s", type=float, default=360.0, help="training seconds per config")
    ap.add_argument("--round", type=int, default=500, help="steps are a multiple of this")
    ap.add_argument("--limit", type=int, default=200, help="problems per family in each split")
    ap.add_argument("--only", default=",".join(DEFAULT_RUN), help="comma-separated config names")
    ap.add_argument("--export", type=Path, default=None,
                    help="copy summary.json and the best models (by mean val accuracy on the math and "
                         "code families) here as .tar.gz cut into 15 MB parts")
    ap.add_argument("--export-top", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="test-sized shapes (checks the script)")
    args = ap.parse_args()
    unknown = set(args.only.split(",")) - set(CONFIGS)
    if unknown and not args.smoke:
        ap.error(f"--only: unknown configs {sorted(unknown)}; known: {sorted(CONFIGS)}")
    configs = {k: v for k, v in CONFIGS.items() if k in args.only.split(",")}
    if args.smoke:
        configs = {f"smoke{i}": SMOKE_SHAPE for i in range(2)}
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    plans = plan_configs(configs, args)
    print(f"calibrated in {time.time() - t0:.0f}s:", [(p["name"], p["steps"]) for p in plans], flush=True)
    procs = [subprocess.Popen(tabom(*p["command"]), stdout=subprocess.DEVNULL,
                              stderr=open(args.out / p["name"] / "stderr.txt", "w")) for p in plans]
    for p, proc in zip(plans, procs):
        p["returncode"] = proc.wait()
        print(f"{p['name']}: exit {p['returncode']} at {time.time() - t0:.0f}s", flush=True)
    done = [p for p in plans if p["returncode"] == 0]
    evals = [start_eval(args.out / p["name"] / "model", split, args.limit, args.device)
             for p in done for split in ("val", "test")]
    for proc in evals:
        proc.wait()
    for p in done:
        model = args.out / p["name"] / "model"
        rows = [json.loads(line) for line in (model / "pretrain_log.jsonl").read_text().splitlines()]
        p["final_loss_200"] = round(sum(r["loss"] for r in rows[-200:]) / len(rows[-200:]), 4)
        p["train_seconds"] = rows[-1]["elapsed_s"]
        for split in ("val", "test"):
            try:
                p[split] = read_eval(model, split)
            except FileNotFoundError:
                p[split] = None
        print(json.dumps({k: p[k] for k in ("name", "steps", "final_loss_200", "val", "test")}), flush=True)
    (args.out / "summary.json").write_text(json.dumps(plans, indent=2) + "\n")
    if args.export:
        export(args, [p for p in done if p.get("val")])
    print(f"done in {time.time() - t0:.0f}s", flush=True)


IN_DOMAIN = ("math_chain", "math_linear", "code_trace", "code_func")


def export(args: argparse.Namespace, scored: list[dict]) -> None:
    import io
    import shutil
    import tarfile

    args.export.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.out / "summary.json", args.export / "summary.json")
    scored.sort(key=lambda p: -sum(p["val"].get(f, 0.0) for f in IN_DOMAIN))
    for p in scored[:args.export_top]:
        model = args.out / p["name"] / "model"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for f in sorted(model.iterdir()):
                if f.is_file():
                    tar.add(f, arcname=f"{p['name']}/{f.name}")
        data, part = buf.getvalue(), 15 << 20
        for i in range(0, len(data), part):
            (args.export / f"{p['name']}.tar.gz.part{i // part}").write_bytes(data[i:i + part])


if __name__ == "__main__":
    main()
