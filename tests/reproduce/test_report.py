"""The report generator and the reading on synthetic results: tables, numbers, sentences that flip."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from tabom.reproduce.reading import compare, readings
from tabom.reproduce.report import render_report, write_report
from tabom.reproduce.results import add_gains, pooled_curve, summarize

IN, OOD = ["math_chain", "math_linear"], ["code_trace", "code_func", "ood_format", "ood_string"]
FAMS = {"in": IN, "ood": OOD}


def _row(per_seed: dict[str, list[float]], n: int = 100) -> dict[str, Any]:
    """A method row from per-seed accuracies listed in IN + OOD order."""
    cols = IN + OOD
    return summarize({s: dict(zip(cols, v)) for s, v in per_seed.items()}, IN, OOD) | {"n": {f: n for f in cols}}


def synthetic(tabom_in: float) -> dict[str, Any]:
    """No-SFT 40 in, 30 OOD; SFT-GT 55 in, forgets OOD (10); SFT-SD 50; dInfer 45; T3D 44; TABOM
    ``tabom_in`` -+ 2 over two seeds in-domain, 32 OOD."""
    base = _row({"base": [40, 40, 30, 30, 30, 30]})
    rows = {
        "No-SFT": base,
        "SFT-GT": _row({"0": [55, 55, 10, 10, 10, 10], "1": [55, 55, 10, 10, 10, 10]}),
        "SFT-SD": _row({"0": [50, 50, 30, 30, 30, 30], "1": [50, 50, 30, 30, 30, 30]}),
        "dInfer": _row({"0": [45, 45, 30, 30, 30, 30], "1": [45, 45, 30, 30, 30, 30]}),
        "T3D": _row({"0": [44, 44, 30, 30, 30, 30], "1": [44, 44, 30, 30, 30, 30]}),
        "TABOM": _row({"0": [tabom_in - 2, tabom_in - 2, 32, 32, 32, 32], "1": [tabom_in + 2, tabom_in + 2, 32, 32, 32, 32]}),
    }
    add_gains(rows, "No-SFT")
    par = copy.deepcopy(rows)
    tds = {"No-SFT": {"mean": {"math_chain": 0.1, "math_linear": 0.2, "pooled": 0.15},
                      "std": {}, "n_seeds": 1, "curve": [0.1, 0.2, float("nan")]},
           "SFT-SD": {"mean": {"math_chain": 0.1, "math_linear": 0.1, "pooled": 0.1}, "std": {}, "n_seeds": 1,
                      "curve": [0.1, 0.1, 0.1]},
           "TABOM": {"mean": {"math_chain": 0.5, "math_linear": 0.4, "pooled": 0.45}, "std": {}, "n_seeds": 1,
                     "curve": [0.5, 0.4, 0.45]}}
    ab_rows = [{"section": "", "label": "Base (SFT-SD)"} | rows["SFT-SD"],
               {"section": "Global timestep window", "label": "Traj. masking (only CE)"} | _row({"0": [48] * 2 + [30] * 4}),
               {"section": "Global timestep window", "label": "+ Pairwise ranking"} | _row({"0": [52] * 2 + [30] * 4}),
               {"section": "Local timestep window", "label": "Traj. masking (only CE)"} | _row({"0": [49] * 2 + [30] * 4}),
               {"section": "Local timestep window", "label": "+ Pairwise ranking (TABOM)"} | rows["TABOM"]]
    grid = {"domain": "math", "split": "val", "cells": [
        {"lambda": lam, "margin": m, "label": f"l{lam} m{m}"} | _row({"0": [50 + 10 * (lam == 2.0 and m == 0.3)] * 2 + [30] * 4})
        for lam in (1.0, 2.0) for m in (0.1, 0.2, 0.3)]}
    sweep = {"domain": "math", "split": "val", "gen_length": 64, "rows": [
        {"paper_w": pw, "w": w, "label": f"W={w}"} | _row({"0": [50 + (w == 8) * 5] * 2 + [30] * 4})
        for pw, w in (("16", 4), ("32", 8), ("whole", 63))]}
    return {
        "meta": {"plan": {"model": "tiny", "domains": ["math"], "seeds": [0, 1], "n_train": 10, "n_eval": 100,
                          "train_steps": 5, "gen_length": 64, "parallel_tokens": 2},
                 "command": "tabom reproduce --quick", "commands": ["tabom train --recipe tiny_tabom out=x"],
                 "versions": {"torch": "2.x"}},
        "families": {"math": FAMS},
        "trajectories": {"math": {"per_family": {"math_chain": {"generated": 10, "correct": 4, "kept": 4, "wrong": 6,
                                                                "unverified": 0}},
                                  "total": {"generated": 10, "correct": 4, "kept": 4}, "correct_rate": 40.0,
                                  "kept": 4, "keep": "correct"}},
        "main": {"math": {"full": rows, "parallel": par}},
        "tds": {"math": tds},
        "training": {"math": {"TABOM": {"0": {"steps": [1, 2], "loss": [2.0, 1.5], "final_loss": 1.5}}}},
        "ablation": {"domain": "math", "split": "test", "rows": ab_rows},
        "grid": grid, "sweep": sweep, "steps": [{"name": "x", "status": "ran", "seconds": 2.0}],
    }


def test_summarize_mean_std_and_gains() -> None:
    """Seeds 40/60 and 50/70 (in a, ood b): mean a 45, std sqrt(((40-45)^2 + (50-45)^2) / 1) = 7.071."""
    rows = {"base": summarize({"base": {"a": 30.0, "b": 60.0}}, ["a"], ["b"]),
            "m": summarize({"0": {"a": 40.0, "b": 60.0}, "1": {"a": 50.0, "b": 70.0}}, ["a"], ["b"])}
    add_gains(rows, "base")
    m = rows["m"]
    assert m["mean"] == {"a": 45.0, "in_avg": 45.0, "b": 65.0, "ood_avg": 65.0}
    assert m["std"]["a"] == pytest.approx(math.sqrt(50.0))
    assert m["gain"]["a"] == 15.0 and m["gain"]["ood_avg"] == 5.0
    assert rows["base"]["std"]["a"] == 0.0 and rows["base"]["gain"]["a"] == 0.0


def test_pooled_curve_is_the_count_weighted_mean() -> None:
    """Step 0: (1.0 * 2 + 4.0 * 1) / 3 = 2.0; step 1: only family a counts -> 3.0; step 2: none -> NaN."""
    curve = pooled_curve({"a": {"curve": [1.0, 3.0, float("nan")], "counts": [2, 1, 0]},
                          "b": {"curve": [4.0, float("nan"), float("nan")], "counts": [1, 0, 0]}})
    assert curve[:2] == [2.0, 3.0] and math.isnan(curve[2])


def test_compare_flags_noise() -> None:
    """n = 100 per family, p = 0.5 in both families: SE of the 2-family average = sqrt(2 * 25) / 2 = 3.54
    points; a difference of two such rows has SE about 5, so 2 SE is about 10: a 4-point gap is
    noise, a 12-point one is not."""
    a = _row({"0": [50, 50, 0, 0, 0, 0]})
    b = _row({"0": [46, 46, 0, 0, 0, 0]})
    c = _row({"0": [62, 62, 0, 0, 0, 0]})
    assert compare(a, b, "in_avg", FAMS) == (pytest.approx(4.0), True)
    assert compare(c, a, "in_avg", FAMS) == (pytest.approx(12.0), False)


def test_tables_hold_the_numbers() -> None:
    text = render_report(synthetic(tabom_in=60.0) | {"reading": ["r1"]})
    # TABOM, seeds 58 / 62 on math_chain: mean 60, std sqrt(8) = 2.83, gain over No-SFT 40 -> +20
    assert "| TABOM | **60.0 ± 2.8** <sub>+20.0</sub> |" in text
    # No-SFT has no gain subscript; SFT-GT's OOD average 10 is 20 below No-SFT's 30
    assert "| No-SFT | 40.0 | 40.0 | 40.0 | 30.0 |" in text
    assert "10.0 ± 0.0 <sub>-20.0</sub>" in text
    for needle in ("Table 3 analogue", "Table 4 analogue", "Table 5 analogue", "Table 6 analogue",
                   "Table 7 analogue", "Table 9 analogue", "| 84.31 |", "78.62", "| whole | 63 |",
                   "*Global timestep window*", "| math | **all** | 10 | 4 | 4 | 40.0 |", "- r1",
                   "tabom reproduce --quick", "torch 2.x"):
        assert needle in text, needle
    # TDS: TABOM bold on math_chain (0.5 beats 0.1 and 0.1)
    assert "| TABOM | **0.500** |" in text


def test_reading_when_tabom_wins() -> None:
    lines = "\n".join(readings(synthetic(tabom_in=60.0)))
    assert "TABOM beats SFT-SD in-domain by 10.0 points" in lines
    assert "the best in-domain average is TABOM with 60.0% (No-SFT 40.0%)" in lines
    assert "no other post-trained method scores higher than TABOM in-domain" in lines
    assert "SFT-GT loses 20.0 points out-of-domain relative to No-SFT" in lines
    assert "TABOM's out-of-domain average moves +2.0 points vs No-SFT" in lines
    assert "math: TABOM has the highest TDS (0.45)" in lines
    assert "with a local window, adding the ranking loss helps in-domain (+11.0 points" in lines
    assert "with a global window, adding the ranking loss helps in-domain (+4.0 points" in lines
    assert "local-window TABOM beats the global window in-domain (+8.0 points)" in lines
    assert "is at lambda 2 / margin 0.3; the recipe's default (1, 0.2) is not" in lines
    assert "is at W = 8 (paper's 32)" in lines
    assert "the base model solved 4 of 10 training prompts (40.0%)" in lines


def test_reading_when_tabom_loses() -> None:
    lines = "\n".join(readings(synthetic(tabom_in=44.0)))
    assert "TABOM does not beat SFT-SD in-domain; it is 6.0 points lower" in lines
    assert "TABOM is not the best post-trained method in-domain; SFT-GT, SFT-SD, dInfer score higher" in lines
    assert "with a local window, adding the ranking loss does not help in-domain (-5.0 points" in lines
    assert "TABOM beats SFT-SD" not in lines


def test_reading_when_sft_gt_does_not_forget() -> None:
    res = synthetic(tabom_in=60.0)
    rows = res["main"]["math"]["full"]
    rows["SFT-GT"] = _row({"0": [60, 60, 35, 35, 35, 35]})
    add_gains(rows, "No-SFT")
    lines = "\n".join(readings(res))
    assert "SFT-GT does not forget out-of-domain here (OOD average +5.0 points vs No-SFT)" in lines
    assert "SFT-GT loses" not in lines


def test_write_report_files(tmp_path: Path) -> None:
    res = write_report(synthetic(tabom_in=60.0), tmp_path)
    assert (tmp_path / "report.md").is_file() and (tmp_path / "results.json").is_file()
    assert res["figures"] == {"loss_math": "figures/loss_math.png", "tds_math": "figures/tds_math.png"}
    assert (tmp_path / "figures" / "tds_math.png").stat().st_size > 1000
    assert "![TDS, math](figures/tds_math.png)" in (tmp_path / "report.md").read_text()
    # strict JSON: the NaN of No-SFT's TDS curve is written as null
    on_disk = json.loads((tmp_path / "results.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert on_disk["tds"]["math"]["No-SFT"]["curve"] == [0.1, 0.2, None]


def test_reading_takes_the_paired_comparisons_difference() -> None:
    """With more test problems in the comparison than in the table (the powered comparison), the
    sentence reports the comparison's own difference and problem count, not the table's."""
    results = synthetic(tabom_in=44.0)  # the table: TABOM 6 points under SFT-SD
    results["comparisons"] = [{"domain": "math", "decoding": "full", "split": "test", "scope": "in_domain",
                               "method": "tabom", "baseline": "sft_sd", "diff": 1.5, "ci_low": -0.5,
                               "ci_high": 3.5, "n_problems": 839, "significant": False}]
    lines = "\n".join(readings(results))
    assert ("TABOM beats SFT-SD in-domain by 1.5 points on 839 test problems (95% CI [-0.5, +3.5], "
            "not significant)") in lines
    assert "6.0 points lower" not in lines.split("parallel")[0]
