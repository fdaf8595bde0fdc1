"""`evaluate` on every built-in family with a tiny random model, parallel decoding, and `tabom eval`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tabom.eval.evaluate import DecodeSettings, evaluate
from tabom.eval.sources import resolve_tasks
from tabom.tasks import FAMILIES


def test_every_family_scored_on_tiny_random_model(tiny_model: Any) -> None:
    """3 problems of each of the six families: counts exact, accuracies in [0, 1], steps = gen_length."""
    report = evaluate(tiny_model, "all", DecodeSettings(gen_length=8, batch_size=16), limit=3, progress=False)
    metrics = report.metrics()
    assert list(metrics) == list(FAMILIES)
    for task, m in metrics.items():
        assert m["n"] == 3, task
        assert 0.0 <= m["accuracy"] <= 1.0
    assert len(report.samples) == 3 * len(FAMILIES)
    assert all(s.decode_steps == 8 for s in report.samples)  # one token per step
    # full diffusion decoding (steps == gen_length) pins exactly one token per step
    assert report.settings["strategy"] == "entropy" and report.settings["tokens_per_step"] == 1
    json.dumps(report.to_json())  # every sample serialises


def test_family_verifier_decides_with_stand_in_decoder(tiny_model: Any) -> None:
    """Outputs = each problem's native solution -> 100%; a constant junk output -> 0%."""
    source = resolve_tasks("math_chain")[0]
    natives = {i.prompt: i.meta["problem"].native for i in source.load(4, "test", 0)}

    def right(model: Any, prompts: list[str], settings: Any, gen: Any) -> tuple[list[str], list[int]]:
        return [natives[p] for p in prompts], [1] * len(prompts)

    def junk(model: Any, prompts: list[str], settings: Any, gen: Any) -> tuple[list[str], list[int]]:
        return ["zzz"] * len(prompts), [1] * len(prompts)

    assert evaluate(tiny_model, [source], limit=4, progress=False, decode_fn=right).accuracy() == {"math_chain": 1.0}
    assert evaluate(tiny_model, [source], limit=4, progress=False, decode_fn=junk).accuracy() == {"math_chain": 0.0}


def test_tokens_per_step_is_recorded_and_halves_steps(tiny_model: Any) -> None:
    """gen_length 8 at 2 tokens per step takes 8 / 2 = 4 forwards per response (Table 4 setting)."""
    settings = DecodeSettings(gen_length=8, tokens_per_step=2)
    report = evaluate(tiny_model, "math_linear", settings, limit=2, progress=False)
    assert report.settings["tokens_per_step"] == 2
    assert [s.decode_steps for s in report.samples] == [4, 4]


def test_unknown_task_is_named() -> None:
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        resolve_tasks("math_chain,nope")
    with pytest.raises(ValueError, match="unknown benchmark 'gsm9k'"):
        resolve_tasks("gsm9k=x.jsonl")


def test_eval_cli_with_preset_override_and_adapter(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    """`tabom eval` on a saved tiny model + adapter: table printed, results.json with settings and samples."""
    from tabom.commands.evaluate import eval_command

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("noop")(lambda: None)
    out = tmp_path / "ev"
    args = ["eval", "--model", str(tiny_dirs["a"]), "--adapter", str(tiny_dirs["adapter"]), "--tasks", "math_chain",
            "--preset", "dream-gsm8k", "--gen-length", "8", "--steps", "8", "--tokens-per-step", "2",
            "--limit", "2", "--device", "cpu", "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "math_chain" in result.output
    data = json.loads((out / "results.json").read_text())
    s = data["settings"]
    assert (s["preset"], s["gen_length"], s["temperature"], s["top_p"], s["tokens_per_step"]) == (
        "dream-gsm8k", 8, 0.1, 0.9, 2)
    assert s["adapter"] == str(tiny_dirs["adapter"])
    assert data["counts"] == {"math_chain": 2}
    assert {"prompt", "output", "extracted", "correct", "decode_steps"} <= set(data["samples"][0])
