"""Power and cost of `tabom reproduce`'s default plan (issue 24): computed, from measured inputs.

    .venv/bin/python bench/reproduce_power.py                      # the default plan, stated inputs
    .venv/bin/python bench/reproduce_power.py --flip 0.10 --n-eval 400
    .venv/bin/python bench/reproduce_power.py --from-run runs/repro_default_i24   # measured D, CI, cost

Power. The in-domain TABOM-vs-SFT-SD interval is the paired, family-stratified bootstrap of
`tabom.reproduce.stats` over test problems and seeds. Its width depends on how often two trained
models disagree on a problem. The model here: each test problem has an answer the models share
(right with probability ``acc``); each trained (method, seed) flips it independently with
probability ``flip``, so two seeds of one method disagree on ``2 flip (1 - flip)`` of the
problems. ``--flip`` is calibrated from a measured disagreement (``--from-run`` reads it from a
reproduction's evaluation files: TABOM against SFT-SD, seed against seed). The script simulates
``--trials`` such experiments at the plan's sizes and prints the mean half-width of the bootstrap
interval, the figure the issue asks to be at most 2 points.

Cost (measured). ``--from-run DIR`` adds up the seconds every step of a finished reproduction took
(its step markers) by kind of step, and prints the measured disagreements and intervals.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np

from tabom.reproduce.plan import make_plan
from tabom.reproduce.stats import paired_bootstrap


def half_width(n_per_family: list[int], seeds: int, acc: float, flip: float, trials: int, seed: int = 0) -> float:
    """Mean half-width (points) of the paired bootstrap interval of one method minus another, both
    with ``seeds`` seeds, when they share per-problem answers and each (method, seed) flips a
    problem with probability ``flip``."""
    rng = np.random.default_rng(seed)
    widths = []
    for _ in range(trials):
        family_of: dict[str, str] = {}
        shared: dict[str, int] = {}
        for f, n in enumerate(n_per_family):
            for i in range(n):
                family_of[f"{f}/{i}"] = str(f)
                shared[f"{f}/{i}"] = int(rng.random() < acc)

        def method() -> dict[str, dict[str, float]]:
            return {str(s): {p: float(v ^ int(rng.random() < flip)) for p, v in shared.items()} for s in range(seeds)}

        c = paired_bootstrap(method(), method(), family_of, resamples=500, seed=int(rng.integers(1 << 30)))
        widths.append((c.ci_high - c.ci_low) / 2)
    return statistics.fmean(widths)


def measured_disagreement(run: Path) -> dict[str, float]:
    """From a reproduction folder: in-domain disagreement of TABOM and SFT-SD (same seed, full
    decoding, test) and of SFT-SD's seeds, as fractions of the problems."""
    from tabom.reproduce.plan import make_plan as _mk  # noqa: F401  (the folder's plan is read below)

    results = json.loads((run / "results.json").read_text())
    plan = results["meta"]["plan"]
    out: dict[str, float] = {}
    for domain in plan["domains"]:
        fams = results["families"][domain]["in"]

        def scores(key: str, seed: int) -> dict[str, bool]:
            path = run / "eval" / domain / key / f"seed{seed}" / "full_test.json"
            if not path.exists():
                return {}
            return {f"{s['task']}/{s['id']}": bool(s["correct"]) for s in json.loads(path.read_text())["samples"]
                    if s["task"] in fams}

        a, b = scores("tabom", 0), scores("sft_sd", 0)
        common = set(a) & set(b)
        if common:
            out[f"{domain}: tabom vs sft_sd"] = sum(a[p] != b[p] for p in common) / len(common)
        s1 = scores("sft_sd", 1)
        common = set(b) & set(s1)
        if common:
            out[f"{domain}: sft_sd seed 0 vs 1"] = sum(b[p] != s1[p] for p in common) / len(common)
    return out


def measured_cost(run: Path) -> dict[str, float]:
    """Measured seconds of every finished step of a reproduction folder, whichever invocation ran it,
    by kind of step (from the step markers' ``seconds``): trajectories, training, val (per-epoch
    choice), test full / parallel / threshold decoding, TDS."""
    from tabom.reproduce.store import MARKER

    cost: dict[str, float] = {}
    for marker in run.rglob("*" + MARKER):
        parts = marker.relative_to(run).parts
        kind = {"data": "sft-gt data", "runs": "training", "tds": "tds"}.get(parts[0], parts[0])
        if parts[0] == "eval":
            name = parts[-1].removesuffix(MARKER).removesuffix(".json")
            decode, _, split = name.partition("_")
            kind = ("val (choice of the epoch)" if split.startswith("val-") else
                    "grid and sweep (val)" if split == "val" else f"{split} {decode}")
        cost[kind] = cost.get(kind, 0.0) + float(json.loads(marker.read_text()).get("seconds") or 0.0)
    return cost


def measured_half_widths(run: Path) -> dict[str, float]:
    """Half-width (points) of each domain's in-domain TABOM-vs-SFT-SD interval, full decoding."""
    results = json.loads((run / "results.json").read_text())
    return {f"{c['domain']} ({c['n_problems']} problems)": (c["ci_high"] - c["ci_low"]) / 2
            for c in results.get("comparisons", []) if c["decoding"] == "full" and c["scope"] == "in_domain"
            and c["method"] == "tabom" and c["baseline"] == "sft_sd"}


def main() -> None:
    """Print the computed half-width and the computed cost of the plan."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--flip", type=float, default=None, help="per-(method, seed) flip probability")
    ap.add_argument("--disagreement", type=float, default=0.20,
                    help="seed-vs-seed disagreement to calibrate --flip from (default 0.20, see docs/benchmarks.md)")
    ap.add_argument("--acc", type=float, default=0.45)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--n-eval", type=int, default=None, help="in-domain test problems per family (plan default)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per trained method (plan default)")
    ap.add_argument("--from-run", type=Path, default=None,
                    help="a finished reproduction folder: its measured disagreement, intervals and cost")
    args = ap.parse_args()

    if args.from_run:
        for k, v in measured_disagreement(args.from_run).items():
            print(f"measured disagreement {k}: {v:.3f}")
        for k, v in measured_half_widths(args.from_run).items():
            print(f"measured 95% half-width, TABOM vs SFT-SD in-domain, full decoding, {k}: {v:.2f} points")
        cost = measured_cost(args.from_run)
        for k, v in sorted(cost.items(), key=lambda kv: -kv[1]):
            print(f"  measured {k}: {v / 60:.1f} min")
        print(f"measured total: {sum(cost.values()) / 3600:.2f} h")
    flip = args.flip if args.flip is not None else (1 - math.sqrt(1 - 2 * args.disagreement)) / 2
    plan = make_plan(args.quick, n_eval=args.n_eval, seeds=args.seeds)
    for d in plan.domains:
        sizes = [plan.eval_limit(d, f, powered=True) for f in plan.families(d)]
        hw = half_width(sizes, len(plan.seeds), args.acc, flip, args.trials)
        print(f"{d}: in-domain test problems {sizes}, {len(plan.seeds)} seeds, flip {flip:.3f} "
              f"(seed disagreement {2 * flip * (1 - flip):.3f}): mean 95% half-width {hw:.2f} points (computed)")

if __name__ == "__main__":
    main()
