"""The reproduction's threshold-decoding table (tabom.reproduce.threshold): evaluations, numbers, report."""

from __future__ import annotations

import json
from typing import Any

from tabom.reproduce.plan import TDS_METHODS
from tabom.reproduce.threshold import decode_name, threshold_of, threshold_table


def test_decode_names_round_trip() -> None:
    assert decode_name(0.9) == "threshold-0.9" and threshold_of("threshold-0.9") == 0.9
    assert threshold_of("full") is None and threshold_of("parallel") is None


def test_threshold_evaluations_numbers_and_table(quick_run: tuple[Any, dict[str, Any]]) -> None:
    repro, results = quick_run
    plan, store = repro.plan, repro.store
    data = results["threshold"]["math"]
    assert data["thresholds"] == list(plan.thresholds) and plan.thresholds
    assert sorted(data["rows"]) == sorted(m.label for m in TDS_METHODS)
    for method in TDS_METHODS:
        m = repro.resolve(method)
        cells = data["rows"][method.label]
        assert cells["full"]["tokens_per_step"] == 1.0  # full decoding: one token per step
        for tau in plan.thresholds:
            seed = repro.seeds(m)[0]
            path = store.eval_json("math", m.key, seed, decode_name(tau), "test")
            saved = json.loads(path.read_text())
            assert saved["settings"]["threshold"] == tau and saved["settings"]["cache"] == "none"
            assert {s["task"] for s in saved["samples"]} == set(plan.families("math"))  # in-domain only
            steps = [s["decode_steps"] for s in saved["samples"]]
            expected = sum(plan.gen_length / n for n in steps) / len(steps)
            cell = cells[decode_name(tau)]
            assert abs(cell["tokens_per_step"] - expected) < 1e-9 and cell["tokens_per_step"] >= 1.0
    report = (store.root / "report.md").read_text()
    assert "Parallel decoding by threshold: math-trained models" in report
    assert threshold_table(data) in report

