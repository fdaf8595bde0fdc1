"""Best of epochs: checkpoints found in order, chosen on validation, test evaluated once at the choice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tabom.eval.best_epoch import best_of_epochs, run_checkpoints


class _Report:
    def __init__(self, acc: float, split: str) -> None:
        self.acc, self.split, self.settings = acc, split, {}

    def accuracy(self) -> dict[str, float]:
        return {"t": self.acc}

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy(), "split": self.split}


def _fake_run(root: Path, names: list[str], kind: str = "adapter_config.json") -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / kind).write_text("{}")
    return root


def test_checkpoints_in_epoch_order_then_final(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "run", ["epoch_10", "epoch_2", "final", "epoch_1"])
    (run / "epoch_3").mkdir()  # no adapter or model: not a checkpoint
    (run / "step_40").mkdir()
    assert [n for n, _ in run_checkpoints(run)] == ["epoch_1", "epoch_2", "epoch_10", "final"]


def test_no_checkpoints_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty" / "epoch_1").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty: no checkpoints"):
        run_checkpoints(tmp_path / "empty")


def test_best_on_validation_tie_to_earlier_test_once(tmp_path: Path) -> None:
    """Val 0.2, 0.6, 0.6, 0.4 -> epoch_2 (first of the tie); test runs once, at epoch_2, with its own number."""
    run = _fake_run(tmp_path / "run", ["epoch_1", "epoch_2", "epoch_3", "final"])
    val = {"epoch_1": 0.2, "epoch_2": 0.6, "epoch_3": 0.6, "final": 0.4}
    calls: list[tuple[str, str]] = []

    def evaluate_fn(model: str, split: str) -> _Report:
        calls.append((model, split))
        return _Report(val[model] if split == "val" else 0.9 - val[model], split)

    result = best_of_epochs(lambda folder: folder.name, run_checkpoints(run), evaluate_fn)
    assert result.chosen == "epoch_2"
    assert calls == [(n, "val") for n in val] + [("epoch_2", "test")]
    assert result.test.accuracy() == {"t": pytest.approx(0.3)}
    assert result.to_json()["selection"]["val"]["epoch_3"]["mean"] == 0.6
    assert result.test.settings["checkpoint"].endswith("epoch_2")


def test_eval_run_cli_on_tiny_checkpoints(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    """A run of two full-model epochs and an adapter final: every val report, the choice, test at it."""
    run = tmp_path / "run"
    shutil.copytree(tiny_dirs["a"], run / "epoch_1")
    shutil.copytree(tiny_dirs["b"], run / "epoch_2")
    shutil.copytree(tiny_dirs["adapter"], run / "final")
    out = tmp_path / "ev"
    cmd = [sys.executable, "-m", "tabom.cli", "eval", "--model", str(tiny_dirs["a"]), "--run", str(run),
           "--tasks", "math_chain", "--gen-length", "8", "--steps", "8", "--limit", "3", "--device", "cpu",
           "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "results.json").read_text())
    sel = data["selection"]
    assert set(sel["val"]) == {"epoch_1", "epoch_2", "final"}
    best = max(sel["val"], key=lambda n: (sel["val"][n]["mean"], -list(sel["val"]).index(n)))
    assert sel["chosen"] == best and data["settings"]["checkpoint"].endswith(best)
    assert data["settings"]["split"] == "test" and data["counts"] == {"math_chain": 3}
    assert {p.name for p in (out / "val").iterdir()} == {"epoch_1.json", "epoch_2.json", "final.json"}
    assert json.loads((out / "val" / "final.json").read_text())["settings"]["split"] == "val"


def test_eval_run_without_checkpoints_exits_2(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    cmd = [sys.executable, "-m", "tabom.cli", "eval", "--model", "tiny", "--run", str(tmp_path / "run"),
           "--tasks", "math_chain", "--out", str(tmp_path / "ev")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "error:" in proc.stderr + proc.stdout and "no checkpoints" in proc.stderr + proc.stdout
    assert not (tmp_path / "ev").exists()
