"""Every number of a reproduction, gathered from the artifacts on disk into one dict (results.json).

    results = collect(repro)                      # reads eval/, tds/, runs/, trajectories/
    results["main"]["math"]["full"]["TABOM"]      # {"per_seed": ..., "mean": ..., "std": ..., "gain": ...}

Accuracies are percentages (as the paper's tables). A method's row has per seed the accuracy of
every family plus ``in_avg`` (mean over the in-domain families) and ``ood_avg`` (mean over the
OOD families); ``mean``/``std`` are over seeds (sample std, 0 for one seed); ``gain`` is the row's
mean minus No-SFT's mean in the same column; ``n`` is problems per family (for noise estimates).
Nothing here is typed in: a missing artifact leaves its row out.
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from tabom.reproduce.plan import (
    MAIN_METHODS, TDS_METHODS, Method, ablation_rows, grid_methods, sweep_methods,
)
from tabom.reproduce.store import read_json
from tabom.reproduce.threshold import threshold_rows
from tabom.reproduce.view import Reproduction


PACKAGES: tuple[str, ...] = ("tabom", "torch", "transformers", "peft", "accelerate", "safetensors", "matplotlib")


def seed_key(seed: int | None) -> str:
    """A seed's key in ``per_seed``: ``"base"`` for None (the untrained base model), else the seed."""
    return "base" if seed is None else str(seed)


def summarize(per_seed: dict[str, dict[str, float]], in_fams: list[str], ood_fams: list[str]) -> dict[str, Any]:
    """Per-seed family accuracies -> per-seed averages, mean and std over seeds per column.

    Example: seeds {"0": {"a": 40, "b": 60}, "1": {"a": 50, "b": 70}}, in = [a], ood = [b] ->
    mean {a: 45, b: 65, in_avg: 45, ood_avg: 65}, std {a: 7.07, ...} (sample std of 40, 50).
    """
    rows: dict[str, dict[str, float]] = {}
    for seed, accs in per_seed.items():
        row = dict(accs)
        ins = [accs[f] for f in in_fams if f in accs]
        oods = [accs[f] for f in ood_fams if f in accs]
        if ins:
            row["in_avg"] = sum(ins) / len(ins)
        if oods:
            row["ood_avg"] = sum(oods) / len(oods)
        rows[seed] = row
    columns = [c for c in [*in_fams, "in_avg", *ood_fams, "ood_avg"] if all(c in r for r in rows.values())]
    mean = {c: statistics.fmean(r[c] for r in rows.values()) for c in columns} if rows else {}
    std = {c: (statistics.stdev([r[c] for r in rows.values()]) if len(rows) > 1 else 0.0) for c in columns}
    return {"per_seed": rows, "mean": mean, "std": std, "n_seeds": len(rows)}


def add_gains(rows: dict[str, dict[str, Any]], base: str) -> None:
    """``gain[c] = mean[c] - rows[base].mean[c]`` for every row (in place; nothing without the base)."""
    if base not in rows:
        return
    ref = rows[base]["mean"]
    for row in rows.values():
        row["gain"] = {c: v - ref[c] for c, v in row["mean"].items() if c in ref}


def eval_accuracy(path: Path, common: dict[str, int] | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """(accuracy % per family, problems per family) of one evaluation JSON; with ``common``
    (family -> n), a family listed there counts only the samples of its first n test problems (the
    draw every method is evaluated on), from the JSON's per-sample scores."""
    data = read_json(path)
    acc = {k: 100.0 * v for k, v in data["accuracy"].items()}
    counts = {k: int(v) for k, v in data["counts"].items()}
    for fam, n in (common or {}).items():
        if fam not in counts or counts[fam] <= n:
            continue
        ids = first_ids(fam, n)
        scores = [bool(s["correct"]) for s in data.get("samples", []) if s["task"] == fam and s["id"] in ids]
        if len(scores) != len(ids):
            raise ValueError(f"{path}: {fam} has {len(scores)} of its first {n} test problems' samples")
        acc[fam], counts[fam] = 100.0 * sum(scores) / len(scores), len(scores)
    return acc, counts


@lru_cache(maxsize=None)
def first_ids(family: str, n: int) -> frozenset[str]:
    """Ids of a family's first ``n`` test problems (the draw of every evaluation with ``limit >= n``;
    drawn once per arguments: every method, seed and decoding asks for the same draw)."""
    from tabom.tasks import get_family

    return frozenset(p.id for p in get_family(family).problems("test", n, seed=0, at_most=True))


def common_sizes(repro: Reproduction, domain: str) -> dict[str, int]:
    """In-domain family -> the test problems every method is evaluated on (``n_eval``), when the plan
    evaluates the powered comparison on more (empty otherwise)."""
    plan = repro.plan
    if getattr(plan, "n_eval_powered", None) is None:
        return {}
    return {f: plan.eval_limit(domain, f, "test") for f in plan.families(domain)}  # type: ignore[attr-defined]


def method_rows(repro: Reproduction, domain: str, methods: list[tuple[str, Method]], decode: str,
                split: str, powered: bool = False) -> dict[str, dict[str, Any]]:
    """label -> summary over seeds, for the methods whose evaluation JSONs exist: on test, on the
    problems every method shares (:func:`common_sizes`), or with ``powered`` on all of them."""
    plan, store = repro.plan, repro.store
    common = common_sizes(repro, domain) if split == "test" and not powered else {}
    in_fams, ood_fams = plan.families(domain), plan.ood_families(domain)
    out: dict[str, dict[str, Any]] = {}
    for label, method in methods:
        m = repro.resolve(method, domain)
        per_seed: dict[str, dict[str, float]] = {}
        counts: dict[str, int] = {}
        for seed in repro.seeds(m, domain):
            path = store.eval_json(domain, m.key, seed, decode, split)
            if path.exists():
                per_seed[seed_key(seed)], counts = eval_accuracy(path, common)
        if per_seed:
            out[label] = summarize(per_seed, in_fams, ood_fams) | {"key": m.key, "n": counts}
    return out


def pooled_curve(per_family: dict[str, dict[str, Any]]) -> list[float]:
    """One TDS curve over all families: per step the count-weighted mean (= TDS of the union)."""
    length = max(len(r["curve"]) for r in per_family.values())
    out = []
    for s in range(length):
        num = den = 0.0
        for r in per_family.values():
            if s < len(r["curve"]) and r["counts"][s] > 0 and not math.isnan(r["curve"][s]):
                num += r["curve"][s] * r["counts"][s]
                den += r["counts"][s]
        out.append(num / den if den else float("nan"))
    return out


def tds_rows(repro: Reproduction, domain: str) -> dict[str, dict[str, Any]]:
    """label -> {per_seed {seed: {family: scalar, pooled: scalar}}, mean, std, curve (first seed, pooled)}."""
    fams = repro.plan.families(domain)
    out: dict[str, dict[str, Any]] = {}
    for method in TDS_METHODS:
        m = repro.resolve(method, domain)
        per_seed: dict[str, dict[str, float]] = {}
        curve: list[float] | None = None
        for seed in repro.seeds(m, domain):
            path = repro.store.tds_json(domain, m.key, seed)
            if not path.exists():
                continue
            data = read_json(path)
            pooled = pooled_curve(data)
            defined = [v for v in pooled if not math.isnan(v)]
            per_seed[seed_key(seed)] = {f: float(data[f]["scalar"]) for f in fams if f in data} | {
                "pooled": statistics.fmean(defined) if defined else float("nan")}
            curve = pooled if curve is None else curve
        if per_seed:
            s = summarize(per_seed, fams + ["pooled"], [])
            out[method.label] = {"per_seed": per_seed, "mean": {k: v for k, v in s["mean"].items() if k != "in_avg"},
                                 "std": {k: v for k, v in s["std"].items() if k != "in_avg"},
                                 "n_seeds": s["n_seeds"], "curve": curve, "key": m.key}
    return out


def trajectory_stats(repro: Reproduction, domain: str) -> dict[str, Any] | None:
    """Counts of the trajectory build: generated, verified correct, kept, per family and in total."""
    from tabom.trajectories.builder import meta_path

    path = meta_path(repro.store.trajectories(domain))
    if not path.exists():
        return None
    meta = read_json(path)
    total = meta.get("total", {})
    gen = total.get("generated", 0)
    return {"per_family": meta.get("counts", {}), "total": total,
            "correct_rate": 100.0 * total.get("correct", 0) / gen if gen else None,
            "kept": total.get("kept", 0), "keep": repro.plan.keep}


def window_stats(repro: Reproduction, domain: str) -> dict[str, Any] | None:
    """``{"content_fraction_in_windows": {"ce", "rank", "rows", "rows_in_ce", "ce_window", "rank_window",
    "gen_length"}}`` of the domain's kept trajectories with the windows TABOM trains with there
    (None without the file)."""
    from tabom.trajectories.inspect import file_content_fraction

    path = repro.store.trajectories(domain)
    if not path.exists():
        return None
    from tabom.reproduce.plan import TABOM

    run = repro.resolve(TABOM, domain).run
    assert run is not None
    fields = repro.objective_defaults(domain, run.recipe)
    fields |= dict(run.objective)
    content = file_content_fraction(path, fields.get("ce_window"), fields.get("rank_window"))
    return None if content is None else {"content_fraction_in_windows": content}


def training_curves(repro: Reproduction, domain: str) -> dict[str, dict[str, Any]]:
    """label -> seed -> {steps, loss, final_loss} from each trained run's metrics.jsonl."""
    from tabom.training.logger import METRICS_FILE, read_metrics

    out: dict[str, dict[str, Any]] = {}
    for method in MAIN_METHODS:
        m = repro.resolve(method, domain)
        if m.run is None:
            continue
        for seed in repro.seeds(m, domain):
            assert seed is not None
            run_dir = repro.store.run_dir(domain, m.run.key, seed)
            if not (run_dir / METRICS_FILE).exists():
                continue
            recs = [r for r in read_metrics(run_dir) if "loss" in r]
            out.setdefault(method.label, {})[str(seed)] = {
                "steps": [int(r["step"]) for r in recs], "loss": [float(r["loss"]) for r in recs],
                "final_loss": float(recs[-1]["loss"]) if recs else None}
    return out


def versions() -> dict[str, str]:
    """Versions of Python, the platform and :data:`PACKAGES` (``not installed`` when missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def step_commands(repro: Reproduction) -> list[str]:
    """Equivalent `tabom train` / `tabom eval` command lines of the main runs (first seed)."""
    plan, store = repro.plan, repro.store
    seed = plan.seeds[0]
    lines = []
    for domain in plan.domains:
        for method in MAIN_METHODS:
            m = repro.resolve(method, domain)
            adapter = ""
            if m.run is not None:
                lines.append(f"tabom train --recipe {m.run.recipe} " + " ".join(repro.train_overrides(domain, m.run, seed)))
                path = store.eval_json(domain, m.key, seed, "full", "test")
                chosen = (read_json(path).get("settings", {}).get("checkpoint") if path.exists() else None) or "final"
                adapter = f" --adapter {store.run_dir(domain, m.run.key, seed) / chosen}"
            for (g, n), fams in repro.eval_groups(domain, m, plan.eval_families(domain), "test").items():
                for decode in ("full", "parallel"):
                    s = repro.decode_settings(decode, g)
                    lines.append(f"tabom eval --model {plan.model}{adapter} --tasks {','.join(fams)} --gen-length "
                                 f"{s.gen_length} --steps {s.steps} --tokens-per-step {s.tokens_per_step} "
                                 f"--limit {n} --split test")
    return lines


def collect(repro: Reproduction) -> dict[str, Any]:
    """All numbers of the reproduction folder as one JSON-ready dict."""
    plan = repro.plan
    main_methods = [(m.label, m) for m in MAIN_METHODS]
    results: dict[str, Any] = {
        "meta": {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "command": repro.command, "plan": plan.to_json(),
                 "versions": versions(), "commands": step_commands(repro)},
        "families": {d: {"in": plan.families(d), "ood": plan.ood_families(d)} for d in plan.domains},
        "trajectories": {d: trajectory_stats(repro, d) for d in plan.domains},
        "trajectory_stats": {d: window_stats(repro, d) for d in plan.domains},
        "main": {}, "tds": {}, "training": {}, "ablation": None, "grid": None, "sweep": None,
        "steps": [{"name": r.name, "status": r.status, "seconds": r.seconds} for r in repro.store.log],
        "compute_seconds": round(repro.store.compute_seconds(), 1),
    }
    for domain in plan.domains:
        results["main"][domain] = {}
        for decode in ("full", "parallel"):
            rows = method_rows(repro, domain, main_methods, decode, "test")
            add_gains(rows, "No-SFT")
            results["main"][domain][decode] = rows
        if common_sizes(repro, domain):
            from tabom.reproduce.plan import POWERED_METHODS

            rows = method_rows(repro, domain, [(m.label, m) for m in POWERED_METHODS], "full", "test", powered=True)
            add_gains(rows, "No-SFT")
            results.setdefault("powered", {})[domain] = rows
        results["tds"][domain] = tds_rows(repro, domain)
        results.setdefault("threshold", {})[domain] = threshold_rows(repro, domain)
        results["training"][domain] = training_curves(repro, domain)
    from tabom.reproduce.comparisons import comparisons

    results["comparisons"] = comparisons(repro)
    if plan.ablation_domain is not None:
        d = plan.ablation_domain
        spec = [(f"{s}/{label}" if s else label, s, label, m) for s, label, m in ablation_rows()]  # unique ids
        rows = method_rows(repro, d, [(rid, m) for rid, _, _, m in spec], "full", "test")
        add_gains(rows, spec[0][0])
        results["ablation"] = {"domain": d, "split": "test",
                               "rows": [{"section": s, "label": label} | rows[rid] for rid, s, label, _ in spec if rid in rows]}
    if plan.grid_domain is not None:
        d = plan.grid_domain
        spec = grid_methods()
        rows = method_rows(repro, d, [(m.label, m) for _, _, m in spec], "full", "val")
        results["grid"] = {"domain": d, "split": "val",
                           "cells": [{"lambda": lam, "margin": mar, "label": m.label} | rows[m.label]
                                     for lam, mar, m in spec if m.label in rows]}
    if plan.sweep_domain is not None:
        d = plan.sweep_domain
        spec = sweep_methods(repro.canvas(d))
        rows = method_rows(repro, d, [(m.label, m) for _, _, m in spec], "full", "val")
        results["sweep"] = {"domain": d, "split": "val", "gen_length": repro.canvas(d),
                            "rows": [{"paper_w": pw, "w": w, "label": m.label} | rows[m.label]
                                     for pw, w, m in spec if m.label in rows]}
    return results
