"""A whole shrunk `--quick` reproduction on a random tiny model: outputs, numbers, resume, CLI.

The shared run (conftest `quick_run`) trains 8 adapters (5 main rows + 3 ablation rows) for 2
steps each and evaluates 6 families x 2 problems; a random model scores 0 everywhere, so the
number check also edits one evaluation JSON and checks the edit flows into results.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tabom.reproduce.pipeline import Reproduction
from tabom.reproduce.plan import MAIN_METHODS


def _acc(path: Path) -> dict[str, float]:
    """Accuracy % per family recomputed from the samples of an evaluation JSON."""
    samples = json.loads(path.read_text())["samples"]
    fams: dict[str, list[bool]] = {}
    for s in samples:
        fams.setdefault(s["task"], []).append(bool(s["correct"]))
    return {f: 100.0 * sum(v) / len(v) for f, v in fams.items()}


def test_quick_run_writes_every_artifact(quick_run: tuple[Any, dict[str, Any]]) -> None:
    repro, results = quick_run
    root = repro.store.root
    assert (root / "report.md").is_file() and (root / "results.json").is_file()
    for method in MAIN_METHODS:
        m = repro.resolve(method)
        for seed in repro.seeds(m):
            for decode in ("full", "parallel"):
                assert repro.store.eval_json("math", m.key, seed, decode, "test").is_file(), (m.key, decode)
    assert (root / "figures" / "tds_math.png").is_file()
    assert (root / "figures" / "loss_math.png").is_file()
    # trajectories: 2 families x 4 prompts generated, yield reported
    traj = results["trajectories"]["math"]
    assert traj["total"]["generated"] == 8 and traj["kept"] == 8
    # five trained rows, each 2 optimizer steps
    assert sorted(results["training"]["math"]) == ["SFT-GT", "SFT-SD", "T3D", "TABOM", "dInfer"]
    assert all(rec["0"]["steps"] == [1, 2] for rec in results["training"]["math"].values())  # log_every=1
    # quick: no grid or sweep; the ablation has its five rows, two of them reused runs
    assert results["grid"] is None and results["sweep"] is None
    keys = [r["key"] for r in results["ablation"]["rows"]]
    assert keys == ["sft_sd", "trajectory__global_windowtrue", "tabom__global_windowtrue", "trajectory", "tabom"]
    report = (root / "report.md").read_text()
    for heading in ("Table 3 analogue", "Table 4 analogue", "Table 5 analogue", "Table 6 analogue",
                    "figures/tds_math.png", "figures/loss_math.png", "Reading (generated", "Package versions"):
        assert heading in report


def test_results_match_evaluation_jsons(quick_run: tuple[Any, dict[str, Any]]) -> None:
    repro, results = quick_run
    for decode in ("full", "parallel"):
        for method in MAIN_METHODS:
            m = repro.resolve(method)
            for seed in repro.seeds(m):
                path = repro.store.eval_json("math", m.key, seed, decode, "test")
                row = results["main"]["math"][decode][method.label]
                key = "base" if seed is None else str(seed)
                for fam, acc in _acc(path).items():
                    assert row["per_seed"][key][fam] == pytest.approx(acc)
    on_disk = json.loads((repro.store.root / "results.json").read_text())
    assert on_disk["main"]["math"]["full"]["TABOM"]["mean"] == results["main"]["math"]["full"]["TABOM"]["mean"]

    # Edit TABOM's full-decoding JSON: both math_chain problems right -> 100%, in_avg (100 + 0) / 2 = 50,
    # gain over No-SFT (0) = +50; results.json and report.md must follow the file.
    path = repro.store.eval_json("math", "tabom", 0, "full", "test")
    original = path.read_text()
    data = json.loads(original)
    for s in data["samples"]:
        s["correct"] = s["task"] == "math_chain"
    data["accuracy"] = {f: (1.0 if f == "math_chain" else 0.0) for f in data["accuracy"]}
    path.write_text(json.dumps(data))
    try:
        edited = repro.finish()
        row = edited["main"]["math"]["full"]["TABOM"]
        assert row["mean"]["math_chain"] == 100.0 and row["mean"]["in_avg"] == 50.0
        assert row["gain"]["in_avg"] == 50.0
        text = (repro.store.root / "report.md").read_text()
        assert "TABOM beats SFT-SD in-domain by 50.0 points" in text
    finally:
        path.write_text(original)
        repro.finish()


def test_resume_reruns_only_the_deleted_step(quick_run: tuple[Any, dict[str, Any]]) -> None:
    repro, _ = quick_run
    root = repro.store.root
    # an evaluation JSON: only that evaluation reruns
    repro.store.eval_json("math", "t3d", 0, "parallel", "test").unlink()
    again = Reproduction(repro.plan, root)
    again.run()
    assert again.store.ran() == ["eval math/t3d/seed0/parallel_test"]
    # a trained adapter: only its training reruns (resumed from the run's last epoch checkpoint);
    # its evaluations keep their markers because the training params did not change
    shutil.rmtree(repro.store.run_dir("math", "dinfer", 0) / "final")
    again = Reproduction(repro.plan, root)
    again.run()
    assert again.store.ran() == ["train math/dinfer/seed0"]
    assert (repro.store.run_dir("math", "dinfer", 0) / "final" / "adapter_config.json").is_file()
    # nothing deleted: nothing runs
    again = Reproduction(repro.plan, root)
    again.run()
    assert again.store.ran() == []


def test_cli_on_a_finished_folder_runs_nothing(quick_run: tuple[Any, dict[str, Any]], tiny_dir: Path) -> None:
    from typer.testing import CliRunner

    from tabom.cli import app

    repro, _ = quick_run
    args = ["reproduce", "--quick", "--out", str(repro.store.root), "--model", str(tiny_dir), "--n-train", "4",
            "--n-eval", "2", "--n-tds", "2", "--train-steps", "2", "--gen-length", "24", "--decode-batch", "16",
            "--keep-all"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "(0 steps ran," in result.output
    assert "- math: the base model solved 0 of 8 training prompts" in result.output


def test_cli_rejects_a_bad_domain(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tabom.cli import app

    result = CliRunner().invoke(app, ["reproduce", "--domains", "physics", "--out", str(tmp_path / "r")])
    # A ValueError naming the option, which `tabom.cli.main` prints as one `error:` line, exit 2
    # (tests/reliability/test_reliability_cli.py runs it through main).
    assert isinstance(result.exception, ValueError) and "--domains: unknown domain 'physics'" in str(result.exception)
    assert not (tmp_path / "r").exists()


def test_no_correct_trajectories_is_a_clear_error(quick_plan: Any, tmp_path: Path) -> None:
    """A random model solves none of its 2 x 2 training prompts; keeping only correct rows leaves no data."""
    import dataclasses

    plan = dataclasses.replace(quick_plan, keep="correct", n_train=2)
    with pytest.raises(RuntimeError, match=r"no trajectories kept \(0 correct of 4\)"):
        Reproduction(plan, tmp_path).trajectories("math")
    assert not (tmp_path / "trajectories" / "math.jsonl.done").exists()


def test_quick_and_full_default_to_different_folders(monkeypatch: Any, tmp_path: Path) -> None:
    """A quick run with no --out must not land in (and replace the steps of) the full run's folder."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import tabom.reproduce.pipeline as pipeline
    from tabom.cli import app

    seen: list[Path] = []

    class Fake:
        def __init__(self, plan: Any, out: Path, **kwargs: Any) -> None:
            seen.append(Path(out))
            self.store = SimpleNamespace(ran=lambda: [], log=[])

        def run(self) -> dict[str, Any]:
            return {}

    monkeypatch.setattr(pipeline, "Reproduction", Fake)
    monkeypatch.chdir(tmp_path)
    for args in (["reproduce", "--quick"], ["reproduce"], ["reproduce", "--quick", "--out", "x"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert seen == [Path("runs/reproduce_quick"), Path("runs/reproduce"), Path("x")]


def test_powered_comparison_sizes_and_secondary_seeds(quick_plan: Any, tmp_path: Path) -> None:
    """No-SFT, SFT-SD and TABOM run every seed and full-decode n_eval_powered in-domain test problems;
    the other methods run the first secondary_seeds seeds; the main table counts the common n_eval."""
    from dataclasses import replace

    from tabom.reproduce.store import read_json

    plan = replace(quick_plan, seeds=(0,), domain_seeds={"math": 2}, n_eval_powered=3, secondary_seeds=1,
                   thresholds=(), ablation_domain=None, n_tds=1)
    repro = Reproduction(plan, tmp_path)
    results = repro.run()
    seeds = {m.key: repro.seeds(m, "math") for m in MAIN_METHODS}
    assert seeds == {"no_sft": [None], "sft_gt": [0], "sft_sd": [0, 1], "dinfer": [0], "t3d": [0], "tabom": [0, 1]}
    tabom = read_json(repro.store.eval_json("math", "tabom", 1, "full", "test"))
    assert tabom["counts"]["math_chain"] == 3 and tabom["counts"]["ood_format"] == 2  # OOD keeps n_eval
    assert read_json(repro.store.eval_json("math", "tabom", 1, "parallel", "test"))["counts"]["math_chain"] == 2
    assert read_json(repro.store.eval_json("math", "t3d", 0, "full", "test"))["counts"]["math_chain"] == 2
    assert not repro.store.eval_json("math", "t3d", 1, "full", "test").exists()
    main = results["main"]["math"]["full"]
    assert main["TABOM"]["n"]["math_chain"] == 2 and main["T3D"]["n"]["math_chain"] == 2  # the common draw
    powered = results["powered"]["math"]
    assert set(powered) == {"No-SFT", "SFT-SD", "TABOM"} and powered["TABOM"]["n"]["math_chain"] == 3
    comp = [c for c in results["comparisons"] if c["decoding"] == "full" and c["scope"] == "in_domain"
            and c["method"] in ("tabom", "t3d") and c["baseline"] == "sft_sd"]
    assert {c["method"]: c["n_problems"] for c in comp} == {"tabom": 6, "t3d": 4}  # 2 families x 3 / x 2
    text = (tmp_path / "report.md").read_text()
    assert "Powered comparison: math-trained models" in text and "(2 seeds for SFT-SD and TABOM on math)" in text
    assert set(results["main"]["math"]["full"]["TABOM"]["per_seed"]) == {"0", "1"}
    assert set(results["training"]["math"]["TABOM"]) == {"0", "1"}
