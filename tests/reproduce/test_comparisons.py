"""results.json's paired comparisons from synthetic evaluation files, their table and the reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabom.reproduce.comparisons import comparison_table, comparisons, find
from tabom.reproduce.pipeline import Reproduction
from tabom.reproduce.plan import MAIN_METHODS, make_plan
from tabom.reproduce.reading import main_readings
from tabom.reproduce.report import power_note

IN = ["math_chain", "math_linear"]
OOD = ["code_trace", "code_func", "ood_format", "ood_string"]


def _write(repro: Reproduction, key: str, seed: int | None, correct: dict[str, list[int]], decode: str = "full") -> None:
    path = repro.store.eval_json("math", key, seed, decode, "test")
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = [{"task": fam, "id": f"p{i}", "correct": bool(c)} for fam, cs in correct.items() for i, c in enumerate(cs)]
    path.write_text(json.dumps({"samples": samples, "accuracy": {}, "counts": {}}))


def _repro(tmp_path: Path, n: int, rates: dict[str, float]) -> Reproduction:
    """Every main method evaluated (full decoding) on n problems per family; method k solves the
    first ``rates[k] * n`` problems of every family, identically in each seed."""
    repro = Reproduction(make_plan(True, seeds=2), tmp_path)
    for m in MAIN_METHODS:
        k = round(rates[m.key] * n)
        correct = {fam: [1] * k + [0] * (n - k) for fam in IN + OOD}
        for seed in repro.seeds(m):
            _write(repro, m.key, seed, correct)
    return repro


RATES = {"no_sft": 0.4, "sft_gt": 0.1, "sft_sd": 0.5, "dinfer": 0.5, "t3d": 0.45, "tabom": 0.6}


def test_every_pair_with_its_fields(tmp_path: Path) -> None:
    comps = comparisons(_repro(tmp_path, 50, RATES), resamples=300)
    keys = {(c["scope"], c["method"], c["baseline"]) for c in comps}
    # 5 methods vs No-SFT + 4 vs SFT-SD (No-SFT vs SFT-SD left out), in-domain and OOD, full only (no parallel files)
    assert len(comps) == 2 * 9 and {c["decoding"] for c in comps} == {"full"}
    assert ("in_domain", "no_sft", "sft_sd") not in keys and ("ood", "tabom", "sft_sd") in keys
    c = find(comps, scope="in_domain", method="tabom", baseline="sft_sd")
    assert c is not None and c["diff"] == 10.0 and c["n_problems"] == 100 and c["split"] == "test"
    assert set(c) >= {"domain", "decoding", "split", "scope", "method", "baseline", "diff", "ci_low", "ci_high",
                      "n_problems"}
    # solved sets are nested (method solves a superset), so every bootstrap replicate is > 0
    assert c["ci_low"] > 0 and c["significant"]
    assert find(comps, scope="ood", method="dinfer", baseline="sft_sd")["diff"] == 0.0
    table = comparison_table(comps, "math")
    assert "| full | in-domain | TABOM | SFT-SD | +10.0 |" in table


def test_reading_says_significant_only_when_the_interval_excludes_zero(tmp_path: Path) -> None:
    rates = RATES | {"tabom": 0.52}  # one problem in 50 per family over SFT-SD: the interval includes 0
    repro = _repro(tmp_path, 50, rates)
    for seed in (0, 1):  # TABOM solves a different problem than SFT-SD in half of the families' slots
        _write(repro, "tabom", seed, {fam: [1] * 24 + [0, 1] + [0] * 24 for fam in IN + OOD})
    comps = comparisons(repro, resamples=300)
    c = find(comps, scope="in_domain", method="tabom", baseline="sft_sd")
    assert c is not None and c["ci_low"] < 0 < c["ci_high"] and not c["significant"]
    row = {"mean": {"in_avg": 52.0, "ood_avg": 50.0}, "std": {}, "n": {}, "n_seeds": 2}
    rows = {"No-SFT": row | {"mean": {"in_avg": 40.0, "ood_avg": 40.0}}, "SFT-SD": row | {"mean": {"in_avg": 50.0, "ood_avg": 50.0}},
            "TABOM": row}
    text = " ".join(main_readings("math", "full", rows, {"in": IN, "ood": OOD}, comps))
    assert "not significant" in text and "within noise" not in text
    assert "significantly above: " in text and "TABOM" in text


def test_power_note_flags_quick_and_wide_intervals() -> None:
    comps: list[dict[str, Any]] = [{"domain": "math", "decoding": "full", "scope": "in_domain", "method": "tabom",
                                    "baseline": "sft_sd", "diff": 1.0, "ci_low": -3.0, "ci_high": 5.0,
                                    "n_problems": 72}]
    note = power_note({"meta": {"plan": {"quick": True}}, "main": {"math": {}}, "comparisons": comps})
    assert "not powered" in note and "half-width 4.0 points, wider than" in note
    comps[0] |= {"ci_low": -0.5, "ci_high": 2.5}
    assert "within the +-2" in power_note({"meta": {"plan": {}}, "main": {"math": {}}, "comparisons": comps})


def test_a_run_carries_comparisons_content_and_chosen_epochs(quick_run: tuple[Any, dict[str, Any]]) -> None:
    """The shrunk end-to-end run: results.json holds the comparisons and the content share of the
    windows (24-token canvas -> W = M = round(32 * 24 / 256) = 3), every trained run's epochs were
    validated and its test evaluation names the chosen checkpoint."""
    repro, results = quick_run
    comps = results["comparisons"]
    assert {(c["decoding"], c["scope"]) for c in comps} == {("full", "in_domain"), ("full", "ood"),
                                                            ("parallel", "in_domain"), ("parallel", "ood")}
    assert find(comps, decoding="full", scope="in_domain", method="tabom", baseline="sft_sd") is not None
    content = results["trajectory_stats"]["math"]["content_fraction_in_windows"]
    assert (content["ce_window"], content["rank_window"], content["gen_length"]) == (3, 3, 24)
    assert 0.0 <= content["ce"] <= 1.0
    for key in ("sft_sd", "tabom"):
        folder = repro.store.root / "eval" / "math" / key / "seed0"
        vals = sorted(p.name for p in folder.glob("full_val-*.json"))
        assert any(v.startswith("full_val-epoch_") for v in vals), key  # every epoch (+ final: the step cap)
        chosen = json.loads(repro.store.eval_json("math", key, 0, "full", "test").read_text())["settings"]["checkpoint"]
        assert f"full_val-{chosen}.json" in vals
    text = (repro.store.root / "report.md").read_text()
    assert "Paired comparisons" in text and "Content share" in text and "not powered" in text
