"""`inspect_file` statistics and the `tabom data inspect` command (exit codes, messages)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from tabom.commands.data import data_app
from tabom.trajectories.inspect import inspect_file, render_report, step_histogram
from tabom.trajectories.io import TrajectoryWriter
from tabom.trajectories.schema import Trajectory

MakeTraj = Callable[..., Trajectory]


def _good_file(path: Path, make_traj: MakeTraj) -> Path:
    """Three rows: toy correct, toy wrong, other unknown; the third decodes 2 tokens per step."""
    two_per_step = dict(
        gen_length=4, steps=2, block_length=None, temperature=0.0, top_p=None, top_k=None,
        tokens_per_step=2, seed=0,
    )
    with TrajectoryWriter(path) as w:
        w.write_many([
            make_traj("a"),
            make_traj("b", correct=False, response="abcd", response_token_ids=[5, 6, 7, 2]),
            make_traj("c", correct=None, data_source="other", method="confidence",
                      decoding_order=[0, 1, 0, -1], settings=two_per_step),
        ])
    return path


def test_step_histogram() -> None:
    """[0, 2, 1, 2, -1]: steps 0, 1, 2 unmask 1, 1, 2 tokens -> {1: 2, 2: 1}; gaps count as 0."""
    assert step_histogram([0, 2, 1, 2, -1]) == Counter({1: 2, 2: 1})
    assert step_histogram([0, 2]) == Counter({1: 2, 0: 1})
    assert step_histogram([-1, -1]) == Counter()


def test_inspect_statistics(tmp_path: Path, make_traj: MakeTraj) -> None:
    """By hand: chars 2, 4, 2; tokens to first EOS (id 2) 2, 3, 2.

    Steps: a and b unmask one token at each of 4 steps (8 steps of 1); c unmasks 2 at step 0
    and 1 at step 1 -> {1: 9, 2: 1}, mean (9 + 2) / 10 = 1.1; one position of c is never decoded.
    """
    report = inspect_file(_good_file(tmp_path / "t.jsonl", make_traj))
    assert report.ok and (report.n_lines, report.n_valid) == (3, 3)
    assert report.methods == Counter({"entropy": 2, "confidence": 1})
    assert (report.response_chars.min, report.response_chars.max) == (2, 4)
    assert abs(report.response_chars.mean - 8 / 3) < 1e-9
    assert (report.response_tokens.min, report.response_tokens.max) == (2, 3)
    toy, other = report.yields["toy"], report.yields["other"]
    assert (toy.correct, toy.known, toy.total, toy.rate) == (1, 2, 2, 0.5)
    assert (other.correct, other.known, other.total, other.rate) == (0, 0, 1, None)
    assert report.tokens_per_step == Counter({1: 9, 2: 1})
    assert abs(report.mean_tokens_per_step - 1.1) < 1e-9
    assert report.never_decoded == 1


def _bad_file(path: Path, make_traj: MakeTraj) -> Path:
    """Line 1 good, line 2 wrong decoding_order length, line 3 not JSON, line 4 good."""
    bad = make_traj("x").to_json()
    bad["decoding_order"] = [0, 1]
    path.write_text(
        "\n".join([make_traj("a").to_line(), json.dumps(bad), "{oops",
                   make_traj("d").to_line()]) + "\n"
    )
    return path


def test_inspect_collects_every_error_or_stops(tmp_path: Path, make_traj: MakeTraj) -> None:
    path = _bad_file(tmp_path / "bad.jsonl", make_traj)
    report = inspect_file(path)
    assert (report.n_lines, report.n_valid, report.stopped_early) == (4, 2, False)
    assert [str(e) for e in report.errors][0] == (
        f"{path}:2: decoding_order: has 2 entries but response_token_ids has 4"
    )
    assert str(report.errors[1]).startswith(f"{path}:3: json: invalid JSON (")
    strict = inspect_file(path, strict=True)
    assert (strict.n_lines, strict.n_valid, len(strict.errors)) == (2, 1, 1)
    assert strict.stopped_early


def test_render_report_mentions_sources(tmp_path: Path, make_traj: MakeTraj) -> None:
    report = inspect_file(_good_file(tmp_path / "t.jsonl", make_traj))
    console = Console(width=120, record=True)
    console.print(render_report(report))
    text = console.export_text()
    assert "Yield per data source" in text and "50.0%" in text and "all lines valid" in text


def test_cli_inspect_good_file_exits_0(tmp_path: Path, make_traj: MakeTraj) -> None:
    path = _good_file(tmp_path / "t.jsonl", make_traj)
    result = CliRunner().invoke(data_app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "toy" in result.output


def test_cli_inspect_bad_file_exits_2(tmp_path: Path, make_traj: MakeTraj) -> None:
    path = _bad_file(tmp_path / "bad.jsonl", make_traj)
    result = CliRunner().invoke(data_app, ["inspect", str(path)])
    assert result.exit_code == 2
    assert f"{path}:2: decoding_order: has 2 entries but response_token_ids has 4" in result.stderr
    assert f"{path}:3: json: invalid JSON" in result.stderr
    strict = CliRunner().invoke(data_app, ["inspect", str(path), "--strict"])
    assert strict.exit_code == 2
    assert f"{path}:2: decoding_order" in strict.stderr
    assert f"{path}:3:" not in strict.stderr


def test_cli_inspect_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(data_app, ["inspect", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_content_share_of_the_windows(tmp_path: Path, make_traj: MakeTraj) -> None:
    """[5, 6, EOS, EOS] with the EOS decoded first (steps 0, 1), M = W = 2: cuts 0 and 1 (s_max 3 - M),
    windows [0, 2) = two EOS and [1, 3) = one EOS + one content token -> 0.5 of 2 tokens = 0.25.
    Decoded left to right instead, the windows hold 2 and 1 content tokens -> 0.75."""
    settings = dict(gen_length=4, steps=4, block_length=None, temperature=0.0, top_p=None, top_k=None,
                    tokens_per_step=None, seed=0, eos_token_id=2)
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as w:
        w.write_many([make_traj("a", decoding_order=[2, 3, 0, 1], settings=settings)])
    report = inspect_file(path, ce_window=2, rank_window=2)
    assert report.content is not None
    assert (report.content["ce"], report.content["rank"], report.content["ce_window"]) == (0.25, 0.25, 2)
    result = CliRunner().invoke(data_app, ["inspect", str(path), "--ce-window", "2", "--rank-window", "2"])
    assert result.exit_code == 0 and "0.250" in result.output and "Content" in result.output
    left = tmp_path / "l.jsonl"
    with TrajectoryWriter(left) as w:
        w.write_many([make_traj("a", decoding_order=[0, 1, 2, 3], settings=settings)])
    assert inspect_file(left, ce_window=2, rank_window=2).content["ce"] == 0.75
    # default windows: the paper's 32 over 256 scaled to 4 tokens -> max(2, round(0.5)) = 2
    assert inspect_file(left).content["ce_window"] == 2
