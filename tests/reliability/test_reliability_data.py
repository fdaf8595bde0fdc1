"""Trajectory rows under hostile values: `tabom data inspect` ends, names FILE:LINE: field.

A row's integers once went unchecked: `steps` 1e30 made the decode-step histogram loop to it
(inspect never ended), a step past int64 surfaced in training as `Overflow when unpacking long
long`, ids outside the vocabulary passed inspect. (docs/reliability.md, 'Training runs and
recipes', trajectory validation.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tabom.trajectories.inspect import inspect_file, step_histogram
from tabom.trajectories.schema import MAX_ID, Trajectory, TrajectoryError


def _row(i: int = 0, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"r{i}", "prompt": "ab", "response": "ba", "prompt_token_ids": [1, 7, 8],
        "response_token_ids": [5, 6, 2, 2], "decoding_order": [1, 0, 2, 3], "method": "entropy",
        "data_source": "toy", "correct": True, "model": "tiny",
        "settings": {"gen_length": 4, "steps": 4, "block_length": None, "temperature": 0.0,
                     "top_p": None, "top_k": None, "tokens_per_step": None, "seed": 0},
    }
    settings = changes.pop("settings", {})
    row.update(changes)
    row["settings"].update(settings)
    return row


def _file(tmp_path: Path, *rows: dict[str, Any], raw: str = "") -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + raw)
    return path


def _only_error(path: Path, **kwargs: Any) -> str:
    report = inspect_file(path, **kwargs)
    assert len(report.errors) == 1, report.errors
    return str(report.errors[0])


def test_huge_steps_end_at_once_with_the_field(tmp_path: Path) -> None:
    """steps 10^30 with a step of 10^29 used to loop over 10^29 histogram bins."""
    row = _row(1, settings={"steps": 10**30, "tokens_per_step": 2}, decoding_order=[0, 0, 1, 10**29])
    path = _file(tmp_path, _row(0), row)
    start = time.perf_counter()
    assert _only_error(path) == f"{path}:2: settings.steps: must be <= {MAX_ID}, got {10**30}"
    assert time.perf_counter() - start < 5


def test_a_step_past_int64_is_a_field_error_not_an_overflow(tmp_path: Path) -> None:
    row = _row(settings={"steps": None}, decoding_order=[0, 1, 2, 10**20])
    row["settings"].pop("steps")
    path = _file(tmp_path, row)
    assert _only_error(path) == f"{path}:1: decoding_order: position 3 has step {10**20}, expected -1 or in [0, {MAX_ID + 1})"


def test_histogram_is_linear_in_the_positions_not_the_steps() -> None:
    """A legal but sparse order (two positions, steps 0 and 10^9) counts empty steps arithmetically."""
    start = time.perf_counter()
    assert step_histogram([0, 10**9, -1]) == {1: 2, 0: 10**9 - 1}
    assert time.perf_counter() - start < 1
    assert step_histogram([0, 2, 1, 2, -1]) == {1: 2, 2: 1}
    assert step_histogram([-1, -1]) == {}


@pytest.mark.parametrize("change, message", [
    (dict(prompt_token_ids=[1, -7, 8]), "prompt_token_ids: item 1 is -7, outside the token id range [0, 2147483648)"),
    (dict(response_token_ids=[5, 6, 2, 2**40]), "response_token_ids: item 3 is 1099511627776, outside the token id range [0, 2147483648)"),
    (dict(settings={"temperature": float("nan")}), "settings.temperature: must be a finite number, got nan"),
    (dict(settings={"top_p": 1.5}), "settings.top_p: must be <= 1.0, got 1.5"),
    (dict(settings={"eos_token_id": -1}), "settings.eos_token_id: must be >= 0, got -1"),
    (dict(settings={"gen_length": 2**31}), "settings.gen_length: must be <= 2147483647, got 2147483648"),
    (dict(settings={"vocab_size": 6}, prompt_token_ids=[1, 2], response_token_ids=[5, 6, 2, 2]),
     "response_token_ids: item 1 is 6, outside the vocabulary of settings.vocab_size [0, 6)"),
])
def test_every_integer_and_float_is_range_checked(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = _file(tmp_path, _row(**change))
    assert _only_error(path) == f"{path}:1: {message}"


def test_model_vocabulary_wins_over_recorded_settings() -> None:
    row = _row(settings={"vocab_size": 1000}, response_token_ids=[5, 6, 200, 2])
    assert Trajectory.from_json(row).response_token_ids[2] == 200
    with pytest.raises(TrajectoryError, match=r"item 2 is 200, outside the model's vocabulary \[0, 101\)"):
        Trajectory.from_json(row, vocab_size=101)


def test_non_utf8_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes((json.dumps(_row(0)) + "\n").encode() + b'{"id": "caf\xe9"}\n')
    report = inspect_file(path)
    assert len(report.errors) == 1 and str(report.errors[0]).startswith(f"{path}:2: ")
    assert "UTF-8" in str(report.errors[0])
    assert report.n_valid == 1


def test_cli_inspect_with_model_checks_the_vocabulary(tmp_path: Path) -> None:
    from tabom.cli import app

    path = _file(tmp_path, _row(0), _row(1, response_token_ids=[5, 6, 2, 500]))
    plain = CliRunner().invoke(app, ["data", "inspect", str(path)])
    assert plain.exit_code == 0, plain.output
    checked = CliRunner().invoke(app, ["data", "inspect", str(path), "--model", "tiny"])
    assert checked.exit_code == 2
    assert f"{path}:2: response_token_ids: item 3 is 500, outside the model's vocabulary [0, 101)" in checked.output
    by_size = CliRunner().invoke(app, ["data", "inspect", str(path), "--vocab-size", "101"])
    assert by_size.exit_code == 2 and "outside the model's vocabulary [0, 101)" in by_size.output
    missing = CliRunner().invoke(app, ["data", "inspect", str(path), "--model", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no such file" in str(missing.exception or missing.output)


def test_utf8_error_names_the_first_bad_line(tmp_path: Path) -> None:
    """What a reader falls back on when decoding fails part-way through a file."""
    from tabom.trajectories.schema import utf8_error

    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "\xc3\xa9"}\n{"c": "x\xff"}\n')
    error = utf8_error(path)
    assert error is not None and str(error) == f"{path}:3: text: not UTF-8 text (byte 0xff at column 9)"
    path.write_bytes(b'{"a": "\xc3\xa9"}\n')
    assert utf8_error(path) is None
