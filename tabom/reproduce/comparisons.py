"""Every method-vs-baseline comparison of a reproduction, with a paired bootstrap 95% interval.

    comps = comparisons(repro)             # list of dicts, results.json's "comparisons"
    comparison_table(comps, "math")        # markdown for report.md
    ci_text(find(comps, domain="math", decoding="full", scope="in_domain", method="tabom",
                 baseline="sft_sd"))       # "95% CI [-1.2, 3.4], not significant"

For each domain, decoding (``full``, ``parallel``) and scope (``in_domain``: the domain's own
families; ``ood``: the others), every method is compared with No-SFT and with SFT-SD (No-SFT
against SFT-SD is left out: it is SFT-SD against No-SFT with the sign flipped). The scores are
each evaluation JSON's per-sample ``correct`` (one 0/1 per test problem and seed); the
difference and its interval come from :func:`tabom.reproduce.stats.paired_bootstrap`
(problems resampled within each family, the same draw for both methods, seeds resampled per
method). A comparison is "significant" only when its interval excludes 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabom.reproduce.plan import MAIN_METHODS
from tabom.reproduce.stats import Comparison, paired_bootstrap
from tabom.reproduce.store import read_json
from tabom.reproduce.view import Reproduction


BASELINES: tuple[str, ...] = ("no_sft", "sft_sd")
"""The baselines every method is compared with (method keys)."""
DECODINGS: tuple[str, ...] = ("full", "parallel")
SCOPES: tuple[str, ...] = ("in_domain", "ood")


def sample_scores(path: Path, families: list[str]) -> dict[str, tuple[str, float]]:
    """``"family/id" -> (family, 0/1 score)`` for the samples of ``families`` in one evaluation JSON."""
    out: dict[str, tuple[str, float]] = {}
    for s in read_json(path).get("samples", []):
        if s["task"] in families:
            out[f"{s['task']}/{s['id']}"] = (s["task"], float(bool(s["correct"])))
    return out


def method_scores(repro: Reproduction, domain: str, key: str, decoding: str, split: str,
                  families: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """(seed -> problem -> score, problem -> family) of one method's existing evaluations."""
    method = next(m for m in MAIN_METHODS if m.key == key)
    m = repro.resolve(method, domain)
    scores: dict[str, dict[str, float]] = {}
    family_of: dict[str, str] = {}
    for seed in repro.seeds(m, domain):
        path = repro.store.eval_json(domain, m.key, seed, decoding, split)
        if path.exists():
            per = sample_scores(path, families)
            scores["base" if seed is None else str(seed)] = {p: v for p, (_, v) in per.items()}
            family_of |= {p: f for p, (f, _) in per.items()}
    return scores, family_of


def comparisons(repro: Reproduction, split: str = "test", resamples: int = 2000) -> list[dict[str, Any]]:
    """Every (domain, decoding, scope, method, baseline) comparison whose evaluations exist."""
    plan = repro.plan
    out: list[dict[str, Any]] = []
    for domain in plan.domains:
        scopes = {"in_domain": plan.families(domain), "ood": plan.ood_families(domain)}
        for decoding in DECODINGS:
            for scope in SCOPES:
                fams = scopes[scope]
                cache = {m.key: method_scores(repro, domain, m.key, decoding, split, fams) for m in MAIN_METHODS}
                for baseline in BASELINES:
                    base_scores, base_fam = cache[baseline]
                    if not base_scores:
                        continue
                    for m in MAIN_METHODS:
                        if m.key == baseline or (baseline == "sft_sd" and m.key == "no_sft"):
                            continue
                        scores, fam = cache[m.key]
                        if not scores:
                            continue
                        try:
                            c = paired_bootstrap(scores, base_scores, fam | base_fam, resamples=resamples)
                        except ValueError:  # no problem scored by both
                            continue
                        out.append({"domain": domain, "decoding": decoding, "split": split, "scope": scope,
                                    "method": m.key, "baseline": baseline, **c.to_json(),
                                    "significant": c.significant})
    return out


def find(comps: list[dict[str, Any]], **where: str) -> dict[str, Any] | None:
    """The first comparison whose fields equal ``where`` (None when there is none)."""
    return next((c for c in comps if all(c.get(k) == v for k, v in where.items())), None)


def ci_text(comp: dict[str, Any] | None) -> str:
    """``95% CI [lo, hi], significant`` / ``..., not significant``; empty without a comparison."""
    if comp is None:
        return ""
    verdict = "significant" if Comparison(comp["diff"], comp["ci_low"], comp["ci_high"], 0).significant \
        else "not significant"
    return f"95% CI [{comp['ci_low']:+.1f}, {comp['ci_high']:+.1f}], {verdict}"


LABELS: dict[str, str] = {m.key: m.label for m in MAIN_METHODS}


def comparison_table(comps: list[dict[str, Any]], domain: str) -> str:
    """Markdown: one row per (decoding, scope, method, baseline) of ``domain``: difference, interval, verdict."""
    head = "| Decoding | Scope | Method | vs | Diff (points) | 95% CI | Problems | Significant |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for c in comps:
        if c["domain"] != domain:
            continue
        yes = Comparison(c["diff"], c["ci_low"], c["ci_high"], 0).significant
        lines.append(f"| {c['decoding']} | {c['scope'].replace('_', '-')} | {LABELS.get(c['method'], c['method'])} | "
                     f"{LABELS.get(c['baseline'], c['baseline'])} | {c['diff']:+.1f} | "
                     f"[{c['ci_low']:+.1f}, {c['ci_high']:+.1f}] | {c['n_problems']} | {'yes' if yes else 'no'} |")
    return "\n".join(lines)
