"""The parallel-decoding claim under threshold decoding: accuracy and tokens per step per method.

The paper (Table 4) shows TABOM keeping its accuracy under fixed 2-token parallel decoding and
argues that a model which learned the easy-to-hard entropy order should unmask more tokens per
step at the same accuracy. Threshold decoding (Fast-dLLM's rule, :mod:`tabom.decoding.rules`)
measures exactly that: at each step every masked position whose token probability reaches tau is
unmasked, so a more certain model takes fewer steps. For No-SFT, SFT-SD and TABOM this step
evaluates the in-domain test problems at each of the plan's thresholds (no blocks, no cache: the
model alone decides how parallel to go) and reports, beside full decoding's accuracy (one token
per step, the reference row), the in-domain accuracy and the mean tokens per step
(``gen_length / decode steps`` of each sample, averaged).

    decode_name(0.9)                   # "threshold-0.9": the evaluation's decode label and file name
    rows = threshold_rows(repro, "math")
    threshold_table(rows)              # markdown
"""

from __future__ import annotations

import statistics
from typing import Any

from tabom.reproduce.plan import TDS_METHODS
from tabom.reproduce.store import read_json
from tabom.reproduce.view import Reproduction


PREFIX = "threshold-"


def decode_name(threshold: float) -> str:
    """The decode label of one threshold: ``threshold-0.9``."""
    return f"{PREFIX}{threshold:g}"


def threshold_of(decode: str) -> float | None:
    """The threshold a decode label names, or None for another label (``full``, ``parallel``)."""
    return float(decode[len(PREFIX):]) if decode.startswith(PREFIX) else None


def sample_figures(path: Any, families: list[str], gen_length: int) -> tuple[float, float]:
    """(in-domain accuracy %, mean tokens per step) of one evaluation JSON's samples of ``families``."""
    samples = [s for s in read_json(path)["samples"] if s["task"] in families]
    per_family = [statistics.fmean(float(s["correct"]) for s in samples if s["task"] == f)
                  for f in families if any(s["task"] == f for s in samples)]
    tokens = [gen_length / max(int(s["decode_steps"]), 1) for s in samples]
    return 100.0 * statistics.fmean(per_family), statistics.fmean(tokens)


def threshold_rows(repro: Reproduction, domain: str) -> dict[str, Any]:
    """``{"thresholds": [...], "rows": {label: {decode: {"acc", "tokens_per_step", "n_seeds"}}}}``,
    means over seeds, for the methods whose evaluations exist; ``full`` is the reference column."""
    plan, store = repro.plan, repro.store
    thresholds = list(getattr(plan, "thresholds", ()))  # a real checkpoint's plan has none
    fams = plan.families(domain)
    if not thresholds:
        return {"thresholds": [], "families": fams, "rows": {}}
    decodes = ["full"] + [decode_name(t) for t in thresholds]
    rows: dict[str, dict[str, Any]] = {}
    for method in TDS_METHODS:
        m = repro.resolve(method, domain)
        cells: dict[str, Any] = {}
        for decode in decodes:
            figures = [sample_figures(path, fams, repro.canvas(domain)) for seed in repro.seeds(m, domain)
                       if (path := store.eval_json(domain, m.key, seed, decode, "test")).exists()]
            if figures:
                cells[decode] = {"acc": statistics.fmean(f[0] for f in figures),
                                 "tokens_per_step": statistics.fmean(f[1] for f in figures),
                                 "n_seeds": len(figures)}
        if cells:
            rows[method.label] = cells
    return {"thresholds": thresholds, "families": fams, "rows": rows}


def threshold_table(data: dict[str, Any]) -> str:
    """Markdown: one row per method, per decoding its in-domain accuracy and mean tokens per step."""
    decodes = ["full"] + [decode_name(t) for t in data.get("thresholds", [])]
    heads = ["Method", "full: acc", "full: tok/step"]
    for t in data.get("thresholds", []):
        heads += [f"tau {t:g}: acc", f"tau {t:g}: tok/step"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for label, cells in data.get("rows", {}).items():
        row = [label]
        for decode in decodes:
            cell = cells.get(decode)
            row += ["-", "-"] if cell is None else [f"{cell['acc']:.1f}", f"{cell['tokens_per_step']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
