"""report.md of a reproduction: the paper's tables rebuilt from the run's numbers, figures, a reading.

    results = write_report(results, Path("runs/repro"))   # figures/, results.json, report.md
    text = render_report(results)                           # the markdown alone (pure)

Layout follows the paper: Tables 2-3 (in-domain and OOD accuracy per family, averages, gains over
No-SFT as subscripts, mean +- std over seeds, best per column in bold), Table 4 (2-token parallel
decoding), Table 6 (TDS), Table 5 (component ablation), Table 7 (lambda x margin) and Table 9
(window sweep) when run. Each is followed by the paper's own numbers, labelled as such.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tabom.reproduce import paper
from tabom.reproduce.comparisons import comparison_table, find
from tabom.reproduce.reading import readings
from tabom.reproduce.store import write_json
from tabom.reproduce.threshold import threshold_table


def _num(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def cell(row: dict[str, Any], col: str, *, gain: bool = True, digits: int = 1, bold: bool = False) -> str:
    """``mean ± std <sub>gain</sub>`` (std only with several seeds; gain when the row has one)."""
    if col not in row["mean"]:
        return ""
    text = _num(row["mean"][col], digits)
    if row.get("n_seeds", 1) > 1:
        text += f" ± {_num(row['std'].get(col), digits)}"
    if bold:
        text = f"**{text}**"
    g = row.get("gain", {}).get(col)
    if gain and g is not None and row.get("show_gain", True):
        text += f" <sub>{g:+.{digits}f}</sub>"
    return text


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def _best_by_column(rows: dict[str, dict[str, Any]], cols: list[str]) -> dict[str, set[str]]:
    best: dict[str, set[str]] = {}
    for c in cols:
        vals = [(lab, r["mean"][c]) for lab, r in rows.items() if c in r["mean"] and not math.isnan(r["mean"][c])]
        if vals:
            top = max(v for _, v in vals)
            best[c] = {lab for lab, v in vals if v == top}
    return best


def accuracy_table(rows: dict[str, dict[str, Any]], fams: dict[str, list[str]], base: str = "No-SFT") -> str:
    """Tables 2-3 layout: Method | in-domain families | Avg. | OOD families | Avg."""
    cols = [*fams["in"], "in_avg", *fams["ood"], "ood_avg"]
    names = {"in_avg": "In-domain avg.", "ood_avg": "OOD avg."}
    best = _best_by_column(rows, cols)
    lines = []
    for label, row in rows.items():
        row = row | {"show_gain": label != base}
        lines.append([label] + [cell(row, c, bold=label in best.get(c, set())) for c in cols])
    return _table(["Method"] + [names.get(c, c) for c in cols], lines)


def paper_main_table(domain: str) -> str:
    """The paper's Table 2 (code) or Table 3 (math) for ``domain``, labelled with its source."""
    ins, oods = paper.MAIN_COLUMNS[domain]
    header = ["Base model", "Method", *ins, "In-domain avg.", *oods, "OOD avg."]
    lines = [[model, method, *(f"{v:.2f}" for v in vals)]
             for model, rows in paper.PAPER_MAIN[domain].items() for method, vals in rows.items()]
    return f"*Paper, {paper.PAPER_MAIN_SOURCE[domain]}:*\n\n" + _table(header, lines)


def tds_table(rows: dict[str, dict[str, Any]], in_fams: list[str]) -> str:
    """Table 6 layout for one domain: Method | TDS per in-domain family | pooled (all prompts)."""
    cols = [*in_fams, "pooled"]
    best = _best_by_column(rows, cols)
    lines = [[label] + [cell(row | {"show_gain": False}, c, digits=3, bold=label in best.get(c, set())) for c in cols]
             for label, row in rows.items()]
    return _table(["Method", *cols], lines)


def ablation_table(ab: dict[str, Any], fams: dict[str, list[str]]) -> str:
    """Table 5 layout: Method | in-domain families | Avg. | OOD families | Avg., a header row per section."""
    cols = [*fams["in"], "in_avg", *fams["ood"], "ood_avg"]
    names = {"in_avg": "In-domain avg.", "ood_avg": "OOD avg."}
    lines, section = [], None
    for r in ab["rows"]:
        if r["section"] and r["section"] != section:
            section = r["section"]
            lines.append([f"*{section}*"] + [""] * len(cols))
        lines.append([r["label"]] + [cell(r | {"show_gain": r["label"] != "Base (SFT-SD)"}, c) for c in cols])
    return _table(["Method"] + [names.get(c, c) for c in cols], lines)


def grid_table(grid: dict[str, Any]) -> str:
    """Table 7 layout: in-domain average per (lambda, margin), then the paper's grid."""
    lambdas = sorted({c["lambda"] for c in grid["cells"]})
    margins = sorted({c["margin"] for c in grid["cells"]})
    by = {(c["lambda"], c["margin"]): c for c in grid["cells"]}
    lines = [[f"{lam:g}"] + [cell(by[(lam, m)] | {"show_gain": False}, "in_avg") if (lam, m) in by else ""
                             for m in margins] for lam in lambdas]
    ours = _table(["lambda \\ margin"] + [f"{m:g}" for m in margins], lines)
    ref = _table(["lambda \\ margin", "0.1", "0.2", "0.3"],
                 [[f"{lam:g}"] + [f"{paper.PAPER_GRID[(lam, m)]:.2f}" for m in (0.1, 0.2, 0.3)] for lam in (1.0, 2.0)])
    return ours + f"\n\n*Paper, {paper.GRID_SOURCE}:*\n\n" + ref


def sweep_table(sweep: dict[str, Any]) -> str:
    """Table 9 layout: in-domain and OOD averages per window size W, then the paper's sweep."""
    lines = [[r["paper_w"], str(r["w"]), cell(r | {"show_gain": False}, "in_avg"), cell(r | {"show_gain": False}, "ood_avg")]
             for r in sweep["rows"]]
    ours = _table(["Paper's W", f"Tiny W (gen_length {sweep['gen_length']})", "In-domain avg.", "OOD avg."], lines)
    ref = _table(["W", *paper.SWEEP_COLUMNS], [[w, *(f"{v:.2f}" for v in vals)] for w, vals in paper.PAPER_SWEEP.items()])
    return ours + f"\n\n*Paper, {paper.SWEEP_SOURCE}:*\n\n" + ref


def yield_table(trajectories: dict[str, Any]) -> str:
    """Trajectory yield per domain and family (generated, correct, kept, correct %), a total per domain."""
    lines = []
    for domain, stats in trajectories.items():
        if not stats:
            continue
        for fam, c in stats["per_family"].items():
            rate = 100.0 * c["correct"] / c["generated"] if c["generated"] else float("nan")
            lines.append([domain, fam, str(c["generated"]), str(c["correct"]), str(c["kept"]), _num(rate)])
        t = stats["total"]
        lines.append([domain, "**all**", str(t.get("generated", 0)), str(t.get("correct", 0)), str(t.get("kept", 0)),
                      _num(stats["correct_rate"])])
    return _table(["Domain", "Family", "Generated", "Verified correct", "Kept", "Correct %"], lines)


def content_table(stats: dict[str, Any]) -> str:
    """Per domain: canvas, windows and the share of content (not EOS padding) in the CE and ranking windows."""
    lines = []
    for domain, s in stats.items():
        c = (s or {}).get("content_fraction_in_windows")
        if not c:
            continue
        lines.append([domain, str(c["gen_length"]), str(c["ce_window"]), str(c["rank_window"]), str(c["rows"]),
                      _num(c["ce"], 3), _num(c["rank"], 3)])
    return _table(["Domain", "Canvas (tokens)", "CE window M", "Ranking window W", "Trajectories",
                   "Content share, CE", "Content share, ranking"], lines)


def power_note(results: dict[str, Any]) -> str:
    """Whether each domain's in-domain TABOM-vs-SFT-SD interval (full decoding) is within +-2 points."""
    plan = results.get("meta", {}).get("plan", {})
    parts = []
    if plan.get("quick"):
        parts.append("**This quick run is not powered**: its few test problems per family make every interval "
                     "wide; read it as a smoke test of the pipeline, not as evidence for or against any method.")
    for domain in results.get("main", {}):
        c = find(results.get("comparisons", []), domain=domain, decoding="full", scope="in_domain",
                 method="tabom", baseline="sft_sd")
        if c is None:
            continue
        half = (c["ci_high"] - c["ci_low"]) / 2
        verdict = "within" if half <= 2.0 else "wider than"
        parts.append(f"{domain}: the in-domain TABOM-vs-SFT-SD interval (full decoding, {c['n_problems']} "
                     f"problems) has half-width {half:.1f} points, {verdict} the +-2 points the design targets.")
    return " ".join(parts)


def _paper_flat(header: list[str], rows: dict[str, tuple[float, ...]], source: str, digits: int = 2) -> str:
    body = _table(["Method", *header], [[k, *(f"{v:.{digits}f}" for v in vals)] for k, vals in rows.items()])
    return f"*Paper, {source}:*\n\n" + body


def render_report(results: dict[str, Any], figures: dict[str, str] | None = None) -> str:
    """The whole report.md text from ``results`` (and figure paths relative to the report)."""
    figures = figures or {}
    meta = results.get("meta", {})
    plan = meta.get("plan", {})
    fams = results["families"]
    real = "domains_spec" in plan  # a real checkpoint's plan (tabom reproduce --plan)
    if real:
        parts = [f"# TABOM reproduction on `{plan.get('model', '?')}` ({plan.get('family')})", ""]
        parts.append(f"Plan `{plan.get('source')}`: domains {', '.join(plan.get('domains', []))}, seeds "
                     f"{plan.get('seeds')}, trajectories of {plan.get('gen_length')} tokens; every checkpoint "
                     "(epoch_k, final) validated on the plan's val files and test reported at the best; the "
                     "release's evaluation protocol (lm-eval's gsm8k_cot, minerva_math500, humaneval_instruct, "
                     "mbpp_instruct, ifeval; 0-shot) with each benchmark's release preset "
                     f"(response length {plan.get('eval_gen_length') or 'as released'}, "
                     f"{plan.get('eval_limit') or 'all'} problems per benchmark). Accuracies are %, mean ± std "
                     "over seeds; subscripts are gains over No-SFT; bold is the best in each column.")
        parts += [""]
    else:
        parts = ["# TABOM reproduction on the built-in tiny model", ""]
        canv = plan.get("canvases") or {}
        canvas = (", ".join(f"{d} {g}" for d, g in canv.items()) + " tokens" if canv
                  else f"{plan.get('gen_length')} tokens")
        if plan.get("epochs"):
            protocol = (f"every run trained {plan['epochs']} epochs"
                        + (f" (at most {plan['train_steps']} steps)" if plan.get("train_steps") else "")
                        + f", each epoch's checkpoint evaluated on {plan.get('n_val')} val problems per in-domain "
                        "family and test reported at the best (the same rule for every method)")
        else:
            protocol = f"{plan.get('train_steps') or 'recipe epochs of'} optimizer steps per run, final adapter"
        gt = (f"; SFT-GT is trained and evaluated on a {plan['gt_gen_length']}-token canvas, which holds its "
              "reference answers" if plan.get("gt_gen_length") else "")
        powered = ""
        if plan.get("n_eval_powered"):
            sec = plan.get("secondary_seeds")
            powered = (f" The powered comparison (No-SFT, SFT-SD and TABOM, every seed) is also tested under full "
                       f"decoding on {plan['n_eval_powered']} in-domain test problems per family (at most the "
                       "split): its rows are in the 'Powered comparison' tables and its intervals in the paired "
                       "comparisons; every other table shows every method on the same first "
                       f"{plan.get('n_eval')} problems." + (f" SFT-GT, dInfer, T3D and the ablation's own rows "
                       f"train the first {sec} seed(s) only." if sec and sec < len(plan.get("seeds", [])) else ""))
        more = "".join(f" ({n} seeds for SFT-SD and TABOM on {d})" for d, n in (plan.get("domain_seeds") or {}).items())
        parts.append(f"Model `{plan.get('model', '?')}`, domains {', '.join(plan.get('domains', []))}, seeds "
                     f"{plan.get('seeds')}{more}, {plan.get('n_train')} training prompts per family, {plan.get('n_eval')} test "
                     f"problems per in-domain family (at most the family's test split) and "
                     f"{plan.get('n_eval_ood') or plan.get('n_eval')} per out-of-domain family; {protocol}; responses (canvas) of {canvas}{gt}; windows (TABOM's W and "
                     "M, dInfer's span, T3D's path window) are the paper's 32 scaled to the canvas, "
                     "round(32 x canvas / 256). No method is tuned (TABOM keeps lambda 1, margin 0.2). Accuracies "
                     "are %, mean ± std over seeds (No-SFT: one greedy evaluation); subscripts are gains over "
                     "No-SFT; bold is the best in each column. Differences are called significant only where "
                     "their paired bootstrap 95% interval (over test problems and seeds) excludes 0." + powered)
        parts += ["", f"> {paper.NOTE}", ""]
        note = power_note(results)
        if note:
            parts += [note, ""]
    parts += ["## Reading (generated from the numbers below)", ""]
    parts += [f"- {s}" for s in results.get("reading", [])] or ["- (no results yet)"]
    parts += ["", "## Self-distilled trajectories", "", yield_table(results.get("trajectories", {})), ""]
    if any(results.get("trajectory_stats", {}).values()):
        parts += ["Share of content (positions before the first EOS) among the tokens of TABOM's CE and ranking "
                  "windows, expected over the uniform cut, on the kept trajectories:", "",
                  content_table(results["trajectory_stats"]), ""]
    for domain, by_decode in results.get("main", {}).items():
        table_no = "3" if domain == "math" else "2"
        parts += [f"## Table {table_no} analogue: {domain}-trained models, full diffusion decoding (test split)", ""]
        parts += [accuracy_table(by_decode.get("full", {}), fams[domain]), "", paper_main_table(domain), ""]
        if (results.get("powered") or {}).get(domain):
            rows = results["powered"][domain]
            n = next(iter(rows.values())).get("n", {})
            sizes = ", ".join(f"{f} {n[f]}" for f in fams[domain]["in"] if f in n)
            parts += [f"### Powered comparison: {domain}-trained models, full decoding (test problems: {sizes})", "",
                      accuracy_table(rows, fams[domain]), ""]
        parts += [f"## Table 4 analogue: {domain}-trained models, parallel decoding "
                  f"({plan.get('parallel_tokens', 2)} tokens per step, test split)", ""]
        parts += [accuracy_table(by_decode.get("parallel", {}), fams[domain]), ""]
        if domain == "math":
            parts += [_paper_flat(list(paper.PARALLEL_COLUMNS), paper.PAPER_PARALLEL, paper.PARALLEL_SOURCE), ""]
        if any(c["domain"] == domain for c in results.get("comparisons", [])):
            parts += [f"### Paired comparisons: {domain}-trained models (test split)", "",
                      "Method minus baseline in points (in-domain or OOD average), with a paired bootstrap 95% "
                      "interval: test problems resampled within each family (the same draw for both methods) and "
                      "each method's seeds resampled; significant only where the interval excludes 0.", "",
                      comparison_table(results["comparisons"], domain), ""]
        if f"loss_{domain}" in figures:
            parts += [f"![training loss, {domain}]({figures[f'loss_{domain}']})", ""]
    if results.get("tds"):
        parts += ["## Table 6 analogue: Trajectory Discrimination Score (test prompts, in-domain families)", ""]
        for domain, rows in results["tds"].items():
            parts += [f"{domain}-trained models on {domain} prompts:", "", tds_table(rows, fams[domain]["in"]), ""]
            if f"tds_{domain}" in figures:
                parts += [f"![TDS, {domain}]({figures[f'tds_{domain}']})", ""]
        parts += [_paper_flat(list(paper.TDS_COLUMNS), {f"{m} / {k}": v for m, rows in paper.PAPER_TDS.items()
                                                         for k, v in rows.items()}, paper.TDS_SOURCE, 3), ""]
    for domain, data in (results.get("threshold") or {}).items():
        if data.get("rows"):
            parts += [f"## Parallel decoding by threshold: {domain}-trained models ({domain} test problems)", ""]
            parts += ["Threshold decoding unmasks, at each step, every masked position whose token probability "
                      "reaches tau (at least one; one block, no cache). Accuracy is the in-domain average (%), "
                      "tok/step the mean over problems of response tokens / decoding steps; full decoding (one "
                      "token per step) is the reference. A model that learned the easy-to-hard order should "
                      "decode more tokens per step at the same accuracy.", ""]
            parts += [threshold_table(data), ""]
    ab = results.get("ablation")
    if ab and ab.get("rows"):
        parts += [f"## Table 5 analogue: component ablation ({ab['domain']}, full decoding, {ab['split']} split)", ""]
        parts += ["Gains are over the SFT-SD base row.", "", ablation_table(ab, fams[ab["domain"]]), ""]
        parts += [_paper_flat(list(paper.ABLATION_COLUMNS), paper.PAPER_ABLATION, paper.ABLATION_SOURCE), ""]
    if results.get("grid") and results["grid"].get("cells"):
        g = results["grid"]
        parts += [f"## Table 7 analogue: lambda x margin ({g['domain']}, in-domain average, {g['split']} split)", ""]
        parts += [grid_table(g), ""]
    if results.get("sweep") and results["sweep"].get("rows"):
        s = results["sweep"]
        parts += [f"## Table 9 analogue: window size W ({s['domain']}, {s['split']} split)", ""]
        parts += ["The paper sweeps W over 256-token responses; each tiny W keeps the paper's fraction of the "
                  f"response (W x {s['gen_length']} / 256), and 'whole' is W = {s['gen_length'] - 1}: the only cut "
                  "left is the fully masked state, so the window spans the whole response.", ""]
        parts += [sweep_table(s), ""]
    parts += ["## Training runs", "", _training_table(results.get("training", {})), ""]
    parts += ["## How this was made", "", "Command:", "", f"    {meta.get('command') or '(python API)'}", ""]
    parts += ["Equivalent per-step commands (first seed):", ""] + [f"    {c}" for c in meta.get("commands", [])]
    parts += ["", "Package versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()), ""]
    steps = results.get("steps", [])
    ran = [s for s in steps if s["status"] == "ran"]
    parts += [f"Steps this invocation: {len(ran)} ran ({sum(s['seconds'] for s in ran):.0f} s), "
              f"{len(steps) - len(ran)} taken from the cache; all steps of this folder, over every "
              f"invocation that made them: {results.get('compute_seconds', 0.0) / 60:.1f} min. "
              f"Created {meta.get('created', '')}.", ""]
    return "\n".join(parts)


def _training_table(training: dict[str, Any]) -> str:
    lines = []
    for domain, methods in training.items():
        for label, seeds in methods.items():
            for seed, rec in seeds.items():
                lines.append([domain, label, seed, str(rec["steps"][-1] if rec["steps"] else 0), _num(rec["final_loss"], 4)])
    return _table(["Domain", "Method", "Seed", "Steps", "Final logged loss"], lines)


def _finite(obj: Any) -> Any:
    """A copy with NaN/inf floats as None, so results.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_report(results: dict[str, Any], root: Path) -> dict[str, Any]:
    """Figures, the reading, results.json and report.md under ``root``; returns the results."""
    from tabom.reproduce.plots import plot_losses, plot_tds

    figures: dict[str, str] = {}
    for domain, training in results.get("training", {}).items():
        p = plot_losses(training, root / "figures" / f"loss_{domain}.png", domain)
        if p is not None:
            figures[f"loss_{domain}"] = str(p.relative_to(root))
    for domain, rows in results.get("tds", {}).items():
        p = plot_tds(rows, root / "figures" / f"tds_{domain}.png", domain)
        if p is not None:
            figures[f"tds_{domain}"] = str(p.relative_to(root))
    results["reading"] = readings(results)
    results["figures"] = figures
    write_json(root / "results.json", _finite(results))
    text = render_report(results, figures)
    (root / "report.md").write_text(text, encoding="utf-8")
    return results
