"""The experiment grid as data: window mapping, shared runs, per-mode defaults, validation, markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tabom.reproduce.plan import (
    MAIN_METHODS, Plan, TrainRun, ablation_rows, canonical, grid_methods, make_plan, map_window, sweep_methods,
)
from tabom.reproduce.store import Store


def test_map_window_keeps_the_papers_fraction() -> None:
    """64-token responses: W * 64 / 256 -> 16:4, 32:8, 48:12, 64:16; whole response -> 64 - 1 = 63."""
    assert [map_window(w, 64) for w in (16, 32, 48, 64, None)] == [4, 8, 12, 16, 63]
    assert map_window(16, 24) == 2  # round(1.5) = 2, and never below 2 (a pair needs two tokens)
    assert [w for _, w, _ in sweep_methods(64)] == [4, 8, 12, 16, 63]


def test_equal_configs_share_a_run() -> None:
    """The grid's (1, 0.2), the sweep's W = 16 and the ablation's local TABOM are the tiny_tabom recipe."""
    recipe = {"ce_window": 16, "rank_window": 16, "margin": 0.2, "rank_lambda": 1.0, "global_window": False}
    grid = {(lam, m): canonical(meth.run, recipe).key for lam, m, meth in grid_methods()}
    assert grid[(1.0, 0.2)] == "tabom"
    assert grid[(2.0, 0.3)] == "tabom__margin0.3_rank_lambda2.0"
    assert grid[(1.0, 0.1)] == "tabom__margin0.1"
    sweep = [canonical(m.run, recipe).key for _, _, m in sweep_methods(64)]
    assert sweep == ["tabom__ce_window4_rank_window4", "tabom__ce_window8_rank_window8",
                     "tabom__ce_window12_rank_window12", "tabom", "tabom__ce_window63_rank_window63"]
    assert ablation_rows()[-1][2].key == "tabom" and ablation_rows()[0][2].key == "sft_sd"
    assert TrainRun("tiny_tabom", "sd", (("global_window", True),)).overrides() == ["objective.global_window=true"]


def test_main_rows_are_the_papers() -> None:
    assert [m.label for m in MAIN_METHODS] == ["No-SFT", "SFT-GT", "SFT-SD", "dInfer", "T3D", "TABOM"]
    assert [m.run.data for m in MAIN_METHODS[1:]] == ["gt", "sd", "sd", "sd", "sd"]


def test_mode_defaults_and_knobs() -> None:
    quick = make_plan(True)
    assert quick.domains == ("math",) and quick.seeds == (0,) and quick.grid_domain is None
    assert quick.sweep_domain is None and quick.ablation_domain == "math" and quick.train_steps is None
    assert (quick.epochs, quick.n_eval, quick.n_eval_ood, quick.n_val) == (3, 16, 16, 16)
    full = make_plan(False, seeds=2, n_eval=7)
    assert full.domains == ("math", "code") and full.seeds == (0, 1) and full.n_eval == 7
    assert (full.n_eval_ood, full.n_val) == (7, 7)  # never above a smaller --n-eval
    assert full.epochs == 5 and full.grid_domain == "math" and full.sweep_domain == "math"
    default = make_plan(False)
    assert (full.n_train, full.n_tds) == (400, 16) and (default.n_eval, default.n_eval_ood) == (64, 16)
    assert (default.n_eval_powered, default.secondary_seeds, default.n_val) == (600, 1, 16)
    assert default.seeds == (0, 1, 2) and default.domain_seeds == {"math": 5}  # docs/benchmarks.md
    assert default.powered_seeds("math") == (0, 1, 2, 3, 4) and default.powered_seeds("code") == (0, 1, 2)
    assert make_plan(False, seeds=2).domain_seeds == {}  # an explicit --seeds is every domain's
    assert (quick.n_eval_powered, quick.secondary_seeds) == (None, None)  # quick: one size, one seed
    assert make_plan(False, n_eval=700).n_eval_powered == 700  # never below --n-eval
    assert full.eval_families("code") == ["code_trace", "code_func", "math_chain", "math_linear",
                                          "ood_format", "ood_string"]


def test_bad_plans_name_the_field() -> None:
    with pytest.raises(ValueError, match="domains: unknown domain 'physics'"):
        make_plan(True, domains=("physics",))
    with pytest.raises(ValueError, match="n_eval: must be >= 1"):
        make_plan(True, n_eval=-1)
    with pytest.raises(ValueError, match="train_steps: must be >= 1"):
        make_plan(True, train_steps=0)
    with pytest.raises(ValueError, match=r"n_eval_powered: must be >= n_eval \(64\)"):
        make_plan(False, n_eval_powered=10)
    with pytest.raises(ValueError, match=r"secondary_seeds: must be in \[1, 3\]"):
        make_plan(False, secondary_seeds=4)
    with pytest.raises(ValueError, match="domain_seeds: physics=2: a domain of the plan"):
        make_plan(False, domain_seeds={"physics": 2})


def test_store_markers(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.eval_json("math", "tabom", 0, "full", "test")
    calls: list[int] = []

    def make() -> None:
        calls.append(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")

    assert store.step("e", path, {"n": 2}, make) is True
    assert store.step("e", path, {"n": 2}, make) is False  # done: same params
    assert json.loads(store.marker(path).read_text())["params"] == {"n": 2}
    assert store.stale(path, {"n": 3}) and not store.done(path, {"n": 3})
    path.unlink()  # artifact gone, marker left: runs again
    assert store.step("e", path, {"n": 2}, make) is True
    assert len(calls) == 2 and store.ran() == ["e", "e"]
    with pytest.raises(ValueError, match="refusing to delete outside"):
        store.remove(tmp_path.parent)


def test_canvases_windows_and_sizes() -> None:
    """Per-domain canvases fitted to the answers, the paper's W = 32 scaled to each, SFT-GT's canvas,
    and test sizes capped at what a family's split holds (math_linear: 239 test problems)."""
    plan = make_plan(False)
    assert (plan.canvas("math"), plan.canvas("code"), plan.canvas("ood"), plan.gt_gen_length) == (32, 40, 64, 96)
    assert (plan.window("math"), plan.window("code")) == (4, 5)
    assert plan.family_canvas("code_func") == 40 and plan.family_canvas("ood_string") == 64
    assert plan.objective_defaults("math", "tiny_tabom") == {"ce_window": 4, "rank_window": 4}
    assert plan.objective_defaults("code", "tiny_dinfer") == {"max_span": 5}
    assert plan.objective_defaults("math", "tiny_sft_sd") == {} and plan.objective_defaults(None, "tiny_tabom") == {}
    assert plan.eval_limit("math", "math_linear") == 64 and plan.eval_limit("math", "math_chain") == 64
    assert plan.eval_limit("math", "math_linear", powered=True) == 239  # the whole test split
    assert plan.eval_limit("math", "math_chain", powered=True) == 600
    assert plan.eval_limit("math", "code_func", powered=True) == 16  # OOD: never the powered size
    assert plan.eval_limit("math", "math_chain", "val", powered=True) == 16
    one = make_plan(True, gen_length=24)  # one length for everything, SFT-GT included
    assert one.canvases == {} and one.canvas("code") == 24 and one.gt_gen_length is None and one.window("math") == 3
    with pytest.raises(ValueError, match="canvases: physics=32"):
        Plan(canvases={"physics": 32})
