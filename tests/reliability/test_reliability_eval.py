"""Faults and bad outputs for `tabom eval` and `tabom tds` (issue 19): an unusable --out is refused
before any model is loaded, and results are written as they come, so a crash keeps the work done.

The CLI runs in-process (CliRunner: an expected error is `res.exception`, a ValueError that
`tabom.cli.main` prints as `error: ...` with exit 2). A crash is simulated by making the decoder
raise on its second call. Model: saved 2-layer random tiny models, gen_length 8.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import tabom.eval.evaluate as evaluate_module
import tabom.eval.tds as tds_module
from tabom.cli import app
from tabom.models import build_tiny, save

torch.set_num_threads(1)
SHAPE: dict[str, int] = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                         "num_key_value_heads": 2, "intermediate_size": 64}


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {"a": save(build_tiny(seed=0, **SHAPE), root / "a"), "b": save(build_tiny(seed=1, **SHAPE), root / "b")}


def run_eval(model: Path, out: Path, *extra: str) -> Any:
    args = ["eval", "--model", str(model), "--tasks", "math_chain", "--limit", "4", "--batch-size", "2",
            "--gen-length", "8", "--no-progress", "--out", str(out), *extra]
    return CliRunner().invoke(app, args)


def crash_on_call(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, n: int) -> None:
    """Make `module.name` raise `Crash` on its n-th call (1-based); earlier calls run normally."""
    real = getattr(module, name)
    calls = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == n:
            raise Crash(f"{name} call {n}")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def never_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a model gets loaded (the --out check must come first)."""
    import tabom.eval.model_spec as spec

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before --out was checked")

    monkeypatch.setattr(spec, "load_eval_model", boom)


# -------------------------------------------------------------------------------- tabom eval
def test_eval_refuses_an_unusable_out_before_loading_the_model(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never_loaded(monkeypatch)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    res = run_eval(model_dirs["a"], afile)
    assert isinstance(res.exception, ValueError) and str(res.exception) == f"--out: {afile} exists and is not a directory"
    res = run_eval(model_dirs["a"], afile / "sub")
    assert str(res.exception) == f"--out: {afile} is not a directory, so {afile / 'sub'} cannot be created"
    assert afile.read_text() == "keep me"


def test_eval_keeps_every_finished_batch_when_it_crashes(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 problems in batches of 2; the second batch's decode crashes: the first 2 samples are on disk."""
    out = tmp_path / "ev"
    crash_on_call(monkeypatch, evaluate_module, "decode_texts", 2)
    res = run_eval(model_dirs["a"], out)
    assert isinstance(res.exception, Crash)
    rows = [json.loads(line) for line in (out / "samples.partial.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["task"] == "math_chain" and "output" in r for r in rows)
    assert not (out / "results.json").exists()

    monkeypatch.undo()
    res = run_eval(model_dirs["a"], out)
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert samples == results["samples"] and len(samples) == 4
    assert samples[:2] == rows  # greedy: the crashed run's batch is the same as the rerun's
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "samples.jsonl"]


def test_eval_prompt_too_long_is_named_before_decoding(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_on_call(monkeypatch, evaluate_module, "decode_texts", 1)  # decoding at all would be a Crash
    out = tmp_path / "ev"
    res = run_eval(model_dirs["a"], out, "--gen-length", "510")
    assert isinstance(res.exception, ValueError), res.exception
    assert str(res.exception).startswith("task math_chain problem ")
    assert "exceed the 512 positions of model" in str(res.exception)
    assert not out.exists()


# --------------------------------------------------------------------------------- tabom tds
def run_tds(model_dirs: dict[str, Path], out: Path, *extra: str) -> Any:
    args = ["tds", "--tasks", "math_chain", "--n", "2", "--gen-length", "8", "--out", str(out),
            "--compare", f"a={model_dirs['a']}", f"b={model_dirs['b']}", *extra]
    return CliRunner().invoke(app, args)


def test_tds_refuses_an_unusable_out_before_loading_any_model(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never_loaded(monkeypatch)
    afile = tmp_path / "afile"
    afile.write_text("")
    res = run_tds(model_dirs, afile)
    assert str(res.exception) == f"--out: {afile} exists and is not a directory"


def test_tds_keeps_the_models_done_when_a_later_one_crashes(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "tds"
    crash_on_call(monkeypatch, tds_module, "run_tds", 2)
    res = run_tds(model_dirs, out)
    assert isinstance(res.exception, Crash)
    assert list(json.loads((out / "tds.json").read_text())) == ["a"]
    with open(out / "tds.csv", newline="") as f:
        assert {row["model"] for row in csv.DictReader(f)} == {"a"}
    assert not (out / "tds.png").exists()
    monkeypatch.undo()
    res = run_tds(model_dirs, out)
    assert res.exit_code == 0, res.output
    assert list(json.loads((out / "tds.json").read_text())) == ["a", "b"]
    assert (out / "tds.png").stat().st_size > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_tds_prompt_too_long_names_file_and_line(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "hi"}) + "\n" + json.dumps({"prompt": "x" * 600}) + "\n")
    args = ["tds", "--prompts", str(prompts), "--n", "2", "--gen-length", "8", "--model", str(model_dirs["a"]),
            "--out", str(tmp_path / "tds")]
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, ValueError)
    assert str(res.exception).startswith(f"{prompts}:2: prompt: 602 tokens + gen_length 8 = 610 exceed")
    assert not (tmp_path / "tds").exists()
