"""A plain-language reading of a reproduction, generated from its numbers (nothing typed in).

    lines = readings(results)     # list of sentences, one claim each, for report.md

Each sentence states a comparison the paper makes (best method in-domain, TABOM vs SFT-SD, SFT-GT
forgetting OOD, parallel decoding, TDS, the ablation, grid and sweep) and says which way it went
here, including where TABOM does not win. Where results.json holds the paired comparison
(``comparisons``: a method against No-SFT or SFT-SD), the sentence gives its bootstrap 95% interval
and calls the difference significant only when the interval excludes 0. Elsewhere (the ablation)
a difference is called "within noise" when it is smaller than two standard errors: binomial over
the evaluated problems (n per family x seeds), or the seed-to-seed spread when that is larger.
"""

from __future__ import annotations

import math
from typing import Any

from tabom.reproduce.comparisons import ci_text, find

TRAINED = ("SFT-GT", "SFT-SD", "dInfer", "T3D", "TABOM")


def _se(row: dict[str, Any], col: str, fams: dict[str, list[str]]) -> float:
    """Standard error (points) of a row's mean in one column: binomial, or over seeds if larger."""
    members = fams["in"] if col == "in_avg" else fams["ood"] if col == "ood_avg" else [col]
    n, seeds = row.get("n", {}), max(1, int(row.get("n_seeds", 1)))
    var = 0.0
    for f in members:
        p = row["mean"].get(f, 0.0) / 100.0
        if n.get(f):
            var += p * (1 - p) / (n[f] * seeds) * 1e4
    binom = math.sqrt(var) / max(1, len(members))
    spread = row.get("std", {}).get(col, 0.0) / math.sqrt(seeds) if seeds > 1 else 0.0
    return max(binom, spread)


def compare(a: dict[str, Any], b: dict[str, Any], col: str, fams: dict[str, list[str]]) -> tuple[float, bool]:
    """(mean_a - mean_b in column ``col``, whether that is within two standard errors)."""
    d = a["mean"][col] - b["mean"][col]
    se = math.sqrt(_se(a, col, fams) ** 2 + _se(b, col, fams) ** 2)
    return d, abs(d) < 2 * se if se > 0 else d == 0


def _noise(within: bool) -> str:
    return " (within noise)" if within else ""


def _best(rows: dict[str, Any], col: str, labels: tuple[str, ...] | None = None) -> tuple[str, float] | None:
    cands = [(lab, r["mean"][col]) for lab, r in rows.items() if col in r["mean"] and (labels is None or lab in labels)]
    if not cands:
        return None
    top = max(v for _, v in cands)
    winners = [lab for lab, v in cands if v == top]
    return " and ".join(winners), top


KEYS: dict[str, str] = {"No-SFT": "no_sft", "SFT-GT": "sft_gt", "SFT-SD": "sft_sd", "dInfer": "dinfer",
                        "T3D": "t3d", "TABOM": "tabom"}


def main_readings(domain: str, decode: str, rows: dict[str, Any], fams: dict[str, list[str]],
                  comps: list[dict[str, Any]] | None = None) -> list[str]:
    """Sentences of Tables 2-4 for one domain and decoding mode (``comps``: results.json's comparisons)."""
    out: list[str] = []
    comps = comps or []

    def noise(label: str, baseline: str, scope: str, within: bool) -> str:
        c = find(comps, domain=domain, decoding=decode, scope=scope, method=KEYS[label], baseline=KEYS[baseline])
        return f" ({ci_text(c)})" if c else _noise(within)

    where = f"{domain}-trained models, {'full diffusion decoding' if decode == 'full' else 'parallel decoding'}"
    best = _best(rows, "in_avg")
    if best is None:
        return out
    base = rows.get("No-SFT")
    text = f"{where}: the best in-domain average is {best[0]} with {best[1]:.1f}%"
    out.append(text + (f" (No-SFT {base['mean']['in_avg']:.1f}%)." if base else "."))
    tabom, sd = rows.get("TABOM"), rows.get("SFT-SD")
    if tabom and sd:
        d, within = compare(tabom, sd, "in_avg", fams)
        on = ""
        c = find(comps, domain=domain, decoding=decode, scope="in_domain", method="tabom", baseline="sft_sd")
        if c is not None:  # the paired comparison's own difference: its problems may be more than the table's
            d, on = c["diff"], f" on {c['n_problems']} test problems"
        if d > 0:
            out.append(f"{where}: TABOM beats SFT-SD in-domain by {d:.1f} points{on}"
                       f"{noise('TABOM', 'SFT-SD', 'in_domain', within)}.")
        elif d < 0:
            out.append(f"{where}: TABOM does not beat SFT-SD in-domain; it is {-d:.1f} points lower{on}"
                       f"{noise('TABOM', 'SFT-SD', 'in_domain', within)}.")
        else:
            out.append(f"{where}: TABOM ties SFT-SD in-domain{on}{noise('TABOM', 'SFT-SD', 'in_domain', within)}.")
    trained = {lab: r for lab, r in rows.items() if lab in TRAINED}
    if tabom and len(trained) > 1:
        above = [lab for lab, r in trained.items() if lab != "TABOM" and r["mean"]["in_avg"] > tabom["mean"]["in_avg"]]
        if not above:
            out.append(f"{where}: no other post-trained method scores higher than TABOM in-domain.")
        else:
            out.append(f"{where}: TABOM is not the best post-trained method in-domain; "
                       f"{', '.join(above)} score{'s' if len(above) == 1 else ''} higher.")
    if decode == "full" and base:
        gt = rows.get("SFT-GT")
        if gt and "ood_avg" in gt["mean"]:
            d, within = compare(gt, base, "ood_avg", fams)
            if d < 0:
                out.append(f"{where}: SFT-GT loses {-d:.1f} points out-of-domain relative to No-SFT "
                           f"(forgetting, as the paper reports){noise('SFT-GT', 'No-SFT', 'ood', within)}.")
            else:
                out.append(f"{where}: SFT-GT does not forget out-of-domain here (OOD average {d:+.1f} points "
                           f"vs No-SFT){noise('SFT-GT', 'No-SFT', 'ood', within)}, unlike the paper.")
        for lab in ("SFT-SD", "TABOM"):
            r = rows.get(lab)
            if r and "ood_avg" in r["mean"]:
                d, within = compare(r, base, "ood_avg", fams)
                out.append(f"{where}: {lab}'s out-of-domain average moves {d:+.1f} points vs No-SFT"
                           f"{noise(lab, 'No-SFT', 'ood', within)}.")
    sig = [(c["method"], c["diff"]) for c in comps if c["domain"] == domain and c["decoding"] == decode
           and c["scope"] == "in_domain" and c["baseline"] == "no_sft"]
    if sig:
        label = {v: k for k, v in KEYS.items()}
        up = [f"{label.get(k, k)} ({d:+.1f})" for k, d in sig
              if (c := find(comps, domain=domain, decoding=decode, scope="in_domain", method=k,
                            baseline="no_sft")) and c["ci_low"] > 0]
        down = [f"{label.get(k, k)} ({d:+.1f})" for k, d in sig
                if (c := find(comps, domain=domain, decoding=decode, scope="in_domain", method=k,
                              baseline="no_sft")) and c["ci_high"] < 0]
        out.append(f"{where}: in-domain against No-SFT, significantly above: {', '.join(up) or 'none'}; "
                   f"significantly below: {', '.join(down) or 'none'}; the other methods' intervals include 0.")
    return out


def parallel_shift(full: dict[str, Any], par: dict[str, Any]) -> str | None:
    """How each method's in-domain average changes from full to parallel decoding."""
    parts = [f"{lab} {par[lab]['mean']['in_avg'] - full[lab]['mean']['in_avg']:+.1f}"
             for lab in full if lab in par and "in_avg" in full[lab]["mean"] and "in_avg" in par[lab]["mean"]]
    if not parts:
        return None
    return "Going from full to parallel decoding, in-domain averages change by (points): " + ", ".join(parts) + "."


def tds_reading(domain: str, rows: dict[str, Any]) -> str | None:
    """Whether TABOM has the highest pooled TDS of the domain's rows; None without rows or a TABOM row."""
    best = _best(rows, "pooled")
    if best is None or "TABOM" not in rows:
        return None
    t = rows["TABOM"]["mean"]["pooled"]
    if math.isnan(t):
        return f"{domain}: TABOM's TDS is undefined (no step had two or more masked positions counted)."
    if "TABOM" in best[0].split(" and "):
        return f"{domain}: TABOM has the highest TDS ({t:.3g}) of No-SFT, SFT-SD and TABOM, as in the paper."
    return f"{domain}: TABOM does not have the highest TDS: {best[0]} has {best[1]:.3g}, TABOM {t:.3g}."


def ablation_readings(ab: dict[str, Any], fams: dict[str, list[str]]) -> list[str]:
    """Sentences of Table 5: the ranking loss vs trajectory masking alone per window, then local vs global."""
    get: dict[str, dict[str, Any]] = {}  # "<section>/rank" or "<section>/ce"
    for r in ab["rows"]:
        if r["section"]:
            get[f"{r['section']}/{'rank' if 'ranking' in r['label'] else 'ce'}"] = r
    out = []
    for window, name in (("Local timestep window", "local"), ("Global timestep window", "global")):
        ce, rank = get.get(f"{window}/ce"), get.get(f"{window}/rank")
        if ce and rank:
            d, within = compare(rank, ce, "in_avg", fams)
            verb = "helps" if d > 0 else "makes no difference" if d == 0 else "does not help"
            out.append(f"Ablation ({ab['domain']}): with a {name} window, adding the ranking loss {verb} in-domain "
                       f"({d:+.1f} points over trajectory masking alone){_noise(within)}.")
    loc, glob = get.get("Local timestep window/rank"), get.get("Global timestep window/rank")
    if loc and glob:
        d, within = compare(loc, glob, "in_avg", fams)
        better = "beats" if d > 0 else "ties" if d == 0 else "does not beat"
        out.append(f"Ablation ({ab['domain']}): local-window TABOM {better} the global window in-domain "
                   f"({d:+.1f} points){_noise(within)}.")
    return out


def grid_reading(grid: dict[str, Any]) -> str | None:
    """Where the lambda x margin grid's best in-domain average is; None when no cell has one."""
    cells = [c for c in grid["cells"] if "in_avg" in c["mean"]]
    if not cells:
        return None
    top = max(c["mean"]["in_avg"] for c in cells)
    best = [c for c in cells if c["mean"]["in_avg"] == top]
    names = ", ".join(f"lambda {c['lambda']:g} / margin {c['margin']:g}" for c in best)
    default = any(c["lambda"] == 1.0 and c["margin"] == 0.2 for c in best)
    tail = "the recipe's default (1, 0.2) is among them" if default else "the recipe's default (1, 0.2) is not"
    return (f"Grid ({grid['domain']}, {grid['split']} split): the best in-domain average, {top:.1f}%, is at {names}; "
            f"{tail}.")


def sweep_reading(sweep: dict[str, Any]) -> str | None:
    """Which window size W gives the best in-domain average; None when no row has one."""
    rows = [r for r in sweep["rows"] if "in_avg" in r["mean"]]
    if not rows:
        return None
    top = max(r["mean"]["in_avg"] for r in rows)
    best = [f"W = {r['w']} (paper's {r['paper_w']})" for r in rows if r["mean"]["in_avg"] == top]
    return f"Window sweep ({sweep['domain']}, {sweep['split']} split): the best in-domain average, {top:.1f}%, is at {', '.join(best)}."


def trajectory_reading(domain: str, stats: dict[str, Any] | None) -> str | None:
    """Training prompts the base model solved and trajectories kept, as a sentence; None without stats."""
    if not stats or not stats["total"].get("generated"):
        return None
    t = stats["total"]
    return (f"{domain}: the base model solved {t.get('correct', 0)} of {t['generated']} training prompts "
            f"({stats['correct_rate']:.1f}%); {t.get('kept', 0)} trajectories were kept for training.")


def readings(results: dict[str, Any]) -> list[str]:
    """Every sentence of the report's reading, in the order of the report's tables."""
    out: list[str] = []
    for domain, by_decode in results.get("main", {}).items():
        fams = results["families"][domain]
        yield_text = trajectory_reading(domain, results.get("trajectories", {}).get(domain))
        if yield_text:
            out.append(yield_text)
        for decode in ("full", "parallel"):
            out += main_readings(domain, decode, by_decode.get(decode, {}), fams, results.get("comparisons", []))
        shift = parallel_shift(by_decode.get("full", {}), by_decode.get("parallel", {}))
        if shift:
            out.append(f"{domain}: {shift}")
        t = tds_reading(domain, results.get("tds", {}).get(domain, {}))
        if t:
            out.append(t)
    ab = results.get("ablation")
    if ab and ab.get("rows"):
        out += ablation_readings(ab, results["families"][ab["domain"]])
    for key, fn in (("grid", grid_reading), ("sweep", sweep_reading)):
        if results.get(key):
            s = fn(results[key])
            if s:
                out.append(s)
    return out
